"""The real Nemotron 3 Nano Omni 30B-A3B configuration, known by name, in both config layouts.

``real_config()`` is transformers' native ``NemotronH_Omni_Reasoning_V3_Config``; ``real_original_config()``
is NVIDIA's original layout (``llm_config`` / ``vision_config.args`` / ``sound_config``, what vLLM reads),
made by ``original_config``'s mapping. ``build_on_meta`` builds the model without memory and
``count_parameters`` splits total and per-token active parameters.

Sources (cited by tag next to each value):

- [card] HF model card of ``nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16``: 31B total (LLM),
  ~3B active, 256k context, BF16 checkpoint 62 GB.
- [mb-card] Megatron-Bridge ``examples/model_verification_cards/nemotron-3-nano-omni-30b-a3b-reasoning/
  card.yaml`` (HF revision 24e67ea0): the import has 33,015,546,816 parameters, the checkpoint 7,349
  tensors. ``build_on_meta(real_config())`` gives exactly that count plus RADIO's 81,920 identity
  LayerScale weights (native port only, see below), so every size below that changes a shape is
  pinned by that count, in addition to its own source.
- [mb-nano] Megatron-Bridge ``src/megatron/bridge/recipes/nemotronh/h100/nemotron_3_nano.py``:
  the Nemotron 3 Nano 30B-A3B language model provider.
- [mb-omni] Megatron-Bridge ``src/megatron/bridge/models/nemotron_omni/nemotron_omni_provider.py`` and
  ``nemotron_omni_bridge.py``: RADIO ViT-H tower, ten class tokens, sound encoder / projection sizes.
- [vllm] vLLM ``vllm/model_executor/models/nano_nemotron_vl.py`` (``mlp1`` projector: RMSNorm(vit *
  (1/downsample)^2) -> Linear(projector_hidden) -> ReLU^2 -> Linear(llm hidden)) and
  ``vllm/transformers_utils/configs/radio.py`` (``vit_huge_patch16_224`` = 1280/32/16/5120,
  ``cpe_max_size`` 2048).
- [automodel] NVIDIA-NeMo/Automodel ``nemo_automodel/components/models/nemotron_omni/model.py``:
  ``NemotronOmniConfig`` defaults and the Parakeet sound-config defaults it reads.
- [nv-n3] NVIDIA's Nemotron 3 release page: Nano is "3.2B active (3.6B with embeddings), 31.6B total".
- [hf] transformers 5.19 ``configuration_{nemotron_h,radio,parakeet,nemotron_h_omni}.py`` (defaults).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import NemotronH_Omni_Reasoning_V3, NemotronH_Omni_Reasoning_V3_Config
from transformers.models.nemotron_h.configuration_nemotron_h import NemotronHConfig

from omni_rl import compat
from omni_rl.models.original_config import original_config_from_native

REPO_ID = "nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16"  # [card], [mb-card] hf_id
TEXT_REPO_ID = "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"  # the text-only LLM the Omni builds on [hf]
REVISION = "24e67ea000b7c2837fc8f9488aa2008524fac8ba"  # the revision [mb-card] verified against
KNOWN_REPO_IDS = (REPO_ID,)  # hub ids that resolve to this configuration offline

# M = Mamba-2, E = MoE, * = GQA attention: 52 layers = 23 M + 23 E + 6 * [mb-nano] hybrid_layer_pattern
HYBRID_PATTERN = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"

TEXT_CONFIG: dict[str, Any] = {  # NemotronH decoder (native NemotronHConfig kwargs)
    "vocab_size": 131072,  # [hf] NemotronH default; pinned by the [mb-card] count (embed + lm_head)
    "hidden_size": 2688,  # [mb-nano]
    "layers_block_type": NemotronHConfig._pattern_to_list(HYBRID_PATTERN),  # [mb-nano]
    "tie_word_embeddings": False,  # separate lm_head: pinned by the [mb-card] count
    "max_position_embeddings": 262144,  # 256k context [card]
    # attention (6 layers): GQA 32 query / 2 KV heads of 128 [mb-nano] num_query_groups, kv_channels
    "num_attention_heads": 32,
    "num_key_value_heads": 2,
    "head_dim": 128,
    "attention_bias": False,  # [hf] default; pinned by the [mb-card] count
    # Mamba-2 (23 layers): 64 heads x 64 = 4096 inner, state 128, 8 groups [mb-nano]
    "mamba_num_heads": 64,
    "mamba_head_dim": 64,
    "ssm_state_size": 128,
    "n_groups": 8,
    "expand": 2,  # [hf] default; unused: the mixer's inner width is heads * head_dim (4096)
    "conv_kernel": 4,  # [hf] default; pinned by the [mb-card] count (conv1d weight)
    "chunk_size": 128,  # [hf] default; not found in an NVIDIA source, no shape depends on it
    # MoE (23 layers): 128 routed experts, top-6, one shared expert [mb-nano]
    "n_routed_experts": 128,
    "num_experts_per_tok": 6,
    "n_shared_experts": 1,
    "moe_intermediate_size": 1856,  # [mb-nano] moe_ffn_hidden_size
    "moe_shared_expert_intermediate_size": 3712,  # [mb-nano]
    "intermediate_size": 1856,  # dense-MLP width; no "-" layer uses it ([mb-nano] ffn_hidden_size)
    "routed_scaling_factor": 2.5,  # [mb-nano] moe_router_topk_scaling_factor
    "n_group": 1,  # [mb-nano] moe_router_num_groups
    "topk_group": 1,  # [mb-nano] moe_router_group_topk
    "norm_topk_prob": True,  # [hf] default; not confirmed from the checkpoint (no shape depends on it)
    "mlp_hidden_act": "relu2",  # squared ReLU [mb-nano] activation_func
    "dtype": "bfloat16",  # BF16 checkpoint [card]
    "layer_norm_epsilon": 1e-5,  # [hf] default, as [mb-omni]'s layer_norm_epsilon mapping reads it
    # token ids: not found in an NVIDIA source; the tokenizer sets them at load time
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

VISION_CONFIG: dict[str, Any] = {  # C-RADIOv4-H (native RadioConfig kwargs)
    "hidden_size": 1280,  # ViT-H [mb-omni] _build_vision_config, [vllm] vit_huge_patch16_224
    "num_hidden_layers": 32,  # [mb-omni], [vllm]
    "num_attention_heads": 16,  # [mb-omni], [vllm]
    "mlp_ratio": 4.0,  # ffn 5120 = 4 * 1280 [mb-omni], [vllm]
    "patch_size": 16,  # [vllm] default, Megatron-LM omni launcher --patch-dim 16
    "image_size": 512,  # = force_image_size below
    "max_img_size": 2048,  # [vllm] cpe_max_size default; pinned by the [mb-card] count (pos. embedding)
    # 10 prefix tokens: "Nano Omni checkpoints were trained with RADIO's ten class tokens" [mb-omni].
    # The 3 CLS + 7 register split is [hf] RadioConfig's C-RADIOv4-H default, not confirmed for the
    # Omni checkpoint (no parameter count depends on it; ``original_config`` reads it from the weights).
    "num_cls_tokens": 3,
    "num_registers": 7,
    "video_temporal_patch_size": 2,  # separate video embedder, 2 frames per tubelet [mb-omni] bridge
    # CLIP mean / std: [hf] RadioConfig default and [vllm]'s; the checkpoint stores its own
    # (input_conditioner), not confirmed here
    "norm_mean": [0.48145466, 0.4578275, 0.40821073],
    "norm_std": [0.26862954, 0.26130258, 0.27577711],
}

AUDIO_CONFIG: dict[str, Any] = {  # Parakeet-TDT-0.6B-v2 FastConformer encoder (ParakeetEncoderConfig)
    "hidden_size": 1024,  # [mb-omni] sound_hidden_size, [automodel]
    "num_hidden_layers": 24,  # [automodel]
    "num_attention_heads": 8,  # [automodel]
    "intermediate_size": 4096,  # [automodel]
    "conv_kernel_size": 9,  # [automodel]
    "subsampling_factor": 8,  # [automodel]
    "subsampling_conv_channels": 256,  # [automodel]
    "subsampling_conv_kernel_size": 3,  # [automodel]
    "subsampling_conv_stride": 2,  # [automodel]
    "num_mel_bins": 128,  # [automodel]
    "attention_bias": False,  # [automodel], [hf] nemotron_h_omni's default for released checkpoints
    "convolution_bias": False,  # [automodel], [mb-omni] use_bias default
    "scale_input": False,  # [hf] nemotron_h_omni's default for released checkpoints
    "projection_hidden_size": 4096,  # sound projector width [mb-omni], [automodel]
    "projection_bias": False,  # [automodel]
}

TOP_CONFIG: dict[str, Any] = {  # NemotronH_Omni_Reasoning_V3_Config top-level kwargs
    "vision_hidden_size": 1280,  # [automodel] vit_hidden_size
    "projector_hidden_size": 20480,  # [automodel]; mlp1 5120 -> 20480 -> 2688 [vllm]; [mb-card] count
    "downsample_ratio": 0.5,  # pixel shuffle 2x2 [automodel], [vllm]
    "force_image_size": 512,  # [automodel]; Megatron-LM omni launcher --img-h/--img-w 512
    "video_temporal_patch_size": 2,  # = vision's
    "video_pruning_rate": 0.7,  # EVS [automodel] default; not confirmed from the checkpoint's config
    "image_token_id": 18,  # <image> context token [automodel], [mb-omni] bridge fallback
    # [automodel] default 131081 lies outside the 131072-row embedding table; videos use the image
    # context token in [vllm] and in transformers' model, so this id is never embedded
    "video_token_id": 131081,
    "audio_token_id": 27,  # [automodel] sound_context_token_id
    "dtype": "bfloat16",  # [card] BF16 checkpoint
}

_SUB_CONFIGS = {"text_config": TEXT_CONFIG, "vision_config": VISION_CONFIG, "audio_config": AUDIO_CONFIG}


def real_config(native: bool = True, **overrides: Any) -> NemotronH_Omni_Reasoning_V3_Config | dict:
    """The real configuration: native config object (default) or, ``native=False``, the original-layout dict.

    ``overrides``: top-level fields, or ``text_config`` / ``vision_config`` / ``audio_config`` dicts
    merged into those sub-configs (``audio_config=None`` drops the audio branch).
    """
    kwargs: dict[str, Any] = copy.deepcopy({**TOP_CONFIG, **_SUB_CONFIGS})
    for key, value in overrides.items():
        if key in _SUB_CONFIGS and isinstance(value, dict):
            kwargs[key].update(value)
        else:
            kwargs[key] = value
    config = NemotronH_Omni_Reasoning_V3_Config(**kwargs)
    config.architectures = ["NemotronH_Omni_Reasoning_V3"]
    return config if native else original_config_from_native(config)


def real_original_config(**overrides: Any) -> dict[str, Any]:
    """NVIDIA's original layout (``llm_config`` / ``vision_config.args`` / ``sound_config``) of the real
    configuration, via ``original_config.original_config_from_native`` (default patch budgets)."""
    return original_config_from_native(real_config(**overrides))


def build_on_meta(config: NemotronH_Omni_Reasoning_V3_Config | None = None) -> NemotronH_Omni_Reasoning_V3:
    """The model on the meta device: every shape, no memory (``real_config()`` by default)."""
    compat.apply_patches()
    with torch.device("meta"):
        return NemotronH_Omni_Reasoning_V3(config if config is not None else real_config())


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts by group: ``language`` (decoder layers, norms, routers), ``embeddings`` (input
    table + untied lm_head), ``vision``, ``audio``, ``projectors`` (vision ``mlp1`` + sound projection).

    Active per token = everything except the routed experts, plus ``top_k / n_routed`` of them. Encoders
    and projectors count as active. Both embedding matrices count in full (NVIDIA's "with embeddings"
    convention [nv-n3]); ``llm_active - input_embeddings`` is NVIDIA's "3.2B active".
    """

    total: int
    active: int
    groups: dict[str, int] = field(default_factory=dict)
    active_groups: dict[str, int] = field(default_factory=dict)
    routed_experts: int = 0
    input_embeddings: int = 0

    @property
    def llm_total(self) -> int:
        return self.groups.get("language", 0) + self.groups.get("embeddings", 0)

    @property
    def llm_active(self) -> int:
        return self.active_groups.get("language", 0) + self.active_groups.get("embeddings", 0)


def count_parameters(model: torch.nn.Module) -> ParameterCounts:
    """Total and per-token active parameters of a (native) Nemotron Omni model, meta or real."""
    from omni_rl.models.loading import parameter_group  # loading imports this module

    text = model.config.text_config
    top_k, n_routed = text.num_experts_per_tok, text.n_routed_experts
    embedding_ids = {id(model.get_input_embeddings().weight)}
    output = model.get_output_embeddings() or model.language_model.get_output_embeddings()
    if output is not None:  # the Omni wrapper itself returns None: the lm_head is the LLM's
        embedding_ids.add(id(output.weight))
    groups: dict[str, int] = {}
    active_groups: dict[str, int] = {}
    routed = 0
    for name, param in model.named_parameters():  # tied parameters appear once
        group = parameter_group(name)
        group = "embeddings" if id(param) in embedding_ids else group
        group = "language" if group == "router" else group
        count = param.numel()
        active = count
        if ".mixer.experts." in name:  # routed experts, fused (E, ...) or one module per expert
            routed += count
            active = count * top_k // n_routed
        groups[group] = groups.get(group, 0) + count
        active_groups[group] = active_groups.get(group, 0) + active
    return ParameterCounts(
        total=sum(groups.values()),
        active=sum(active_groups.values()),
        groups=groups,
        active_groups=active_groups,
        routed_experts=routed,
        input_embeddings=model.get_input_embeddings().weight.numel(),
    )
