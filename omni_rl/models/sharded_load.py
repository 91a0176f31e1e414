"""Loading a checkpoint into an FSDP2-sharded model without any process holding the whole model.

The model is built on the meta device and sharded; ``to_empty`` then allocates only each rank's shards,
and ``load_shards`` fills every local shard by reading just its rows from the safetensors files (memory
mapped: ``get_slice`` reads the bytes of those rows). Either checkpoint layout works: native names are
read as they are; NVIDIA's original layout goes through the same renaming rules as ``layout.py``, where
a fused expert tensor's rows are the per-expert tensors ``experts.{e}.*`` and RADIO's q / k / v rows are
row ranges of ``attn.qkv``. Values are cast to the parameter's dtype (bf16 or fp32 on disk).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from torch import nn

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class CheckpointFiles:
    """Tensor name -> its safetensors file, with one lazily opened memory-mapped handle per file."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        index = folder / INDEX_FILE
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            self.files = {key: folder / name for key, name in weight_map.items()}
        elif (folder / SINGLE_FILE).is_file():
            with safe_open(folder / SINGLE_FILE, framework="pt") as handle:
                names = list(handle.keys())
            self.files = dict.fromkeys(names, folder / SINGLE_FILE)
        else:
            raise FileNotFoundError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}")
        self._handles: dict[Path, Any] = {}

    def keys(self) -> set[str]:
        return set(self.files)

    def handle(self, key: str) -> Any:
        path = self.files[key]
        if path not in self._handles:
            self._handles[path] = safe_open(path, framework="pt")
        return self._handles[path]

    def rows(self, key: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` (dim 0) of tensor ``key``: only those bytes are read."""
        part = self.handle(key).get_slice(key)
        if not part.get_shape():
            return part[:]
        return part[start:stop]

    def tensor(self, key: str) -> torch.Tensor:
        return self.handle(key).get_tensor(key)


@dataclass(frozen=True)
class Source:
    """Where a native state-dict entry lives in the files: ``same`` (one tensor, renamed or not),
    ``experts`` (row e = tensor ``key`` with ``*`` -> e) or ``chunk`` (rows of part ``index`` of
    ``parts`` equal row blocks of ``key``)."""

    key: str
    kind: Literal["same", "experts", "chunk"] = "same"
    index: int = 0
    parts: int = 1


def source_plan(model: nn.Module, file_keys: set[str]) -> dict[str, Source]:
    """The source of every entry of ``model.state_dict()`` in a checkpoint holding ``file_keys``."""
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    from omni_rl.models.layout import _transforms

    native = list(model.state_dict())
    if set(native) <= file_keys:
        return {k: Source(k) for k in native}
    reverse = [t.reverse_transform() for t in _transforms(model)[::-1]]
    renamings = [t for t in reverse if isinstance(t, WeightRenaming)]
    converters = [t for t in reverse if isinstance(t, WeightConverter)]
    plan: dict[str, Source] = {}
    missing = []
    for key in native:
        if key in file_keys:
            plan[key] = Source(key)
            continue
        source, pattern = rename_source_key(key, renamings, converters, reverse=True)
        if pattern is None:
            plan[key] = Source(source)
        elif "*" in source:
            plan[key] = Source(source, "experts")
        else:
            converter = next(c for c in converters if pattern in c.source_patterns)
            plan[key] = Source(
                source, "chunk", converter.source_patterns.index(pattern), len(converter.source_patterns)
            )
        probe = plan[key].key.replace("*", "0")
        if probe not in file_keys:
            missing.append(f"{key} (looked for {probe})")
    if missing:
        raise KeyError(f"{len(missing)} weight(s) not in the checkpoint: {missing[:5]}")
    return plan


def read_rows(files: CheckpointFiles, source: Source, start: int, stop: int, total: int) -> torch.Tensor:
    """Rows ``start:stop`` of a native tensor whose dim 0 has ``total`` rows."""
    if source.kind == "same":
        return files.rows(source.key, start, stop)
    if source.kind == "experts":
        return torch.stack([files.tensor(source.key.replace("*", str(e))) for e in range(start, stop)])
    offset = source.index * total
    return files.rows(source.key, offset + start, offset + stop)


def local_rows(tensor: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(the local tensor to fill, first row, one past the last row) of a DTensor shard (or a tensor)."""
    if not hasattr(tensor, "to_local"):
        return tensor, 0, tensor.shape[0] if tensor.dim() else 0
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    local = tensor.to_local()
    shape, offset = compute_local_shape_and_global_offset(tensor.shape, tensor.device_mesh, tensor.placements)
    if tensor.dim() == 0:
        return local, 0, 0
    return local, int(offset[0]), int(offset[0]) + int(shape[0])


def plan_for(model: nn.Module, folder: str | Path) -> dict[str, Source]:
    """``source_plan`` of ``model`` against the checkpoint ``folder``. Call it before FSDP2 wraps the
    model: transformers finds the renaming rules by the model's class, which FSDP2 replaces."""
    return source_plan(model, CheckpointFiles(folder).keys())


@torch.no_grad()
def load_shards(
    model: nn.Module, folder: str | Path, plan: dict[str, Source], skip: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Fill every parameter's local shard and every buffer of ``model`` (already materialised with
    ``to_empty``) from the checkpoint ``folder``, as ``plan`` (``plan_for``) says; the entries named in
    ``skip`` (LoRA adapters) are not in the checkpoint and are left alone. Returns counts of tensors and
    bytes read."""
    files = CheckpointFiles(folder)
    tensors = read = 0
    state = dict(model.named_parameters())
    state.update(dict(model.named_buffers()))
    persistent = set(model.state_dict())
    for name, tensor in state.items():
        if name not in persistent or name in skip:  # non-persistent buffers: computed by init_buffers
            continue
        local, start, stop = local_rows(tensor)
        if local.numel() == 0:
            continue
        total = tensor.shape[0] if tensor.dim() else 0
        value = (
            read_rows(files, plan[name], start, stop, total) if tensor.dim() else files.tensor(plan[name].key)
        )
        local.copy_(value.reshape(local.shape).to(local.dtype))
        tensors += 1
        read += value.numel() * value.element_size()
    return {"tensors": tensors, "bytes_read": read}


def init_buffers(model: nn.Module) -> int:
    """Recompute non-persistent buffers (not in checkpoints; ``to_empty`` leaves them uninitialised)
    with transformers' own ``_init_weights`` of their modules. Returns how many modules it ran on."""
    count = 0
    for module in model.modules():
        if getattr(module, "_non_persistent_buffers_set", None):
            model._init_weights(module)
            count += 1
    return count
