"""How a bucket (``weight_buckets``) reaches the engines: three transports, one protocol.

Sender (trainer rank 0, or the driver when the trainer is local), for every bucket in order:
``payload = transport.payload(bucket)``; every engine's ``receive_bucket(kind, payload, entries,
layout)`` opens it (``open_payload``) and loads the tensors in place; the sender waits for all
engines before it builds the next bucket, so one bucket is in flight at a time.

- ``ray``: the bucket's bytes go into Ray's object store once (``ray.put`` of a numpy array); every
  engine on the node maps them read-only without a copy. Works everywhere (CPU, GPU, across nodes).
- ``cuda_ipc``: the bucket lives on the trainer's GPU; engines on the same GPU rebuild it from a
  CUDA IPC handle (``torch.multiprocessing.reductions.reduce_tensor``) without any copy.
- ``broadcast``: trainer rank 0 broadcasts the bucket to every engine through a process group of its
  own (``WeightGroup``: NCCL between GPUs; gloo on CPU, which is how the tests run this path).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from omni_rl.generation.weight_buckets import Bucket, Entry, as_numpy, from_numpy

log = logging.getLogger(__name__)

TRANSPORTS = ("ray", "cuda_ipc", "broadcast")


class WeightGroup:
    """A process group outside ``torch.distributed``'s default one: rank 0 is the trainer's rank 0,
    ranks 1.. the engines. ``backend``: "nccl" (GPUs) or "gloo" (CPU)."""

    def __init__(
        self, host: str, port: int, rank: int, world_size: int, backend: str = "gloo", timeout_s: float = 300
    ) -> None:
        import torch.distributed as dist

        timeout = timedelta(seconds=timeout_s)
        self.rank, self.world_size = rank, world_size
        self.store = dist.TCPStore(host, port, world_size, rank == 0, timeout)
        if backend == "gloo":
            self.group = dist.ProcessGroupGloo(self.store, rank, world_size, timeout)
        elif backend == "nccl":
            self.group = dist.ProcessGroupNCCL(self.store, rank, world_size)
        else:
            raise ValueError(f"weight group backend must be 'gloo' or 'nccl', got {backend!r}")

    def broadcast(self, tensor: torch.Tensor) -> None:
        import torch.distributed as dist

        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self.group.broadcast([tensor], opts).wait()


def ipc_handle(buffer: torch.Tensor) -> tuple[Any, tuple]:
    """(rebuild function, arguments) that another process on the same GPU turns back into ``buffer``."""
    from torch.multiprocessing.reductions import reduce_tensor

    if not buffer.is_cuda:
        raise ValueError(f"cuda_ipc: the bucket is on {buffer.device}, not a GPU")
    return reduce_tensor(buffer)


def open_ipc(handle: tuple[Any, tuple], device_index: int) -> torch.Tensor:
    """Rebuild a CUDA IPC handle in this process, on its own index of the same physical GPU (CUDA
    device indices differ between processes with different ``CUDA_VISIBLE_DEVICES``)."""
    rebuild, args = handle
    args = list(args)
    args[6] = device_index  # rebuild_cuda_tensor's storage_device
    return rebuild(*args)


@dataclass
class Transport:
    """Sender side. ``kind``: one of ``TRANSPORTS``; ``group``: the ``WeightGroup`` (broadcast)."""

    kind: str = "ray"
    group: WeightGroup | None = None
    _keep: list[Any] = field(default_factory=list)  # what must outlive the engines' loads

    def __post_init__(self) -> None:
        if self.kind not in TRANSPORTS:
            raise ValueError(f"generation.sync.transport must be one of {TRANSPORTS}, got {self.kind!r}")
        if self.kind == "broadcast" and self.group is None:
            raise ValueError("broadcast transport: needs a WeightGroup")

    @property
    def device(self) -> str:
        return "cpu" if self.kind == "ray" else ("cuda" if torch.cuda.is_available() else "cpu")

    def payload(self, bucket: Bucket) -> Any:
        if self.kind == "ray":
            import ray

            ref = ray.put(as_numpy(bucket.buffer))
            self._keep = [ref]
            return [ref]  # in a list: Ray hands the ref over unresolved; the engine gets it zero-copy
        if self.kind == "cuda_ipc":
            self._keep = [bucket.buffer]
            return ipc_handle(bucket.buffer)
        return bucket.nbytes

    def after_submit(self, bucket: Bucket) -> None:
        """Called once every engine has been asked to receive ``bucket``: the broadcast happens here."""
        if self.kind == "broadcast":
            assert self.group is not None
            self.group.broadcast(bucket.buffer)

    def done(self) -> None:
        """The engines have loaded the current bucket: nothing needs to outlive it."""
        self._keep = []


def open_payload(
    kind: str, payload: Any, group: WeightGroup | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """Receiver side: the bucket's bytes (uint8) in this process."""
    if kind == "ray":
        import ray

        array = ray.get(payload[0]) if isinstance(payload, list) else payload
        return from_numpy(array)
    if kind == "cuda_ipc":
        index = (
            device.index if device is not None and device.index is not None else torch.cuda.current_device()
        )
        return open_ipc(payload, index)
    if kind == "broadcast":
        if group is None:
            raise RuntimeError("broadcast weight sync: this engine has not joined the weight group")
        buffer = torch.empty(int(payload), dtype=torch.uint8, device=device or "cpu")
        group.broadcast(buffer)
        return buffer
    raise ValueError(f"unknown weight transport {kind!r}")


def stream_buckets(
    buckets: Iterable[Bucket], engines: Sequence[Any], transport: Transport, layout: str
) -> list[int]:
    """Send every bucket to every engine (Ray actor handles with ``receive_bucket``), waiting for all
    loads before the next bucket is built. Returns the indices of engines that died on the way (they
    get no more buckets; the caller re-syncs them after their restart)."""
    import ray
    from ray.exceptions import RayActorError

    alive = list(range(len(engines)))
    failed: list[int] = []
    try:
        for bucket in buckets:
            payload = transport.payload(bucket)
            entries: list[Entry] = bucket.entries
            futures = {
                engines[i].receive_bucket.remote(transport.kind, payload, entries, layout): i for i in alive
            }
            transport.after_submit(bucket)
            for future, i in futures.items():
                try:
                    ray.get(future)
                except RayActorError as exc:
                    log.warning("generation worker %d died during weight sync: %s", i, exc)
                    failed.append(i)
                    alive.remove(i)
            # every engine has loaded it: drop this bucket before the next is built (the transport's
            # keep-alive or a loop variable would hold two buckets at once)
            transport.done()
            del bucket, payload, futures
    finally:
        transport.done()
    return failed
