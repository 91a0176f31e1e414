"""The loop's view of the trainer and of the generation engines, in the driver or as Ray actors.

Trainer: ``LocalTrainer`` (a ``PolicyTrainer`` in this process) or ``RayTrainer`` (one actor per
data-parallel rank, placed by the cluster plan). Items reach the actors holding MediaRefs; the actors
resolve them (``media_refs.materialize``), so decoded media never passes through the driver.

Generation: ``LocalGeneration`` (the torch sampler in this process; on the trainer's own model when the
trainer is local, so there is nothing to sync) or ``RayGeneration`` (``GenerationWorker`` actors). Weights
go from the trainer actor straight into Ray's object store (``weights_ref``) and every engine copies them
from there. A generation worker that crashes is restarted by Ray, given the current weights again, and its
requests are retried.
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
from omni_rl.training.worker import TrainerActor, shard

log = logging.getLogger(__name__)


# ---- trainer -------------------------------------------------------------------------------------


class LocalTrainer:
    def __init__(self, cfg: TrainerConfig, store: Any) -> None:
        self.trainer = PolicyTrainer(cfg)
        self.store = store

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

    def state_dict(self, layout: str) -> dict[str, Any]:
        return self.trainer.state_dict_for_sync(layout)

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

    def train_step(self, items: list, loss: str = "grpo") -> dict[str, float]:
        return super().train_step(materialize_items(items, self.store), loss)  # type: ignore[arg-type]

    def compute_logprobs(self, samples: list) -> list:
        return super().compute_logprobs(materialize_items(samples, self.store))

    def reference_logprobs(self, samples: list) -> list:
        return super().reference_logprobs(materialize_items(samples, self.store))

    def reference_logps(self, pairs: list) -> list:
        resolved = super().reference_logps(materialize_items(pairs, self.store))
        return [(r.ref_chosen_logp, r.ref_rejected_logp) for r in resolved]

    def weights_ref(self, layout: str) -> list:
        """``[ObjectRef]`` of the packed weights (wrapped in a list so Ray does not resolve it)."""
        from omni_rl.generation.worker import put_weights

        state = self._t().state_dict_for_sync(layout)
        return [put_weights(state)] if state else []


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

    def weights_ref(self, layout: str) -> Any:
        return self._all("weights_ref", layout)[0][0]

    def state_dict(self, layout: str) -> dict[str, Any]:
        return self._all("state_dict_for_sync", layout)[0]

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


class LocalGeneration:
    """The torch sampler in the driver. ``shared``: it samples from the local trainer's model itself."""

    def __init__(self, backend: Any, shared: bool) -> None:
        self.backend = backend
        self.shared = shared
        self.retries = 0

    def submit(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.backend.generate(requests)

    def collect(self, pending: list[GenerationResult]) -> list[GenerationResult]:
        return pending

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.collect(self.submit(requests))

    def sync(self, trainer: Any, version: int) -> None:
        if not self.shared:
            self.backend.update_weights(trainer.state_dict("native"), "native", version)

    def sleep(self) -> None:
        self.backend.sleep()

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
        self._weights: tuple[Any, int] | None = None  # (ObjectRef, version) last synced
        ray.get([a.ping.remote() for a in self.actors])

    def submit(self, requests: Sequence[GenerationRequest]) -> PendingGeneration:
        n = len(self.actors)
        version = None if self._weights is None else self._weights[1]
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
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            i = futures.pop(done[0])
            try:
                part = ray.get(done[0])
                stale = pending.version is not None and any(r.weight_version != pending.version for r in part)
                if not stale:
                    results[i] = part
                    continue
                why = "came back restarted (initial weights)"
            except RayActorError as exc:
                why = f"crashed ({exc})"
            # a restarted worker holds the initial weights: give it the current ones and ask again
            attempts[i] = attempts.get(i, 0) + 1
            if attempts[i] > self.max_retries:
                raise RuntimeError(f"generation worker {i} failed {attempts[i]} times; giving up: {why}")
            self.retries += 1
            log.warning("generation worker %d %s; retrying its %d requests", i, why, len(pending.requests[i]))
            wait_alive(self.actors[i], "ping")
            if self._weights is not None:
                ref, version = self._weights
                ray.get(self.actors[i].update_weights.remote(ref, self.layout, version))
            futures[self.actors[i].generate.remote(pending.requests[i])] = i
        n = len(self.actors)
        total = sum(len(p) for p in pending.requests)
        out: list[GenerationResult | None] = [None] * total
        for i, part in results.items():
            out[i::n] = part
        return out  # type: ignore[return-value]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.collect(self.submit(requests))

    def sleep(self) -> None:
        """Colocated GPUs: free the engines' memory for the trainer step (``GenerationWorker.sleep``)."""
        import ray

        ray.get([a.sleep.remote() for a in self.actors])

    def wake_up(self) -> None:
        import ray

        ray.get([a.wake_up.remote() for a in self.actors])

    def sync(self, trainer: Any, version: int) -> None:
        """Queue the new weights on every engine (after any generate already queued there)."""

        if hasattr(trainer, "weights_ref"):
            ref = trainer.weights_ref(self.layout)
        else:
            from omni_rl.generation.worker import put_weights

            ref = put_weights(trainer.state_dict(self.layout))
        self._weights = (ref, version)
        futures = {a.update_weights.remote(ref, self.layout, version): i for i, a in enumerate(self.actors)}
        for future, i in futures.items():
            self._update_one(future, i, ref, version)

    def _update_one(self, future: Any, i: int, ref: Any, version: int) -> None:
        """Wait for engine ``i``'s update; if it crashed meanwhile, wait for its restart and send again."""
        import ray
        from ray.exceptions import RayActorError

        for attempt in range(self.max_retries + 1):
            try:
                ray.get(future)
                return
            except RayActorError as exc:
                if attempt == self.max_retries:
                    raise RuntimeError(
                        f"generation worker {i}: weight sync failed {attempt + 1} times"
                    ) from exc
                self.retries += 1
                log.warning("generation worker %d crashed during weight sync (%s); sending again", i, exc)
                wait_alive(self.actors[i], "ping")
                future = self.actors[i].update_weights.remote(ref, self.layout, version)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
