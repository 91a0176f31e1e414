"""Group-relative advantage estimators (GRPO, Dr.GRPO, RLOO) and zero-variance filtering.

Each prompt is sampled G times; the samples of one prompt form a *group*. With r_i the
reward of sample i, m the group mean and G the group size:

- ``grpo``    A_i = (r_i - m) / (s + eps), s the group standard deviation. ``std_unbiased``
  chooses the divisor of the variance: G - 1 (Bessel, default) or G. The DeepSeekMath paper
  only says "standard deviation"; TRL's GRPOTrainer and verl both use ``torch.std`` (G - 1),
  so that is our default. TRL adds eps = 1e-4, verl 1e-6; we use 1e-6.
- ``dr_grpo`` A_i = r_i - m (no division by std, "GRPO Done Right", Liu et al. 2025).
- ``rloo``    A_i = r_i - (sum_{j != i} r_j) / (G - 1) = G / (G - 1) * (r_i - m).

A group whose rewards are all equal carries no learning signal (every estimator gives 0);
with ``filter_zero_variance`` its samples get ``keep = False`` so the caller can drop them
(DAPO's dynamic sampling). A group of one sample has zero variance by definition and
advantage 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

Estimator = Literal["grpo", "dr_grpo", "rloo"]
_ESTIMATORS = ("grpo", "dr_grpo", "rloo")


@dataclass
class DynamicSamplingConfig:
    """DAPO's dynamic sampling: a step keeps drawing prompts until ``prompts_per_step`` groups with reward
    variance are collected, at most ``max_draws_factor x prompts_per_step`` prompts in all (then it trains
    on what it has). Off: zero-variance groups are dropped and the batch shrinks."""

    enabled: bool = False
    max_draws_factor: float = 3.0

    def __post_init__(self) -> None:
        if self.max_draws_factor < 1:
            raise ValueError(
                f"advantage.dynamic_sampling.max_draws_factor must be >= 1, got {self.max_draws_factor}"
            )


@dataclass
class AdvantageConfig:
    estimator: Estimator = "grpo"
    std_eps: float = 1e-6
    std_unbiased: bool = True
    filter_zero_variance: bool = True
    # rewards whose group max - min is at most this count as zero-variance
    zero_variance_tol: float = 0.0
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)

    def __post_init__(self) -> None:
        if self.estimator not in _ESTIMATORS:
            raise ValueError(
                f"AdvantageConfig.estimator must be one of {_ESTIMATORS}, got {self.estimator!r}"
            )
        if self.std_eps < 0:
            raise ValueError(f"AdvantageConfig.std_eps must be >= 0, got {self.std_eps}")
        if self.zero_variance_tol < 0:
            raise ValueError(f"AdvantageConfig.zero_variance_tol must be >= 0, got {self.zero_variance_tol}")


@dataclass
class AdvantageResult:
    advantages: torch.Tensor  # same shape as the rewards given
    keep: torch.Tensor  # bool, same shape; False for samples of filtered groups
    stats: dict[str, float]


def compute_advantages(
    rewards: torch.Tensor, cfg: AdvantageConfig, group_ids: torch.Tensor | None = None
) -> AdvantageResult:
    """Advantages for ``rewards`` shaped [num_groups, G], or flat [N] with ``group_ids`` [N].

    Group ids can be any integers (groups may differ in size, e.g. after dropped samples).
    The output has the shape of ``rewards``. Computed in float64, returned in the input's
    floating dtype (float32 for integer rewards); no gradient flows through it.
    """
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    if group_ids is None:
        if rewards.dim() != 2:
            raise ValueError(
                f"rewards must be [num_groups, G] when group_ids is not given, got shape {tuple(rewards.shape)}"
            )
        num_groups, group_size = rewards.shape
        flat = rewards.reshape(-1)
        inverse = torch.arange(num_groups, device=rewards.device).repeat_interleave(group_size)
    else:
        if rewards.dim() != 1 or group_ids.shape != rewards.shape:
            raise ValueError(
                f"with group_ids, rewards and group_ids must both be 1-D of equal length, got "
                f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}"
            )
        flat = rewards
        _, inverse = torch.unique(group_ids, return_inverse=True)
        num_groups = int(inverse.max().item()) + 1 if inverse.numel() else 0
    if flat.numel() == 0:
        raise ValueError("rewards is empty")
    r = flat.detach().to(torch.float64)
    if not torch.isfinite(r).all():
        raise ValueError("rewards contain NaN or inf")

    def group_sum(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add_(0, inverse, x)

    count = group_sum(torch.ones_like(r))
    mean = group_sum(r) / count
    centred = r - mean[inverse]
    n = count[inverse]
    g_max = r.new_zeros(num_groups).scatter_reduce_(0, inverse, r, "amax", include_self=False)
    g_min = r.new_zeros(num_groups).scatter_reduce_(0, inverse, r, "amin", include_self=False)
    spread = g_max - g_min
    zero_var = spread <= cfg.zero_variance_tol  # [num_groups]

    if cfg.estimator == "grpo":
        divisor = (count - 1).clamp(min=1) if cfg.std_unbiased else count
        std = (group_sum(centred**2) / divisor).sqrt()
        adv = centred / (std[inverse] + cfg.std_eps)
    elif cfg.estimator == "dr_grpo":
        adv = centred
    else:  # rloo
        adv = torch.where(n > 1, centred * n / (n - 1).clamp(min=1), torch.zeros_like(centred))
    # a zero-variance group has no signal; make that exact rather than eps-dependent
    adv = torch.where(zero_var[inverse], torch.zeros_like(adv), adv)

    keep = ~zero_var[inverse] if cfg.filter_zero_variance else torch.ones_like(r, dtype=torch.bool)
    stats = {
        "reward/mean": r.mean().item(),
        "reward/std": r.std(unbiased=False).item(),
        "advantage/abs_mean": adv.abs().mean().item(),
        "advantage/abs_max": adv.abs().max().item(),
        "groups/num": float(num_groups),
        "groups/zero_variance_frac": zero_var.double().mean().item(),
        "samples/kept_frac": keep.double().mean().item(),
    }
    return AdvantageResult(adv.to(out_dtype).reshape(rewards.shape), keep.reshape(rewards.shape), stats)
