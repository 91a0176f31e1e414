"""Weights to the generation engines in buckets: the one stream every sync transport carries.

The trainer names its weights (``named_weights_for_sync``: native names, full tensors or FSDP2
``DTensor`` shards). ``plan_sync`` turns those names and shapes, once per layout, into buckets of at
most ``bucket_bytes`` (a tensor larger than that is a bucket of its own): the engine's name, dtype and
shape of every tensor and its byte offset in the bucket. ``iter_buckets`` then gathers one conversion
unit at a time (``DTensor.full_tensor()`` of each tensor, after casting the local shard to the
serving dtype), maps it to the engine layout (``models.layout``; split experts and q/k/v are views)
and copies it into the bucket's one flat byte buffer. Peak memory: one bucket plus one conversion
unit. Every rank must iterate (the gathers are collectives); only ``keep_data`` ranks fill buffers.

A unit is the set of native tensors that map together: a fused expert tensor alone, or a layer's
q/k/v (concatenated into one ``qkv`` in the original layout). Engines read a bucket with
``bucket_tensors`` (views into the buffer, no copy) and load them in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

ALIGN = 64  # bytes: every tensor in a bucket starts on this boundary (views of any dtype are legal)
DEFAULT_BUCKET_MB = 256


@dataclass(frozen=True)
class Entry:
    """One tensor of a bucket, in the engine's layout."""

    name: str
    dtype: str  # torch dtype name, e.g. "bfloat16"
    shape: tuple[int, ...]
    offset: int  # bytes from the start of the bucket's buffer

    @property
    def nbytes(self) -> int:
        return (
            int(np.prod(self.shape, dtype=np.int64))
            * torch.empty((), dtype=_dtype(self.dtype)).element_size()
        )


@dataclass
class Unit:
    """Native tensors that map to the engine layout together, and what they become."""

    sources: list[str]
    entries: list[Entry] = field(default_factory=list)  # offsets relative to the unit's start


@dataclass
class BucketPlan:
    units: list[Unit]
    nbytes: int

    @property
    def entries(self) -> list[Entry]:
        return [e for u in self.units for e in u.entries]


@dataclass
class Bucket:
    """A filled bucket: ``buffer`` (uint8, ``nbytes`` long; empty on ranks that only gather) and
    ``entries`` (absolute offsets). ``index`` counts from 0; ``last`` marks the end of a sync."""

    index: int
    entries: list[Entry]
    buffer: torch.Tensor
    last: bool

    @property
    def nbytes(self) -> int:
        return int(self.buffer.numel())


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {name!r}")
    return dtype


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def serving_dtype(tensor_dtype: torch.dtype, dtype: torch.dtype | None) -> torch.dtype:
    """Floating tensors travel in ``dtype`` (None: their own); integer buffers keep theirs."""
    return dtype if dtype is not None and tensor_dtype.is_floating_point else tensor_dtype


def plan_sync(
    shapes: Sequence[tuple[str, tuple[int, ...], torch.dtype]],
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None,
    bucket_bytes: int,
    dtype: torch.dtype | None = None,
) -> list[BucketPlan]:
    """Buckets for native ``shapes`` (name, shape, dtype), in order. ``convert`` maps a dict of
    native tensors to the engine layout (None: names stay); it runs here once on meta tensors, which
    fixes the engine names, shapes and the units (tensors that a converter needs together)."""
    if bucket_bytes < 1:
        raise ValueError(f"bucket size must be >= 1 byte, got {bucket_bytes}")
    metas = {n: torch.empty(s, dtype=serving_dtype(d, dtype), device="meta") for n, s, d in shapes}
    units = _units(list(metas), convert, metas)
    plans: list[BucketPlan] = []
    current: list[Unit] = []
    size = 0
    for unit in units:
        unit_bytes = _unit_bytes(unit)
        if current and size + unit_bytes > bucket_bytes:
            plans.append(_close(current))
            current, size = [], 0
        current.append(unit)
        size += unit_bytes
    if current:
        plans.append(_close(current))
    return plans


def _units(
    names: list[str],
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None,
    metas: dict[str, torch.Tensor],
) -> list[Unit]:
    """Group native names by the engine tensors they produce (a name alone whenever it converts alone)."""
    if convert is None:
        return [Unit([n], [Entry(n, _name(metas[n].dtype), tuple(metas[n].shape), 0)]) for n in names]
    # which engine names does each native name feed? (converted alone, a q/k/v part fails or is partial)
    whole = convert(dict(metas))
    out: list[Unit] = []
    pending: list[str] = []
    for name in names:
        pending.append(name)
        try:
            converted = convert({n: metas[n] for n in pending})
        except Exception:  # a converter that needs its partners (q/k/v -> qkv): wait for them
            continue
        if all(k in whole and tuple(v.shape) == tuple(whole[k].shape) for k, v in converted.items()):
            out.append(_unit(pending, converted))
            pending = []
    if pending:
        raise ValueError(f"weight sync: tensors {pending[:5]} do not map to the engine layout together")
    return out


def _unit(sources: list[str], converted: dict[str, torch.Tensor]) -> Unit:
    entries, offset = [], 0
    for name, tensor in converted.items():
        entries.append(Entry(name, _name(tensor.dtype), tuple(tensor.shape), offset))
        offset = _align(offset + tensor.numel() * tensor.element_size())
    return Unit(list(sources), entries)


def _unit_bytes(unit: Unit) -> int:
    last = unit.entries[-1]
    return _align(last.offset + last.nbytes)


def _close(units: list[Unit]) -> BucketPlan:
    offset = 0
    placed = []
    for unit in units:
        placed.append(
            Unit(unit.sources, [Entry(e.name, e.dtype, e.shape, e.offset + offset) for e in unit.entries])
        )
        offset += _unit_bytes(unit)
    return BucketPlan(placed, offset)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def full_tensor(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """The whole tensor in the serving dtype: a DTensor's local shard is cast first, then gathered
    (collective: every rank calls it for the same tensor in the same order)."""
    from torch.distributed.tensor import DTensor

    target = serving_dtype(tensor.dtype, dtype)
    tensor = tensor.detach()
    if isinstance(tensor, DTensor):
        return tensor.to(target).full_tensor()
    return tensor.to(target)


def _gather_into_slot(
    tensor: torch.Tensor, unit: Unit, buffer: torch.Tensor, dtype: torch.dtype | None, keep_data: bool
) -> bool:
    """A DTensor sharded evenly on dim 0 that the layout leaves as it is (one source, one entry of the
    same shape) is all-gathered directly into its slot of the bucket (on ranks without data: into a
    scratch tensor), with no separate full copy. Every rank decides alike. Returns whether it did."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(tensor, DTensor) or len(unit.sources) != 1 or len(unit.entries) != 1:
        return False
    entry = unit.entries[0]
    mesh = tensor.device_mesh
    even = tensor.shape[0] % mesh.size() == 0
    if tensor.placements != (Shard(0),) or tuple(tensor.shape) != entry.shape or not even:
        return False
    if _dtype(entry.dtype) != serving_dtype(tensor.dtype, dtype):
        return False
    import torch.distributed as dist

    local = tensor.detach().to_local().to(_dtype(entry.dtype)).contiguous()
    direct = keep_data and buffer.device == local.device
    out = _slot(buffer, entry) if direct else torch.empty(entry.shape, dtype=local.dtype, device=local.device)
    dist.all_gather_into_tensor(out, local, group=mesh.get_group())
    if keep_data and not direct:
        _slot(buffer, entry).copy_(out)
    return True


def iter_buckets(
    plans: Sequence[BucketPlan],
    weights: Iterable[tuple[str, torch.Tensor]],
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None,
    dtype: torch.dtype | None = None,
    keep_data: bool = True,
    device: torch.device | str = "cpu",
) -> Iterator[Bucket]:
    """Fill the planned buckets from ``weights`` (native (name, tensor) in plan order). One bucket's
    buffer is alive at a time; ``device`` is where it lives (the GPU for CUDA IPC / NCCL)."""
    source = iter(weights)
    for index, plan in enumerate(plans):
        buffer = torch.empty(plan.nbytes if keep_data else 0, dtype=torch.uint8, device=device)
        for unit in plan.units:
            native: dict[str, torch.Tensor] = {}
            for expected in unit.sources:
                name, tensor = next(source, (None, None))
                if name != expected:
                    raise ValueError(
                        f"weight sync: expected {expected!r} next from the trainer, got {name!r}"
                    )
                if _gather_into_slot(tensor, unit, buffer, dtype, keep_data):
                    continue  # gathered straight into the bucket: no separate full copy
                native[name] = full_tensor(tensor, dtype)
            if not keep_data or not native:
                continue
            converted = convert(native) if convert is not None else native
            for entry in unit.entries:
                view = _slot(buffer, entry)
                view.copy_(converted[entry.name].reshape(entry.shape))
            del native, converted
        yield Bucket(index, plan.entries, buffer, last=index == len(plans) - 1)
        del buffer
    leftover = next(source, None)
    if leftover is not None:
        raise ValueError(f"weight sync: the trainer yielded {leftover[0]!r}, which the plan does not hold")


def _slot(buffer: torch.Tensor, entry: Entry) -> torch.Tensor:
    return buffer[entry.offset : entry.offset + entry.nbytes].view(_dtype(entry.dtype)).view(entry.shape)


def bucket_tensors(buffer: torch.Tensor, entries: Sequence[Entry]) -> list[tuple[str, torch.Tensor]]:
    """(name, view into ``buffer``) for every entry: what a receiver loads (no copy)."""
    needed = max((e.offset + e.nbytes for e in entries), default=0)
    if buffer.dtype != torch.uint8 or buffer.numel() < needed:
        raise ValueError(f"bucket buffer: need >= {needed} uint8 bytes, got {buffer.numel()} {buffer.dtype}")
    return [(e.name, _slot(buffer, e)) for e in entries]


def as_numpy(buffer: torch.Tensor) -> np.ndarray:
    """The CPU buffer as a numpy array (no copy): what Ray's object store holds zero-copy."""
    return buffer.detach().cpu().numpy()


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """A (possibly read-only, object-store backed) uint8 array as a tensor sharing its memory; the
    result must only be read."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about read-only arrays
        return torch.from_numpy(array)
