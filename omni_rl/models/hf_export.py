"""Writing an HF checkpoint folder (for transformers and vLLM) from a possibly sharded model, tensor by
tensor: no process ever holds the whole model.

Every rank walks the same tensors in the same order; under FSDP2 each tensor is gathered on its own
(``full_tensor``). Rank 0 collects them into buckets of at most ``bucket_bytes`` (a bucket never splits
the tensors one layout rule joins, such as a RADIO block's q / k / v), maps each bucket to the
checkpoint's tensor names (``layout.to_original``, as ``save_pretrained`` writes them) and writes it as
one safetensors file; the index, config, generation config and processor follow.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from omni_rl.models.checkpoint import CHECKPOINT_LAYOUTS
from omni_rl.models.layout import to_original
from omni_rl.models.original_config import write_original_config

BUCKET_BYTES = 1 << 30
INDEX_FILE = "model.safetensors.index.json"


def _group(name: str) -> str:
    """Tensors whose names share this stay in one bucket (q_proj / k_proj / v_proj of one block)."""
    return name.rsplit(".", 2)[0]


def full_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, whole tensor on CPU) for every entry of ``model.state_dict()``, gathering one DTensor at
    a time. Collective under FSDP2: every rank must iterate to the end."""
    for name, tensor in model.state_dict().items():
        if hasattr(tensor, "full_tensor"):
            tensor = tensor.full_tensor()
        yield name, tensor.detach().to("cpu")


def dcp_model_tensors(
    folder: str | Path, chunk_bytes: int = BUCKET_BYTES
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of the model entries of a torch.distributed.checkpoint folder (``state/`` of a
    training checkpoint), read a chunk of at most ``chunk_bytes`` at a time, in one process."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
    from transformers.core_model_loading import dot_natural_key

    meta = FileSystemReader(str(folder)).read_metadata().state_dict_metadata
    names = sorted((k.removeprefix("model.") for k in meta if k.startswith("model.")), key=dot_natural_key)
    chunk: dict[str, torch.Tensor] = {}
    size = 0
    for i, name in enumerate(names):
        info = meta[f"model.{name}"]
        chunk[name] = torch.empty(info.size, dtype=info.properties.dtype)
        size += chunk[name].numel() * chunk[name].element_size()
        if size >= chunk_bytes or i == len(names) - 1:
            dcp.load(
                {"model": chunk},
                checkpoint_id=str(folder),
                planner=DefaultLoadPlanner(allow_partial_load=True),
            )
            yield from chunk.items()
            chunk, size = {}, 0


def export_hf(
    model: nn.Module,
    hf_model: nn.Module,
    processor,
    out: str | Path,
    *,
    layout: str = "original",
    rank: int = 0,
    bucket_bytes: int = BUCKET_BYTES,
) -> Path | None:
    """Write ``model``'s weights as an HF folder at ``out`` (rank 0 writes; every rank must call).
    ``hf_model`` is an unsharded twin of the same class (the meta-device one is enough) that carries the
    config and the renaming rules. Returns the folder on rank 0, None elsewhere."""
    tensors = full_tensors(model)
    if rank != 0:
        for _ in tensors:  # the gathers are collective
            pass
        return None
    return write_hf_folder(tensors, hf_model, processor, out, layout=layout, bucket_bytes=bucket_bytes)


def write_hf_folder(
    tensors: Iterator[tuple[str, torch.Tensor]],
    hf_model: nn.Module,
    processor,
    out: str | Path,
    *,
    layout: str = "original",
    bucket_bytes: int = BUCKET_BYTES,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write native-named ``tensors`` (in state-dict order) as an HF folder, one bucket per file."""
    if layout not in CHECKPOINT_LAYOUTS:
        raise ValueError(f"layout must be one of {CHECKPOINT_LAYOUTS}, got {layout!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    bucket: dict[str, torch.Tensor] = {}
    size = total = files = 0

    def flush() -> None:
        nonlocal bucket, size, files
        if not bucket:
            return
        files += 1
        name = f"model-{files:05d}.safetensors"
        converted = {k: v.contiguous() for k, v in to_original(hf_model, bucket).items()}
        save_file(converted, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(converted, name))
        bucket, size = {}, 0

    last_group = None
    written: torch.dtype | None = None  # the floating dtype written, recorded in the config
    for name, tensor in tensors:
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        if tensor.is_floating_point() and written is None:
            written = tensor.dtype
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > bucket_bytes and _group(name) != last_group:
            flush()
        bucket[name] = tensor
        size += nbytes
        total += nbytes
        last_group = _group(name)
    flush()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / INDEX_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
    config = copy.deepcopy(hf_model.config)
    if written is not None:  # as save_pretrained does: from_pretrained(dtype="auto") reads it
        config.dtype = str(written).removeprefix("torch.")
    config.save_pretrained(out)
    if getattr(hf_model, "generation_config", None) is not None:
        hf_model.generation_config.save_pretrained(out)
    if processor is not None:
        processor.save_pretrained(out)
    if layout == "original":
        write_original_config(config, out, processor)
    return out
