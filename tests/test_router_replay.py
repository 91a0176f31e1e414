"""MoE router replay (R3): the torch sampler records the experts of every token in every MoE layer and
the trainer replays them; measured against a sampler whose routers were perturbed."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.generation.prompts import to_sample
from omni_rl.generation.torch_backend import TorchBackend
from omni_rl.media.types import DecodedImage
from omni_rl.models import build_tiny_model
from omni_rl.models.batching import encode_sample
from omni_rl.models.loading import freeze_norm_statistics
from omni_rl.training.items import TrainItem
from omni_rl.training.router_replay import forced_routes, gate_weights, router_modules
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig

SEED = 3
IMAGE = DecodedImage(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8), (64, 48))


def test_gate_weights_hand_computed():
    router = SimpleNamespace(norm_topk_prob=True, routed_scaling_factor=2.0)
    logits = torch.tensor([[0.0, math.log(3.0), -5.0, math.log(1 / 3)]])  # sigmoid: 1/2, 3/4, ., 1/4
    w = gate_weights(router, logits, torch.tensor([[1, 3]]))
    torch.testing.assert_close(w, torch.tensor([[2.0 * 0.75, 2.0 * 0.25]]))  # 3/4 and 1/4 sum to 1
    raw = gate_weights(
        SimpleNamespace(norm_topk_prob=False, routed_scaling_factor=1.0), logits, torch.tensor([[0, 1]])
    )
    torch.testing.assert_close(raw, torch.tensor([[0.5, 0.75]]))
    with pytest.raises(TypeError, match="NemotronH-style"):
        gate_weights(SimpleNamespace(), logits, torch.tensor([[0, 1]]))


def test_forced_routes_layout():
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # right padded, L = 3
    r0 = np.arange(2 * 2 * 1).reshape(2, 2, 1)  # 2 recorded tokens (the last one is never fed back)
    out = forced_routes(mask, [r0, None], layers=2, k=1)
    assert out.shape == (2, 6, 1)
    assert out[0, :, 0].tolist() == [0, 2, -1, -1, -1, -1]  # layer 0: tokens 0 and 1 of row 0
    assert out[1, :, 0].tolist() == [1, 3, -1, -1, -1, -1]
    with pytest.raises(ValueError, match="routed_experts of row 0"):
        forced_routes(mask, [np.zeros((2, 3, 1))], layers=2, k=1)


def engine(router_noise: float) -> TorchBackend:
    """A recording torch sampler on the trainer's initial weights with its router weights perturbed
    (so that near-ties route differently, as another kernel would)."""
    model, processor = build_tiny_model(seed=SEED)
    if router_noise:
        gen = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for router in router_modules(model):
                router.weight.add_(
                    router_noise
                    * router.weight.abs().mean()
                    * torch.randn(router.weight.shape, generator=gen)
                )
    freeze_norm_statistics(model)
    return TorchBackend(model.eval(), processor, record_routes=True)


def sampled(backend: TorchBackend) -> list[TrainItem]:
    out = []
    for rid, kinds, media in (("t", (), ()), ("i", ("image",), (IMAGE,))):
        messages = [
            {"role": "user", "content": [*({"type": k} for k in kinds), {"type": "text", "text": "Say it."}]}
        ]
        req = GenerationRequest(rid, messages, list(media), SamplingParams(n=3, max_tokens=6, seed=1))
        (result,) = backend.generate([req])
        assert result.ok, result.error
        base = to_sample(req, None, backend.processor.audio_sampling_rate)
        for s in result.samples:
            sample = copy.copy(base)
            sample.completion_ids = list(s.token_ids)
            n_in = len(encode_sample(backend.processor, sample).input_ids)
            layers = len(router_modules(backend.model))
            assert s.routed_experts.shape == (
                n_in - 1,
                layers,
                2,
            )  # every token fed forward, 2 MoE layers, top-2
            out.append(
                TrainItem(
                    sample,
                    advantage=1.0,
                    sampler_logprobs=list(s.model_logprobs),
                    routed_experts=s.routed_experts,
                )
            )
    return out


def step(items: list[TrainItem], replay: bool) -> dict[str, float]:
    cfg = TrainerConfig(lr=1e-3, max_grad_norm=None, router_replay=replay)
    return PolicyTrainer(cfg, model_and_processor=build_tiny_model(seed=SEED)).train_step(items)


def test_recorded_routes_match_the_trainer_on_the_same_weights():
    m = step(sampled(engine(0.0)), replay=False)
    assert m["moe/router_mismatch"] == 0.0 and m["moe/router_mismatch_natural"] == 0.0


def test_replay_removes_the_routing_mismatch_and_brings_logprobs_closer():
    items = sampled(engine(0.5))
    free = step(items, replay=False)
    replayed = step(items, replay=True)
    assert free["moe/router_mismatch"] > 0.0
    assert free["moe/router_mismatch"] == free["moe/router_mismatch_natural"]
    assert replayed["moe/router_mismatch"] == 0.0
    # the trainer's own routers still disagree (later layers see the replayed layers' outputs, so the
    # fraction is not the same number as without replay)
    assert replayed["moe/router_mismatch_natural"] > 0.0
    assert replayed["mismatch/abs_mean"] < free["mismatch/abs_mean"]
    # the gradient still reaches the routers through the recomputed gate weights
    t = PolicyTrainer(
        TrainerConfig(lr=1e-3, max_grad_norm=None, router_replay=True),
        model_and_processor=build_tiny_model(seed=SEED),
    )
    t.accumulate([replace(it, advantage=(-1.0) ** i) for i, it in enumerate(items)])
    assert all(r.weight.grad is not None and r.weight.grad.abs().sum() > 0 for r in router_modules(t.model))


def test_router_replay_turns_on_route_recording_in_either_sampler():
    from omni_rl.algorithms.config import GRPOConfig
    from omni_rl.algorithms.setup import route_recording
    from omni_rl.config import load_config

    env = "envs=[{name: synthetic_image_color}]"
    assert route_recording(load_config(GRPOConfig, None, [env])) == {}
    assert route_recording(load_config(GRPOConfig, None, [env, "trainer.router_replay=true"])) == {
        "record_routes": True
    }
    vllm = load_config(GRPOConfig, None, [env, "trainer.router_replay=true", "generation.backend=vllm"])
    assert route_recording(vllm) == {"return_routed_experts": True}


def test_vllm_routed_experts_reach_the_sample_output():
    """vLLM 0.32 returns ``CompletionOutput.routed_experts`` [tokens, moe_layers, k] when the engine is
    built with ``enable_return_routed_experts``; they become ``SampleOutput.routed_experts`` (the layout
    ``forced_routes`` replays). Its CPU build cannot run the MoE model, so the engine side is not run here."""
    from omni_rl.generation.vllm_options import VLLMBackendOptions, engine_kwargs, sample_output

    assert "enable_return_routed_experts" not in engine_kwargs("m", VLLMBackendOptions(), on_cpu=True)
    kwargs = engine_kwargs("m", VLLMBackendOptions(return_routed_experts=True), on_cpu=False)
    assert kwargs["enable_return_routed_experts"] is True

    def completion(routes):
        lp = {7: SimpleNamespace(logprob=-0.5), 9: SimpleNamespace(logprob=-1.5)}
        return SimpleNamespace(token_ids=[7, 9], logprobs=[lp, lp], text="ab", finish_reason="length",
                               stop_reason=None, routed_experts=routes)  # fmt: skip

    routes = np.arange(5 * 2 * 3, dtype=np.int32).reshape(5, 2, 3)  # 4 prompt tokens + 1 completion token
    out = sample_output(completion(routes), SamplingParams(max_tokens=2))
    assert out.routed_experts.dtype == np.int64 and np.array_equal(out.routed_experts, routes)
    mask = torch.ones(1, 6, dtype=torch.long)
    forced = forced_routes(mask, [out.routed_experts], layers=2, k=3)
    assert torch.equal(forced[:, :5], torch.as_tensor(routes).long().permute(1, 0, 2))
    assert (forced[:, 5] == -1).all()  # the last completion token was never forwarded
    assert sample_output(completion(None), SamplingParams(max_tokens=2)).routed_experts is None
    with pytest.raises(RuntimeError, match="routed_experts of shape"):
        sample_output(completion(np.zeros((2, 3))), SamplingParams(max_tokens=2))


def test_grpo_loop_records_and_replays_routes(tmp_path):
    """The loop end to end (local mode, the sampler on the trainer's own model): routes travel from the
    torch sampler through the train items into the trainer, with PPO mini-batches and IcePop on."""
    from pathlib import Path

    from omni_rl.algorithms.config import GRPOConfig
    from omni_rl.algorithms.grpo import run_grpo
    from omni_rl.config import load_config
    from omni_rl.logging import read_metrics

    root = Path(__file__).resolve().parents[1]
    overrides = [
        f"output_dir={tmp_path}", "run_name=r3", "steps=2", "prompts_per_step=2", "group_size=4",
        "generation.mode=local", "scoring.mode=local", "trainer_run.mode=local", "media_store=local",
        "logging.tensorboard=false", "logging.console=false", "eval.every=0", "checkpoint.at_end=false",
        "trainer.router_replay=true", "trainer.mini_batches=2", "trainer.mismatch.mode=icepop",
    ]  # fmt: skip
    summary = run_grpo(load_config(GRPOConfig, root / "configs/tiny_grpo_cpu.yaml", overrides))
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["train/moe/router_mismatch"] == 0.0 and r["train/moe/router_mismatch_natural"] == 0.0
        assert r["train/updates"] == 2.0 and r["train/mismatch/abs_mean"] < 1e-4
