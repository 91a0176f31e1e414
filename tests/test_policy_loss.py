import math

import pytest
import torch

from omni_rl.training.aggregation import aggregate, loss_normalizer
from omni_rl.training.mismatch import MismatchConfig
from omni_rl.training.policy_loss import PolicyLossConfig, kl_penalty, policy_loss

LN = math.log


def leaf(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def from_ratios(ratios, old=-1.0):
    """(logprobs, old_logprobs) with logprobs - old = log(ratio) per token."""
    old_t = torch.full((1, len(ratios)), old, dtype=torch.float64)
    return leaf([[old + LN(r) for r in ratios]]), old_t


def full_mask(b, t):
    return torch.ones(b, t, dtype=torch.bool)


# ---- hand-computed clipped surrogate ------------------------------------------------------------


def test_positive_advantage_clip_high():
    # ratios 1.5, 0.5, 1.1 with A = +1, clip 0.2: per token -min(r, clip(r)) = -1.2, -0.5, -1.1
    lp, old = from_ratios([1.5, 0.5, 1.1])
    loss, m = policy_loss(lp, old, torch.tensor([1.0]), full_mask(1, 3), PolicyLossConfig())
    assert loss.item() == pytest.approx(-2.8 / 3)
    assert m["policy/clip_frac_high"] == pytest.approx(1 / 3)
    assert m["policy/clip_frac_low"] == 0.0
    assert m["policy/ratio_max"] == pytest.approx(1.5)
    assert m["policy/ratio_min"] == pytest.approx(0.5)
    loss.backward()
    # d/dlogp of -r/3 is -r/3; the clipped token has no gradient
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, -0.5 / 3, -1.1 / 3]], dtype=torch.float64))


def test_negative_advantage_clip_low():
    # A = -1: per token max(r, clip(r)) = 1.5, 0.8 (clipped), 1.1
    lp, old = from_ratios([1.5, 0.5, 1.1])
    loss, m = policy_loss(lp, old, torch.tensor([-1.0]), full_mask(1, 3), PolicyLossConfig())
    assert loss.item() == pytest.approx(3.4 / 3)
    assert m["policy/clip_frac_low"] == pytest.approx(1 / 3)
    assert m["policy/clip_frac_high"] == 0.0
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[1.5 / 3, 0.0, 1.1 / 3]], dtype=torch.float64))


def test_dapo_clip_higher():
    lp, old = from_ratios([1.5])
    cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28)
    loss, _ = policy_loss(lp, old, torch.tensor([1.0]), full_mask(1, 1), cfg)
    assert loss.item() == pytest.approx(-1.28)
    # the low side still clips at 0.8
    lp, old = from_ratios([0.5])
    loss, _ = policy_loss(lp, old, torch.tensor([-1.0]), full_mask(1, 1), cfg)
    assert loss.item() == pytest.approx(0.8)


def test_dual_clip_bounds_negative_advantage():
    # r = 4, A = -1: standard loss max(4, 1.2) = 4; dual clip c = 3 caps it at 3 (no gradient)
    lp, old = from_ratios([4.0, 2.0])
    loss, m = policy_loss(lp, old, torch.tensor([-1.0]), full_mask(1, 2), PolicyLossConfig(dual_clip=3.0))
    assert loss.item() == pytest.approx((3.0 + 2.0) / 2)
    assert m["policy/dual_clip_frac"] == pytest.approx(0.5)
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    plain, _ = policy_loss(lp, old, torch.tensor([-1.0]), full_mask(1, 2), PolicyLossConfig())
    assert plain.item() == pytest.approx(3.0)


# ---- on-policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
@pytest.mark.parametrize(
    "aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "constant"]
)
def test_on_policy_ratio_is_one_and_loss_is_minus_mean_advantage(ratio_level, aggregation):
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([3, 5, 1, 4])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    lp = (-torch.rand(4, 5, generator=gen, dtype=torch.float64)).requires_grad_()
    adv = torch.randn(4, generator=gen, dtype=torch.float64)
    cfg = PolicyLossConfig(ratio_level=ratio_level, aggregation=aggregation, constant_normalizer=8.0)
    loss, m = policy_loss(lp, lp.detach().clone(), adv, mask, cfg)
    assert m["policy/ratio_mean"] == 1.0 and m["policy/ratio_min"] == 1.0 and m["policy/ratio_max"] == 1.0
    assert m["policy/clip_frac_low"] == 0.0 and m["policy/clip_frac_high"] == 0.0
    assert m["policy/approx_kl_old"] == 0.0
    L = lengths.double()
    expected = {
        "token_mean": -(adv * L).sum() / L.sum(),
        "seq_mean_token_mean": -adv.mean(),
        "seq_mean_token_sum": -(adv * L).mean(),
        "constant": -(adv * L).sum() / (4 * 8.0),
    }[aggregation]
    assert loss.item() == pytest.approx(expected.item())
    # on-policy gradient: -A_b times the aggregation weight of each token
    weight = {
        "token_mean": torch.full((4,), 1 / L.sum().item(), dtype=torch.float64),
        "seq_mean_token_mean": 1 / (4 * L),
        "seq_mean_token_sum": torch.full((4,), 1 / 4, dtype=torch.float64),
        "constant": torch.full((4,), 1 / 32, dtype=torch.float64),
    }[aggregation]
    loss.backward()
    expected_grad = torch.where(
        mask, (-adv * weight)[:, None].expand(4, 5), torch.zeros(4, 5, dtype=torch.float64)
    )
    torch.testing.assert_close(lp.grad, expected_grad)


# ---- aggregation ------------------------------------------------------------------------------


def test_aggregation_modes_hand_computed():
    x = torch.tensor([[1.0, 2.0, 3.0, float("nan")], [4.0, float("inf"), 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert aggregate(x, mask, "token_mean").item() == pytest.approx(10 / 4)
    assert aggregate(x, mask, "seq_mean_token_mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate(x, mask, "seq_mean_token_sum").item() == pytest.approx((6 + 4) / 2)
    assert aggregate(x, mask, "constant", constant_normalizer=8).item() == pytest.approx(10 / 16)
    # an all-masked row counts in no mode
    x3 = torch.cat([x, torch.full((1, 4), 7.0)])
    mask3 = torch.cat([mask, torch.zeros(1, 4, dtype=torch.long)])
    assert aggregate(x3, mask3, "seq_mean_token_mean").item() == pytest.approx(3.0)
    assert aggregate(torch.ones(2, 2), torch.zeros(2, 2), "token_mean").item() == 0.0


def test_dr_grpo_constant_normaliser_vs_token_mean():
    # on-policy, A = [1, -1], lengths 3 and 1
    lp = torch.zeros(2, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = torch.tensor([1.0, -1.0])

    def run(aggregation):
        cfg = PolicyLossConfig(aggregation=aggregation, constant_normalizer=4.0)
        return policy_loss(lp, lp, adv, mask, cfg)[0].item()

    assert run("token_mean") == pytest.approx(-(3 - 1) / 4)
    assert run("constant") == pytest.approx(-(3 - 1) / (2 * 4))
    assert run("seq_mean_token_mean") == pytest.approx(0.0)
    # equal lengths L and C = L: constant == token_mean
    adv2, mask2 = torch.tensor([1.0, 0.5]), torch.ones(2, 3)
    cfg_c = PolicyLossConfig(aggregation="constant", constant_normalizer=3.0)
    a = policy_loss(lp, lp, adv2, mask2, cfg_c)[0].item()
    b = policy_loss(lp, lp, adv2, mask2, PolicyLossConfig())[0].item()
    assert a == pytest.approx(b) == pytest.approx(-0.75)


@pytest.mark.parametrize(
    "aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "constant"]
)
@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
def test_micro_batches_with_global_normalizer_sum_to_full_batch(aggregation, ratio_level):
    gen = torch.Generator().manual_seed(2)
    B, T = 6, 5
    mask = torch.arange(T)[None, :] < torch.tensor([5, 2, 0, 3, 1, 4])[:, None]
    old = -torch.rand(B, T, generator=gen, dtype=torch.float64)
    lp = (old + 0.3 * torch.randn(B, T, generator=gen, dtype=torch.float64)).requires_grad_()
    sampler = old + 0.2 * torch.randn(B, T, generator=gen, dtype=torch.float64)
    ref = old + 0.1 * torch.randn(B, T, generator=gen, dtype=torch.float64)
    adv = torch.randn(B, generator=gen, dtype=torch.float64)
    cfg = PolicyLossConfig(
        aggregation=aggregation,
        constant_normalizer=7.0,
        ratio_level=ratio_level,
        kl_coef=0.05,
    )
    mm = MismatchConfig(mode="tis", level="sequence")
    full, _ = policy_loss(lp, old, adv, mask, cfg, ref_logprobs=ref, sampler_logprobs=sampler, mismatch=mm)
    (full_grad,) = torch.autograd.grad(full, lp)
    norm = loss_normalizer(mask, aggregation, 7.0)
    total = torch.zeros((), dtype=torch.float64)
    for rows in (slice(0, 2), slice(2, 3), slice(3, 6)):
        part, _ = policy_loss(
            lp[rows], old[rows], adv[rows], mask[rows], cfg,
            ref_logprobs=ref[rows], sampler_logprobs=sampler[rows], normalizer=norm, mismatch=mm,
        )  # fmt: skip
        total = total + part
    torch.testing.assert_close(total, full)
    torch.testing.assert_close(torch.autograd.grad(total, lp)[0], full_grad)
    if aggregation == "token_mean":  # the local normaliser would not add up
        naive = sum(
            policy_loss(
                lp[r],
                old[r],
                adv[r],
                mask[r],
                cfg,
                ref_logprobs=ref[r],
                sampler_logprobs=sampler[r],
                mismatch=mm,
            )[0]
            for r in (slice(0, 2), slice(2, 3), slice(3, 6))
        )
        assert not torch.allclose(naive, full)


# ---- GSPO -------------------------------------------------------------------------------------


def test_gspo_differs_from_grpo_when_token_ratios_vary():
    # token log ratios +0.1, -0.1: GRPO ratios e^0.1 = 1.105171, e^-0.1 = 0.904837 (unclipped),
    # GSPO sequence ratio exp(mean) = 1
    old = torch.zeros(1, 2, dtype=torch.float64)
    lp_tok = leaf([[0.1, -0.1]])
    lp_seq = leaf([[0.1, -0.1]])
    grpo, _ = policy_loss(lp_tok, old, torch.tensor([1.0]), full_mask(1, 2), PolicyLossConfig())
    gspo, m = policy_loss(
        lp_seq, old, torch.tensor([1.0]), full_mask(1, 2), PolicyLossConfig(ratio_level="sequence")
    )
    assert grpo.item() == pytest.approx(-(1.105171 + 0.904837) / 2, abs=1e-6)
    assert gspo.item() == pytest.approx(-1.0)
    assert m["policy/ratio_mean"] == pytest.approx(1.0)
    (grpo + gspo).backward()
    torch.testing.assert_close(
        lp_tok.grad, -torch.tensor([[1.1051709, 0.9048374]], dtype=torch.float64) / 2, atol=1e-7, rtol=0
    )
    torch.testing.assert_close(lp_seq.grad, torch.tensor([[-0.5, -0.5]], dtype=torch.float64))


def test_gspo_equals_grpo_when_token_ratios_equal():
    old = torch.zeros(2, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv = torch.tensor([0.7, -1.3])
    lp_a, lp_b = leaf([[0.1, 0.1, 0.1], [-0.05, -0.05, 0.4]]), leaf([[0.1, 0.1, 0.1], [-0.05, -0.05, 0.4]])
    for aggregation in ("token_mean", "seq_mean_token_mean"):
        a, _ = policy_loss(lp_a, old, adv, mask, PolicyLossConfig(aggregation=aggregation))
        b, _ = policy_loss(
            lp_b, old, adv, mask, PolicyLossConfig(aggregation=aggregation, ratio_level="sequence")
        )
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(torch.autograd.grad(a, lp_a)[0], torch.autograd.grad(b, lp_b)[0])


def test_gspo_small_clip_range_tolerates_token_noise():
    # GSPO clip 3e-4 / 4e-4: token log ratios 1e-3 and -5e-4 -> sequence log ratio 2.5e-4 (inside)
    # while the token-level ratio 1.001 would be clipped.
    old = torch.zeros(1, 2, dtype=torch.float64)
    cfg = dict(clip_low=3e-4, clip_high=4e-4)
    lp = leaf([[1e-3, -5e-4]])
    _, tok = policy_loss(lp, old, torch.tensor([1.0]), full_mask(1, 2), PolicyLossConfig(**cfg))
    loss, seq = policy_loss(
        lp, old, torch.tensor([1.0]), full_mask(1, 2), PolicyLossConfig(ratio_level="sequence", **cfg)
    )
    assert tok["policy/clip_frac_high"] == 0.5
    assert seq["policy/clip_frac_high"] == 0.0
    assert loss.item() == pytest.approx(-math.exp(2.5e-4))
    # far outside: the whole sequence is clipped and has no gradient
    lp = leaf([[0.01, 0.0]])
    loss, seq = policy_loss(
        lp, old, torch.tensor([1.0]), full_mask(1, 2), PolicyLossConfig(ratio_level="sequence", **cfg)
    )
    assert loss.item() == pytest.approx(-(1 + 4e-4))
    assert seq["policy/clip_frac_high"] == 1.0
    loss.backward()
    assert lp.grad.abs().max().item() == 0.0


def test_gspo_token_form_gradient_matches_sequence_objective():
    # GSPO written directly on sequences: loss = -mean_i min(s_i A_i, clip(s_i) A_i)
    gen = torch.Generator().manual_seed(3)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 3, 4, 1])[:, None]
    old = -torch.rand(4, 6, generator=gen, dtype=torch.float64)
    lp = (old + 0.05 * torch.randn(4, 6, generator=gen, dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.0, -0.5, 2.0, -1.0], dtype=torch.float64)
    cfg = PolicyLossConfig(
        ratio_level="sequence", aggregation="seq_mean_token_mean", clip_low=0.02, clip_high=0.03
    )
    ours, _ = policy_loss(lp, old, adv, mask, cfg)
    s = torch.exp(torch.where(mask, lp - old, 0.0).sum(-1) / mask.sum(-1))
    direct = -torch.minimum(s * adv, s.clamp(0.98, 1.03) * adv).mean()
    torch.testing.assert_close(ours, direct)
    torch.testing.assert_close(torch.autograd.grad(ours, lp)[0], torch.autograd.grad(direct, lp)[0])


def test_gspo_token_form_with_per_token_advantages():
    # GSPO-token: s_{i,t} = sg[s_i] pi(y_t) / sg[pi(y_t)]; s = exp(mean(0.1, -0.1)) = 1.
    # seq_mean_token_mean: loss = -(1 * 1 + 3 * 1) / 2 = -2; d/dlogp_t = -A_t s / 2 = -0.5, -1.5
    # (the plain sequence form would spread the gradient evenly: -1, -1)
    lp = leaf([[0.1, -0.1]])
    cfg = PolicyLossConfig(ratio_level="sequence", aggregation="seq_mean_token_mean")
    loss, _ = policy_loss(
        lp, torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[1.0, 3.0]]), full_mask(1, 2), cfg
    )
    assert loss.item() == pytest.approx(-2.0)
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-0.5, -1.5]], dtype=torch.float64))


# ---- KL to reference ------------------------------------------------------------------------------


def test_kl_estimators_hand_computed():
    # pi = 0.5, ref = 0.25: x = ln(ref/pi) = -0.693147
    lp, ref = torch.tensor([LN(0.5)]), torch.tensor([LN(0.25)])
    assert kl_penalty(lp, ref, "k1").item() == pytest.approx(0.693147, abs=1e-6)
    assert kl_penalty(lp, ref, "k2").item() == pytest.approx(0.5 * 0.693147**2, abs=1e-6)
    assert kl_penalty(lp, ref, "k3").item() == pytest.approx(0.5 + 0.693147 - 1, abs=1e-6)
    with pytest.raises(ValueError, match="kl_estimator"):
        kl_penalty(lp, ref, "k4")


def test_kl_term_in_loss_and_zero_coefficient():
    lp = torch.full((1, 2), LN(0.5), dtype=torch.float64)
    ref = torch.full((1, 2), LN(0.25), dtype=torch.float64)
    adv = torch.tensor([0.0])
    loss, m = policy_loss(lp, lp, adv, full_mask(1, 2), PolicyLossConfig(kl_coef=0.1), ref_logprobs=ref)
    assert loss.item() == pytest.approx(0.1 * 0.193147, abs=1e-6)
    assert m["kl_ref"] == pytest.approx(0.193147, abs=1e-6)
    loss0, m0 = policy_loss(lp, lp, adv, full_mask(1, 2), PolicyLossConfig(kl_coef=0.0), ref_logprobs=ref)
    assert loss0.item() == 0.0 and m0["kl_ref"] == pytest.approx(0.193147, abs=1e-6)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, lp, adv, full_mask(1, 2), PolicyLossConfig(kl_coef=0.1))


# ---- sampler / trainer mismatch -----------------------------------------------------------------


OLD = torch.full((1, 3), LN(0.5), dtype=torch.float64)
SAMPLER = torch.tensor([[LN(0.25), LN(0.5), LN(0.125)]], dtype=torch.float64)  # weights 2, 1, 4


@pytest.mark.parametrize(
    "kwargs, expected_loss, frac_key, frac",
    [
        ({"mode": "none"}, -1.0, None, None),
        # token weights 2, 1, 4: tis caps 4 at 2
        ({"mode": "tis"}, -(2 + 1 + 2) / 3, "mismatch/truncated_frac", 1 / 3),
        # mis keeps [0.5, 2]: drops the 4, kept tokens weigh 1
        ({"mode": "mis"}, -(1 + 1 + 0) / 3, "mismatch/masked_frac", 1 / 3),
        # icepop keeps [0.5, 5] at their ratio: all three, weights 2, 1, 4
        ({"mode": "icepop"}, -(2 + 1 + 4) / 3, "mismatch/masked_frac", 0.0),
        # icepop with beta 3: the 4 is masked, 2 and 1 keep their ratio
        ({"mode": "icepop", "icepop_high": 3.0}, -(2 + 1 + 0) / 3, "mismatch/masked_frac", 1 / 3),
        # icepop band [1, 1.5]: only r = 1 survives
        ({"mode": "icepop", "icepop_low": 1.0, "icepop_high": 1.5}, -(0 + 1 + 0) / 3, "mismatch/masked_frac", 2 / 3),
        # sequence product: 2 * 1 * 4 = 8
        ({"mode": "tis", "level": "sequence"}, -2.0, "mismatch/truncated_frac", 1.0),
        ({"mode": "mis", "level": "sequence"}, 0.0, "mismatch/masked_frac", 1.0),
        # sequence geometric mean: 8^(1/3) = 2 (at the cap / bound, so kept)
        ({"mode": "tis", "level": "sequence", "seq_ratio": "geometric_mean"}, -2.0, "mismatch/truncated_frac", 0.0),
        ({"mode": "mis", "level": "sequence", "seq_ratio": "geometric_mean"}, -1.0, "mismatch/masked_frac", 0.0),
    ],
)  # fmt: skip
def test_mismatch_corrections_hand_computed(kwargs, expected_loss, frac_key, frac):
    # on-policy w.r.t. the trainer (ratio 1), A = 1: per-token pg = -1, times the weight
    lp = OLD.clone().requires_grad_()
    loss, m = policy_loss(
        lp, OLD, torch.tensor([1.0]), full_mask(1, 3), PolicyLossConfig(),
        sampler_logprobs=SAMPLER, mismatch=MismatchConfig(**kwargs),
    )  # fmt: skip
    assert loss.item() == pytest.approx(expected_loss)
    if frac_key:
        assert m[frac_key] == pytest.approx(frac)
    assert m["policy/ratio_mean"] == 1.0  # the PPO ratio never sees the mismatch
    assert m["mismatch/abs_mean"] == pytest.approx(LN(8) / 3)
    assert m["mismatch/abs_max"] == pytest.approx(LN(4))
    assert m["mismatch/ratio_mean"] == pytest.approx(7 / 3)
    assert m["mismatch/ratio_max"] == pytest.approx(4.0)
    assert m["mismatch/kl"] == pytest.approx(((2 - 1 - LN(2)) + (4 - 1 - LN(4))) / 3)


def test_mismatch_gradient_is_weighted_per_token():
    # icepop (beta 3): d loss / d logprob_t = -A * w_t / T with w = (2, 1, 0)
    lp = OLD.clone().requires_grad_()
    loss, _ = policy_loss(
        lp, OLD, torch.tensor([1.0]), full_mask(1, 3), PolicyLossConfig(),
        sampler_logprobs=SAMPLER, mismatch=MismatchConfig(mode="icepop", icepop_high=3.0),
    )  # fmt: skip
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-2 / 3, -1 / 3, 0.0]], dtype=torch.float64))


def test_mismatch_needs_sampler_logprobs():
    with pytest.raises(ValueError, match="sampler_logprobs"):
        policy_loss(
            OLD, OLD, torch.tensor([1.0]), full_mask(1, 3), PolicyLossConfig(),
            mismatch=MismatchConfig(mode="tis"),
        )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"mode": "is"}, "mode"),
        ({"level": "batch"}, "level"),
        ({"mode": "icepop", "level": "sequence"}, "level"),
        ({"seq_ratio": "sum"}, "seq_ratio"),
        ({"mis_low": 1.5}, "mis_low"),
        ({"icepop_high": 0.9}, "icepop_low"),
        ({"log_ratio_clamp": 0.0}, "log_ratio_clamp"),
    ],
)
def test_mismatch_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=f"trainer.mismatch.{field}"):
        MismatchConfig(**kwargs)


# ---- robustness and validation ----------------------------------------------------------------


def test_padding_with_inf_logprobs_stays_finite():
    lp = torch.tensor([[-1.0, float("-inf")], [-0.5, -0.7]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-1.1, float("nan")], [-0.4, -0.7]], dtype=torch.float64)
    mask = torch.tensor([[1, 0], [1, 1]])
    for level in ("token", "sequence"):
        loss, m = policy_loss(
            lp, old, torch.tensor([1.0, -1.0]), mask, PolicyLossConfig(ratio_level=level, kl_coef=0.1),
            ref_logprobs=old, sampler_logprobs=old, entropy=torch.ones(2, 2),
        )  # fmt: skip
        (grad,) = torch.autograd.grad(loss, lp)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert all(math.isfinite(v) for v in m.values())
        assert m["entropy"] == 1.0 and m["tokens"] == 3.0 and m["sequences"] == 2.0


def test_per_token_advantages_accepted_and_padding_ignored():
    lp = torch.zeros(1, 3, requires_grad=True)
    adv = torch.tensor([[1.0, 3.0, float("nan")]])
    loss, _ = policy_loss(lp, lp.detach(), adv, torch.tensor([[1, 1, 0]]), PolicyLossConfig())
    assert loss.item() == pytest.approx(-2.0)
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-0.5, -1.5, 0.0]]))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"clip_low": 1.0}, "clip_low"),
        ({"clip_high": -0.1}, "clip_high"),
        ({"dual_clip": 0.5}, "dual_clip"),
        ({"ratio_level": "seq"}, "ratio_level"),
        ({"aggregation": "mean"}, "aggregation"),
        ({"aggregation": "constant"}, "constant_normalizer"),
        ({"kl_coef": -1.0}, "kl_coef"),
        ({"kl_estimator": "k4"}, "kl_estimator"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PolicyLossConfig(**kwargs)


def test_shape_errors():
    lp = torch.zeros(2, 3)
    cfg = PolicyLossConfig()
    with pytest.raises(ValueError, match="old_logprobs"):
        policy_loss(lp, torch.zeros(2, 2), torch.zeros(2), full_mask(2, 3), cfg)
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(lp, lp, torch.zeros(3), full_mask(2, 3), cfg)
    with pytest.raises(ValueError, match="mask"):
        policy_loss(lp, lp, torch.zeros(2), full_mask(2, 2), cfg)
    with pytest.raises(ValueError, match="normalizer"):
        policy_loss(lp, lp, torch.zeros(2), full_mask(2, 3), cfg, normalizer=0.0)


def test_entropy_bonus_hand_computed():
    """On-policy (r = 1), token_mean over 3 counted tokens: loss = -mean(A) - coef * mean(H), and the
    bonus's gradient reaches the entropy (d loss / d H_t = -coef / 3 on counted tokens, 0 on padding)."""
    lp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = torch.tensor([1.0, -2.0])
    entropy = torch.tensor([[2.0, 1.0], [0.5, 9.0]], requires_grad=True)
    cfg = PolicyLossConfig(entropy_coef=0.1)
    loss, m = policy_loss(lp, lp, adv, mask, cfg, entropy=entropy)
    # pg: -A per token = [-1, -1, 2] -> mean 0; entropy mean (2 + 1 + 0.5) / 3 = 7/6
    assert loss.item() == pytest.approx(0.0 - 0.1 * 7 / 6)
    assert m["entropy"] == pytest.approx(7 / 6)
    loss.backward()
    assert torch.allclose(entropy.grad, torch.tensor([[-0.1 / 3, -0.1 / 3], [-0.1 / 3, 0.0]]))
    plain, _ = policy_loss(lp, lp, adv, mask, PolicyLossConfig(), entropy=entropy.detach())
    assert plain.item() == pytest.approx(0.0)  # the coefficient 0 only logs it
    with pytest.raises(ValueError, match="entropy is required"):
        policy_loss(lp, lp, adv, mask, cfg)
    with pytest.raises(ValueError, match="entropy_coef"):
        PolicyLossConfig(entropy_coef=-0.1)
