"""LoRA adapters (peft) on the policy's language model, and the merged weights the engines receive.

``trainer.lora: {rank, alpha, targets, dropout}`` injects peft LoRA layers in place
(``peft.inject_adapter_in_model``: the model keeps its class, so the forward, FSDP2 units and layout
rules stay as they are) into the decoder's

- ``attention``: q/k/v/o projections of the attention layers;
- ``mamba``: the Mamba-2 mixers' ``in_proj`` / ``out_proj``;
- ``shared_experts``: the MoE layers' shared-expert ``up_proj`` / ``down_proj``;
- ``projectors``: the image and audio projectors' two linear layers (optional; the media reach the
  decoder through them);
- ``lm_head``: the output projection (optional; lets a small adapter move the answer tokens directly);
- ``experts``: the routed experts. They are fused 3-D parameters (``experts.up_proj`` is
  ``(experts, out, in)``), not ``nn.Linear`` modules, so they go through peft's ``target_parameters``
  (one rank-r adapter per expert, ``ParamWrapper``).

Everything else is frozen: the base weights are the frozen initial policy, so with adapters disabled the
same model is the KL reference (``adapters_disabled``) without a second copy.

The engines get merged weights (``W + alpha / r * B @ A``) under the base model's names
(``merged_named_weights``): vLLM's Nemotron Omni model does not declare LoRA support (its VL/Omni
wrapper implements no ``SupportsLoRA``; only the text-only NemotronH does), the routed experts are
fused MoE kernels, and a merged model keeps the engine's forward identical to a full-weight engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

DECODER = r"language_model\.model\.layers\.\d+\.mixer\."
TARGET_MODULES = {
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mamba": ("in_proj", "out_proj"),
    "shared_experts": ("shared_experts.up_proj", "shared_experts.down_proj"),
}
TARGET_PARAMETERS = {"experts": ("mixer.experts.up_proj", "mixer.experts.down_proj")}
TARGETS = (*TARGET_MODULES, "projectors", "lm_head", *TARGET_PARAMETERS)
ADAPTER = "default"  # peft's adapter name
_ADAPTER_KEY = re.compile(r"\.lora_(A|B)\.")


@dataclass
class LoraSettings:
    """``trainer.lora``: LoRA adapters instead of full fine-tuning (None: full fine-tuning)."""

    rank: int = 16
    alpha: float = 32.0  # the update is scaled by alpha / rank
    targets: list[str] = field(default_factory=lambda: ["attention", "mamba"])
    dropout: float = 0.0  # on the adapters' input; must be 0 with the "experts" target (peft)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"TrainerConfig.lora.rank must be >= 1, got {self.rank!r}")
        if self.alpha <= 0:
            raise ValueError(f"TrainerConfig.lora.alpha must be > 0, got {self.alpha!r}")
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise ValueError(f"TrainerConfig.lora.targets: choose from {list(TARGETS)}, got {self.targets!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"TrainerConfig.lora.dropout must be in [0, 1), got {self.dropout!r}")
        if self.dropout and "experts" in self.targets:
            raise ValueError("TrainerConfig.lora.dropout must be 0 with the 'experts' target (peft)")


def peft_config(settings: LoraSettings):
    from peft import LoraConfig

    modules = [m for t in settings.targets for m in TARGET_MODULES.get(t, ())]
    params = [p for t in settings.targets for p in TARGET_PARAMETERS.get(t, ())]
    alternatives = []
    if modules:
        alternatives.append(DECODER + "(" + "|".join(re.escape(m) for m in modules) + ")")
    if "projectors" in settings.targets:
        alternatives.append(r"(multi_modal_projector|embed_audio)\.linear_[12]")
    if "lm_head" in settings.targets:
        alternatives.append(r"language_model\.lm_head")
    pattern = "|".join(f"(?:{a})" for a in alternatives) or None
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=pattern if pattern else [],
        target_parameters=params or None,  # suffix match: only the decoder has mixer.experts
        bias="none",
    )


def apply_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    """Inject the adapters into ``model`` in place and freeze every other parameter. B starts at zero, so
    the model's output is unchanged until the first update."""
    from peft import inject_adapter_in_model

    for p in model.parameters():
        p.requires_grad_(False)
    model = inject_adapter_in_model(peft_config(settings), model)
    for name, p in model.named_parameters():
        p.requires_grad_(is_adapter_key(name))
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"TrainerConfig.lora.targets={settings.targets}: no module of the model matched")
    return model


def is_adapter_key(name: str) -> bool:
    return bool(_ADAPTER_KEY.search(name))


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    from peft.tuners.lora import LoraLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def has_lora(model: nn.Module) -> bool:
    return bool(lora_layers(model))


def base_name(key: str) -> str:
    """The base model's name of a state-dict entry of the adapted model (peft inserts ``.base_layer``)."""
    return key.replace(".base_layer", "")


@contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """The frozen base model (the KL reference) for the duration of the block."""
    layers = list(lora_layers(model).values())
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)
        for name, p in model.named_parameters():  # enable_adapters(True) re-marks them trainable
            p.requires_grad_(is_adapter_key(name))


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor (an FSDP2 DTensor shard is all-gathered: collective), detached, on the CPU."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().to("cpu")


def _delta(layer: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``alpha / r * B @ A`` in float32, shaped like the adapted weight (per expert for fused experts)."""
    scale = float(layer.scaling[ADAPTER])
    a, b = a.float(), b.float()
    experts = getattr(layer, "num_experts", 1)
    if experts == 1:
        return (b @ a) * scale
    a = a.reshape(experts, -1, a.shape[-1])  # experts x r x in
    b = b.reshape(b.shape[0], -1, experts)  # out x r x experts
    pattern = "ore,eri->eoi" if layer._did_swap_in_out_features else "ore,eri->eio"
    return torch.einsum(pattern, b, a) * scale


def _adapted(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Base name of each adapted weight -> (its LoRA layer, that layer's state-dict prefix)."""
    out: dict[str, tuple[nn.Module, str]] = {}
    for prefix, layer in lora_layers(model).items():
        if ADAPTER not in layer.lora_A:
            continue
        param = getattr(layer, "parameter_name", None)
        target = f"{prefix}.{param}" if param else f"{prefix}.weight"
        out[base_name(target)] = (layer, prefix)
    return out


def _merge(layer: nn.Module, weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``weight + alpha / r * B @ A``, added in float32, returned in the weight's dtype."""
    return (weight.float() + _delta(layer, a, b)).to(weight.dtype)


def merged_named_weights(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(base model name, merged weight on CPU) for every state-dict entry of a LoRA-adapted model, in
    state-dict order, adapters left out. Under FSDP2 each tensor (and each adapter pair) is gathered on
    its own: collective, every rank must iterate to the end."""
    adapted = _adapted(model)
    state = model.state_dict()
    for key, tensor in state.items():
        if is_adapter_key(key):
            continue
        name = base_name(key)
        weight = _full(tensor)
        if name in adapted:
            layer, prefix = adapted[name]
            a = _full(state[f"{prefix}.lora_A.{ADAPTER}.weight"])
            b = _full(state[f"{prefix}.lora_B.{ADAPTER}.weight"])
            weight = _merge(layer, weight, a, b)
        yield name, weight


def merged_with(
    model: nn.Module, base: Iterator[tuple[str, torch.Tensor]], adapters: dict[str, torch.Tensor]
) -> Iterator[tuple[str, torch.Tensor]]:
    """Merge ``adapters`` (adapted-model state-dict names) into a stream of base weights (base names):
    ``model`` is the adapted model (the meta-device skeleton is enough) that says which weight each
    adapter pair belongs to and its scale. Used by ``omni-rl export`` on a LoRA checkpoint."""
    adapted = _adapted(model)
    for name, weight in base:
        if name in adapted:
            layer, prefix = adapted[name]
            a, b = (
                adapters[f"{prefix}.lora_A.{ADAPTER}.weight"],
                adapters[f"{prefix}.lora_B.{ADAPTER}.weight"],
            )
            weight = _merge(layer, weight, a, b)
        yield name, weight


def adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter entries of a model state dict (what a LoRA checkpoint keeps of the model)."""
    return {k: v for k, v in state.items() if is_adapter_key(k)}


def adapter_numel(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if is_adapter_key(n))


def renamed_plan(plan: dict, model: nn.Module) -> tuple[dict, frozenset[str]]:
    """A sharded-load plan made on the model before injection, keyed by the adapted model's names, and
    the adapter entries (not in the checkpoint: ``init_adapter_shards`` fills them)."""
    keys = list(model.state_dict())
    adapters = frozenset(k for k in keys if is_adapter_key(k))
    return {k: plan[base_name(k)] for k in keys if k not in adapters}, adapters


@torch.no_grad()
def init_adapter_shards(model: nn.Module, seed: int) -> None:
    """peft's initialisation on local (FSDP2) shards after ``to_empty``: A uniform in +-1/sqrt(in)
    (kaiming-uniform with a=sqrt(5), as nn.Linear), B zero, so the adapted model starts as the base."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if not is_adapter_key(name):
            continue
        local = p.to_local() if hasattr(p, "to_local") else p
        if ".lora_B." in name:
            local.zero_()
        else:
            bound = 1.0 / max(1, p.shape[-1]) ** 0.5
            values = torch.rand(local.shape, generator=gen) * 2 * bound - bound
            local.copy_(values.to(local.dtype))
