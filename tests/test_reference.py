"""The KL reference lives on the trainer ranks: a frozen copy sharded like the policy (or, with LoRA, the
base model with adapters off). It stays at the initial policy while the policy moves, and GRPO with
kl_coef > 0 runs end to end with a finite, non-zero KL once the policy has moved."""

from __future__ import annotations

import math
from pathlib import Path

from test_grpo import _local_cfg
from test_trainer import make_items, trainer

from omni_rl.logging import read_metrics
from omni_rl.training.lora import LoraSettings
from omni_rl.training.policy_loss import PolicyLossConfig


def max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def test_the_frozen_copy_stays_at_the_initial_policy():
    t = trainer(policy_loss=PolicyLossConfig(kl_coef=0.1))
    assert t.reference is not None and not any(p.requires_grad for p in t.reference.parameters())
    items = make_items(t.processor)
    start = t.compute_logprobs(items)
    assert max_diff(t.reference_logprobs(items), start) == 0.0
    for item, ref in zip(items, start, strict=True):
        item.ref_logprobs = ref
    t.train_step(items)
    assert max_diff(t.compute_logprobs(items), start) > 1e-3  # the policy moved
    assert max_diff(t.reference_logprobs(items), start) == 0.0  # the reference did not


def test_with_lora_the_reference_is_the_base_without_a_copy():
    t = trainer(lora=LoraSettings(rank=4, alpha=8), policy_loss=PolicyLossConfig(kl_coef=0.1))
    assert t.reference is None  # no second copy
    items = make_items(t.processor)
    start = t.compute_logprobs(items)
    for item, ref in zip(items, t.reference_logprobs(items), strict=True):
        item.ref_logprobs = ref
    t.train_step(items)
    assert max_diff(t.compute_logprobs(items), start) > 1e-3
    assert max_diff(t.reference_logprobs(items), start) < 1e-6
    trainable = [n for n, p in t.model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)  # adapters trainable again afterwards


def test_grpo_with_a_kl_penalty_runs_end_to_end(tmp_path):
    from omni_rl.algorithms.grpo import run_grpo

    cfg = _local_cfg(
        tmp_path,
        steps=5,
        **{
            "trainer.policy_loss.kl_coef": 0.1,
            "prompts_per_step": 8,
            "group_size": 16,  # a random policy answers ~1% right: some groups differ from step 1 on
            "envs": "[{name: synthetic_image_color, generate: {n: 32, seed: 0, shuffle_choices: false}}]",
            "checkpoint.every": 0,
            "logging.rollouts_every": 0,
        },
    )
    summary = run_grpo(cfg)
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    kl = [r["train/kl_ref"] for r in rows]
    assert len(kl) == 5 and all(math.isfinite(v) for v in kl)
    assert abs(kl[0]) < 1e-6  # step 1: the policy is still the reference
    moved = [i for i, r in enumerate(rows) if r["train/grad_norm"] > 0 and not r["train/skipped"]]
    assert moved and moved[0] < 4, [r["train/grad_norm"] for r in rows]
    assert all(v > 1e-6 for v in kl[moved[0] + 1 :]), kl  # once the policy has moved, KL > 0
    assert "timing/reference_s" in rows[-1]
