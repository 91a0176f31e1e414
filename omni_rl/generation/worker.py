"""Generation as Ray actors: ``GenerationWorker`` wraps any backend. Weights arrive in buckets
(``begin_sync``, ``receive_bucket`` per bucket, ``finish_sync``: see ``weight_transports``); the
whole-state ``update_weights`` below remains for tests and tools.

    workers = spawn_workers(2, "/path/to/model", options={"max_num_seqs": 32}, media_store=store)
    results = ray.get(workers[0].generate.remote(requests))
    ref = put_weights(trainer_state)              # one copy in the node's shared memory
    ray.get([w.update_weights.remote(ref) for w in workers])

``put_weights`` stores the tensors as numpy arrays (bfloat16 viewed as int16), which Ray hands to
every process on the node read-only and without a copy; each worker then copies them once into its
model. A top-level ObjectRef argument is resolved by Ray before the method runs, so the workers
receive the arrays, not the reference.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import ray
import torch

from omni_rl.generation.base import GenerationRequest, GenerationResult, Layout, MediaResolver, backend_class
from omni_rl.generation.weight_buckets import Entry, bucket_tensors
from omni_rl.generation.weight_transports import WeightGroup, open_payload

# name -> (array, torch dtype name); arrays of dtypes numpy lacks are stored as same-width integers
PackedState = dict[str, tuple[np.ndarray, str]]
_VIEW_AS = {torch.bfloat16: torch.int16, torch.float8_e4m3fn: torch.uint8, torch.float8_e5m2: torch.uint8}


def pack_state(state: Mapping[str, torch.Tensor]) -> PackedState:
    """Tensors -> contiguous CPU numpy arrays (no copy when they already are) plus their dtype."""
    packed: PackedState = {}
    for name, tensor in state.items():
        tensor = tensor.detach().to("cpu").contiguous()
        view = _VIEW_AS.get(tensor.dtype)
        array = (tensor.view(view) if view is not None else tensor).numpy()
        packed[name] = (array, str(tensor.dtype).removeprefix("torch."))
    return packed


def unpack_state(packed: PackedState) -> dict[str, torch.Tensor]:
    """Inverse of ``pack_state``; the tensors share memory with the (possibly read-only) arrays, so
    they must only be read (``copy_`` them into the model)."""
    state = {}
    with warnings.catch_warnings():  # torch warns about read-only arrays from Ray's object store
        warnings.simplefilter("ignore", UserWarning)
        for name, (array, dtype_name) in packed.items():
            dtype = getattr(torch, dtype_name)
            tensor = torch.from_numpy(array)
            state[name] = tensor.view(dtype) if dtype in _VIEW_AS else tensor
    return state


def put_weights(state: Mapping[str, torch.Tensor]) -> ray.ObjectRef:
    """Put a state dict into Ray's object store once; pass the ref to every worker's update_weights."""
    return ray.put(pack_state(state))


class GenerationWorker:
    """A generation backend in a Ray actor (use ``spawn_workers``, or ``ray.remote`` yourself).

    ``options`` are the backend's options (for torch: ``TorchBackendOptions`` fields); ``media_store``
    (a Ray ``MediaStore``) resolves the MediaRefs of requests; ``num_threads`` caps torch's CPU threads.
    """

    def __init__(
        self,
        model_path: str,
        backend: str = "torch",
        options: Mapping[str, Any] | None = None,
        media_store: MediaResolver | None = None,
        num_threads: int | None = 1,
    ) -> None:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        options = dict(options or {})
        if num_threads is not None:
            options.setdefault("num_threads", num_threads)
        self._weight_group: WeightGroup | None = None
        self.backend = backend_class(backend).from_pretrained(
            model_path, media_resolver=media_store, **options
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.backend.generate(requests)

    def update_weights(
        self,
        packed: PackedState | Mapping[str, torch.Tensor] | Sequence[ray.ObjectRef],
        layout: Layout = "native",
        version: int | None = None,
    ) -> dict[str, Any]:
        """``packed``: what ``put_weights`` stored (pass its ref, which Ray resolves, or ``[ref]``, which
        is fetched here, as zero-copy), or a plain state dict; ``[]`` only sets the version."""
        if isinstance(packed, list | tuple):
            if len(packed) > 1:
                raise ValueError(f"update_weights: expected [ObjectRef] or [], got {len(packed)} items")
            packed = ray.get(packed[0]) if packed else {}
        arrays = [v[0] for v in packed.values() if isinstance(v, tuple)]
        state = unpack_state(packed) if arrays else dict(packed)
        info = self.backend.update_weights(state, layout=layout, version=version)
        # arrays mapped from the shared object store are read-only: the sign that nothing was copied
        info["zero_copy"] = bool(arrays) and all(not a.flags.writeable for a in arrays)
        return info

    # ---- streaming weight sync (omni_rl.generation.weight_transports) ----------------------------

    def begin_sync(self) -> bool:
        """Runs after every generate queued before it by the same caller (the driver)."""
        self.backend.begin_sync()
        return True

    def receive_bucket(self, kind: str, payload: Any, entries: list[Entry], layout: Layout = "native") -> int:
        """Open one bucket (``weight_transports.open_payload``) and load it in place."""
        receive = getattr(self.backend, "receive_bucket", None)
        if receive is not None:  # engines with worker processes of their own open it there (vLLM)
            return receive(kind, payload, entries, layout)
        buffer = open_payload(kind, payload, self._weight_group, self._device())
        return self.backend.load_bucket(bucket_tensors(buffer, entries), layout)

    def group_size(self) -> int:
        """Ranks this engine takes in a broadcast group (vLLM: one per worker, i.e. TP size)."""
        return int(self.backend.info().get("workers", 1))

    def finish_sync(self, version: int | None = None) -> dict[str, Any]:
        return self.backend.finish_sync(version)

    def join_weight_group(
        self, host: str, port: int, rank: int, world_size: int, backend: str = "gloo"
    ) -> bool:
        """Join the trainer's broadcast group (rank 0 is the trainer's rank 0) from ``rank`` on."""
        join = getattr(self.backend, "join_weight_group", None)
        if join is not None:
            join(host, port, rank, world_size, backend)
        else:
            self._weight_group = WeightGroup(host, port, rank, world_size, backend)
        return True

    def _device(self) -> torch.device:
        device = self.backend.info().get("device", "cpu")
        return torch.device(device)

    def sleep(self, level: int = 1) -> None:
        self.backend.sleep(level)

    def wake_up(self) -> None:
        self.backend.wake_up()

    def info(self) -> dict[str, Any]:
        return {**self.backend.info(), "pid": os.getpid()}

    def ping(self) -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid(), "weight_version": self.backend.info()["weight_version"]}

    def close(self) -> None:
        self.backend.close()


def spawn_workers(
    count: int,
    model_path: str,
    *,
    backend: str = "torch",
    options: Mapping[str, Any] | None = None,
    media_store: MediaResolver | None = None,
    num_threads: int | None = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> list[Any]:
    """``count`` GenerationWorker actors (handles); they load the model in parallel."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    actor = ray.remote(GenerationWorker).options(num_cpus=num_cpus, num_gpus=num_gpus)
    return [actor.remote(model_path, backend, options, media_store, num_threads) for _ in range(count)]
