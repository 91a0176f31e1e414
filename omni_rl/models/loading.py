"""Loading a policy (model + processor) from an HF checkpoint folder or hub name.

Both config layouts load into transformers' native ``NemotronH_Omni_Reasoning_V3``: the native
``nemotron_h_omni`` config as is, NVIDIA's original layout (``llm_config``/``sound_config``) after
config conversion (``original_config``); the weights of both use the original names, which
``from_pretrained`` maps with transformers' conversion rules (see ``layout``). Hub names go to
``from_pretrained`` unchanged (config.json is fetched first to tell the layout); on machines without
network only local folders work. ``trust_remote_code`` is passed to the processor/tokenizer loading
(NVIDIA's repos ship remote processor code); the model class is always transformers' native one.

Where only the config is needed (no weights, no network): ``resolve_model_source`` / ``load_model_config``;
the hub id of the real model (``nemotron_omni.REPO_ID``) resolves to ``nemotron_omni.real_config()``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoProcessor,
    AutoTokenizer,
    NemotronH_Omni_Reasoning_V3,
    NemotronH_Omni_Reasoning_V3_Config,
    ParakeetFeatureExtractor,
)
from transformers.models.nemotron_h_omni.image_processing_nemotron_h_omni import (
    NemotronH_Omni_Reasoning_V3ImageProcessor,
)
from transformers.models.nemotron_h_omni.processing_nemotron_h_omni import (
    NemotronH_Omni_Reasoning_V3Processor,
)
from transformers.models.nemotron_h_omni.video_processing_nemotron_h_omni import (
    NemotronH_Omni_Reasoning_V3VideoProcessor,
)
from transformers.utils import cached_file

from omni_rl import compat
from omni_rl.models.layout import is_original_config
from omni_rl.models.nemotron_omni import KNOWN_REPO_IDS, real_config
from omni_rl.models.original_config import (
    CLS_TOKEN_KEY,
    native_config_from_original,
    read_config_dict,
    tensor_shapes,
)

log = logging.getLogger(__name__)

# parameter groups by native name (what the freeze options act on)
PARAM_GROUPS: dict[str, re.Pattern[str]] = {
    "vision": re.compile(r"^(vision_model|vision_final_layernorm)\."),
    "audio": re.compile(r"^audio_tower\."),
    "projectors": re.compile(r"^(multi_modal_projector|embed_audio)\."),
    "router": re.compile(r"^language_model\.model\.layers\.\d+\.mixer\.gate\.weight$"),
}
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}
# float attributes the pinned modeling code reads as dropout probabilities at forward time
_DROPOUT_ATTRS = (
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "dropout_positions",
    "layerdrop",
    "drop_prob",
)


def parameter_group(name: str) -> str:
    """The group of a native parameter name: vision, audio, projectors, router or language."""
    return next((group for group, pattern in PARAM_GROUPS.items() if pattern.search(name)), "language")


def freeze(model: nn.Module, groups: list[str] | tuple[str, ...]) -> list[str]:
    """Set ``requires_grad=False`` on the parameters of ``groups``; returns the frozen names."""
    unknown = set(groups) - set(PARAM_GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; use {sorted(PARAM_GROUPS)}")
    frozen = []
    for name, param in model.named_parameters():
        if parameter_group(name) in groups:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def disable_dropout(model: nn.Module) -> None:
    """Zero every dropout probability (nn.Dropout, attention/activation dropout, layer drop, drop path).

    RL needs the trainer's forward to match the sampler's: Parakeet's config defaults to 0.1 dropout
    and 0.1 layer drop, which would make every training forward random.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for attr in _DROPOUT_ATTRS:
            value = getattr(module, attr, None)
            if isinstance(value, float) and not isinstance(value, bool) and value > 0:
                setattr(module, attr, 0.0)


def _batchnorm_eval_hook(module: nn.Module, _args) -> None:
    module.training = False


def freeze_norm_statistics(model: nn.Module) -> int:
    """Make BatchNorm layers (Parakeet's conv module) always use their running statistics, also in
    train mode, so a sample's result does not depend on the other samples and padding in its batch.
    Returns the number of layers hooked; idempotent."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not getattr(
            module, "_omni_rl_frozen", False
        ):
            module.register_forward_pre_hook(_batchnorm_eval_hook)
            module._omni_rl_frozen = True
            count += 1
    return count


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def processor_from_config(config, tokenizer) -> NemotronH_Omni_Reasoning_V3Processor:
    """A native processor for a model config, for checkpoints whose processor files don't load natively."""
    vision = config.vision_config
    mean, std = list(vision.norm_mean), list(vision.norm_std)
    audio = config.audio_config
    return NemotronH_Omni_Reasoning_V3Processor(
        image_processor=NemotronH_Omni_Reasoning_V3ImageProcessor(
            patch_size=vision.patch_size,
            image_mean=mean,
            image_std=std,
            downsample_ratio=config.downsample_ratio,
        ),
        video_processor=NemotronH_Omni_Reasoning_V3VideoProcessor(
            patch_size=vision.patch_size, norm_mean=mean, norm_std=std, do_sample_frames=False
        ),
        tokenizer=tokenizer,
        feature_extractor=ParakeetFeatureExtractor(feature_size=audio.num_mel_bins if audio else 128),
        chat_template=getattr(tokenizer, "chat_template", None),
        audio_subsampling_factor=audio.subsampling_factor if audio else 8,
        video_temporal_patch_dim=config.video_temporal_patch_size,
    )


def _load_processor(path_or_name: str, config, trust_remote_code: bool):
    try:
        processor = AutoProcessor.from_pretrained(path_or_name, trust_remote_code=trust_remote_code)
        if isinstance(processor, NemotronH_Omni_Reasoning_V3Processor):
            return processor
        log.warning("%s: processor is %s; building the native one", path_or_name, type(processor).__name__)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: AutoProcessor failed (%s); building the native processor", path_or_name, exc)
    tokenizer = AutoTokenizer.from_pretrained(path_or_name, trust_remote_code=trust_remote_code)
    return processor_from_config(config, tokenizer)


def resolve_model_source(path_or_name: str | Path) -> Path | NemotronH_Omni_Reasoning_V3_Config:
    """Where a model's config comes from, offline: a local folder as is; a known hub id
    (``nemotron_omni.KNOWN_REPO_IDS``) as its built-in config (``nemotron_omni.real_config()``), even when
    the hub is unreachable; another hub id as its snapshot folder in the local HF cache. Never downloads."""
    source = str(path_or_name)
    if Path(source).is_dir():
        return Path(source)
    if source.strip("/").lower() in {repo.lower() for repo in KNOWN_REPO_IDS}:
        return real_config()
    try:
        config_file = cached_file(source, "config.json", local_files_only=True)
    except (OSError, ValueError) as exc:  # ValueError: not a valid hub repo id either
        config_file = None
        reason = f" ({exc.__class__.__name__})"
    else:
        reason = ""
    if config_file is None:
        raise FileNotFoundError(
            f"model path {source!r}: not a folder, not a known hub id {list(KNOWN_REPO_IDS)}, and not in "
            f"the local HF cache{reason}"
        )
    return Path(config_file).parent


def load_model_config(path_or_name: str | Path) -> NemotronH_Omni_Reasoning_V3_Config:
    """The native config of a checkpoint folder (either layout), a cached hub snapshot or a known hub id,
    without loading weights or using the network (see ``resolve_model_source``)."""
    source = resolve_model_source(path_or_name)
    if not isinstance(source, Path):
        return source
    config_file = source / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"model path {str(path_or_name)!r}: {source} has no config.json")
    raw = read_config_dict(config_file)
    if is_original_config(raw):
        return native_config_from_original(raw, tensor_shapes(source, [CLS_TOKEN_KEY]))
    if raw.get("model_type") != "nemotron_h_omni":
        raise ValueError(f"{source}: model_type {raw.get('model_type')!r} is not a Nemotron Omni checkpoint")
    return NemotronH_Omni_Reasoning_V3_Config.from_dict(raw)


def load_policy(
    path_or_name: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    freeze_vision: bool = False,
    freeze_audio: bool = False,
    freeze_projectors: bool = False,
    freeze_router: bool = False,
    gradient_checkpointing: bool = False,
    attn_implementation: str | None = None,
    deterministic: bool = True,
) -> tuple[NemotronH_Omni_Reasoning_V3, NemotronH_Omni_Reasoning_V3Processor]:
    """Load model and processor; the model is returned in train mode on ``device``.

    dtype: "auto" = bfloat16 on CUDA, float32 on CPU. deterministic: zero all dropout and freeze
    BatchNorm statistics (train-mode forwards then equal eval-mode forwards).
    """
    compat.apply_patches()
    source = str(path_or_name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch_dtype = resolve_dtype(dtype, device)
    try:
        config_file = (
            Path(source) / "config.json" if Path(source).is_dir() else cached_file(source, "config.json")
        )
    except (OSError, ValueError) as exc:  # ValueError: not a valid hub repo id either
        raise FileNotFoundError(
            f"path_or_name: no checkpoint folder or reachable hub repo {source!r}"
        ) from exc
    if config_file is None or not Path(config_file).exists():
        raise FileNotFoundError(f"path_or_name: {source!r} has no config.json")
    raw = read_config_dict(config_file)
    kwargs = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if is_original_config(raw):
        shapes = tensor_shapes(source, [CLS_TOKEN_KEY]) if Path(source).is_dir() else {}
        kwargs["config"] = native_config_from_original(raw, shapes)
    elif raw.get("model_type") != "nemotron_h_omni":
        raise ValueError(f"{source}: model_type {raw.get('model_type')!r} is not a Nemotron Omni checkpoint")
    if device.type != "cpu":
        kwargs["device_map"] = {"": str(device)}
    model = NemotronH_Omni_Reasoning_V3.from_pretrained(source, **kwargs)
    processor = _load_processor(source, model.config, trust_remote_code)
    flags = {
        "vision": freeze_vision,
        "audio": freeze_audio,
        "projectors": freeze_projectors,
        "router": freeze_router,
    }
    return _prepare(model, flags, gradient_checkpointing, deterministic), processor


def _prepare(
    model: NemotronH_Omni_Reasoning_V3,
    frozen: dict[str, bool],
    gradient_checkpointing: bool,
    deterministic: bool,
) -> NemotronH_Omni_Reasoning_V3:
    if deterministic:
        disable_dropout(model)
        freeze_norm_statistics(model)
    freeze(model, [group for group, on in frozen.items() if on])
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def build_policy_on_meta(
    path: str | Path,
    *,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    freeze_vision: bool = False,
    freeze_audio: bool = False,
    freeze_projectors: bool = False,
    freeze_router: bool = False,
    gradient_checkpointing: bool = False,
) -> tuple[NemotronH_Omni_Reasoning_V3, NemotronH_Omni_Reasoning_V3Processor]:
    """The policy of the checkpoint folder ``path`` (either layout) on the meta device, prepared as
    ``load_policy`` prepares it, without reading a weight; shard it, ``to_empty`` it, then fill it with
    ``omni_rl.models.sharded_load.load_shards``."""
    compat.apply_patches()
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: sharded loading reads a local checkpoint folder")
    config = load_model_config(path)
    with torch.device("meta"):
        model = NemotronH_Omni_Reasoning_V3(config).to(dtype)
    processor = _load_processor(str(path), model.config, trust_remote_code)
    flags = {
        "vision": freeze_vision,
        "audio": freeze_audio,
        "projectors": freeze_projectors,
        "router": freeze_router,
    }
    return _prepare(model, flags, gradient_checkpointing, True), processor
