"""Cluster settings (the ``cluster`` section of a run config): where Ray runs and where roles go.

``address`` decides between starting and attaching::

    null          inside a Ray job or with RAY_ADDRESS set: attach; otherwise start a local Ray runtime
    "local"       start a new local runtime (ignores RAY_ADDRESS); inside a Ray job (``ray job submit``)
                  it attaches to the job's cluster instead, so a config runs verbatim either way
    "auto"        attach to a running cluster (RAY_ADDRESS, else one ``ray start`` left on this machine)
    "HOST:PORT"   attach to the cluster whose GCS listens there
    "ray://H:P"   attach through the Ray Client server (remote driver)

``num_cpus``, ``num_gpus``, ``resources`` and ``object_store_memory`` size a runtime this process
starts; a cluster that is attached to keeps its own resources (they are then ignored, with a warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

PlacementMode = Literal["colocated", "separate"]
Device = Literal["auto", "gpu", "cpu"]
Strategy = Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}")


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {message}")


@dataclass
class Placement:
    """Which roles run where (see ``omni_rl.cluster.placement.plan_placement``).

    GPU layouts (``device: gpu``, or ``auto`` on a cluster with GPUs):

    - ``colocated``: trainer rank ``r`` and generation shard ``r`` share one GPU; generation sleeps while
      the trainer steps. ``generation_workers`` is then ``trainer_workers // generation_tp`` (engines of
      ``generation_tp`` GPUs each, every engine's GPUs on one node).
    - ``separate``: the trainer gets ``trainer_workers`` GPUs and generation its own
      ``generation_workers * generation_tp`` GPUs.

    CPU layouts (``device: cpu``): no placement groups; every actor reserves ``cpu_actor_cpus`` CPUs
    (0 by default, so a 2-core laptop never waits for a free CPU) and runs ``cpu_threads`` torch/OpenMP
    threads.
    """

    mode: PlacementMode = "colocated"
    device: Device = "auto"
    trainer_workers: int = 1  # data-parallel trainer ranks (one GPU each)
    generation_workers: int | None = None  # engines; None: derived (colocated) or 1 (separate)
    generation_tp: int = 1  # tensor-parallel size of one generation engine (GPUs per engine)
    env_workers: int = 1  # environment (verifier) workers: CPU only
    # CPUs each actor reserves on GPU layouts
    trainer_cpus: float = 1.0
    generation_cpus: float = 1.0
    env_cpus: float = 1.0
    # colocated: share of each GPU that a generation shard requests (the trainer requests the rest)
    colocated_gpu_share: float = 0.5
    # Ray strategy of the trainer's placement group in "separate" mode (engines are always STRICT_PACK)
    trainer_strategy: Strategy = "PACK"
    # CPU layouts
    cpu_actor_cpus: float = 0.0
    cpu_threads: int = 1
    # seconds to wait for placement groups to be placed before failing (busy cluster)
    ready_timeout_s: float = 300.0
    # memory of one GPU, for the memory plan (``omni-rl plan``); None: measured where a GPU is visible
    gpu_memory_gib: float | None = None

    def __post_init__(self) -> None:
        _check(
            self.trainer_workers >= 1,
            "placement.trainer_workers",
            f"must be >= 1, got {self.trainer_workers}",
        )
        _check(self.generation_tp >= 1, "placement.generation_tp", f"must be >= 1, got {self.generation_tp}")
        gw = self.generation_workers
        _check(gw is None or gw >= 0, "placement.generation_workers", f"must be >= 0 or null, got {gw}")
        _check(self.env_workers >= 0, "placement.env_workers", f"must be >= 0, got {self.env_workers}")
        for name in ("trainer_cpus", "generation_cpus", "env_cpus", "cpu_actor_cpus"):
            value = getattr(self, name)
            _check(value >= 0, f"placement.{name}", f"must be >= 0, got {value}")
        share = self.colocated_gpu_share
        _check(0 < share < 1, "placement.colocated_gpu_share", f"must be in (0, 1), got {share}")
        _check(self.cpu_threads >= 1, "placement.cpu_threads", f"must be >= 1, got {self.cpu_threads}")
        _check(
            self.ready_timeout_s > 0, "placement.ready_timeout_s", f"must be > 0, got {self.ready_timeout_s}"
        )


@dataclass
class ClusterConfig:
    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None  # may be declared on a machine without GPUs (scheduling tests)
    resources: dict[str, float] = field(default_factory=dict)  # custom resources of a local runtime
    object_store_memory: int | None = None  # bytes
    namespace: str | None = None  # None: Ray's anonymous per-job namespace
    runtime_env: dict[str, Any] = field(default_factory=dict)  # for this driver and its workers
    include_dashboard: bool = False  # local runtime only
    # a local runtime binds every server (GCS, raylet, workers, dashboard and its job server) to
    # 127.0.0.1 only; false: Ray's default (all interfaces, the machine's routable address)
    loopback: bool = True
    log_to_driver: bool = True  # print actor/task output in the driver
    placement: Placement = field(default_factory=Placement)

    def __post_init__(self) -> None:
        address = self.address
        if address is not None:
            expected = f"expected null, 'local', 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}"
            _check(isinstance(address, str), "cluster.address", expected)
            _check(
                not address.startswith(("http://", "https://")),
                "cluster.address",
                f"{address!r} is a job-submission (dashboard) address: use it with `omni-rl submit --address`; "
                "a driver connects to the GCS (HOST:6379) or ray://HOST:10001",
            )
            if address not in ("local", "auto"):
                _check(
                    bool(_HOST_PORT.fullmatch(address.removeprefix("ray://"))), "cluster.address", expected
                )
        for name in ("num_cpus", "num_gpus", "object_store_memory"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"cluster.{name}", f"must be >= 0 or null, got {value}")
        for key, value in self.resources.items():
            _check(value >= 0, f"cluster.resources.{key}", f"must be >= 0, got {value}")

    @property
    def sizes_runtime(self) -> bool:
        """True when a resource setting is given (only meaningful for a runtime this process starts)."""
        return any(v is not None for v in (self.num_cpus, self.num_gpus, self.object_store_memory)) or bool(
            self.resources
        )
