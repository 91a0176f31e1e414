"""The trainer's side of weight sync: its weights as buckets in the engine's layout and dtype.

``PolicyTrainer.named_weights_for_sync`` names the weights (native names; FSDP2 ``DTensor`` shards);
this module plans the buckets once per (layout, dtype, bucket size) from their names and shapes,
then fills them one at a time (``weight_buckets.iter_buckets``). Collective under FSDP2: every rank
iterates; only rank 0 holds bucket data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import torch

from omni_rl.generation.weight_buckets import Bucket, BucketPlan, full_tensor, iter_buckets, plan_sync
from omni_rl.models.layout import LAYOUTS, to_original


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """ "auto"/None: each tensor keeps its dtype; else a torch dtype name ("bfloat16") or dtype."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return None if dtype == "auto" else dtype  # type: ignore[return-value]
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"generation.sync.dtype: a floating torch dtype name or 'auto', got {dtype!r}")
    return value


def converter(
    trainer: Any, layout: str
) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return partial(to_original, trainer.hf_model) if layout == "original" else None


def sync_plan(trainer: Any, layout: str, dtype: torch.dtype | None, bucket_bytes: int) -> list[BucketPlan]:
    """The bucket plan, computed once per (layout, dtype, bucket size) and kept on the trainer."""
    cache = trainer.__dict__.setdefault("_sync_plans", {})
    key = (layout, dtype, bucket_bytes)
    if key not in cache:
        shapes = [(n, tuple(t.shape), t.dtype) for n, t in trainer.named_weights_for_sync()]
        cache[key] = plan_sync(shapes, converter(trainer, layout), bucket_bytes, dtype)
    return cache[key]


def sync_buckets(
    trainer: Any,
    layout: str = "original",
    dtype: str | torch.dtype | None = "auto",
    bucket_mb: float = 256,
    device: torch.device | str = "cpu",
) -> Iterator[Bucket]:
    """The trainer's weights as filled buckets (rank 0; other ranks get empty buffers)."""
    serving = parse_dtype(dtype)
    bucket_bytes = int(bucket_mb * 2**20)
    plans = sync_plan(trainer, layout, serving, bucket_bytes)
    return iter_buckets(
        plans,
        trainer.named_weights_for_sync(),
        converter(trainer, layout),
        serving,
        keep_data=trainer.rank == 0,
        device=device,
    )


def iter_sync_weights(
    trainer: Any, layout: str = "original", dtype: str | torch.dtype | None = "auto"
) -> Iterator[tuple[str, torch.Tensor]]:
    """(engine name, full tensor in the serving dtype), one conversion unit gathered at a time."""
    serving = parse_dtype(dtype)
    convert = converter(trainer, layout)
    source = iter(trainer.named_weights_for_sync())
    for plan in sync_plan(trainer, layout, serving, 1):  # bucket size 1 byte: one unit per plan
        for unit in plan.units:
            native = {}
            for expected in unit.sources:
                name, tensor = next(source)
                if name != expected:
                    raise ValueError(
                        f"weight sync: expected {expected!r} next from the trainer, got {name!r}"
                    )
                native[name] = full_tensor(tensor, serving)
            yield from (convert(native) if convert is not None else native).items()


def send_weights(
    trainer: Any,
    engines: Any,
    layout: str,
    sync: Mapping[str, Any],
    group: Any = None,
) -> list[int]:
    """Stream the weights to ``engines`` (``GenerationWorker`` actor handles) with the transport
    ``sync["transport"]``; every trainer rank calls it (rank 0 sends). Returns engines that died."""
    from omni_rl.generation.weight_transports import Transport, stream_buckets

    dtype, bucket_mb = sync.get("dtype", "auto"), float(sync.get("bucket_mb", 256))
    if trainer.rank != 0:
        for _ in sync_buckets(trainer, layout, dtype, bucket_mb):  # the gathers are collectives
            pass
        return []
    transport = Transport(sync.get("transport", "ray"), group)
    buckets = sync_buckets(trainer, layout, dtype, bucket_mb, transport.device)
    return stream_buckets(buckets, list(engines), transport, layout)
