"""Config conversion between transformers' native ``nemotron_h_omni`` config and NVIDIA's original
layout (``llm_config`` / ``vision_config.args`` / ``sound_config``, model type
``NemotronH_Nano_VL_V2``), which NVIDIA publishes and vLLM reads.

The original vision config describes RADIO through timm-style ``args``; the native ``RadioConfig``
has explicit fields. Shapes that only the weights pin down for sure (CLS + register tokens) can be
checked against the checkpoint with ``tensor_shapes``. The exported layout is the one vLLM's CPU build
loads (the tests in ``tests/vllm_cpu/`` load it there; see docs/vllm.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import NemotronH_Omni_Reasoning_V3_Config, PretrainedConfig

ORIGINAL_MODEL_TYPE = "NemotronH_Nano_VL_V2"
ORIGINAL_ARCHITECTURE = "NemotronH_Nano_Omni_Reasoning_V3"  # the name vLLM's registry knows
REMOTE_CONFIG_FILE = "configuration_omni_rl_original.py"
REMOTE_CONFIG_CLASS = "OmniRLOriginalConfig"
# timm ViT names -> (hidden, layers, heads, mlp width), the ones RADIO checkpoints use
VIT_DIMS = {
    "vit_small_patch16_224": (384, 12, 6, 1536),
    "vit_base_patch16_224": (768, 12, 12, 3072),
    "vit_large_patch16_224": (1024, 24, 16, 4096),
    "vit_huge_patch16_224": (1280, 32, 16, 5120),
}
CLS_TOKEN_KEY = "vision_model.radio_model.model.patch_generator.cls_token.token"
# top-level keys of the original layout that the native config has no field for
_ORIGINAL_ONLY = (
    "auto_map",
    "model_type",
    "architectures",
    "template",
    "ps_version",
    "image_tag_type",
    "use_thumbnail",
    "patch_size",
    "norm_mean",
    "norm_std",
)


def read_config_dict(path: str | Path) -> dict[str, Any]:
    """A config.json as a dict, decoding transformers' special floats (``{"__float__": "Infinity"}``)."""
    return PretrainedConfig._dict_from_json_file(str(path))


def tensor_shapes(folder: str | Path, keys: list[str]) -> dict[str, tuple[int, ...]]:
    """Shapes of ``keys`` in a safetensors checkpoint folder (single file or sharded), read from headers."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = {k: folder / weight_map[k] for k in keys if k in weight_map}
    else:
        files = {k: folder / "model.safetensors" for k in keys}
    shapes = {}
    for key, file in files.items():
        if file.exists():
            with safe_open(str(file), "pt") as handle:
                if key in handle.keys():  # noqa: SIM118 (safe_open has no __contains__)
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def _radio_from_original(vision: dict, top: dict, shapes: dict[str, tuple[int, ...]]) -> dict:
    args = dict(vision.get("args") or {})
    dims = VIT_DIMS.get(args.get("model", ""), (None, None, None, None))
    hidden = args.get("hidden_size") or dims[0]
    layers = args.get("num_hidden_layers") or dims[1]
    heads = args.get("num_attention_heads") or dims[2]
    mlp = args.get("intermediate_size") or dims[3]
    if None in (hidden, layers, heads, mlp):
        raise ValueError(
            f"vision_config.args: cannot tell the RADIO size from model={args.get('model')!r}; "
            "give hidden_size, num_hidden_layers, num_attention_heads and intermediate_size"
        )
    teachers = args.get("teachers") or []
    num_cls = len(teachers) if args.get("cls_token_per_teacher") and teachers else 1
    registers = args.get("num_registers") or 0
    if not registers and args.get("register_multiple"):
        registers = args["register_multiple"] - num_cls % args["register_multiple"]
    if CLS_TOKEN_KEY in shapes:  # the weights decide
        registers = shapes[CLS_TOKEN_KEY][0] - num_cls
    patch = vision.get("patch_size", top.get("patch_size", 16))
    temporal = (
        vision.get("video_temporal_patch_size") if vision.get("separate_video_embedder", True) else None
    )
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "mlp_ratio": mlp / hidden,
        "patch_size": patch,
        "image_size": (vision.get("preferred_resolution") or [top.get("force_image_size") or 224])[0],
        "max_img_size": args.get("cpe_max_size", 2048),
        "num_cls_tokens": num_cls,
        "num_registers": registers,
        "video_temporal_patch_size": temporal or top.get("video_temporal_patch_size", 2),
        "norm_mean": list(
            top.get("norm_mean") or vision.get("norm_mean") or (0.48145466, 0.4578275, 0.40821073)
        ),
        "norm_std": list(
            top.get("norm_std") or vision.get("norm_std") or (0.26862954, 0.26130258, 0.27577711)
        ),
    }


def native_config_from_original(
    original: dict[str, Any], shapes: dict[str, tuple[int, ...]] | None = None
) -> NemotronH_Omni_Reasoning_V3_Config:
    """Build the native config from an original-layout config dict (see ``read_config_dict``)."""
    if "llm_config" not in original or "vision_config" not in original:
        raise ValueError("original config: expected 'llm_config' and 'vision_config' fields")
    data = {k: v for k, v in original.items() if k not in _ORIGINAL_ONLY}
    data["vision_config"] = _radio_from_original(original["vision_config"], original, shapes or {})
    data["llm_config"] = {k: v for k, v in original["llm_config"].items() if k not in ("architectures",)}
    data["video_temporal_patch_size"] = data["vision_config"]["video_temporal_patch_size"]
    if isinstance(original.get("sound_config"), dict):  # sampling_rate is the feature extractor's business
        data["sound_config"] = {k: v for k, v in original["sound_config"].items() if k != "sampling_rate"}
    # the native class handles the legacy names llm_config, sound_config, vit_hidden_size, *_context_token_id
    config = NemotronH_Omni_Reasoning_V3_Config(**data)
    config.architectures = ["NemotronH_Omni_Reasoning_V3"]
    return config


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return str(dtype or "bfloat16").removeprefix("torch.")


def original_config_from_native(config: NemotronH_Omni_Reasoning_V3_Config, processor=None) -> dict[str, Any]:
    """The original-layout config dict (as vLLM reads it) of a native config.

    ``processor`` supplies the image/video patch budgets (min/max patches, video target patches).
    """
    vision, text = config.vision_config, config.text_config
    dtype = _dtype_name(config.dtype)
    mlp = round(vision.hidden_size * vision.mlp_ratio)
    dims = (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads, mlp)
    vit_name = next((n for n, d in VIT_DIMS.items() if d == dims), "vit_small_patch16_224")
    image_proc = getattr(processor, "image_processor", None)
    video_proc = getattr(processor, "video_processor", None)
    args = {
        "model": vit_name,  # explicit sizes below take precedence (what the probe loaded in vLLM)
        "hidden_size": vision.hidden_size,
        "num_hidden_layers": vision.num_hidden_layers,
        "num_attention_heads": vision.num_attention_heads,
        "intermediate_size": mlp,
        "min_num_patches": getattr(image_proc, "min_num_patches", 1024),
        "max_num_patches": getattr(image_proc, "max_num_patches", 13312),
        "cpe_max_size": vision.max_img_size,
        "cls_token_per_teacher": True,
        "teachers": [{"name": f"teacher{i}", "use_summary": True} for i in range(vision.num_cls_tokens)],
    }
    if vision.num_registers:  # RADIO: registers = multiple - cls % multiple
        args["register_multiple"] = vision.num_cls_tokens + vision.num_registers
    llm = text.to_dict()
    llm.update(architectures=["NemotronHForCausalLM"], dtype=dtype)
    sound = None
    if config.audio_config is not None:
        sound = config.audio_config.to_dict()
        sound.update(model_type="parakeet", sampling_rate=16000)
    size = config.force_image_size or vision.image_size
    return {
        "architectures": [ORIGINAL_ARCHITECTURE],
        "model_type": ORIGINAL_MODEL_TYPE,
        "auto_map": {"AutoConfig": f"{Path(REMOTE_CONFIG_FILE).stem}.{REMOTE_CONFIG_CLASS}"},
        "llm_config": llm,
        "vision_config": {
            "model_type": "radio",
            "patch_size": vision.patch_size,
            "preferred_resolution": [size, size],
            "video_temporal_patch_size": config.video_temporal_patch_size,
            "separate_video_embedder": True,
            "video_target_num_patches": getattr(video_proc, "video_target_num_patches", 1024),
            "video_maintain_aspect_ratio": getattr(video_proc, "video_maintain_aspect_ratio", True),
            "args": args,
        },
        "sound_config": sound,
        "force_image_size": size,
        "patch_size": vision.patch_size,
        "downsample_ratio": config.downsample_ratio,
        "template": "nemotron",
        "ps_version": "v2",
        "image_tag_type": "internvl",
        "use_thumbnail": True,
        "norm_mean": list(vision.norm_mean),
        "norm_std": list(vision.norm_std),
        "vit_hidden_size": config.vision_hidden_size,
        "projector_hidden_size": config.projector_hidden_size,
        "video_pruning_rate": config.video_pruning_rate,
        "img_context_token_id": config.image_token_id,
        "video_context_token_id": config.video_token_id,
        "sound_context_token_id": config.audio_token_id,
        "dtype": dtype,
    }


def write_original_config(
    config: NemotronH_Omni_Reasoning_V3_Config, out: str | Path, processor=None
) -> Path:
    """Write config.json in the original layout plus the small config class its ``auto_map`` names."""
    out = Path(out)
    data = original_config_from_native(config, processor)
    text = json.dumps(PretrainedConfig._encode_special_floats(data), indent=2, sort_keys=False)
    (out / "config.json").write_text(text + "\n", encoding="utf-8")
    shutil.copyfile(Path(__file__).with_name("hf_remote_config.py"), out / REMOTE_CONFIG_FILE)
    return out / "config.json"
