"""Bounded-staleness async GRPO: ``max_staleness: k`` (``one_step_off_policy`` is k = 1), the staleness
metrics, and a run that survives a generation worker killed mid-run: the restarted engine is streamed the
last synced weights and its pending requests run again on them (a newer version, never an older one)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from environments.base import EnvScore
from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.config import GRPOConfig
from omni_rl.config import ConfigError, load_config
from omni_rl.generation import GenerationResult, SampleOutput
from omni_rl.logging import read_metrics

ROOT = Path(__file__).resolve().parents[1]
GRPO = ROOT / "configs/tiny_grpo_cpu.yaml"


def test_one_step_off_policy_is_max_staleness_one():
    assert load_config(GRPOConfig, GRPO, []).max_staleness == 0
    assert load_config(GRPOConfig, GRPO, ["one_step_off_policy=true"]).max_staleness == 1
    assert load_config(GRPOConfig, GRPO, ["max_staleness=3"]).max_staleness == 3
    with pytest.raises(ConfigError, match="max_staleness"):
        load_config(GRPOConfig, GRPO, ["max_staleness=-1"])


def test_staleness_metrics_count_updates_behind_the_trainer():
    def group(version: int) -> R.Group:
        sample = SampleOutput([5], [-1.0], "A", "stop")
        g = R.Group(prompt=None, refs=[], request=None)  # type: ignore[arg-type]
        g.result = GenerationResult("r", [sample], weight_version=version)
        g.scores = [EnvScore(1.0, True)]
        return g

    # trainer at version 5; samples from versions 3, 3 and 5: lags 2, 2, 0
    out = R.staleness_metrics([group(3), group(3), group(5)], trainer_version=5)
    assert out == {"async/staleness_max": 2.0, "async/staleness_mean": pytest.approx(4 / 3)}


def _wait_for(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.slow
def test_async_run_survives_a_killed_generation_worker(tmp_path):
    import ray

    from omni_rl.algorithms.grpo import run_grpo
    from omni_rl.algorithms.setup import actor_prefix

    steps, k = 10, 2
    cfg = load_config(
        GRPOConfig,
        GRPO,
        [f"output_dir={tmp_path}", "run_name=async_crash", f"steps={steps}", f"max_staleness={k}",
         "prompts_per_step=2", "group_size=4", "trainer_run.mode=local", "scoring.mode=local",
         "logging.tensorboard=false", "logging.console=false", "logging.rollouts_every=1", "eval.every=0",
         "checkpoint.every=0", "advantage.dynamic_sampling.enabled=true"],
    )  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(run_grpo(cfg)), daemon=True)
        thread.start()
        metrics = cfg.run_dir / "metrics.jsonl"
        _wait_for(lambda: metrics.is_file() and len(read_metrics(metrics)) >= 4, 600)
        # requests of the next k steps are queued on the engine, drawn on older weights
        ray.kill(ray.get_actor(f"{actor_prefix(cfg)}-gen-0"), no_restart=False)  # Ray restarts it
        thread.join(600)
        assert not thread.is_alive()
    finally:
        ray.shutdown()
    assert result["step"] == steps
    rows = read_metrics(metrics)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert rows[-1]["generation/worker_retries"] >= 1
    assert max(r["async/staleness_max"] for r in rows) == k
    for step in range(1, steps + 1):
        dumped = (cfg.run_dir / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()
        versions = [json.loads(line)["weight_version"] for line in dumped]
        # the step's own prompts were drawn k steps ahead (version step-1-k); refills, and the requests
        # a restarted engine ran again, on newer weights, never newer than the trainer's last update
        assert all(max(0, step - 1 - k) <= v <= step - 1 for v in versions), (step, versions)
