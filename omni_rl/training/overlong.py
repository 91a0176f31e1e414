"""What to do with samples that hit the token limit (``finish_reason == "length"``), as in DAPO.

- ``none``:    nothing; a truncated answer is scored like any other.
- ``mask``:    truncated samples take part in their group's advantages but are left out of the loss
               (DAPO's overlong filtering: a cut-off answer is not evidence that its reasoning was bad).
- ``penalty``: DAPO's soft overlong punishment, added to the reward before the advantages. With L the
               answer length, L_max the token limit and L_c = ``cache_tokens``:

                   penalty(L) = 0                          if L <= L_max - L_c
                              = (L_max - L_c - L) / L_c    if L_max - L_c < L <= L_max

               so it falls linearly from 0 to -1 over the last L_c tokens before the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

OverlongMode = Literal["none", "mask", "penalty"]
_MODES = ("none", "mask", "penalty")


@dataclass
class OverlongConfig:
    mode: OverlongMode = "none"
    cache_tokens: int = 0  # L_c of the soft penalty; must be in [1, max_tokens] with mode=penalty

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"trainer.overlong.mode must be one of {_MODES}, got {self.mode!r}")
        if self.cache_tokens < 0:
            raise ValueError(f"trainer.overlong.cache_tokens must be >= 0, got {self.cache_tokens}")
        if self.mode == "penalty" and self.cache_tokens < 1:
            raise ValueError("trainer.overlong.cache_tokens must be >= 1 with mode=penalty")

    def check(self, max_tokens: int) -> None:
        """The penalty window must fit inside the sampler's token limit."""
        if self.mode == "penalty" and self.cache_tokens > max_tokens:
            raise ValueError(
                f"trainer.overlong.cache_tokens ({self.cache_tokens}) must be <= "
                f"generation.sampling.max_tokens ({max_tokens})"
            )


def overlong_penalty(length: int, max_tokens: int, cache_tokens: int) -> float:
    """DAPO's soft penalty for an answer of ``length`` tokens (0 outside the last ``cache_tokens``)."""
    start = max_tokens - cache_tokens
    if length <= start:
        return 0.0
    return max(-1.0, (start - length) / cache_tokens)


def shaped_rewards(
    rewards: Sequence[float], lengths: Sequence[int], cfg: OverlongConfig, max_tokens: int
) -> list[float]:
    """The rewards the advantages see: with ``penalty``, each plus its length penalty."""
    if cfg.mode != "penalty":
        return [float(r) for r in rewards]
    return [
        float(r) + overlong_penalty(n, max_tokens, cfg.cache_tokens)
        for r, n in zip(rewards, lengths, strict=True)
    ]


def loss_mask(truncated: Sequence[bool], cfg: OverlongConfig) -> list[bool]:
    """Which samples stay in the loss: with ``mask`` the truncated ones leave."""
    return [not (cfg.mode == "mask" and t) for t in truncated]
