"""The colocated loop with ``generation.sleep_while_training: true``: the engines sleep (level 2: their
weights are freed) during every trainer step, wake, and get the weights back from the bucketed sync.
vLLM on CPU has no sleep mode: that is refused at start-up, not at step 1."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from omni_rl.algorithms.config import GRPOConfig
from omni_rl.algorithms.workers import check_sleep_mode
from omni_rl.config import load_config
from omni_rl.logging import read_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_grpo_with_sleeping_engines_runs_end_to_end(tmp_path):
    from omni_rl.algorithms.grpo import run_grpo

    items = [
        f"output_dir={tmp_path}",
        "run_name=sleep",
        "steps=2",
        "prompts_per_step=2",
        "group_size=4",
        "generation.mode=ray",
        "generation.sleep_while_training=true",
        "generation.sleep_level=2",
        "generation.sync.bucket_mb=0.25",
        "trainer_run.mode=ray",
        "scoring.mode=local",
        "logging.tensorboard=false",
        "logging.console=false",
        "eval.every=0",
        "checkpoint.every=0",
        "checkpoint.at_end=false",
    ]
    cfg = load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", items)
    summary = run_grpo(cfg)
    assert summary["step"] == 2
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and all("timing/sync_s" in r for r in rows)


def test_vllm_sleep_on_cpu_is_refused_at_start_up():
    gen = SimpleNamespace(sleep_while_training=True, sleep_level=1, backend="vllm", options={})
    with pytest.raises(ValueError, match="no sleep mode on CPU"):
        check_sleep_mode(gen, "cpu")
    with pytest.raises(ValueError, match="enable_sleep_mode"):
        check_sleep_mode(gen, "gpu")
    check_sleep_mode(SimpleNamespace(**{**vars(gen), "options": {"enable_sleep_mode": True}}), "gpu")
    check_sleep_mode(SimpleNamespace(**{**vars(gen), "backend": "torch"}), "cpu")
    with pytest.raises(ValueError, match="sleep_level"):
        check_sleep_mode(SimpleNamespace(**{**vars(gen), "sleep_level": 3}), "cpu")
