"""LoRA GRPO on the tiny model learns the synthetic image task on CPU: rank-16 adapters on the decoder's
attention, Mamba and shared-expert projections, the image/audio projectors and the LM head, the base
frozen. Runs in-process (local trainer, sampler and scoring); the adapted model samples directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_rl.algorithms.config import GRPOConfig
from omni_rl.config import load_config
from omni_rl.logging import read_metrics

ROOT = Path(__file__).resolve().parents[1]
STEPS = 100
THRESHOLD = 0.5  # chance ~0.01; always naming one colour ~0.25; measured 0.73 over steps 81-100


@pytest.mark.slow
def test_lora_grpo_learns_the_image_task(tmp_path):
    from omni_rl.algorithms.grpo import run_grpo

    cfg = load_config(
        GRPOConfig,
        ROOT / "configs/tiny_grpo_cpu.yaml",
        [
            f"output_dir={tmp_path}",
            "run_name=lora",
            f"steps={STEPS}",
            "envs=[{name: synthetic_image_color, generate: {n: 64, seed: 0, shuffle_choices: false}}]",
            "trainer.lora={rank: 16, alpha: 32, targets: [attention, mamba, shared_experts, projectors, lm_head]}",
            "trainer.lr=0.003",
            "generation.mode=local",
            "scoring.mode=local",
            "trainer_run.mode=local",
            "media_store=local",
            "logging.console=false",
            "logging.tensorboard=false",
            "logging.rollouts_every=0",
            "eval.every=0",
            "checkpoint.every=0",
        ],
    )
    summary = run_grpo(cfg)
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    rewards = [r["reward/synthetic_image_color"] for r in rows]
    first, last = sum(rewards[:20]) / 20, sum(rewards[-20:]) / 20
    print(f"LoRA GRPO image task: first/last 20-step mean reward {first:.3f} -> {last:.3f}")
    assert first < 0.1 and last >= THRESHOLD, (first, last)
