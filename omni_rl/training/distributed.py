"""Data parallelism for the trainer: process groups, gradient all-reduce of full replicas, FSDP2.

Two modes (``TrainerConfig.parallel``):

- ``replicate``: every rank holds the whole model; after the micro-batches of a step, gradients are
  summed across ranks (flat buckets, one ``all_reduce`` each) and divided by the world size. Works
  with gloo on CPU (and NCCL on GPU).
- ``fsdp``: FSDP2 (``torch.distributed.fsdp.fully_shard``) on each decoder layer and on the root
  (embeddings, LM head, encoders, projectors; see ``fsdp_units`` for why). Gradients are
  reduce-scattered (averaged) during the last backward of a step. FSDP2 also runs with gloo on CPU
  (used by the tests); on GPU it is the NCCL path with bf16 compute.

Both average gradients over ranks, so the trainer multiplies each rank's loss by the world size and
divides by the global normaliser: the update then equals the single-process update.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

BUCKET_BYTES = 64 * 2**20


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def init_process_group(
    rank: int, world_size: int, init_method: str | None, device: torch.device, always: bool = False
) -> None:
    """Join the default process group (no-op when already initialised, or for one process unless
    ``always``: FSDP2 needs a group even then).

    ``init_method`` e.g. ``tcp://127.0.0.1:29500``; None reads ``MASTER_ADDR``/``MASTER_PORT`` (and
    for a single process picks a free local port).
    Backend: NCCL on CUDA, gloo otherwise.
    """
    if dist.is_initialized() or (world_size == 1 and not always):
        return
    if init_method is None and world_size == 1 and "MASTER_PORT" not in os.environ:
        init_method = f"tcp://127.0.0.1:{free_port()}"
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(
        backend, init_method=init_method or "env://", rank=rank, world_size=world_size, **kwargs
    )


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_gradients(parameters: list[nn.Parameter], world_size: int) -> None:
    """Average ``.grad`` across ranks, in flat buckets per dtype. A missing grad counts as zeros; a
    parameter that no rank gave a gradient keeps ``grad=None`` (AdamW then skips it, as in one process)."""
    if world_size == 1:
        return
    device = parameters[0].device if parameters else None
    has_grad = torch.tensor([float(p.grad is not None) for p in parameters], device=device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    parameters = [p for p, used in zip(parameters, has_grad.tolist(), strict=True) if used]
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[nn.Parameter]] = {}
    for p in parameters:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for params in by_dtype.values():
        bucket: list[nn.Parameter] = []
        size = 0
        for p in [*params, None]:
            if p is not None:
                bucket.append(p)
                size += p.grad.numel() * p.grad.element_size()
            if bucket and (p is None or size >= BUCKET_BYTES):
                flat = torch.cat([q.grad.reshape(-1) for q in bucket])
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
                flat.div_(world_size)
                offset = 0
                for q in bucket:
                    n = q.grad.numel()
                    q.grad.copy_(flat[offset : offset + n].view_as(q.grad))
                    offset += n
                bucket, size = [], 0


def all_reduce_scalar(value: float, op: str = "sum", device: torch.device | None = None) -> float:
    """Sum / max / min of a Python number over ranks (identity without a process group)."""
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    if op not in ops:
        raise ValueError(f"all_reduce_scalar: op must be one of {sorted(ops)}, got {op!r}")
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=ops[op])
    return float(t.item())


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def fsdp_units(model: nn.Module) -> list[nn.Module]:
    """Sub-modules sharded as separate FSDP2 units: the decoder layers.

    Every rank must call every unit the same number of times, in the same order, or the all-gathers
    mismatch across ranks and the job hangs or aborts. Decoder layers run once per forward on every
    rank; the vision and audio encoders run only for micro-batches with images/videos or audio, and
    the LM head runs once per logprob chunk (the count follows the number of completion tokens). Those
    therefore stay in the root unit, which is gathered once per forward and (FSDP2 does not reshard
    the root after forward) stays gathered until backward ends, also for the LM-head calls that
    ``omni_rl.models.logprobs`` makes outside the root forward. Cost: every rank holds the encoders,
    embeddings and LM head unsharded for a whole forward + backward (sharding them would need dummy
    encoder forwards on ranks without that modality and a fixed number of LM-head chunks).
    """
    return list(model.language_model.model.layers)


def cast_norm_buffers(model: nn.Module, dtype: torch.dtype) -> int:
    """Cast BatchNorm running statistics to ``dtype``; returns how many buffers changed.

    FSDP2's mixed precision casts parameters, not buffers; ``batch_norm`` then sees bf16 input and
    weight with float32 running statistics and raises "expected scalar type BFloat16 but found Float"
    (Parakeet's conv module). The statistics are frozen (``freeze_norm_statistics``), so this only
    rounds them to the compute dtype, as a bf16 inference engine holds them.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for name, buf in list(module._buffers.items()):
                if buf is not None and buf.is_floating_point() and buf.dtype != dtype:
                    module._buffers[name] = buf.to(dtype)
                    count += 1
    return count


def apply_fsdp2(
    model: nn.Module,
    device: torch.device,
    compute_dtype: torch.dtype | None,
    offload: bool = False,
    reduce_dtype: torch.dtype | None = torch.float32,
) -> nn.Module:
    """Shard ``model`` in place with FSDP2 over all ranks of the default group; returns it.

    ``compute_dtype``: parameters are all-gathered in this dtype for forward/backward (master weights
    and the optimiser stay in the parameters' dtype); gradients are reduced in ``reduce_dtype`` (None:
    the compute dtype; float32 costs a float32 copy of each unit's unsharded gradients).
    ``offload``: sharded parameters, gradients and the optimizer step live in host memory (FSDP2's
    ``CPUOffloadPolicy``; pinned on CUDA); the GPU holds only what a forward/backward gathers.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    if not dist.is_initialized():
        raise RuntimeError("FSDP2 needs a process group, also for one rank (init_process_group)")
    world = dist.get_world_size()
    if compute_dtype is not None:
        cast_norm_buffers(model, compute_dtype)
    mesh = init_device_mesh(device.type, (world,))
    mp = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=reduce_dtype)
    policy = CPUOffloadPolicy(pin_memory=device.type == "cuda") if offload else OffloadPolicy()
    for unit in fsdp_units(model):
        fully_shard(unit, mesh=mesh, mp_policy=mp, offload_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=mp, offload_policy=policy)
    return model


def reshard(model: nn.Module) -> None:
    """Put every FSDP2 unit of ``model`` back in its sharded state. After a forward without a backward
    (e.g. ``compute_logprobs``) FSDP2 leaves the root unit gathered, and while it is gathered its
    parameters are not the ones the optimizer and the state-dict helpers know."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _spawned(rank: int, fn: Callable[..., Any], world_size: int, port: int, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fn(rank, world_size, f"tcp://127.0.0.1:{port}", *args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch_local(fn: Callable[..., Any], world_size: int, *args: Any) -> None:
    """Run ``fn(rank, world_size, init_method, *args)`` in ``world_size`` fresh processes on this
    machine (127.0.0.1 only); ``fn`` must be importable (a module-level function). Raises if any fails."""
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(fn, world_size, free_port(), args), nprocs=world_size, join=True)
