"""DAPO pieces of a GRPO step with hand-computed values: the soft overlong penalty, masking truncated
samples, and dynamic sampling (refill until ``prompts_per_step`` groups have reward variance, bounded)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import environments
from environments.base import EnvScore
from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.bad_media import BadMediaLog
from omni_rl.algorithms.config import GRPOConfig
from omni_rl.algorithms.dynamic_sampling import assign_advantages, build_step_batch, refill_count
from omni_rl.config import ConfigError, load_config
from omni_rl.data import load_prompts
from omni_rl.generation import GenerationResult, SampleOutput
from omni_rl.logging import Timer
from omni_rl.media import MediaParams, MediaStore
from omni_rl.media.params import ImageParams
from omni_rl.training.advantages import AdvantageConfig, DynamicSamplingConfig
from omni_rl.training.overlong import OverlongConfig, loss_mask, overlong_penalty, shaped_rewards

ROOT = Path(__file__).resolve().parents[1]
SMALL = MediaParams(image=ImageParams(min_patches=16, max_patches=64))


def test_overlong_penalty_is_linear_over_the_last_cache_tokens():
    # L_max = 10, L_c = 4: no penalty up to 6 tokens, then -1/4 per token down to -1 at 10
    assert [overlong_penalty(n, 10, 4) for n in (3, 6, 7, 8, 9, 10)] == [0.0, 0.0, -0.25, -0.5, -0.75, -1.0]
    cfg = OverlongConfig(mode="penalty", cache_tokens=4)
    assert shaped_rewards([1.0, 1.0, 0.0], [5, 8, 10], cfg, 10) == [1.0, 0.5, -1.0]
    assert shaped_rewards([1.0, 0.0], [10, 10], OverlongConfig(mode="mask"), 10) == [1.0, 0.0]
    assert loss_mask([True, False], OverlongConfig(mode="mask")) == [False, True]
    assert loss_mask([True, False], OverlongConfig(mode="none")) == [True, True]


def test_overlong_and_dynamic_sampling_configs_are_checked():
    tiny = ROOT / "configs/tiny_grpo_cpu.yaml"
    with pytest.raises(ConfigError, match="cache_tokens"):
        load_config(GRPOConfig, tiny, ["trainer.overlong.mode=penalty"])
    with pytest.raises(ConfigError, match="cache_tokens"):  # the main job samples one token
        load_config(GRPOConfig, tiny, ["trainer.overlong.mode=penalty", "trainer.overlong.cache_tokens=4"])
    with pytest.raises(ConfigError, match="mode"):
        load_config(GRPOConfig, tiny, ["trainer.overlong.mode=cut"])
    with pytest.raises(ConfigError, match="max_draws_factor"):
        load_config(GRPOConfig, tiny, ["advantage.dynamic_sampling.max_draws_factor=0.5"])
    cfg = load_config(GRPOConfig, tiny, ["advantage.dynamic_sampling.enabled=true"])
    assert cfg.advantage.dynamic_sampling == DynamicSamplingConfig(enabled=True, max_draws_factor=3)


def test_refill_count_follows_the_rate_seen_within_the_bound():
    assert refill_count(missing=3, with_signal=6, drawn=8, factor=3, room=16) == 4  # rate 3/4
    assert refill_count(missing=5, with_signal=2, drawn=8, factor=3, room=16) == 15  # rate 1/4, floor 1/3
    assert refill_count(missing=8, with_signal=0, drawn=8, factor=3, room=16) == 16  # 24 > room
    assert refill_count(missing=2, with_signal=0, drawn=8, factor=3, room=16) == 6  # rate floor 1/3
    assert refill_count(missing=2, with_signal=0, drawn=8, factor=3, room=0) == 0


@pytest.fixture(scope="module")
def colour_prompts(tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("data")
    path = environments.get_class("synthetic_image_color").generate(out, 16, seed=0, shuffle_choices=False)
    env = environments.get("synthetic_image_color")
    return [env.make_prompt(p) for p in load_prompts(path).prompts]


def _results(groups, patterns, lengths=None, max_tokens=2):
    """Each group gets the next reward pattern; a sample's text is its reward (the fake scorer reads it)."""
    out = []
    for g in groups:
        rewards = next(patterns)
        lens = lengths or [1] * len(rewards)
        samples = [
            SampleOutput([7] * n, [-1.0] * n, str(r), "length" if n >= max_tokens else "stop")
            for r, n in zip(rewards, lens, strict=True)
        ]
        out.append(GenerationResult(g.request.request_id, samples))
    return out


class FakeRun:
    """The parts of a run ``build_step_batch`` uses: mix, store, generation, scorer."""

    def __init__(self, prompts, patterns):
        self.store = MediaStore(params=SMALL)
        self.mix = type("Mix", (), {"sample": staticmethod(itertools.cycle(prompts).__next__)})()
        self.patterns = patterns
        self.generated: list[list[str]] = []
        run = self

        class Generation:
            def generate(self, requests):
                run.generated.append([r.request_id for r in requests])
                return _results([type("G", (), {"request": r})() for r in requests], run.patterns)

        class Scorer:
            def score(self, tasks):
                return [EnvScore(float(t.response), float(t.response) == 1.0) for t in tasks]

        self.generation, self.scorer = Generation(), Scorer()


def _cfg(**overrides) -> GRPOConfig:
    items = ["prompts_per_step=2", "group_size=4", "advantage.dynamic_sampling.enabled=true"]
    items += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", items)


def _first(cfg, run, step=1):
    groups = R.draw_groups(cfg, run, step, BadMediaLog())
    R.attach_results(groups, _results(groups, run.patterns))
    return groups


SIGNAL, FLAT = [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]


def test_dynamic_sampling_refills_until_enough_groups_have_signal(colour_prompts):
    cfg = _cfg()
    # first draw: one group with signal of 2; rate 1/2 -> the refill draws 2 prompts, one has signal
    run = FakeRun(colour_prompts, iter([SIGNAL, FLAT, FLAT, [0.0, 1.0, 1.0, 1.0]]))
    batch = build_step_batch(cfg, run, 1, _first(cfg, run), BadMediaLog(), Timer())
    assert run.generated == [[f"1/2/{colour_prompts[2].id}", f"1/3/{colour_prompts[3].id}"]]
    assert len(batch.groups) == 4
    assert [any(g.keep) for g in batch.groups] == [True, False, False, True]
    assert batch.stats["sampling/prompts_drawn"] == 4 and batch.stats["sampling/rounds"] == 2
    assert batch.stats["groups/trained"] == 2 and batch.stats["sampling/groups_with_signal"] == 2
    assert batch.stats["samples/kept_frac"] == 8 / 16
    # grpo advantages of [0, 1, 1, 1]: mean 3/4, unbiased std 1/2 -> -1.5 and +0.5
    assert batch.groups[3].advantages == pytest.approx([-1.5, 0.5, 0.5, 0.5], abs=1e-5)


def test_dynamic_sampling_stops_at_its_bound_and_trains_what_it_has(colour_prompts):
    cfg = _cfg(**{"advantage.dynamic_sampling.max_draws_factor": 3})
    run = FakeRun(colour_prompts, itertools.repeat(FLAT))
    batch = build_step_batch(cfg, run, 1, _first(cfg, run), BadMediaLog(), Timer())
    # nothing has signal: rate floor 1/3 -> 6 wanted, 4 allowed (bound 3 x 2 = 6 prompts)
    assert [len(r) for r in run.generated] == [4]
    assert batch.stats["sampling/prompts_drawn"] == 6 and batch.stats["groups/trained"] == 0
    assert not any(k for g in batch.groups for k in g.keep)


def test_without_dynamic_sampling_the_step_keeps_what_it_drew(colour_prompts):
    cfg = _cfg(**{"advantage.dynamic_sampling.enabled": "false"})
    run = FakeRun(colour_prompts, iter([SIGNAL, FLAT]))
    batch = build_step_batch(cfg, run, 1, _first(cfg, run), BadMediaLog(), Timer())
    assert run.generated == [] and len(batch.groups) == 2
    assert [any(g.keep) for g in batch.groups] == [True, False]


def test_more_groups_with_signal_than_needed_train_only_the_first(colour_prompts):
    cfg = _cfg(prompts_per_step=1)
    run = FakeRun(colour_prompts, iter([SIGNAL]))
    groups = _first(cfg, run)
    extra = R.draw_groups(cfg, run, 1, BadMediaLog(), count=1, start=1)
    R.attach_results(extra, _results(extra, iter([SIGNAL])))
    for g in groups + extra:
        g.scores = [EnvScore(r, r == 1.0) for r in SIGNAL]
    stats = assign_advantages(groups + extra, AdvantageConfig(), OverlongConfig(), 2, limit=1)
    assert [any(g.keep) for g in groups + extra] == [True, False] and stats["groups/trained"] == 1
    # [1, 0, 0, 1]: mean 1/2, unbiased std sqrt(1/3) -> +-0.8660
    assert groups[0].advantages == pytest.approx([0.8660254, -0.8660254, -0.8660254, 0.8660254], abs=1e-5)


def test_overlong_mask_drops_truncated_samples_from_the_loss_only(colour_prompts):
    cfg = _cfg(**{"advantage.dynamic_sampling.enabled": "false"})
    run = FakeRun(colour_prompts, iter([]))
    groups = R.draw_groups(cfg, run, 1, BadMediaLog(), count=1)
    R.attach_results(groups, _results(groups, iter([SIGNAL]), lengths=[2, 1, 1, 1], max_tokens=2))
    groups[0].scores = [EnvScore(r, r == 1.0) for r in SIGNAL]
    stats = assign_advantages(groups, AdvantageConfig(), OverlongConfig(mode="mask"), 2, limit=None)
    assert groups[0].keep == [False, True, True, True]
    assert groups[0].advantages[0] == pytest.approx(0.8660254, abs=1e-5)  # still in the group's statistics
    assert stats["overlong/masked_frac"] == 1 / 4


def test_overlong_penalty_reaches_the_advantages(colour_prompts):
    cfg = _cfg(**{"advantage.dynamic_sampling.enabled": "false"})
    run = FakeRun(colour_prompts, iter([]))
    groups = R.draw_groups(cfg, run, 1, BadMediaLog(), count=1)
    # all correct, but one answer hit the 4-token limit: with L_c = 2 it is penalised -1 -> reward 0
    R.attach_results(groups, _results(groups, iter([[1.0] * 4]), lengths=[4, 1, 1, 1], max_tokens=4))
    groups[0].scores = [EnvScore(1.0, True) for _ in range(4)]
    stats = assign_advantages(groups, AdvantageConfig(), OverlongConfig("penalty", 2), 4, limit=None)
    # shaped [0, 1, 1, 1] -> advantages -1.5, +0.5 x 3; the mean penalty over the group is -1/4
    assert groups[0].advantages == pytest.approx([-1.5, 0.5, 0.5, 0.5], abs=1e-5)
    assert stats["overlong/penalty_mean"] == -0.25
