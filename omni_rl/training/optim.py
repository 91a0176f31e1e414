"""AdamW with decoupled weight decay on matrices only, the learning-rate schedule, gradient clipping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from omni_rl.training.trainer_config import TrainerConfig


@dataclass(frozen=True)
class LRSchedule:
    """Multiplier of the base lr for optimiser step ``s`` (0-based: the first update uses ``s = 0``).

    Warm-up: ``(s + 1) / warmup_steps`` for ``s < warmup_steps`` (never 0, so the first step moves).
    Then ``constant`` (1), or ``cosine`` / ``linear`` decay from 1 to ``min_lr_ratio`` reached at
    ``s = total_steps`` (held there after).
    """

    warmup_steps: int = 0
    schedule: str = "constant"
    total_steps: int | None = None
    min_lr_ratio: float = 0.0

    def __call__(self, s: int) -> float:
        if s < self.warmup_steps:
            return (s + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        assert self.total_steps is not None
        progress = min(1.0, (s - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        if self.schedule == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.schedule == "linear":
            shape = 1.0 - progress
        else:
            raise ValueError(f"schedule must be 'constant', 'cosine' or 'linear', got {self.schedule!r}")
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape


def no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases, norms, scalars and other 1-D parameters get no weight decay."""
    return param.dim() < 2 or name.endswith(".bias")


def build_optimizer(model: nn.Module, cfg: TrainerConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (two groups: with and without weight decay)."""
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if no_decay(name, param) else decay).append(param)
    if not decay and not plain:
        raise ValueError("the model has no trainable parameters (everything frozen?)")
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    low_precision = any(p.dtype != torch.float32 for g in groups for p in g["params"])
    if cfg.optimizer_dtype == "float32" and low_precision:
        return AdamWFloat32State(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


class AdamWFloat32State(torch.optim.Optimizer):
    """AdamW whose moments are float32 whatever the parameters' dtype: bfloat16 parameters keep
    full-precision optimizer state, the update is computed in float32 and rounded into the parameter once.
    torch's AdamW keeps its moments in the parameter's dtype. Same formula as torch's AdamW (decoupled
    decay, bias corrections); equal to it for float32 parameters (tests/test_optim.py). Works on FSDP2's
    DTensor shards (element-wise ops only)."""

    def __init__(
        self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:  # fmt: skip
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(param, dtype=torch.float32)
                state["step"] += 1
                step = float(state["step"])
                grad = param.grad.float()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
                weight = param.float()
                if decay:
                    weight.mul_(1 - lr * decay)
                weight.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))
                param.copy_(weight)
        return loss


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainerConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    schedule = LRSchedule(cfg.warmup_steps, cfg.schedule, cfg.total_steps, cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def clip_gradients(parameters: list[nn.Parameter], max_norm: float | None) -> float:
    """Clip the global gradient L2 norm to ``max_norm`` (if given); returns the norm before clipping.

    Works with plain tensors and FSDP2's DTensor gradients (the norm is then reduced across ranks).
    """
    grads = [p for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm is not None else math.inf, foreach=True)
    if hasattr(norm, "full_tensor"):  # DTensor under FSDP2
        norm = norm.full_tensor()
    return float(norm.item())
