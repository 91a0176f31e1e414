"""Measuring what a trainer rank allocates, and the real-width slice of Nemotron 3 Nano Omni that the
planner is checked on (tests/test_planning.py, scripts/bench_plan.py, scripts/gpu_check.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (a DTensor counts its local shard, padding
    included)."""
    seen: dict[int, int] = {}
    for t in tensors:
        local = t._local_tensor if hasattr(t, "_local_tensor") else t
        storage = local.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def measure_step(trainer: Any, items: list) -> dict[str, int]:
    """Bytes of parameters, gradients (after the backward) and AdamW state (after the step) of one rank."""
    params = storage_bytes(p for p in trainer.model.parameters())
    trainer.accumulate(items)
    grads = storage_bytes(p.grad for p in trainer.model.parameters() if p.grad is not None)
    trainer.apply_gradients()
    states = [t for s in trainer.optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    return {"parameters": params, "gradients": grads, "optimizer": storage_bytes(states)}


def slice_config(layers: tuple[str, ...] = ("linear_attention", "full_attention", "moe"), experts: int = 128):
    """(config, processor) of a real-width slice: the real decoder's hidden size, Mamba, attention and MoE
    widths and expert count, ``layers`` decoder layers, the tiny model's vocabulary and encoders."""
    from omni_rl.models.nemotron_omni import real_config
    from omni_rl.models.tiny import TinyOmniSpec, build_config, build_processor

    spec = TinyOmniSpec()
    processor = build_processor(spec)
    config = build_config(replace(spec), processor.tokenizer)
    text = real_config().text_config
    text.layers_block_type = list(layers)
    text.num_hidden_layers = len(layers)
    text.n_routed_experts = experts
    text.vocab_size = config.text_config.vocab_size
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(text, key, getattr(config.text_config, key))
    config.text_config = text
    return config, processor


def build_slice(dtype: torch.dtype = torch.bfloat16, seed: int = 0, **kwargs: Any):
    """The slice model in ``dtype`` (never a float32 copy of its parameters) and its processor."""
    from transformers import NemotronH_Omni_Reasoning_V3

    from omni_rl import compat

    compat.apply_patches()
    config, processor = slice_config(**kwargs)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = NemotronH_Omni_Reasoning_V3(config)
    finally:
        torch.set_default_dtype(default)
    return model, processor


def saved_bytes_per_token(
    text_config: Any, tokens: int = 256, dtype: torch.dtype = torch.bfloat16
) -> dict[str, float]:
    """Bytes autograd saves per token in each decoder layer of a NemotronH decoder built from
    ``text_config`` (one training forward on CPU; parameters not counted), by layer type."""
    from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHForCausalLM

    torch.manual_seed(0)
    model = NemotronHForCausalLM(text_config).to(dtype).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    layer_types = list(text_config.layers_block_type)
    current: list[str | None] = [None]
    for i, layer in enumerate(model.model.layers):
        layer.register_forward_pre_hook(lambda _m, _a, i=i: current.__setitem__(0, layer_types[i]))
        layer.register_forward_hook(lambda _m, _a, _o: current.__setitem__(0, None))
    seen: set[int] = set()
    saved: dict[str, float] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if current[0] is not None and ptr not in seen and ptr not in params:
            seen.add(ptr)
            saved[current[0]] = saved.get(current[0], 0) + t.untyped_storage().nbytes()
        return t

    ids = torch.randint(0, text_config.vocab_size, (1, tokens))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids)
    counts = {k: layer_types.count(k) for k in saved}
    return {k: v / tokens / counts[k] for k, v in saved.items()}
