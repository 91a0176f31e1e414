"""PPO-style updates of one rollout batch: ``trainer.epochs`` passes, ``trainer.mini_batches`` optimiser
steps per pass (per rank), as verl (``ppo_epochs``, ``ppo_mini_batch_size``) and NeMo-RL do.

Before the first update the trainer recomputes the old (proximal) logprobs of every item itself, without
gradient, under the weights that the rollout batch starts from. Each mini-batch's old logprobs are
computed from exactly the rows (and so the micro-batch packing) that its update will use, so the PPO
ratio of the first mini-batch is exactly 1 and later mini-batches and epochs see real ratios that the
clip acts on. The sampler's logprobs stay the behaviour policy of the mismatch correction
(``omni_rl.training.mismatch``); they never enter the PPO ratio.

One update (``epochs = mini_batches = 1``) needs no recompute: the logprobs of its own forward, detached,
are the old logprobs (ratio 1), so plain GRPO costs what it did.

Metrics: each update's metrics (clip fractions, ``policy/approx_kl_old``, entropy, mismatch, grad norm)
averaged over the updates (``*_max``/``*_min``: the extreme; ``tokens_total``/``micro_batches``: summed),
plus the last update's under ``last/`` and ``updates``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from omni_rl.training import distributed as dist_utils
from omni_rl.training.items import TrainItem

if TYPE_CHECKING:
    from omni_rl.models.batching import EncodedSample
    from omni_rl.training.trainer import PolicyTrainer

SUMMED = ("tokens_total", "micro_batches")
LATEST = ("step", "lr")
LAST_PREFIXES = ("policy/", "mismatch/", "moe/router_mismatch")
LAST_KEYS = ("loss", "entropy", "grad_norm", "kl_ref")


def run_updates(
    trainer: PolicyTrainer, items: Sequence[Any], loss: str, rows: list[list[EncodedSample]]
) -> dict[str, float]:
    """All optimiser updates of one rollout batch on this rank (see the module doc)."""
    cfg = trainer.cfg
    if loss != "grpo" or cfg.epochs * cfg.mini_batches == 1:
        metrics = trainer.accumulate(items, loss, rows)  # type: ignore[arg-type]
        metrics.update(trainer.apply_gradients())
        return metrics
    # every rank takes the same number of steps: as many mini-batches as the smallest rank can fill
    wanted = min(cfg.mini_batches, len(items))
    count = int(dist_utils.all_reduce_scalar(float(wanted), "min", trainer._reduce_device))
    parts = [p.tolist() for p in np.array_split(np.arange(len(items)), count)]
    batches = []
    for part in parts:  # old logprobs of every mini-batch before any update
        part_items, part_rows = [items[i] for i in part], [rows[i] for i in part]
        batches.append((with_old_logprobs(trainer, part_items, part_rows), part_rows))
    per_update = []
    for _ in range(cfg.epochs):
        for part_items, part_rows in batches:
            metrics = trainer.accumulate(part_items, loss, part_rows)  # type: ignore[arg-type]
            metrics.update(trainer.apply_gradients())
            per_update.append(metrics)
    return combine_updates(per_update)


def with_old_logprobs(
    trainer: PolicyTrainer, items: list[TrainItem], rows: list[list[EncodedSample]]
) -> list[TrainItem]:
    """``items`` with ``old_logprobs`` from the current weights (no gradient); an item that already
    carries old logprobs keeps them."""
    fresh = trainer.logprobs_of_rows(rows, items)
    return [
        item if item.old_logprobs is not None else dataclasses.replace(item, old_logprobs=lp)
        for item, lp in zip(items, fresh, strict=True)
    ]


def combine_updates(per_update: list[dict[str, float]]) -> dict[str, float]:
    """Step metrics from the metrics of each update (see the module doc)."""
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for m in per_update for k in m):
        values = [m[key] for m in per_update if key in m]
        if key in SUMMED:
            out[key] = float(sum(values))
        elif key in LATEST:
            out[key] = values[-1]
        elif key.endswith("_max") or key == "skipped":
            out[key] = max(values)
        elif key.endswith("_min"):
            out[key] = min(values)
        else:
            out[key] = float(np.mean(values))
    last = per_update[-1]
    out.update({f"last/{k}": v for k, v in last.items() if k.startswith(LAST_PREFIXES) or k in LAST_KEYS})
    out["updates"] = float(len(per_update))
    return out
