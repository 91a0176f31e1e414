"""Token sampling for a batch of rows with per-row parameters, and stop-string detection.

``SamplingState`` holds one row per sample being generated. Each step it turns the last-position
logits into (sampled token, its log-prob under the sampling distribution, its log-prob under the
model at the temperature): ban -> temperature -> top-k -> top-p -> renormalise, the order vLLM and HF
use. Draws are inverse-CDF with one uniform per row from that row's own ``torch.Generator`` (on the
CPU), so a seeded sample is the same whatever else shares its batch and on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from omni_rl.generation.base import SamplingParams


def row_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a request seeded with ``seed`` (well mixed, 63 bits)."""
    return int(np.random.SeedSequence([seed & (2**64 - 1), index]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class RowSpec:
    """Sampling parameters of one row (one sample of one request)."""

    params: SamplingParams
    seed: int
    stop_ids: frozenset[int] = frozenset()  # masked while fewer than params.min_tokens were sampled


class SamplingState:
    """Per-row temperature / top-k / top-p tensors, generators and the banned-token mask."""

    def __init__(self, rows: Sequence[RowSpec], vocab_size: int, banned: Sequence[int], device) -> None:
        self.device = torch.device(device)
        self.vocab_size = vocab_size
        temps = [r.params.temperature for r in rows]
        self.greedy = torch.tensor([t == 0 for t in temps], device=self.device)
        self.temperature = torch.tensor([t if t > 0 else 1.0 for t in temps], device=self.device)
        self.top_k = torch.tensor([r.params.top_k for r in rows], device=self.device)
        self.top_p = torch.tensor([r.params.top_p for r in rows], dtype=torch.float32, device=self.device)
        self.generators = [torch.Generator().manual_seed(r.seed) for r in rows]
        self.ban = torch.zeros(vocab_size, dtype=torch.bool, device=self.device)
        if banned:
            self.ban[torch.tensor(sorted(set(banned)), device=self.device)] = True
        # min_tokens: per row, the stop ids it may not sample yet and how many tokens it has
        self.min_tokens = torch.tensor([r.params.min_tokens for r in rows], device=self.device)
        self.sampled = torch.zeros(len(rows), dtype=torch.long, device=self.device)
        self.stop_mask = None
        if any(r.params.min_tokens for r in rows):
            self.stop_mask = torch.zeros(len(rows), vocab_size, dtype=torch.bool, device=self.device)
            for i, r in enumerate(rows):
                ids = [t for t in r.stop_ids if 0 <= t < vocab_size]
                if r.params.min_tokens and ids:
                    self.stop_mask[i, ids] = True

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the rows at positions ``keep`` (finished rows leave the batch)."""
        self.greedy, self.temperature = self.greedy[keep], self.temperature[keep]
        self.top_k, self.top_p = self.top_k[keep], self.top_p[keep]
        self.min_tokens, self.sampled = self.min_tokens[keep], self.sampled[keep]
        if self.stop_mask is not None:
            self.stop_mask = self.stop_mask[keep]
        positions = keep.tolist()
        self.generators = [self.generators[i] for i in positions]

    def step(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (B,), sampling log-probs (B,) and model log-probs (B,) from logits (B, V)."""
        logits = logits.float()
        scaled = logits / self.temperature[:, None]
        model_lp = torch.log_softmax(scaled, dim=-1)
        banned = self.ban
        if self.stop_mask is not None:
            banned = banned | (self.stop_mask & (self.sampled < self.min_tokens)[:, None])
        processed = truncate(scaled.masked_fill(banned, float("-inf")), self.top_k, self.top_p)
        self.sampled += 1
        sample_lp = torch.log_softmax(processed, dim=-1)
        uniforms = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(self.device)
        tokens = inverse_cdf(sample_lp.exp(), uniforms)
        if self.greedy.any():
            tokens = torch.where(self.greedy, processed.argmax(-1), tokens)
        picked_lp = sample_lp.gather(-1, tokens[:, None]).squeeze(-1)
        picked_lp = torch.where(self.greedy, torch.zeros_like(picked_lp), picked_lp)
        return tokens, picked_lp, model_lp.gather(-1, tokens[:, None]).squeeze(-1)


def truncate(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Set to -inf what top-k (exactly k tokens kept; 0 = off) and then top-p remove, per row.

    top-p keeps the smallest set of most likely tokens whose mass reaches ``top_p`` (computed on the
    top-k renormalised distribution); the most likely token is always kept.
    """
    use_k, use_p = bool((top_k > 0).any()), bool((top_p < 1).any())
    if not (use_k or use_p):
        return logits
    ordered, order = logits.sort(dim=-1, descending=True)
    ranks = torch.arange(logits.shape[-1], device=logits.device)
    keep = torch.ones_like(ordered, dtype=torch.bool)
    if use_k:
        k = torch.where(top_k > 0, top_k, logits.shape[-1])
        keep &= ranks[None, :] < k[:, None]
    if use_p:
        probs = torch.softmax(ordered.masked_fill(~keep, float("-inf")), dim=-1)
        mass_before = probs.cumsum(-1) - probs
        keep &= mass_before < top_p[:, None]
        keep[:, 0] = True
    return torch.empty_like(logits).scatter_(-1, order, ordered.masked_fill(~keep, float("-inf")))


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Token ids drawn from ``probs`` (B, V) with ``uniforms`` (B,) in [0, 1); zero-probability
    tokens are never returned (the first token whose cumulative mass exceeds u * total)."""
    cdf = probs.cumsum(-1)
    targets = (uniforms * cdf[:, -1]).to(cdf.dtype)
    tokens = torch.searchsorted(cdf, targets[:, None], right=True).squeeze(-1)
    return tokens.clamp_(max=probs.shape[-1] - 1)


def find_stop(text: str, stops: Sequence[str], start: int = 0) -> tuple[int, str] | None:
    """The stop string occurrence in ``text[start:]`` that ends first (ties: the longer one, which
    starts earlier), as (position of its first character, the stop string); None if none occurs."""
    best: tuple[int, int, str] | None = None
    for stop in stops:
        pos = text.find(stop, start)
        if pos < 0:
            continue
        end = pos + len(stop)
        if best is None or (end, pos) < (best[0], best[1]):
            best = (end, pos, stop)
    return None if best is None else (best[1], best[2])


class StopWatcher:
    """Watches one row's growing completion for stop strings.

    Each step decodes only the last ``4 * longest stop + 8`` tokens: every non-special token adds at
    least one byte and a character has at most four, so any stop string that the latest token
    completed lies inside that window (a window that starts inside a multi-byte character decodes
    it as U+FFFD, which matches no stop). An occurrence already inside an earlier window would have
    stopped the row then, so any occurrence found is new. Not seen: a stop string split by skipped
    special tokens wider than the window.
    """

    def __init__(self, tokenizer, stops: Sequence[str], skip_special_tokens: bool) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.skip_special = skip_special_tokens
        self.window = 4 * max((len(s) for s in self.stops), default=0) + 8

    def hit(self, token_ids: list[int]) -> str | None:
        """The stop string that the latest token completed, if any."""
        if not self.stops:
            return None
        text = self.tokenizer.decode(token_ids[-self.window :], skip_special_tokens=self.skip_special)
        found = find_stop(text, self.stops)
        return None if found is None else found[1]


def final_text(
    tokenizer, token_ids: list[int], stops: Sequence[str], include_stop: bool, skip_special_tokens: bool
) -> str:
    """Decoded completion, cut at the first stop string (kept if ``include_stop``)."""
    text = tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)
    found = find_stop(text, stops) if stops else None
    if found is None:
        return text
    pos, stop = found
    return text[: pos + len(stop)] if include_stop else text[:pos]
