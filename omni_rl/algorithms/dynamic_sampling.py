"""A GRPO step's training batch: scores, overlong handling, advantages and DAPO's dynamic sampling.

Without dynamic sampling the step trains on the groups it drew, minus those whose rewards are all equal
(no signal): the batch shrinks. With ``advantage.dynamic_sampling.enabled`` it keeps drawing, generating
and scoring more prompts (on the current weights) until ``prompts_per_step`` groups have reward variance,
at most ``max_draws_factor x prompts_per_step`` prompts in all; it trains on the first
``prompts_per_step`` such groups (fewer when the bound is hit). Every drawn group still counts in the
reward metrics and the rollout dumps: they measure the policy, not the batch.

Each refill round draws ``missing / rate`` prompts, ``rate`` the fraction of groups with signal so far
(at least ``1 / max_draws_factor``), so a step usually needs one or two extra rounds.

A refill draws from the environment mix after the prompts of the step it fills; with
``one_step_off_policy`` the next step's prompts were drawn before, so a resumed async run draws its
refills in a different order than the first run would have (each step's batch is still valid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.bad_media import BadMediaLog, record_failed_requests
from omni_rl.logging import Timer
from omni_rl.training.advantages import AdvantageConfig, compute_advantages
from omni_rl.training.overlong import OverlongConfig, loss_mask, shaped_rewards


@dataclass
class StepBatch:
    groups: list[R.Group]  # every group drawn this step, in draw order
    train_groups: list[R.Group]  # groups with scored samples; ``keep`` marks what is trained
    stats: dict[str, float] = field(default_factory=dict)
    failed: int = 0  # generation requests of refill rounds that failed


def group_rewards(group: R.Group, overlong: OverlongConfig, max_tokens: int) -> list[float]:
    """The rewards the advantages see (with the overlong penalty when configured)."""
    return shaped_rewards(group.rewards, [len(s.token_ids) for s in group.samples], overlong, max_tokens)


def usable_rewards(group: R.Group, overlong: OverlongConfig, max_tokens: int) -> list[float]:
    """The group's rewards without its masked samples."""
    rewards = group_rewards(group, overlong, max_tokens)
    return [r for r, s in zip(rewards, group.scores, strict=True) if not is_masked(s)]


def is_masked(score: Any) -> bool:
    """A score that measures nothing (``EnvScore.masked``): left out of advantages and the loss."""
    return bool(getattr(score, "masked", False))


def has_signal(rewards: Sequence[float], tol: float = 0.0) -> bool:
    """At least two samples whose rewards differ by more than ``tol``."""
    return len(rewards) >= 2 and max(rewards) - min(rewards) > tol


def refill_count(missing: int, with_signal: int, drawn: int, factor: float, room: int) -> int:
    """How many prompts the next refill round draws: enough for ``missing`` more groups with signal at the
    rate seen so far (at least ``1 / factor``), within the ``room`` left under the bound."""
    rate = max(with_signal / drawn if drawn else 0.0, 1.0 / factor)
    return max(0, min(room, math.ceil(missing / rate)))


def assign_advantages(
    groups: Sequence[R.Group],
    adv_cfg: AdvantageConfig,
    overlong: OverlongConfig,
    max_tokens: int,
    limit: int | None,
) -> dict[str, float]:
    """Set ``advantages`` and ``keep`` on every group with samples; returns the advantage statistics.

    ``limit``: train only the first ``limit`` groups with signal (dynamic sampling); None: every group
    the advantage filter keeps. Truncated samples leave the loss with ``overlong.mode == "mask"``."""
    scored = [g for g in groups if g.samples]
    if not scored:
        return {}
    shaped = [group_rewards(g, overlong, max_tokens) for g in scored]
    # a masked score (the scorer failed, or a NeMo Gym server said mask_sample) measures nothing: it
    # takes no part in its group's normalisation and is never trained on
    valid = [[not is_masked(s) for s in g.scores] for g in scored]
    flat = torch.tensor(
        [r for rs, vs in zip(shaped, valid, strict=True) for r, v in zip(rs, vs, strict=True) if v],
        dtype=torch.float64,
    )
    ids = torch.tensor([i for i, vs in enumerate(valid) for v in vs if v], dtype=torch.long)
    if len(flat):
        adv = compute_advantages(flat, adv_cfg, group_ids=ids)
        inner_adv, inner_keep, adv_stats = adv.advantages.tolist(), adv.keep.tolist(), adv.stats
    else:
        inner_adv, inner_keep, adv_stats = [], [], {}
    taken = masked = total = n_invalid = 0
    penalties = []
    offset = 0
    for g, rs, vs in zip(scored, shaped, valid, strict=True):
        n = len(rs)
        g.advantages, g.keep = [], []
        for v in vs:
            g.advantages.append(float(inner_adv[offset]) if v else 0.0)
            g.keep.append(bool(inner_keep[offset]) if v else False)
            offset += int(v)
        n_invalid += n - sum(vs)
        if limit is not None:
            usable = [r for r, v in zip(rs, vs, strict=True) if v]
            chosen = taken < limit and has_signal(usable, adv_cfg.zero_variance_tol)
            taken += int(chosen)
            g.keep = [k and chosen for k in g.keep]
        truncated = [s.finish_reason == "length" for s in g.samples]
        in_loss = loss_mask(truncated, overlong)
        masked += sum(k and not m for k, m in zip(g.keep, in_loss, strict=True))
        g.keep = [k and m for k, m in zip(g.keep, in_loss, strict=True)]
        total += n
        penalties.extend(s - r for s, r in zip(rs, g.rewards, strict=True))
    stats = {k: v for k, v in adv_stats.items() if k.startswith(("groups/", "advantage/"))}
    kept = [k for g in scored for k in g.keep]
    stats["samples/kept_frac"] = sum(kept) / total
    stats["samples/masked_frac"] = n_invalid / total
    stats["groups/trained"] = float(sum(any(g.keep) for g in scored))
    if overlong.mode == "mask":
        stats["overlong/masked_frac"] = masked / total
    if overlong.mode == "penalty":
        stats["overlong/penalty_mean"] = sum(penalties) / total
    return stats


def build_step_batch(
    cfg: Any, run: Any, step: int, groups: list[R.Group], bad: BadMediaLog, timer: Timer
) -> StepBatch:
    """Score ``groups`` (already generated), refill with dynamic sampling, assign advantages and keep."""
    adv_cfg: AdvantageConfig = cfg.advantage
    overlong: OverlongConfig = cfg.trainer.overlong
    max_tokens = cfg.generation.sampling.max_tokens
    dyn = adv_cfg.dynamic_sampling
    target = cfg.prompts_per_step

    def score(batch: list[R.Group]) -> None:
        with timer.phase("score"):
            R.attach_scores(batch, run.scorer.score(R.score_tasks_of(batch)))

    def signal(batch: Sequence[R.Group]) -> int:
        tol = adv_cfg.zero_variance_tol
        return sum(has_signal(usable_rewards(g, overlong, max_tokens), tol) for g in batch if g.samples)

    score(groups)
    everything = list(groups)
    rounds, failed = 1, 0
    if dyn.enabled:
        bound = max(target, math.ceil(dyn.max_draws_factor * target))
        while (found := signal(everything)) < target and len(everything) < bound:
            count = refill_count(
                target - found, found, len(everything), dyn.max_draws_factor, bound - len(everything)
            )
            with timer.phase("generate"):
                more = R.draw_groups(cfg, run, step, bad, count=count, start=len(everything))
                failed += R.attach_results(more, run.generation.generate([g.request for g in more]))
                record_failed_requests(more, bad)
            score(more)
            everything += more
            rounds += 1
    stats = assign_advantages(everything, adv_cfg, overlong, max_tokens, target if dyn.enabled else None)
    stats["sampling/prompts_drawn"] = float(len(everything))
    stats["sampling/rounds"] = float(rounds)
    stats["sampling/groups_with_signal"] = float(signal(everything))
    return StepBatch(everything, [g for g in everything if g.samples], stats, failed)
