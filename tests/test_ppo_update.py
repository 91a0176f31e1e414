"""PPO-style updates (epochs x mini-batches, old logprobs recomputed by the trainer) and the sampler /
trainer mismatch measured against a deliberately perturbed torch sampler, on-policy and one step off."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.generation.prompts import to_sample
from omni_rl.generation.torch_backend import TorchBackend
from omni_rl.media.types import DecodedImage
from omni_rl.models import build_tiny_model
from omni_rl.models.loading import freeze_norm_statistics
from omni_rl.training.items import TrainItem
from omni_rl.training.mismatch import MismatchConfig
from omni_rl.training.policy_loss import PolicyLossConfig
from omni_rl.training.ppo_update import combine_updates
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig
from tests.test_trainer import make_items

SEED = 3


def make_trainer(**overrides) -> PolicyTrainer:
    cfg = replace(TrainerConfig(lr=1e-3, max_grad_norm=None), **overrides)
    return PolicyTrainer(cfg, model_and_processor=build_tiny_model(seed=SEED))


def record_updates(t: PolicyTrainer) -> list[dict[str, float]]:
    """Each update's loss metrics, in order (wraps ``accumulate``)."""
    seen: list[dict[str, float]] = []
    inner = t.accumulate

    def spy(*args, **kwargs):
        out = inner(*args, **kwargs)
        seen.append(out)
        return out

    t.accumulate = spy  # type: ignore[method-assign]
    return seen


def test_combine_updates_hand_computed():
    a = {"loss": 1.0, "policy/ratio_max": 1.0, "policy/ratio_min": 1.0, "tokens_total": 10.0, "step": 1.0}
    b = {"loss": 3.0, "policy/ratio_max": 1.5, "policy/ratio_min": 0.7, "tokens_total": 12.0, "step": 2.0}
    out = combine_updates([a, b])
    assert out["loss"] == 2.0 and out["policy/ratio_max"] == 1.5 and out["policy/ratio_min"] == 0.7
    assert out["tokens_total"] == 22.0 and out["step"] == 2.0 and out["updates"] == 2.0
    assert out["last/loss"] == 3.0 and out["last/policy/ratio_max"] == 1.5


def test_trainer_config_validates_epochs_and_mini_batches():
    with pytest.raises(ValueError, match=r"TrainerConfig\.epochs"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match=r"TrainerConfig\.mini_batches"):
        TrainerConfig(mini_batches=0)


@pytest.fixture(scope="module")
def items():
    return make_items(build_tiny_model(seed=SEED)[1], n=4, video=False)


def test_one_update_needs_no_recompute(items):
    t = make_trainer()
    calls = []
    t.logprobs_of_rows = lambda *a, **k: calls.append(1)  # type: ignore[method-assign]
    metrics = t.train_step(items)
    assert not calls and t.step == 1 and "updates" not in metrics
    assert metrics["policy/ratio_min"] == metrics["policy/ratio_max"] == 1.0


def test_epochs_and_mini_batches_clip_real_ratios(items):
    t = make_trainer(
        lr=3e-2, epochs=2, mini_batches=2, policy_loss=PolicyLossConfig(clip_low=0.05, clip_high=0.05)
    )
    per_update = record_updates(t)
    metrics = t.train_step(items)
    assert t.step == 4 and metrics["updates"] == 4.0 and len(per_update) == 4
    first = per_update[0]
    # recomputed old logprobs: the first mini-batch's ratio is exactly 1 and nothing is clipped
    assert first["policy/ratio_min"] == first["policy/ratio_max"] == 1.0
    assert first["policy/approx_kl_old"] == 0.0
    assert first["policy/clip_frac_low"] == first["policy/clip_frac_high"] == 0.0
    # after an update the ratios move: KL to the old policy grows and the clip acts
    later = per_update[1:]
    assert all(m["policy/approx_kl_old"] > 0 for m in later)
    assert max(m["policy/clip_frac_low"] + m["policy/clip_frac_high"] for m in later) > 0
    assert metrics["last/policy/approx_kl_old"] == per_update[-1]["policy/approx_kl_old"]
    assert metrics["entropy"] > 0 and "last/entropy" in metrics
    assert metrics["policy/ratio_max"] == max(m["policy/ratio_max"] for m in per_update)


def test_mini_batches_more_than_items_use_what_there_is(items):
    t = make_trainer(mini_batches=8)
    metrics = t.train_step(items[:3])
    assert metrics["updates"] == 3.0 and t.step == 3


# ---- the mismatch against a real (perturbed) sampler -------------------------------------------

IMAGE = DecodedImage(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8), (64, 48))


def engine(noise: float = 0.0) -> TorchBackend:
    """A torch sampler on the trainer's initial weights, each weight moved by ``noise`` x N(0, 1) x its
    own scale (a stand-in for another kernel / precision)."""
    model, processor = build_tiny_model(seed=SEED)
    if noise:
        gen = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(noise * p.abs().mean() * torch.randn(p.shape, generator=gen))
    freeze_norm_statistics(model)
    return TorchBackend(model.eval(), processor)


def sampled_items(backend: TorchBackend) -> list[TrainItem]:
    """G=4 samples of a text and an image prompt, as the GRPO loop builds them."""
    out = []
    for rid, kinds, media in (("t", (), ()), ("i", ("image",), (IMAGE,))):
        messages = [
            {"role": "user", "content": [*({"type": k} for k in kinds), {"type": "text", "text": "Say it."}]}
        ]
        req = GenerationRequest(rid, messages, list(media), SamplingParams(n=4, max_tokens=6, seed=1))
        (result,) = backend.generate([req])
        assert result.ok, result.error
        base = to_sample(req, None, backend.processor.audio_sampling_rate)
        for j, s in enumerate(result.samples):
            sample = copy.copy(base)
            sample.completion_ids = list(s.token_ids)
            out.append(
                TrainItem(sample, advantage=(-1.0) ** j, sampler_logprobs=list(s.model_logprobs), group=rid)
            )
    return out


@pytest.fixture(scope="module")
def exact_items():
    return sampled_items(engine(0.0))


@pytest.fixture(scope="module")
def perturbed_items():
    return sampled_items(engine(0.05))


def test_mismatch_metrics_measure_the_engine(exact_items, perturbed_items):
    mm = MismatchConfig(mode="tis", tis_cap=1.02)
    exact = make_trainer(mismatch=mm, mini_batches=2)
    m0 = exact.train_step(exact_items)
    assert m0["mismatch/abs_mean"] < 1e-4  # the same weights: only float noise between the two paths
    per_update = record_updates(t := make_trainer(mismatch=mm, mini_batches=2))
    m1 = t.train_step(perturbed_items)
    assert m1["mismatch/abs_mean"] > 100 * max(m0["mismatch/abs_mean"], 1e-7)
    assert m1["mismatch/ratio_max"] > 1.02 and m1["mismatch/truncated_frac"] > 0
    assert m1["mismatch/weight_mean"] < m1["mismatch/ratio_mean"]
    # the engine gap never reaches the PPO ratio: exactly 1 at the first mini-batch
    assert per_update[0]["policy/ratio_min"] == per_update[0]["policy/ratio_max"] == 1.0


@pytest.mark.parametrize("mode", ["mis", "icepop"])
def test_masking_corrections_drop_outlier_tokens(perturbed_items, mode):
    mm = MismatchConfig(mode=mode, mis_low=0.99, mis_high=1.01, icepop_low=0.99, icepop_high=1.01)
    m = make_trainer(mismatch=mm).train_step(perturbed_items)
    assert 0 < m["mismatch/masked_frac"] < 1
    assert m["policy/ratio_min"] == m["policy/ratio_max"] == 1.0


def test_one_step_off_policy_mismatch_includes_the_lag(exact_items):
    """Samples from the weights before the last update (what one_step_off_policy trains on): the
    trainer recomputes the old logprobs under its current weights, so the PPO ratio still starts at 1
    and the one-step lag shows in ``mismatch/*`` (and is corrected there)."""
    t = make_trainer(lr=1e-2, mismatch=MismatchConfig(mode="tis"), mini_batches=2)
    t.train_step(exact_items)  # an update: the engine that sampled ``exact_items`` is now one step behind
    per_update = record_updates(t)
    m = t.train_step(exact_items)
    assert m["mismatch/abs_mean"] > 1e-3 and m["mismatch/kl"] > 0
    assert per_update[0]["policy/ratio_min"] == per_update[0]["policy/ratio_max"] == 1.0


def dp_ppo_worker(rank: int, world_size: int, init_method: str, out: str) -> None:
    torch.set_num_threads(1)
    cfg = TrainerConfig(lr=1e-2, max_grad_norm=None, parallel="replicate", epochs=2, mini_batches=4)
    t = PolicyTrainer(cfg, rank, world_size, init_method, model_and_processor=build_tiny_model(seed=SEED))
    items = make_items(t.processor, n=7, video=False)  # ranks hold 4 and 3 items
    per_update = record_updates(t)
    metrics = t.train_step(items[rank::world_size])
    if rank == 0:
        torch.save({"metrics": metrics, "first": per_update[0], "step": t.step}, out)


def test_two_ranks_take_the_same_number_of_updates(tmp_path):
    from omni_rl.training.distributed import launch_local

    out = tmp_path / "rank0.pt"
    launch_local(dp_ppo_worker, 2, str(out))
    got = torch.load(out, weights_only=False)
    # 4 mini-batches wanted, rank 1 can fill 3: both ranks take 3 per epoch, in step
    assert got["metrics"]["updates"] == 6.0 and got["step"] == 6
    assert got["first"]["policy/ratio_min"] == got["first"]["policy/ratio_max"] == 1.0
    assert got["metrics"]["last/policy/approx_kl_old"] > 0
