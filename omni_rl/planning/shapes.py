"""What the planner knows of a model: every parameter's shape, group and FSDP2 unit, from the model built
on the meta device (no memory), plus the dimensions the cache and activation rows need.

The model comes from the run config: ``model.tiny`` builds the tiny spec's config; ``model.path`` is read
with ``load_model_config`` (a checkpoint folder in either layout, or the real model's hub id, offline).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from omni_rl.models.nemotron_omni import ParameterCounts, count_parameters

FREEZE_FLAGS = {
    "freeze_vision": "vision",
    "freeze_audio": "audio",
    "freeze_projectors": "projectors",
    "freeze_router": "router",
}


@dataclass(frozen=True)
class ParamShape:
    name: str
    shape: tuple[int, ...]
    group: str  # vision, audio, projectors, router, language
    unit: str  # "root" or "layer" (FSDP2 unit: each decoder layer is one)
    layer: int  # decoder layer index, -1 for the root unit
    trainable: bool

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def shard_numel(self, ranks: int, rank: int = 0, padded: bool = True) -> int:
        """Elements rank ``rank`` stores under FSDP2: dim 0 split in chunks of ``ceil(d0 / ranks)`` rows.
        FSDP2 pads parameter and gradient storage to a whole chunk (``padded``); tensors made like the
        parameter (AdamW's moments) hold only the rank's real rows (the last ranks may hold fewer)."""
        if ranks == 1 or not self.shape:
            return self.numel
        chunk = -(-self.shape[0] // ranks)
        rows = chunk if padded else min(chunk, max(0, self.shape[0] - rank * chunk))
        return rows * (self.numel // self.shape[0])


@dataclass
class ModelShape:
    params: list[ParamShape]
    counts: ParameterCounts
    layer_types: list[str]  # per decoder layer: linear_attention (Mamba-2), full_attention, moe, mlp
    text: dict[str, Any] = field(default_factory=dict)  # the decoder's config values the rows need

    def base_numel(self) -> int:
        """Parameters of the model itself (without LoRA adapters): what an engine serves."""
        return self.numel() - self.numel(groups=("lora",))

    def numel(self, *, trainable: bool | None = None, groups: tuple[str, ...] | None = None) -> int:
        return sum(
            p.numel
            for p in self.params
            if (trainable is None or p.trainable == trainable) and (groups is None or p.group in groups)
        )

    def unit_numels(self, trainable: bool | None = None) -> dict[str, int]:
        """Parameters per FSDP2 unit: "root" and "layer.<i>" (``trainable``: only those, or only frozen)."""
        out: dict[str, int] = {}
        for p in self.params:
            if trainable is not None and p.trainable != trainable:
                continue
            key = "root" if p.unit == "root" else f"layer.{p.layer}"
            out[key] = out.get(key, 0) + p.numel
        return out


def model_config(cfg: Any) -> Any:
    """The native transformers config of the run's policy, without weights or network."""
    if cfg.model.is_tiny:
        from omni_rl.algorithms.setup import _spec_overrides
        from omni_rl.models.tiny import TinyOmniSpec, build_config, build_processor

        spec = dataclasses.replace(TinyOmniSpec(), **_spec_overrides(cfg.model.tiny_spec))
        return build_config(spec, build_processor(spec).tokenizer)
    from omni_rl.models.loading import load_model_config

    return load_model_config(cfg.model.path)


def model_shape(config: Any, frozen_groups: tuple[str, ...] = (), lora: Any = None) -> ModelShape:
    """Parameter shapes of the model ``config`` describes (built on the meta device). ``lora``
    (``trainer.lora``): the adapters are injected as the trainer does; they are the only trainable
    parameters, in group ``lora``; the parameter counts are the base model's."""
    from omni_rl.models.loading import parameter_group
    from omni_rl.models.nemotron_omni import build_on_meta

    model = build_on_meta(config)
    with torch.device("meta"):
        counts = count_parameters(model)
    if lora is not None:
        from omni_rl.training.lora import apply_lora, is_adapter_key

        apply_lora(model, lora)
    text = config.text_config
    layer_ids = {
        id(p): i for i, layer in enumerate(model.language_model.model.layers) for p in layer.parameters()
    }
    params = []
    for name, param in model.named_parameters():
        group = parameter_group(name)
        trainable = group not in frozen_groups
        if lora is not None:
            trainable = is_adapter_key(name)
            group = "lora" if trainable else group
        layer = layer_ids.get(id(param), -1)
        params.append(
            ParamShape(
                name=name,
                shape=tuple(param.shape),
                group=group,
                unit="root" if layer < 0 else "layer",
                layer=layer,
                trainable=trainable,
            )
        )
    values = {
        k: getattr(text, k, None)
        for k in (
            "hidden_size",
            "vocab_size",
            "num_key_value_heads",
            "num_attention_heads",
            "head_dim",
            "mamba_num_heads",
            "mamba_head_dim",
            "ssm_state_size",
            "n_groups",
            "conv_kernel",
            "num_experts_per_tok",
            "n_routed_experts",
            "moe_intermediate_size",
            "moe_shared_expert_intermediate_size",
            "intermediate_size",
            "max_position_embeddings",
            "chunk_size",
        )
    }
    if values["head_dim"] is None:
        values["head_dim"] = text.hidden_size // text.num_attention_heads
    return ModelShape(params, counts, list(text.layers_block_type), values)


def frozen_groups(trainer_model_cfg: Any) -> tuple[str, ...]:
    """The parameter groups a ``trainer.model`` section freezes."""
    return tuple(group for flag, group in FREEZE_FLAGS.items() if getattr(trainer_model_cfg, flag, False))
