"""GRPO loop pieces: configs, media references, groups -> items/metrics/rollouts, and a short in-process run
that checkpoints, resumes and dumps rollouts that `omni-rl verify` re-scores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import environments
from environments.base import EnvScore
from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.config import GRPOConfig
from omni_rl.algorithms.loop_state import truncate_metrics
from omni_rl.algorithms.media_refs import materialize, sample_with_refs
from omni_rl.cli import main
from omni_rl.cli.train import load_run_config
from omni_rl.config import ConfigError, load_config
from omni_rl.data import load_prompts
from omni_rl.generation import GenerationResult, SampleOutput
from omni_rl.logging import read_metrics
from omni_rl.media import MediaParams, MediaStore
from omni_rl.media.params import ImageParams
from omni_rl.media.types import MediaRef

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
SMALL = MediaParams(image=ImageParams(min_patches=16, max_patches=64))


@pytest.fixture(scope="module")
def colour_prompts(tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("data")
    path = environments.get_class("synthetic_image_color").generate(out, 8, seed=0, shuffle_choices=False)
    env = environments.get("synthetic_image_color")
    return [env.make_prompt(p) for p in load_prompts(path).prompts]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    cfg = load_run_config(path, [])
    assert cfg.algorithm in ("grpo", "dpo") and cfg.steps >= 1


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="group_size"):
        load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", ["group_size=1"])
    with pytest.raises(ConfigError, match="prompts_per_stepp"):
        load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", ["prompts_per_stepp=3"])
    with pytest.raises(ConfigError, match="media"):
        load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", ["media.image.max_patchez=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: grpo\nenvs: []\n")
    with pytest.raises(ConfigError, match="envs"):
        load_config(GRPOConfig, bad)
    with pytest.raises(ConfigError, match="algorithm"):
        load_run_config(ROOT / "configs/tiny_grpo_cpu.yaml", ["algorithm=ppo"])


def test_media_travels_as_references_and_resolves_in_the_worker(colour_prompts):
    store = MediaStore(params=SMALL)
    prompt = colour_prompts[0]
    refs = store.put_many(prompt.media_parts(), count=4)
    sample = sample_with_refs(prompt, refs, [5, 6])
    assert all(isinstance(x, MediaRef) for x in sample.images) and len(sample.images) == 1
    assert list(sample.completion_ids) == [5, 6]
    resolved = materialize(sample, store)
    assert resolved.images[0].shape == (64, 64, 3) and resolved.images[0].dtype.name == "uint8"
    assert resolved.prompt == sample.prompt
    with pytest.raises(ValueError, match="no MediaStore"):
        materialize(sample, None)
    assert store.stats()["total"]["decodes"] == 1


def _groups(prompts, rewards_per_group):
    store = MediaStore(params=SMALL)
    cfg = GRPOConfig(envs=[{"name": "synthetic_image_color"}]).generation.sampling  # type: ignore[list-item]
    groups = R.make_groups(prompts[: len(rewards_per_group)], store, cfg, 4, run_seed=0, step=1)
    env = environments.get("synthetic_image_color")
    for g, rewards in zip(groups, rewards_per_group, strict=True):
        samples = [
            SampleOutput([7, i + 1], [-1.0, -2.0], f"answer {i}", "stop", model_logprobs=[-0.5, -0.7])
            for i in range(4)
        ]
        R.attach_results([g], [GenerationResult(g.request.request_id, samples)])
        g.scores = [EnvScore(r, r == 1.0) for r in rewards]
    return groups, store, env


def test_groups_become_items_metrics_and_rescorable_rows(colour_prompts, tmp_path):
    groups, store, env = _groups(colour_prompts, [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    rewards = torch.tensor([g.rewards for g in groups])
    from omni_rl.training.advantages import AdvantageConfig, compute_advantages

    adv = compute_advantages(rewards, AdvantageConfig())
    for i, g in enumerate(groups):
        g.advantages, g.keep = adv.advantages[i].tolist(), adv.keep[i].tolist()
    items = R.train_items(groups, off_policy=False, chat_kwargs={})
    assert len(items) == 4  # the zero-variance group is dropped
    assert items[0].advantage > 0 > items[1].advantage and items[0].old_logprobs is None
    # the sampler's model logprobs are the behaviour policy; the trainer recomputes the old ones itself
    assert items[0].sampler_logprobs == [-0.5, -0.7]
    off = R.train_items(groups, off_policy=True, chat_kwargs={})
    assert off[0].old_logprobs is None and off[0].sampler_logprobs == [-0.5, -0.7]

    m = R.reward_metrics(groups)
    assert m["reward/mean"] == pytest.approx(0.25) and m["reward/synthetic_image_color"] == pytest.approx(
        0.25
    )
    assert m["accuracy/mean"] == pytest.approx(0.25) and m["response/length_mean"] == 2.0

    label = groups[0].label
    rows = R.rollout_rows(groups, {label: env})
    assert len(rows) == 8 and rows[0].fields["choices"]["A"] == "red"
    # what `omni-rl report` shows: the prompt's text and its media as local files
    media = rows[0].extra["media"]
    assert [m["type"] for m in media] == ["image"] and Path(media[0]["path"]).is_file()
    assert groups[0].prompt.messages[-1].text in rows[0].extra["prompt"]
    # the dumped file is what `omni-rl verify` reads; re-scoring reproduces the environment's scores
    from omni_rl.logging import RolloutDumper

    for g in groups:
        for s in g.samples:
            s.text = g.prompt.target if s.token_ids[-1] % 2 else "Z"
        g.scores = [env.score(g.prompt, s.text) for s in g.samples]
    path = RolloutDumper(tmp_path / "rollouts").dump(1, R.rollout_rows(groups, {label: env}))
    out = tmp_path / "scored.jsonl"
    assert main(["verify", "--verifier", "mcq", "--input", str(path), "--output", str(out)]) == 0
    rescored = [json.loads(line) for line in out.read_text().splitlines()]
    dumped = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["score"] for r in rescored] == [d["reward"] for d in dumped]
    assert sum(d["reward"] for d in dumped) == 4
    R.release_groups(groups, store)
    assert store.stats()["total"]["naive_bytes"] == 0


def test_truncate_metrics_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": s, "x": s}) for s in (1, 2, 3, 4)]
    path.write_text("\n".join(rows) + '\n{"step": 5, "x"')  # the crash cut the last line
    assert truncate_metrics(path, 2) == 3
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def _local_cfg(tmp_path: Path, **overrides) -> GRPOConfig:
    items = [
        f"output_dir={tmp_path}",
        "run_name=unit",
        "generation.mode=local",
        "scoring.mode=local",
        "trainer_run.mode=local",
        "prompts_per_step=2",
        "group_size=4",
        "logging.tensorboard=false",
        "logging.console=false",
        "logging.rollouts_every=1",
        "eval.every=0",
        *[f"{k}={v}" for k, v in overrides.items()],
    ]
    return load_config(GRPOConfig, ROOT / "configs/tiny_grpo_cpu.yaml", items)


def test_local_run_checkpoints_resumes_and_matches_an_uninterrupted_run(tmp_path):
    from omni_rl.algorithms.grpo import run_grpo

    dyn = {"checkpoint.every": 2, "advantage.dynamic_sampling.enabled": "true"}  # refills resume too
    whole = run_grpo(_local_cfg(tmp_path / "a", steps=4, **dyn))
    assert whole["step"] == 4
    run_dir = Path(whole["run_dir"])
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"reward/mean", "train/loss", "train/entropy", "timing/generate_s", "media/decodes"} <= set(
        rows[-1]
    )
    assert sorted(p.name for p in (run_dir / "rollouts").iterdir()) == [
        f"step_00000{i}.jsonl" for i in (1, 2, 3, 4)
    ]
    assert (run_dir / "config.yaml").is_file()

    # the same run stopped after step 2, then resumed: same data, same rewards
    part = _local_cfg(tmp_path / "b", steps=2, **dyn)
    run_grpo(part)
    resumed = run_grpo(dataclasses.replace(part, steps=4), resume=True)
    rows_b = read_metrics(Path(resumed["run_dir"]) / "metrics.jsonl")
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]
    for a, b in zip(rows, rows_b, strict=True):
        assert a["reward/mean"] == pytest.approx(b["reward/mean"])
    assert rows[-1]["train/loss"] == pytest.approx(rows_b[-1]["train/loss"], abs=1e-5)
