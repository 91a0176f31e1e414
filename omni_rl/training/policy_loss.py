"""Clipped-surrogate policy loss for the GRPO family (GRPO, DAPO, Dr.GRPO, GSPO).

Tensors are [B, T] over the response positions (logprob of the sampled token at each position),
``mask`` marks the tokens that count. Three policies appear:

- pi_theta  ``logprobs``: the policy being trained (carries the gradient);
- pi_old    ``old_logprobs``: the trainer's own logprobs under the weights of this rollout batch
  (the proximal policy; recomputed by the trainer before its first update);
- pi_samp   ``sampler_logprobs``: what the inference engine reported while sampling (the behaviour
  policy). In exact arithmetic and on-policy pi_samp == pi_old; in practice kernels, precision,
  MoE routing and (asynchronously) older weights differ.

Per token (ratio r = pi_theta / pi_old, advantage A, eps_low/eps_high the clip range):

    pg = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))        (PPO/GRPO; DAPO "clip-higher"
                                                                   when eps_high > eps_low)
    dual clip (A < 0, c > 1):  pg = min(pg, -A c)
    loss_t = w * pg + kl_coef * KL_t(pi_theta || pi_ref) - entropy_coef * H_t(pi_theta)

then ``loss = aggregate(loss_t)`` with one of the modes of :mod:`omni_rl.training.aggregation`.

Sequence-level ratio (GSPO, Zheng et al. 2025): s_i = exp(mean_t (log pi_theta - log pi_old)),
clipped at the sequence level. We use the paper's GSPO-token form
s_{i,t} = sg[s_i] * pi_theta(y_t) / sg[pi_theta(y_t)]: its value is s_i for every token and, with
one advantage per sequence and ``seq_mean_token_mean`` aggregation, its gradient equals GSPO's
(s_i A_i (1/|y_i|) sum_t grad log pi_theta(y_t)). GSPO's clip range is far smaller than GRPO's
(the paper uses eps_low=3e-4, eps_high=4e-4); set it in the config.

Sampler/trainer mismatch correction (w above; 1 without correction): ``mismatch`` (a
:class:`omni_rl.training.mismatch.MismatchConfig`, ``trainer.mismatch``) weighs each token by a function
of pi_old / pi_samp (TIS, masking/MIS, IcePop; see that module). The weight multiplies the
policy-gradient term only.

KL estimators with x = log pi_ref - log pi_theta on the sampled tokens (Schulman's k1/k2/k3):
k1 = -x, k2 = x^2 / 2, k3 = exp(x) - x - 1 (GRPO's choice; unbiased and >= 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from omni_rl.training.aggregation import AGGREGATIONS, Aggregation, aggregate, masked_mean
from omni_rl.training.mismatch import MismatchConfig, mismatch_weight

KLEstimator = Literal["k1", "k2", "k3"]


@dataclass
class PolicyLossConfig:
    # PPO/GRPO default 0.2/0.2; DAPO clip-higher uses clip_high=0.28; GSPO 3e-4/4e-4
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None  # e.g. 3.0; bounds the loss of A < 0 tokens with huge ratios
    ratio_level: Literal["token", "sequence"] = "token"  # "sequence" = GSPO
    aggregation: Aggregation = "token_mean"
    constant_normalizer: float | None = None  # for aggregation="constant" (Dr.GRPO)
    kl_coef: float = 0.0
    kl_estimator: KLEstimator = "k3"
    # entropy bonus (verl's entropy_coeff, TRL's entropy_coef): per_token -= entropy_coef * H(pi_theta)
    # at each counted token, so a policy keeps exploring instead of collapsing onto one answer
    entropy_coef: float = 0.0
    log_ratio_clamp: float = 20.0  # |log ratio| bound before exp, for numerical safety

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> ValueError:
            return ValueError(f"PolicyLossConfig.{field} {why}, got {getattr(self, field)!r}")

        if not 0 <= self.clip_low < 1:
            raise bad("clip_low", "must be in [0, 1)")
        if self.clip_high < 0:
            raise bad("clip_high", "must be >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1:
            raise bad("dual_clip", "must be > 1 (or None)")
        if self.ratio_level not in ("token", "sequence"):
            raise bad("ratio_level", "must be 'token' or 'sequence'")
        if self.aggregation not in AGGREGATIONS:
            raise bad("aggregation", f"must be one of {AGGREGATIONS}")
        if self.aggregation == "constant" and (
            self.constant_normalizer is None or self.constant_normalizer <= 0
        ):
            raise bad("constant_normalizer", "must be > 0 with aggregation='constant'")
        if self.kl_coef < 0:
            raise bad("kl_coef", "must be >= 0")
        if self.entropy_coef < 0:
            raise bad("entropy_coef", "must be >= 0")
        if self.kl_estimator not in ("k1", "k2", "k3"):
            raise bad("kl_estimator", "must be 'k1', 'k2' or 'k3'")
        if self.log_ratio_clamp <= 0:
            raise bad("log_ratio_clamp", "must be > 0")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from sampled-token logprobs (see module doc)."""
    x = ref_logprobs - logprobs
    if estimator == "k1":
        return -x
    if estimator == "k2":
        return 0.5 * x.square()
    if estimator == "k3":
        return torch.expm1(x) - x
    raise ValueError(f"kl_estimator must be 'k1', 'k2' or 'k3', got {estimator!r}")


def _check_shapes(ref: torch.Tensor, mask: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    if ref.dim() != 2:
        raise ValueError(f"logprobs must be [B, T], got shape {tuple(ref.shape)}")
    if mask.shape != ref.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != logprobs shape {tuple(ref.shape)}")
    for name, t in tensors.items():
        if t is not None and t.shape != ref.shape:
            raise ValueError(f"{name} shape {tuple(t.shape)} != logprobs shape {tuple(ref.shape)}")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: PolicyLossConfig,
    *,
    ref_logprobs: torch.Tensor | None = None,
    sampler_logprobs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    normalizer: float | None = None,
    mismatch: MismatchConfig | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Policy loss (scalar, differentiable w.r.t. ``logprobs``) and logging metrics.

    ``advantages`` is [B] (one per sequence) or [B, T]. ``ref_logprobs`` is needed when
    ``cfg.kl_coef > 0`` (KL is still logged when given with coefficient 0). ``sampler_logprobs``
    is needed for a mismatch correction (``mismatch.mode != "none"``); when given, mismatch statistics
    are logged either way.
    ``entropy`` [B, T] (differentiable) is logged, and is needed for an entropy bonus
    (``cfg.entropy_coef > 0``). ``normalizer``: the aggregation denominator of the global
    batch when this call sees one micro-batch (see :func:`aggregation.loss_normalizer`).

    Metrics (floats; fractions are over counted tokens, or over sequences for sequence-level
    mismatch weights): ``loss``, ``policy/ratio_mean|min|max``, ``policy/clip_frac_low``
    (A < 0 and r < 1 - eps_low: clipped, no gradient), ``policy/clip_frac_high`` (A > 0 and
    r > 1 + eps_high), ``policy/dual_clip_frac``, ``policy/approx_kl_old`` (k3 of pi_old vs
    pi_theta), ``kl_ref``, ``entropy``, ``mismatch/*``, ``tokens``, ``sequences``.
    """
    _check_shapes(
        logprobs,
        mask,
        old_logprobs=old_logprobs,
        ref_logprobs=ref_logprobs,
        sampler_logprobs=sampler_logprobs,
        entropy=entropy,
    )
    if advantages.dim() == 1 and advantages.shape[0] == logprobs.shape[0]:
        adv = advantages[:, None]
    elif advantages.shape == logprobs.shape:
        adv = advantages
    else:
        raise ValueError(
            f"advantages must be [B] or [B, T] matching logprobs {tuple(logprobs.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    if cfg.kl_coef > 0 and ref_logprobs is None:
        raise ValueError("ref_logprobs is required when PolicyLossConfig.kl_coef > 0")
    if cfg.entropy_coef > 0 and entropy is None:
        raise ValueError("entropy is required when PolicyLossConfig.entropy_coef > 0")
    mismatch = mismatch or MismatchConfig()
    if mismatch.mode != "none" and sampler_logprobs is None:
        raise ValueError(f"sampler_logprobs is required for trainer.mismatch.mode={mismatch.mode!r}")

    m = mask.bool()
    zeros = torch.zeros_like(logprobs)

    def counted(t: torch.Tensor) -> torch.Tensor:  # padding may hold inf/nan: never let it in
        return torch.where(m, t, zeros)

    logprobs = counted(logprobs)
    old = counted(old_logprobs.detach())
    ref_logprobs = None if ref_logprobs is None else counted(ref_logprobs.detach())
    sampler_logprobs = None if sampler_logprobs is None else counted(sampler_logprobs.detach())
    adv = counted(adv.detach().to(logprobs.dtype).expand_as(logprobs))
    token_log_ratio = torch.where(m, logprobs - old, zeros)
    if cfg.ratio_level == "token":
        log_ratio = token_log_ratio
    else:  # GSPO-token: value = sequence log ratio, gradient = grad log pi_theta(y_t)
        seq_log_ratio = token_log_ratio.sum(dim=-1, keepdim=True) / m.sum(dim=-1, keepdim=True).clamp(min=1)
        log_ratio = torch.where(m, seq_log_ratio.detach() + logprobs - logprobs.detach(), zeros)
    ratio = torch.exp(log_ratio.clamp(-cfg.log_ratio_clamp, cfg.log_ratio_clamp))

    lo, hi = 1.0 - cfg.clip_low, 1.0 + cfg.clip_high
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(lo, hi))
    if cfg.dual_clip is not None:
        pg = torch.where(adv < 0, torch.minimum(pg, -adv * cfg.dual_clip), pg)

    stats: dict[str, torch.Tensor] = {}
    if sampler_logprobs is not None:
        weight, stats = mismatch_weight(old, sampler_logprobs, m, mismatch)
        per_token = pg * weight
    else:
        per_token = pg
    if ref_logprobs is not None:
        kl = kl_penalty(logprobs, ref_logprobs, cfg.kl_estimator)
        if cfg.kl_coef > 0:
            per_token = per_token + cfg.kl_coef * kl
        stats["kl_ref"] = masked_mean(kl.detach(), m)
    if cfg.entropy_coef > 0:
        per_token = per_token - cfg.entropy_coef * counted(entropy)
    loss = aggregate(per_token, m, cfg.aggregation, cfg.constant_normalizer, normalizer)

    with torch.no_grad():
        r = ratio.detach()
        fmt = r.dtype
        valid = r[m]
        stats.update(
            {
                "loss": loss.detach(),
                "policy/ratio_mean": masked_mean(r, m),
                "policy/ratio_min": valid.min() if valid.numel() else r.new_zeros(()),
                "policy/ratio_max": valid.max() if valid.numel() else r.new_zeros(()),
                "policy/clip_frac_low": masked_mean(((adv < 0) & (r < lo)).to(fmt), m),
                "policy/clip_frac_high": masked_mean(((adv > 0) & (r > hi)).to(fmt), m),
                "policy/approx_kl_old": masked_mean(torch.expm1(-token_log_ratio) + token_log_ratio, m),
                "tokens": m.sum().to(fmt),
                "sequences": m.any(dim=-1).sum().to(fmt),
            }
        )
        if cfg.dual_clip is not None:
            stats["policy/dual_clip_frac"] = masked_mean(((adv < 0) & (r > cfg.dual_clip)).to(fmt), m)
        if entropy is not None:
            stats["entropy"] = masked_mean(counted(entropy.detach()), m)
        names = list(stats)
        values = torch.stack([stats[k].to(torch.float64).reshape(()) for k in names]).tolist()
    return loss, dict(zip(names, values, strict=True))
