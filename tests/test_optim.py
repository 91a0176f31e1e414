"""AdamW with float32 moments: equal to torch's AdamW on float32 parameters, and for bfloat16 parameters
closer to the float32 run than torch's AdamW with bfloat16 moments."""

from __future__ import annotations

import torch

from omni_rl.training.optim import AdamWFloat32State, build_optimizer
from omni_rl.training.trainer_config import TrainerConfig


def run(opt_cls, dtype, steps=50):
    """``steps`` updates from one fixed sequence of gradients, so only the optimizer's precision differs."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(64, 32).to(dtype))
    b = torch.nn.Parameter(torch.zeros(32).to(dtype))
    opt = opt_cls([{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}], lr=1e-3)
    grads = [(torch.randn(64, 32) * 1e-3, torch.randn(32) * 1e-3) for _ in range(steps)]
    for gw, gb in grads:
        w.grad, b.grad = gw.to(dtype), gb.to(dtype)
        opt.step()
    return w.detach().float(), b.detach().float(), opt


def test_equals_torch_adamw_on_float32():
    ours = run(AdamWFloat32State, torch.float32)
    ref = run(torch.optim.AdamW, torch.float32)
    assert torch.allclose(ours[0], ref[0], atol=1e-6) and torch.allclose(ours[1], ref[1], atol=1e-6)


def moments(opt):
    return [(st["exp_avg"].float(), st["exp_avg_sq"].float()) for st in opt.state.values()]


def test_bf16_parameters_keep_float32_moments():
    """The moments depend only on the gradients: with float32 moments they equal the float32 run's for
    bf16 parameters too; torch's AdamW rounds them to bf16 every step."""
    ref = moments(run(torch.optim.AdamW, torch.float32)[2])
    ours_opt = run(AdamWFloat32State, torch.bfloat16)[2]
    plain = moments(run(torch.optim.AdamW, torch.bfloat16)[2])
    assert all(st["exp_avg"].dtype == torch.float32 for st in ours_opt.state.values())
    ours = moments(ours_opt)
    for (m, v), (rm, rv), (pm, pv) in zip(ours, ref, plain, strict=True):
        # our moments see the float32 values of the bf16-rounded gradients; the reference's grads are float32
        assert (m - rm).abs().max() < 1e-2 * rm.abs().max() and (v - rv).abs().max() < 1e-2 * rv.abs().max()
        assert (m - rm).abs().mean() < (pm - rm).abs().mean() and (v - rv).abs().mean() < (
            pv - rv
        ).abs().mean()


def test_one_bf16_step_is_the_float32_update_rounded_once():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.randn(8, 8).to(torch.bfloat16))
    ref = torch.nn.Parameter(w.detach().float().clone())
    g = torch.randn(8, 8) * 1e-2
    w.grad, ref.grad = g.to(torch.bfloat16), g.to(torch.bfloat16).float()
    AdamWFloat32State([w], lr=1e-1, weight_decay=0.1).step()
    torch.optim.AdamW([ref], lr=1e-1, weight_decay=0.1).step()
    assert torch.equal(w.detach(), ref.detach().to(torch.bfloat16))


def test_build_optimizer_picks_by_parameter_dtype():
    model = torch.nn.Linear(4, 4)
    assert type(build_optimizer(model, TrainerConfig())) is torch.optim.AdamW
    model.to(torch.bfloat16)
    assert isinstance(build_optimizer(model, TrainerConfig()), AdamWFloat32State)
    assert type(build_optimizer(model, TrainerConfig(optimizer_dtype="param"))) is torch.optim.AdamW
