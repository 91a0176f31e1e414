"""Scoring rollouts with the environments' verifiers: in the driver, or on environment worker actors.

``EnvWorkerPool`` holds ``n`` Ray actors, each building the mix's environments from their specs; a batch is
split into one chunk per worker and scored in parallel. Prompts travel as they are (text and media *paths*,
never decoded media). A worker that crashes (``RayActorError``) is restarted by Ray (``max_restarts``) and
its chunk is sent again, up to ``max_retries`` times, so one dead verifier process costs a retry, not a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from environments.base import Environment, EnvScore
from omni_rl.data.schema import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreTask:
    """One response to score: ``label`` names the environment of the mix."""

    label: str
    prompt: Prompt
    response: str


def score_tasks(envs: Mapping[str, Environment], tasks: Sequence[ScoreTask]) -> list[EnvScore]:
    """Score in this process, one ``score_batch`` call per environment (it never raises)."""
    out: list[EnvScore | None] = [None] * len(tasks)
    by_label: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        by_label.setdefault(task.label, []).append(i)
    for label, indices in by_label.items():
        env = envs.get(label)
        if env is None:
            scores = [EnvScore(0.0, False, error=f"no environment {label!r} in this worker") for _ in indices]
        else:
            scores = env.score_batch([(tasks[i].prompt, tasks[i].response) for i in indices])
        for i, score in zip(indices, scores, strict=True):
            out[i] = score
    return out  # type: ignore[return-value]


class EnvWorker:
    """Actor body: the mix's environments, rebuilt from ``{label: (name, options)}``."""

    def __init__(self, specs: Mapping[str, tuple[str, Mapping[str, Any]]]) -> None:
        from omni_rl.cluster.threads import apply_thread_limits

        apply_thread_limits()
        import environments

        self.envs = {
            label: environments.get(name, **dict(options)) for label, (name, options) in specs.items()
        }

    def score(self, tasks: list[ScoreTask]) -> list[EnvScore]:
        return score_tasks(self.envs, tasks)

    def pid(self) -> int:
        import os

        return os.getpid()


def wait_alive(actor: Any, probe: str, timeout_s: float = 120.0) -> None:
    """Block until ``actor`` answers ``probe`` (a no-argument method): Ray is restarting it after a crash."""
    import ray
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ray.get(getattr(actor, probe).remote(), timeout=timeout_s)
            return
        except RayActorError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class LocalScorer:
    def __init__(self, envs: Mapping[str, Environment]) -> None:
        self.envs = dict(envs)
        self.retries = 0

    def score(self, tasks: Sequence[ScoreTask]) -> list[EnvScore]:
        return score_tasks(self.envs, tasks)

    def close(self) -> None:
        pass


class EnvWorkerPool:
    """``len(actor_options)`` environment worker actors (one ``.options(...)`` dict each)."""

    def __init__(
        self,
        specs: Mapping[str, tuple[str, Mapping[str, Any]]],
        actor_options: Sequence[Mapping[str, Any]],
        *,
        max_restarts: int = 3,
        max_retries: int = 2,
        name_prefix: str | None = None,
    ) -> None:
        import ray

        if not actor_options:
            raise ValueError("cluster.placement.env_workers: scoring.mode=ray needs at least one worker")
        remote = ray.remote(EnvWorker)
        self.specs = {k: (v[0], dict(v[1])) for k, v in specs.items()}
        names = [None if name_prefix is None else f"{name_prefix}-env-{i}" for i in range(len(actor_options))]
        self.actors = [
            remote.options(**dict(opts), max_restarts=max_restarts, name=name).remote(self.specs)
            for opts, name in zip(actor_options, names, strict=True)
        ]
        self.max_retries = max_retries
        self.retries = 0  # chunks sent again after a crash (reported as a metric)
        ray.get([a.pid.remote() for a in self.actors])  # fail here, not in step 1, if a worker cannot start

    def score(self, tasks: Sequence[ScoreTask]) -> list[EnvScore]:
        import ray
        from ray.exceptions import RayActorError

        n = len(self.actors)
        chunks = {i: list(tasks[i::n]) for i in range(n) if tasks[i::n]}
        results: dict[int, list[EnvScore]] = {}
        attempts = dict.fromkeys(chunks, 0)
        pending = {self.actors[i].score.remote(chunk): i for i, chunk in chunks.items()}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except RayActorError as exc:
                attempts[i] += 1
                if attempts[i] > self.max_retries:
                    raise RuntimeError(
                        f"environment worker {i} crashed {attempts[i]} times while scoring; giving up ({exc})"
                    ) from exc
                self.retries += 1
                log.warning(
                    "environment worker %d crashed (%s); retrying its %d samples", i, exc, len(chunks[i])
                )
                wait_alive(self.actors[i], "pid")
                pending[self.actors[i].score.remote(chunks[i])] = i
        out: list[EnvScore | None] = [None] * len(tasks)
        for i, scored in results.items():
            out[i::n] = scored
        return out  # type: ignore[return-value]

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
