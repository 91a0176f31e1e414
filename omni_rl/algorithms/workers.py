"""The loop's view of the trainer and of the generation engines, in the driver or as Ray actors.

Trainer: ``LocalTrainer`` (a ``PolicyTrainer`` in this process) or ``RayTrainer`` (one actor per
data-parallel rank, placed by the cluster plan). Items reach the actors holding MediaRefs; the actors
resolve them (``media_refs.materialize``), so decoded media never passes through the driver.

Generation: ``LocalGeneration`` (the torch sampler in this process; on the trainer's own model when the
trainer is local, so there is nothing to sync) or ``RayGeneration`` (``GenerationWorker`` actors). Weights
stream from trainer rank 0 to every engine in buckets (``training.weight_sync.send_weights``; transports
in ``generation.weight_transports``). A generation worker that crashes is restarted by Ray, streamed the
current weights again, and its pending requests are resubmitted: their samples carry the weight version
they were made with, which may be newer than the one they were drawn for (async GRPO: a fresher
behaviour policy, still within ``max_staleness``), never older.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_rl.algorithms.media_refs import materialize_items
from omni_rl.algorithms.scoring import wait_alive
from omni_rl.generation.base import GenerationRequest, GenerationResult
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig
from omni_rl.training.weight_sync import send_weights
from omni_rl.training.worker import TrainerActor, shard

log = logging.getLogger(__name__)


# ---- trainer -------------------------------------------------------------------------------------


class LocalTrainer:
    def __init__(self, cfg: TrainerConfig, store: Any) -> None:
        self.trainer = PolicyTrainer(cfg)
        self.store = store
        self._weight_group: Any = None

    def train_step(self, items: Sequence[Any], loss: str = "grpo") -> dict[str, float]:
        return self.trainer.train_step(materialize_items(items, self.store), loss)  # type: ignore[arg-type]

    def compute_logprobs(self, samples: Sequence[Any]) -> list[Any]:
        return self.trainer.compute_logprobs(materialize_items(samples, self.store))

    def reference_logprobs(self, samples: Sequence[Any]) -> list[Any]:
        return self.trainer.reference_logprobs(materialize_items(samples, self.store))

    def reference_logps(self, pairs: Sequence[Any]) -> list[Any]:
        resolved = self.trainer.reference_logps(materialize_items(pairs, self.store))
        return [
            type(p)(p.chosen, p.rejected, r.ref_chosen_logp, r.ref_rejected_logp)
            for p, r in zip(pairs, resolved, strict=True)
        ]

    def sync_to(self, engines: Sequence[Any], layout: str, sync: Mapping[str, Any]) -> list[int]:
        """Stream the weights from this process to ``engines`` (indices of engines that died)."""
        return send_weights(self.trainer, engines, layout, sync, self._weight_group)

    def weight_group_address(self) -> tuple[str, int]:
        from omni_rl.training.distributed import free_port

        return "127.0.0.1", free_port("127.0.0.1")

    def join_weight_group(self, host: str, port: int, world_size: int, backend: str) -> None:
        from omni_rl.generation.weight_transports import WeightGroup

        self._weight_group = WeightGroup(host, port, 0, world_size, backend)

    def local_buckets(self, layout: str, sync: Mapping[str, Any]) -> Any:
        return self.trainer.sync_buckets(layout, sync.get("dtype", "auto"), float(sync.get("bucket_mb", 256)))

    def save_checkpoint(self, root: str | Path, data_state: dict) -> Path:
        return self.trainer.save_checkpoint(root, data_state)

    def load_checkpoint(self, path: str | Path) -> dict:
        return self.trainer.load_checkpoint(path)

    @property
    def step(self) -> int:
        return self.trainer.step

    def close(self) -> None:
        pass


class LoopTrainerActor(TrainerActor):
    """``TrainerActor`` that resolves MediaRefs in what it is given and puts weights into the object
    store itself (the driver passes the reference on)."""

    def __init__(self, media_store: Any = None) -> None:
        from omni_rl.cluster.threads import apply_thread_limits

        apply_thread_limits()
        super().__init__()
        self.store = media_store
        self._weight_group: Any = None

    def train_step(self, items: list, loss: str = "grpo") -> dict[str, float]:
        return super().train_step(materialize_items(items, self.store), loss)  # type: ignore[arg-type]

    def compute_logprobs(self, samples: list) -> list:
        return super().compute_logprobs(materialize_items(samples, self.store))

    def reference_logprobs(self, samples: list) -> list:
        return super().reference_logprobs(materialize_items(samples, self.store))

    def reference_logps(self, pairs: list) -> list:
        resolved = super().reference_logps(materialize_items(pairs, self.store))
        return [(r.ref_chosen_logp, r.ref_rejected_logp) for r in resolved]

    def sync_to(self, engines: list, layout: str, sync: dict) -> list[int]:
        """Every rank gathers; rank 0 streams the buckets to ``engines`` (``weight_sync.send_weights``)."""
        return send_weights(self._t(), engines, layout, sync, self._weight_group)

    def join_weight_group(self, host: str, port: int, world_size: int, backend: str) -> bool:
        from omni_rl.generation.weight_transports import WeightGroup

        self._weight_group = WeightGroup(host, port, 0, world_size, backend)
        return True

    def bucket_stream(self, layout: str, sync: dict):
        """Ray streaming generator: (entries, bytes) of each bucket, for a generation engine that lives
        in the driver (rank 0 yields them; the other ranks take part in the gathers and yield nothing)."""
        from omni_rl.generation.weight_buckets import as_numpy

        t = self._t()
        for bucket in t.sync_buckets(layout, sync.get("dtype", "auto"), float(sync.get("bucket_mb", 256))):
            if t.rank == 0:
                yield bucket.entries, as_numpy(bucket.buffer)


class RayTrainer:
    """``len(actor_options)`` trainer ranks; items are sharded across them (``shard``)."""

    def __init__(self, cfg: TrainerConfig, store: Any, actor_options: Sequence[Mapping[str, Any]]) -> None:
        import ray

        if not actor_options:
            raise ValueError("cluster.placement.trainer_workers: at least one trainer is needed")
        remote = ray.remote(LoopTrainerActor)
        self.actors = [remote.options(**dict(o)).remote(store) for o in actor_options]
        self.world_size = len(self.actors)
        host, port = ray.get(self.actors[0].address.remote())
        init = f"tcp://{host}:{port}" if self.world_size > 1 else None
        ray.get([a.setup.remote(cfg, r, self.world_size, init) for r, a in enumerate(self.actors)])

    def _sharded(self, method: str, items: Sequence[Any], *args: Any) -> list[Any]:
        import ray

        parts = shard(items, self.world_size)
        return ray.get([getattr(a, method).remote(p, *args) for a, p in zip(self.actors, parts, strict=True)])

    def _gather(self, method: str, items: Sequence[Any]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        for rank, values in enumerate(self._sharded(method, items)):
            out[rank :: self.world_size] = values
        return out

    def train_step(self, items: Sequence[Any], loss: str = "grpo") -> dict[str, float]:
        return self._sharded("train_step", items, loss)[0]

    def compute_logprobs(self, samples: Sequence[Any]) -> list[Any]:
        return self._gather("compute_logprobs", samples)

    def reference_logprobs(self, samples: Sequence[Any]) -> list[Any]:
        return self._gather("reference_logprobs", samples)

    def reference_logps(self, pairs: Sequence[Any]) -> list[Any]:
        values = self._gather("reference_logps", pairs)
        return [type(p)(p.chosen, p.rejected, c, r) for p, (c, r) in zip(pairs, values, strict=True)]

    def _all(self, method: str, *args: Any) -> list[Any]:
        import ray

        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def sync_to(self, engines: Sequence[Any], layout: str, sync: Mapping[str, Any]) -> list[int]:
        return self._all("sync_to", list(engines), layout, dict(sync))[0]

    def weight_group_address(self) -> tuple[str, int]:
        import ray

        return ray.get(self.actors[0].address.remote())

    def join_weight_group(self, host: str, port: int, world_size: int, backend: str) -> Any:
        return self.actors[0].join_weight_group.remote(host, port, world_size, backend)

    def local_buckets(self, layout: str, sync: Mapping[str, Any]) -> Any:
        """(entries, uint8 tensor) of each bucket, streamed from rank 0 into this process."""
        import ray

        from omni_rl.generation.weight_buckets import Bucket, from_numpy

        streams = [
            # at most one bucket produced ahead of the one being loaded
            a.bucket_stream.options(num_returns="streaming", _generator_backpressure_num_objects=1).remote(
                layout, dict(sync)
            )
            for a in self.actors
        ]
        for index, ref in enumerate(streams[0]):
            entries, array = ray.get(ref)
            yield Bucket(index, entries, from_numpy(array), last=False)
        for other in streams[1:]:
            for ref in other:
                ray.get(ref)

    def save_checkpoint(self, root: str | Path, data_state: dict) -> Path:
        return Path(self._all("save_checkpoint", str(root), data_state)[0])

    def load_checkpoint(self, path: str | Path) -> dict:
        return self._all("load_checkpoint", str(path))[0]

    @property
    def step(self) -> int:
        return self._all("get_step")[0]

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


class TrainerReference:
    """The loop's reference (GRPO's KL, online DPO): the trainer's own ``reference_logprobs`` (the
    trainer ranks hold it). ``length_average``: DPO on mean token log-probs (``dpo_length_average``)."""

    def __init__(self, trainer: Any, length_average: bool = False) -> None:
        self.trainer = trainer
        self.length_average = length_average

    def compute_logprobs(self, samples: Sequence[Any]) -> list[Any]:
        return self.trainer.reference_logprobs(samples)

    def reference_logps(self, pairs: Sequence[Any]) -> list[Any]:
        """``pairs`` with the reference's sequence log-probs of chosen and rejected."""
        lps = self.compute_logprobs([s for p in pairs for s in (p.chosen, p.rejected)])

        def seq(t: Any) -> float:
            return float(t.sum() / max(1, t.numel())) if self.length_average else float(t.sum())

        return [
            type(p)(p.chosen, p.rejected, seq(lps[2 * i]), seq(lps[2 * i + 1])) for i, p in enumerate(pairs)
        ]


# ---- generation ----------------------------------------------------------------------------------


def check_sleep_mode(gen: Any, device: str) -> None:
    """At start-up, not at step 1: can these engines sleep while the trainer steps?"""
    if not gen.sleep_while_training:
        return
    if gen.sleep_level not in (1, 2):
        raise ValueError(f"generation.sleep_level: must be 1 or 2, got {gen.sleep_level}")
    if gen.backend != "vllm":
        return
    gpus = device == "gpu"
    if device == "auto":
        import ray

        gpus = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0
    if not gpus:
        raise ValueError(
            "generation.sleep_while_training: vLLM has no sleep mode on CPU (its CPU worker ignores "
            "sleep()); set it to false, or use generation.backend=torch, whose engines can sleep on CPU"
        )
    if not gen.options.get("enable_sleep_mode"):
        raise ValueError(
            "generation.sleep_while_training: vLLM needs generation.options.enable_sleep_mode=true"
        )


class LocalGeneration:
    """The torch sampler in the driver. ``shared``: it samples from the local trainer's model itself."""

    def __init__(self, backend: Any, shared: bool, sync: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.shared = shared
        self.retries = 0
        self.sync_options = dict(sync or {})

    def submit(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.backend.generate(requests)

    def collect(self, pending: list[GenerationResult]) -> list[GenerationResult]:
        return pending

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.collect(self.submit(requests))

    def sync(self, trainer: Any, version: int) -> None:
        """The trainer's buckets loaded one at a time (in this process, or streamed from rank 0)."""
        from omni_rl.generation.weight_buckets import bucket_tensors

        if self.shared:
            return
        self.backend.begin_sync()
        for bucket in trainer.local_buckets("native", self.sync_options):
            self.backend.load_bucket(bucket_tensors(bucket.buffer, bucket.entries), "native")
        self.backend.finish_sync(version)

    def sleep(self, level: int = 1) -> None:
        self.backend.sleep(level)

    def wake_up(self) -> None:
        self.backend.wake_up()

    def close(self) -> None:
        self.backend.close()


@dataclass
class PendingGeneration:
    requests: list[list[GenerationRequest]]  # per worker
    version: int | None  # weight version the engines hold when the requests run (None: initial)
    futures: dict[Any, int] = field(default_factory=dict)  # ObjectRef -> worker index


class RayGeneration:
    """``GenerationWorker`` actors; requests are dealt out round-robin by prompt."""

    def __init__(
        self,
        model_path: str,
        backend: str,
        options: Mapping[str, Any],
        store: Any,
        actor_options: Sequence[Mapping[str, Any]],
        *,
        layout: str,
        max_restarts: int = 2,
        max_retries: int = 2,
        name_prefix: str | None = None,
        sync: Mapping[str, Any] | None = None,
    ) -> None:
        import ray

        from omni_rl.generation.worker import GenerationWorker

        if not actor_options:
            raise ValueError("cluster.placement.generation_workers: at least one engine is needed")
        remote = ray.remote(GenerationWorker)
        self.actors = [
            remote.options(
                **dict(o),
                max_restarts=max_restarts,
                name=None if name_prefix is None else f"{name_prefix}-gen-{i}",
            ).remote(model_path, backend, dict(options), store)
            for i, o in enumerate(actor_options)
        ]
        self.layout = layout
        self.max_retries = max_retries
        self.retries = 0
        self.sync_options = dict(sync or {})
        self._version: int | None = None  # weight version last synced (None: the initial weights)
        self._trainer: Any = None  # whose weights were synced last (re-sent to restarted engines)
        self._group_ready = False
        ray.get([a.ping.remote() for a in self.actors])

    def submit(self, requests: Sequence[GenerationRequest]) -> PendingGeneration:
        n = len(self.actors)
        version = self._version
        pending = PendingGeneration([list(requests[i::n]) for i in range(n)], version)
        for i, part in enumerate(pending.requests):
            if part:
                pending.futures[self.actors[i].generate.remote(part)] = i
        return pending

    def collect(self, pending: PendingGeneration) -> list[GenerationResult]:
        import ray
        from ray.exceptions import RayActorError

        results: dict[int, list[GenerationResult]] = {}
        attempts: dict[int, int] = {}
        futures = dict(pending.futures)
        expected = dict.fromkeys(pending.futures.values(), pending.version)  # weight version per worker
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            i = futures.pop(done[0])
            try:
                part = ray.get(done[0])
                stale = expected[i] is not None and any(r.weight_version != expected[i] for r in part)
                if not stale:
                    results[i] = part
                    continue
                got = part[0].weight_version if part else "?"
                why = f"came back restarted (weights {got}, not {expected[i]})"
            except RayActorError as exc:
                why = f"crashed ({exc})"
            # a restarted worker holds the initial weights: give it the current ones and ask again
            attempts[i] = attempts.get(i, 0) + 1
            if attempts[i] > self.max_retries:
                raise RuntimeError(f"generation worker {i} failed {attempts[i]} times; giving up: {why}")
            self.retries += 1
            log.warning("generation worker %d %s; retrying its %d requests", i, why, len(pending.requests[i]))
            # the streamed sync keeps no old weights: the restarted engine gets those of the last sync
            # (the trainer still holds them) and its requests run again on them
            self._resync(i)
            expected[i] = self._version
            futures[self.actors[i].generate.remote(pending.requests[i])] = i
        n = len(self.actors)
        total = sum(len(p) for p in pending.requests)
        out: list[GenerationResult | None] = [None] * total
        for i, part in results.items():
            out[i::n] = part
        return out  # type: ignore[return-value]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.collect(self.submit(requests))

    def sleep(self, level: int = 1) -> None:
        """Colocated GPUs: free the engines' memory for the trainer step (``GenerationWorker.sleep``)."""
        import ray

        ray.get([a.sleep.remote(level) for a in self.actors])

    def wake_up(self) -> None:
        import ray

        ray.get([a.wake_up.remote() for a in self.actors])

    def sync(self, trainer: Any, version: int) -> None:
        """Stream the trainer's weights to every engine, bucket by bucket (``weight_sync.send_weights``).
        ``begin_sync`` comes first from this process, so it runs after any generate queued here
        (one-step-off-policy: the engines finish the next step's rollouts on the old weights)."""
        self._trainer = trainer
        failed = set(self._call_all("begin_sync"))
        alive = [a for i, a in enumerate(self.actors) if i not in failed]
        if self.sync_options.get("transport") == "broadcast" and not self._group_ready:
            self._join_group(trainer)
        dead = trainer.sync_to(alive, self.layout, self.sync_options) if alive else []
        failed |= {self.actors.index(alive[i]) for i in dead}
        failed |= set(self._call_all("finish_sync", version, skip=failed))
        self._version = version
        for i in sorted(failed):  # restarted by Ray with the initial weights: send the current ones again
            self.retries += 1
            self._resync(i)

    def _call_all(self, method: str, *args: Any, skip: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
        """Call ``method`` on every engine not in ``skip``; the indices of those that died."""
        import ray
        from ray.exceptions import RayActorError

        futures = {getattr(a, method).remote(*args): i for i, a in enumerate(self.actors) if i not in skip}
        dead = []
        for future, i in futures.items():
            try:
                ray.get(future)
            except RayActorError as exc:
                log.warning("generation worker %d died during weight sync (%s)", i, exc)
                dead.append(i)
        return dead

    def _join_group(self, trainer: Any) -> None:
        """Broadcast transport: trainer rank 0 and every engine form one process group."""
        import ray

        host, port = trainer.weight_group_address()
        sizes = ray.get([a.group_size.remote() for a in self.actors])  # vLLM: one rank per TP worker
        world = 1 + sum(sizes)
        backend = self.sync_options.get("group_backend", "gloo")
        offsets = [1 + sum(sizes[:i]) for i in range(len(sizes))]
        joins = [
            a.join_weight_group.remote(host, port, o, world, backend)
            for a, o in zip(self.actors, offsets, strict=True)
        ]
        pending = trainer.join_weight_group(host, port, world, backend)
        ray.get(joins + ([pending] if pending is not None else []))
        self._group_ready = True

    def _resync(self, i: int) -> None:
        """Wait for engine ``i``'s restart and stream it the current weights (always through Ray's
        object store: a restarted engine is no longer in the broadcast group)."""
        import ray
        from ray.exceptions import RayActorError

        if self._trainer is None or self._version is None:
            return
        options = {**self.sync_options, "transport": "ray"}
        for attempt in range(self.max_retries + 1):
            wait_alive(self.actors[i], "ping")
            try:
                ray.get(self.actors[i].begin_sync.remote())
                if not self._trainer.sync_to([self.actors[i]], self.layout, options):
                    ray.get(self.actors[i].finish_sync.remote(self._version))
                    return
            except RayActorError as exc:
                log.warning("generation worker %d crashed again during weight sync (%s)", i, exc)
            if attempt == self.max_retries:
                raise RuntimeError(f"generation worker {i}: weight sync failed {attempt + 1} times")

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
