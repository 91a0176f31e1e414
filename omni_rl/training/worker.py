"""Ray wrapper: one ``PolicyTrainer`` per actor (one data-parallel rank), and ``TrainerGroup``, the
driver-side handle of W such actors that shards items, calls every rank and returns rank 0's answer.

The group asks rank 0's actor for its node address and a free port, then builds all trainers at
once (``init_process_group`` blocks until every rank has joined). Items travel to the actors through
Ray; media inside them (arrays, PIL images) is serialised with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
import torch

from omni_rl.models.batching import MultimodalSample
from omni_rl.training.distributed import free_port
from omni_rl.training.items import PreferencePair, TrainItem
from omni_rl.training.trainer import LossKind, PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig


class TrainerActor:
    """The actor body. Methods mirror ``PolicyTrainer``; ``setup`` builds it."""

    def __init__(self) -> None:
        self.trainer: PolicyTrainer | None = None

    def address(self) -> tuple[str, int]:
        host = ray.util.get_node_ip_address()
        return host, free_port(host)

    def setup(self, cfg: TrainerConfig, rank: int, world_size: int, init_method: str | None) -> int:
        self.trainer = PolicyTrainer(cfg, rank, world_size, init_method)
        return sum(p.numel() for p in self.trainer.params)

    def _t(self) -> PolicyTrainer:
        if self.trainer is None:
            raise RuntimeError("TrainerActor.setup was not called")
        return self.trainer

    def train_step(self, items: list, loss: LossKind = "grpo") -> dict[str, float]:
        return self._t().train_step(items, loss)

    def compute_logprobs(self, samples: list) -> list[torch.Tensor]:
        return self._t().compute_logprobs(samples)

    def reference_logps(self, pairs: list[PreferencePair]) -> list[PreferencePair]:
        return self._t().reference_logps(pairs)

    def reference_logprobs(self, samples: list) -> list[torch.Tensor]:
        return self._t().reference_logprobs(samples)

    def state_dict_for_sync(self, layout: str = "original") -> dict[str, torch.Tensor]:
        return self._t().state_dict_for_sync(layout)

    def save_checkpoint(self, root: str, data_state: dict | None = None) -> str:
        return str(self._t().save_checkpoint(root, data_state))

    def load_checkpoint(self, path: str) -> dict:
        return self._t().load_checkpoint(path)

    def get_step(self) -> int:
        return self._t().step


TrainerWorker = ray.remote(TrainerActor)


def shard(items: Sequence[Any], world_size: int) -> list[list[Any]]:
    """Strided shards (rank r gets items r, r + W, ...); every rank needs at least one item."""
    if len(items) < world_size:
        raise ValueError(f"{len(items)} item(s) for {world_size} trainer ranks: give at least one per rank")
    return [list(items[r::world_size]) for r in range(world_size)]


class TrainerGroup:
    """W ``TrainerWorker`` actors forming one data-parallel group (``world_size=1``: a single actor)."""

    def __init__(
        self,
        cfg: TrainerConfig,
        world_size: int = 1,
        *,
        num_cpus_per_worker: float = 1,
        num_gpus_per_worker: float = 0,
    ) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.world_size = world_size
        options = {"num_cpus": num_cpus_per_worker, "num_gpus": num_gpus_per_worker}
        self.actors = [TrainerWorker.options(**options).remote() for _ in range(world_size)]
        host, port = ray.get(self.actors[0].address.remote())
        init = f"tcp://{host}:{port}" if world_size > 1 else None
        ray.get([a.setup.remote(cfg, r, world_size, init) for r, a in enumerate(self.actors)])

    def _all(self, method: str, *args: Any) -> list[Any]:
        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def train_step(
        self, items: Sequence[TrainItem] | Sequence[PreferencePair], loss: LossKind = "grpo"
    ) -> dict:
        parts = shard(items, self.world_size)
        return ray.get([a.train_step.remote(p, loss) for a, p in zip(self.actors, parts, strict=True)])[0]

    def compute_logprobs(self, samples: Sequence[MultimodalSample | TrainItem]) -> list[torch.Tensor]:
        parts = shard(samples, self.world_size)
        results = ray.get([a.compute_logprobs.remote(p) for a, p in zip(self.actors, parts, strict=True)])
        out: list[torch.Tensor] = [None] * len(samples)  # type: ignore[list-item]
        for rank, values in enumerate(results):
            out[rank :: self.world_size] = values
        return out

    def reference_logps(self, pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
        parts = shard(pairs, self.world_size)
        results = ray.get([a.reference_logps.remote(p) for a, p in zip(self.actors, parts, strict=True)])
        out: list[PreferencePair] = [None] * len(pairs)  # type: ignore[list-item]
        for rank, values in enumerate(results):
            out[rank :: self.world_size] = values
        return out

    def state_dict_for_sync(self, layout: str = "original") -> dict[str, torch.Tensor]:
        return self._all("state_dict_for_sync", layout)[0]

    def save_checkpoint(self, root: str | Path, data_state: dict | None = None) -> Path:
        return Path(self._all("save_checkpoint", str(root), data_state)[0])

    def load_checkpoint(self, path: str | Path) -> dict:
        return self._all("load_checkpoint", str(path))[0]

    @property
    def step(self) -> int:
        return ray.get(self.actors[0].get_step.remote())

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
