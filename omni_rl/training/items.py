"""What the trainer trains on, and how a step's items are split into micro-batches.

A ``TrainItem`` is one sampled completion of a multimodal prompt with its advantage (GRPO family);
a ``PreferencePair`` is a chosen and a rejected completion of one prompt (DPO family). Per-token
vectors (logprobs, per-token advantages, loss masks) have one entry per completion token.

Micro-batches: items are encoded once, grouped so that each group can share a forward
(``group_for_batching``: images and videos never mix; videos by frame size), sorted by length
within a group, and packed greedily under a budget of padded tokens (rows x longest row) and rows.
The packing changes which rows share a forward, never the loss: every micro-batch divides by the
normaliser of the whole (global) batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from omni_rl.models.batching import (
    EncodedSample,
    MultimodalBatch,
    MultimodalSample,
    collate,
    group_for_batching,
)


@dataclass
class TrainItem:
    """One prompt + completion (``sample.completion_ids``) with its advantage.

    advantage: one number for the sequence, or one per completion token.
    old_logprobs: the trainer's logprobs under the weights that sampled it (``compute_logprobs``);
      None = the current weights (ratio 1: the usual single update per batch).
    ref_logprobs: reference-policy logprobs (needed when the KL coefficient is > 0).
    sampler_logprobs: what the inference engine reported (the behaviour policy; mismatch correction).
    loss_mask: 1 for completion tokens that count (e.g. 0 on tool/environment output in multi-turn).
    routed_experts: the experts the sampler's MoE routers chose for each forwarded token, [tokens,
      moe_layers, k] (``omni_rl.training.router_replay``); replayed with ``trainer.router_replay``.
    """

    sample: MultimodalSample
    advantage: float | Sequence[float] = 0.0
    old_logprobs: Sequence[float] | torch.Tensor | None = None
    ref_logprobs: Sequence[float] | torch.Tensor | None = None
    sampler_logprobs: Sequence[float] | torch.Tensor | None = None
    loss_mask: Sequence[int] | torch.Tensor | None = None
    routed_experts: np.ndarray | torch.Tensor | None = None
    group: str = ""  # items of one prompt group: a sample that cannot be encoded drops its whole group
    origin: str = ""  # the dataset row ("file:line"), for messages
    media_error: str | None = None  # set when the worker could not resolve its media references
    weight_version: int | None = None  # the policy version that sampled it (async GRPO: its staleness)


@dataclass
class PreferencePair:
    """A chosen and a rejected completion of the same prompt, with their reference sequence logprobs
    (sum over completion tokens, or the mean with ``dpo_length_average``; see ``compute_logprobs``)."""

    chosen: MultimodalSample
    rejected: MultimodalSample
    ref_chosen_logp: float | None = None
    ref_rejected_logp: float | None = None
    group: str = ""
    origin: str = ""
    media_error: str | None = None


@dataclass
class Unit:
    """Rows that must share a micro-batch (one item, or the two sides of a pair)."""

    index: int  # position in the caller's list
    rows: list[EncodedSample]
    group_key: tuple = field(default=())

    @property
    def tokens(self) -> int:
        return sum(len(r.input_ids) for r in self.rows)

    @property
    def longest(self) -> int:
        return max(len(r.input_ids) for r in self.rows)


@dataclass
class MicroBatch:
    units: list[Unit]
    batch: MultimodalBatch  # rows in unit order

    @property
    def tokens(self) -> int:
        """Real (unpadded) prompt + completion tokens."""
        return int(self.batch.attention_mask.sum().item())


def _group_key(rows: list[EncodedSample]) -> tuple:
    groups = group_for_batching(rows)
    if len(groups) != 1:
        raise ValueError(
            "the rows of one unit (e.g. the two sides of a preference pair) cannot share a batch"
        )
    video = next((r.video_frame_shape for r in rows if r.video_frame_shape is not None), None)
    return ("video", video) if video is not None else ("main",)


def make_units(rows_per_unit: list[list[EncodedSample]]) -> list[Unit]:
    return [Unit(i, rows, _group_key(rows)) for i, rows in enumerate(rows_per_unit)]


def plan_micro_batches(
    units: list[Unit], pad_token_id: int, max_tokens: int, max_rows: int | None = None
) -> list[MicroBatch]:
    """Pack units into collated micro-batches (see module doc); deterministic for the same input."""
    by_key: dict[tuple, list[Unit]] = {}
    for unit in units:
        by_key.setdefault(unit.group_key, []).append(unit)
    plans: list[list[Unit]] = []
    for group in by_key.values():
        current: list[Unit] = []
        rows = longest = 0
        for unit in sorted(group, key=lambda u: (-u.longest, u.index)):
            new_rows, new_longest = rows + len(unit.rows), max(longest, unit.longest)
            too_big = new_rows * new_longest > max_tokens or (max_rows is not None and new_rows > max_rows)
            if current and too_big:
                plans.append(current)
                current, new_rows, new_longest = [], len(unit.rows), unit.longest
            current.append(unit)
            rows, longest = new_rows, new_longest
        if current:
            plans.append(current)
    return [MicroBatch(p, collate([r for u in p for r in u.rows], pad_token_id)) for p in plans]


def per_token(
    batch: MultimodalBatch,
    values: list[Sequence[float] | torch.Tensor | float | None],
    *,
    name: str,
    default: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Scatter one value per completion token of each row (or one scalar per row) into ``[B, L]``
    aligned with ``batch.completion_mask``; ``None`` rows get ``default``."""
    mask = batch.completion_mask
    counts = mask.sum(dim=1).tolist()
    parts = []
    for row, (value, count) in enumerate(zip(values, counts, strict=True)):
        if value is None:
            parts.append(torch.full((count,), default, dtype=dtype))
        elif isinstance(value, int | float):
            parts.append(torch.full((count,), float(value), dtype=dtype))
        else:
            t = torch.as_tensor(value, dtype=dtype).reshape(-1)
            if t.numel() != count:
                raise ValueError(f"{name}: row {row} has {t.numel()} values for {count} completion tokens")
            parts.append(t)
    out = torch.zeros(mask.shape, dtype=dtype)
    if parts:
        out[mask] = torch.cat(parts)
    return out


def check_items(items: Sequence[TrainItem]) -> None:
    """Per-token vectors have one value per completion token; reference and sampler logprobs are given
    for every item of a step or for none."""
    for index, item in enumerate(items):
        if not isinstance(item, TrainItem):
            raise TypeError(f"items[{index}]: expected TrainItem, got {type(item).__name__}")
        n = len(item.sample.completion_ids)
        for name in ("old_logprobs", "ref_logprobs", "sampler_logprobs", "loss_mask", "advantage"):
            value = getattr(item, name)
            if value is not None and not isinstance(value, int | float) and len(value) != n:
                raise ValueError(f"items[{index}].{name}: {len(value)} values for {n} completion tokens")
    for name in ("ref_logprobs", "sampler_logprobs"):
        given = [getattr(item, name) is not None for item in items]
        if any(given) and not all(given):
            raise ValueError(f"TrainItem.{name}: give it for every item of a step or for none")


def check_pair(pair: PreferencePair) -> PreferencePair:
    if not isinstance(pair, PreferencePair):
        raise TypeError(f"DPO items must be PreferencePair, got {type(pair).__name__}")
    if pair.ref_chosen_logp is None or pair.ref_rejected_logp is None:
        raise ValueError(
            "PreferencePair.ref_chosen_logp/ref_rejected_logp: required (PolicyTrainer.reference_logps)"
        )
    return pair


def loss_masks(items: Sequence[TrainItem]) -> torch.Tensor:
    """[N, T] counted completion tokens of each item (for the global loss normaliser)."""
    masks = [
        torch.ones(len(it.sample.completion_ids), dtype=torch.bool)
        if it.loss_mask is None
        else torch.as_tensor(it.loss_mask).bool().reshape(-1)
        for it in items
    ]
    return (
        torch.nn.utils.rnn.pad_sequence(masks, batch_first=True)
        if masks
        else torch.zeros(0, 0, dtype=torch.bool)
    )
