"""Masked samples: a score with ``masked`` set (the scorer failed, or a NeMo Gym server said
``mask_sample``) is not a measurement of the policy, so it takes no part in its group's advantages and is
never trained on. The other samples of the group are normalised among themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omni_rl.training.advantages import AdvantageConfig, AdvantageResult, compute_advantages


def group_advantages(groups: Sequence[Any], cfg: AdvantageConfig) -> AdvantageResult:
    """Advantages shaped [groups, G] for groups with ``scores`` (each with ``reward`` and ``masked``);
    masked samples get advantage 0 and ``keep=False``. Without masked samples this is
    ``compute_advantages`` on the reward matrix."""
    rewards = torch.tensor([[s.reward for s in g.scores] for g in groups], dtype=torch.float32)
    masked = torch.tensor([[bool(getattr(s, "masked", False)) for s in g.scores] for g in groups])
    if not masked.any():
        result = compute_advantages(rewards, cfg)
        result.stats["samples/masked_frac"] = 0.0
        return result
    valid = ~masked
    advantages = torch.zeros_like(rewards)
    keep = torch.zeros_like(masked)
    stats: dict[str, float] = {"groups/num": float(len(groups))}
    if valid.any():
        group_ids = torch.arange(len(groups)).unsqueeze(1).expand_as(rewards)
        inner = compute_advantages(rewards[valid], cfg, group_ids[valid])
        advantages[valid] = inner.advantages
        keep[valid] = inner.keep
        stats.update(inner.stats)
        stats["groups/num"] = float(len(groups))
    stats["samples/kept_frac"] = keep.double().mean().item()
    stats["samples/masked_frac"] = masked.double().mean().item()
    return AdvantageResult(advantages, keep, stats)
