"""Frozen encoders run once per unique media item: the G samples of a group, and every forward of a
step, reuse the features, and the log-probs and the update are those of running the encoders per sample."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from omni_rl.models import MultimodalSample, build_tiny_model
from omni_rl.models.loading import freeze
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig

G = 4  # samples per prompt


def user(kind: str, text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": text}]}]


def make_samples(processor) -> list[MultimodalSample]:
    """G samples for each of: two images of different sizes, two audio clips of different lengths, a
    video; the clips and images share micro-batches (padding, packing) with each other."""
    rng = np.random.default_rng(0)
    media = [
        ("image", {"images": [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))]}),
        ("image", {"images": [Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))]}),
        ("audio", {"audio": [(rng.standard_normal(9000) * 0.1).astype(np.float32)]}),
        ("audio", {"audio": [(rng.standard_normal(5000) * 0.1).astype(np.float32)]}),
        ("video", {"videos": [rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)]}),
    ]
    tok = processor.tokenizer
    return [
        MultimodalSample(
            user(kind, "Which?"), tok(f"answer {i} of {j}", add_special_tokens=False)["input_ids"], **m
        )
        for j, (kind, m) in enumerate(media)
        for i in range(G)
    ]


def trainer(encoder_cache_mb: int) -> PolicyTrainer:
    model, processor = build_tiny_model(seed=3)
    freeze(model, ["vision", "audio"])
    cfg = TrainerConfig(lr=1e-3, encoder_cache_mb=encoder_cache_mb, micro_batch_size=6)
    return PolicyTrainer(cfg, model_and_processor=(model, processor))


def count_tower_calls(t: PolicyTrainer) -> dict[str, int]:
    calls = {"vision": 0, "audio": 0}
    for name, tower in (("vision", t.model.vision_model), ("audio", t.model.audio_tower)):
        tower.register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
    return calls


def test_frozen_encoders_run_once_per_item_with_the_same_logprobs_and_update():
    cached, plain = trainer(1024), trainer(0)
    assert sorted(cached.tower_cache.wrapped) == ["audio", "vision"] and plain.tower_cache is None
    samples = make_samples(cached.processor)

    got, want = cached.compute_logprobs(samples), plain.compute_logprobs(samples)
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    stats = cached.tower_cache.stats()
    frames = cached.model.video_temporal_patch_dim
    assert stats["encoder/image_encoded"] == 2 and stats["encoder/image_reused"] == 2 * (G - 1)
    assert stats["encoder/audio_encoded"] == 2 and stats["encoder/audio_reused"] == 2 * (G - 1)
    groups = -(-4 // frames)
    assert stats["encoder/video_encoded"] == groups and stats["encoder/video_reused"] == groups * (G - 1)

    # the next forward of the step (the update) encodes nothing: every item is served
    items = [
        TrainItem(s, advantage=float(i % 3 - 1), old_logprobs=lp)
        for i, (s, lp) in enumerate(zip(samples, got, strict=True))
    ]
    m_cached = cached.train_step(items)
    m_plain = plain.train_step(items)
    assert m_cached["encoder/image_encoded"] == 2 and m_cached["encoder/image_reused"] == 2 * (2 * G - 1)
    assert abs(m_cached["loss"] - m_plain["loss"]) < 1e-5
    after_cached, after_plain = cached.compute_logprobs(samples), plain.compute_logprobs(samples)
    for a, b in zip(after_cached, after_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_trainable_encoders_are_not_cached_and_unfreezing_bypasses_the_cache():
    model, processor = build_tiny_model(seed=3)
    t = PolicyTrainer(TrainerConfig(lr=1e-3), model_and_processor=(model, processor))
    assert t.tower_cache.wrapped == []  # nothing frozen: every forward runs the encoders

    t = trainer(1024)
    calls = count_tower_calls(t)
    samples = make_samples(t.processor)[:G]  # one image, G samples
    t.compute_logprobs(samples)
    t.compute_logprobs(samples)
    assert t.tower_cache.stats()["encoder/image_encoded"] == 1
    for p in t.model.vision_model.parameters():
        p.requires_grad_(True)
    t.compute_logprobs(samples)
    assert t.tower_cache.stats()["encoder/image_encoded"] == 1  # the cache is bypassed, not refilled
    assert calls["vision"] == 3  # the tower module is still called every time (hooks run)


def test_the_store_is_bounded_and_a_key_collision_is_never_served():
    from omni_rl.training.tower_cache import _Store

    store = _Store(max_bytes=3 * 2 * 4 * 4)  # room for three (input, features) pairs of 4 floats each
    for i in range(4):
        store.put(("k", i), torch.full((4,), float(i)), torch.full((4,), 10.0 + i))
    assert store.get(("k", 0), torch.zeros(4)) is None  # the least recently used left
    assert torch.equal(store.get(("k", 3), torch.full((4,), 3.0)), torch.full((4,), 13.0))
    # same key, other content (a sum collision): not served
    store.put(("s",), torch.tensor([1.0, 2.0]), torch.tensor([7.0]))
    assert store.get(("s",), torch.tensor([2.0, 1.0])) is None
