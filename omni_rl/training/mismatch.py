"""Sampler/trainer mismatch correction (``trainer.mismatch``).

Three policies meet in a GRPO update (decoupled PPO, as in verl's "rollout correction" and AReaL):

- pi_samp   the behaviour policy: the log-probs the inference engine reported while sampling
            (``TrainItem.sampler_logprobs``). It differs from the trainer's because kernels and precision
            differ (vLLM vs FSDP2, MoE routing flips) and, asynchronously, because the weights are older;
- pi_prox   the proximal ("old") policy: the trainer's own log-probs of the same tokens under the weights
            of this rollout batch, recomputed by the trainer before its first update (no gradient);
- pi_theta  the policy being trained. The PPO ratio is pi_theta / pi_prox, so it is exactly 1 at the
            first mini-batch: the engine gap never lands in the PPO clip.

The correction reweights each token's policy-gradient term by w, a function of
d_t = log pi_prox - log pi_samp (no gradient). At ``sequence`` level d_i = sum_t d_t (``product``, the
true sequence importance ratio) or mean_t d_t (``geometric_mean``). With r = exp(d):

- ``none``    w = 1 (the mismatch is only measured);
- ``tis``     truncated importance sampling, w = min(r, tis_cap) (Yao et al. 2025, "Your efficient RL
              framework secretly brings you off-policy RL training"; verl's ``rollout_is`` with
              ``rollout_is_threshold``, token or sequence level);
- ``mis``     masking / rejection: w = 1 if mis_low <= r <= mis_high else 0 (verl's ``rollout_rs`` at
              token or sequence level; only the outliers are dropped, kept tokens are not reweighted);
- ``icepop``  IcePop (Ling team, "Small leak can sink a great ship", 2025, and the Ring-1T report): token
              level, w = r if icepop_low <= r <= icepop_high else 0 (the mask function M(k; alpha, beta)
              of the paper: importance weight inside the band, no gradient outside it).

Masked tokens keep their place in the loss denominator, so the normaliser does not depend on the
correction (verl removes rejected tokens from it; we keep the denominator of the whole batch so that
micro-batch and rank splits still add up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from omni_rl.training.aggregation import masked_mean

MismatchMode = Literal["none", "tis", "mis", "icepop"]
MODES = ("none", "tis", "mis", "icepop")


@dataclass
class MismatchConfig:
    mode: MismatchMode = "none"
    level: Literal["token", "sequence"] = "token"  # icepop is token level by definition
    seq_ratio: Literal["product", "geometric_mean"] = "product"  # how a sequence-level ratio is formed
    tis_cap: float = 2.0
    mis_low: float = 0.5
    mis_high: float = 2.0
    icepop_low: float = 0.5  # the paper's alpha
    icepop_high: float = 5.0  # the paper's beta
    log_ratio_clamp: float = 20.0  # |log r| bound before exp, for numerical safety (as verl)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"trainer.mismatch.{name} {why}, got {getattr(self, name)!r}")

        if self.mode not in MODES:
            raise bad("mode", f"must be one of {MODES}")
        if self.level not in ("token", "sequence"):
            raise bad("level", "must be 'token' or 'sequence'")
        if self.mode == "icepop" and self.level != "token":
            raise bad("level", "must be 'token' for mode='icepop' (IcePop masks single tokens)")
        if self.seq_ratio not in ("product", "geometric_mean"):
            raise bad("seq_ratio", "must be 'product' or 'geometric_mean'")
        if self.tis_cap <= 0:
            raise bad("tis_cap", "must be > 0")
        if not 0 <= self.mis_low <= 1 <= self.mis_high:
            raise bad("mis_low", f"and mis_high={self.mis_high} must satisfy 0 <= mis_low <= 1 <= mis_high")
        if not 0 <= self.icepop_low <= 1 <= self.icepop_high:
            raise bad(
                "icepop_low",
                f"and icepop_high={self.icepop_high} must satisfy 0 <= icepop_low <= 1 <= icepop_high",
            )
        if self.log_ratio_clamp <= 0:
            raise bad("log_ratio_clamp", "must be > 0")


def mismatch_weight(
    prox_logprobs: torch.Tensor, sampler_logprobs: torch.Tensor, mask: torch.Tensor, cfg: MismatchConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The correction weight ([B, T], or [B, 1] at sequence level; no gradient) and ``mismatch/*``
    statistics over the counted tokens: ``abs_mean``/``abs_max`` (|log pi_prox - log pi_samp|),
    ``kl`` (k3 estimate of KL(pi_samp || pi_prox) on the sampler's tokens), ``ratio_mean``/``ratio_max``
    (r per token), ``weight_mean``, and ``truncated_frac`` (tis) or ``masked_frac`` (mis, icepop) over
    tokens, or over sequences at sequence level."""
    m = mask.bool()
    d = torch.where(m, prox_logprobs.detach() - sampler_logprobs.detach(), torch.zeros_like(prox_logprobs))
    token_r = torch.exp(d.clamp(-cfg.log_ratio_clamp, cfg.log_ratio_clamp))
    valid = token_r[m]
    stats = {
        "mismatch/abs_mean": masked_mean(d.abs(), m),
        "mismatch/abs_max": d.abs().max() if d.numel() else d.new_zeros(()),
        "mismatch/kl": masked_mean(torch.expm1(d) - d, m),
        "mismatch/ratio_mean": masked_mean(token_r, m),
        "mismatch/ratio_max": valid.max() if valid.numel() else d.new_zeros(()),
    }
    if cfg.level == "token":
        log_r, unit = d, m
    else:
        log_r = d.sum(dim=-1, keepdim=True)
        if cfg.seq_ratio == "geometric_mean":
            log_r = log_r / m.sum(dim=-1, keepdim=True).clamp(min=1)
        unit = m.any(dim=-1, keepdim=True)
    r = torch.exp(log_r.clamp(-cfg.log_ratio_clamp, cfg.log_ratio_clamp))
    if cfg.mode == "tis":
        stats["mismatch/truncated_frac"] = masked_mean((r > cfg.tis_cap).to(r.dtype), unit)
        w = r.clamp(max=cfg.tis_cap)
    elif cfg.mode == "mis":
        keep = (r >= cfg.mis_low) & (r <= cfg.mis_high)
        stats["mismatch/masked_frac"] = masked_mean((~keep).to(r.dtype), unit)
        w = keep.to(r.dtype)
    elif cfg.mode == "icepop":
        keep = (r >= cfg.icepop_low) & (r <= cfg.icepop_high)
        stats["mismatch/masked_frac"] = masked_mean((~keep).to(r.dtype), unit)
        w = torch.where(keep, r, torch.zeros_like(r))
    else:
        w = torch.ones_like(r)
    stats["mismatch/weight_mean"] = masked_mean(w.expand_as(m).to(d.dtype), m)
    return w, stats
