"""The trainer runs the processor once per unique prompt (text + media) per call: the G samples of a group
reuse it, and their log-probs are those of a per-sample processor call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from omni_rl.models import MultimodalSample, build_tiny_model
from omni_rl.models.batching import encode_sample
from omni_rl.training.encode_cache import PromptEncodeCache, prompt_key
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig


def user(kind: str, text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": text}]}]


def test_prompt_key_depends_on_media_content_not_on_the_completion():
    a = MultimodalSample(user("image", "Q"), [1], images=[np.zeros((4, 4, 3), np.uint8)])
    same = MultimodalSample(user("image", "Q"), [2, 3], images=[np.zeros((4, 4, 3), np.uint8)])
    other = MultimodalSample(user("image", "Q"), [1], images=[np.ones((4, 4, 3), np.uint8)])
    assert prompt_key(a) == prompt_key(same) != prompt_key(other)


def test_one_processor_call_per_prompt_and_the_same_logprobs():
    model, processor = build_tiny_model(seed=3)
    t = PolicyTrainer(TrainerConfig(lr=1e-3), model_and_processor=(model, processor))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    audio = (rng.standard_normal(9000) * 0.1).astype(np.float32)
    tok = processor.tokenizer
    samples = [
        MultimodalSample(
            user(kind, "Which?"), tok(f"answer {i} of {kind}", add_special_tokens=False)["input_ids"], **media
        )
        for kind, media in (("image", {"images": [image]}), ("audio", {"audio": [audio]}))
        for i in range(3)
    ]
    got = t.compute_logprobs(samples)
    assert t.prompt_cache.processor_calls == 2 and t.prompt_cache.reused == 4
    # the same samples, each through its own processor call
    cache = PromptEncodeCache(processor)
    for s in samples:
        shared, alone = cache.encode(s), encode_sample(processor, s)
        assert shared.input_ids == alone.input_ids and shared.prompt_length == alone.prompt_length
        assert shared.media.keys() == alone.media.keys()
        assert all(torch.equal(shared.media[k], alone.media[k]) for k in alone.media)
    t.prompt_cache.clear()
    t.prompt_cache.encode = lambda s: encode_sample(processor, s)  # type: ignore[method-assign]
    want = t.compute_logprobs(samples)
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_placeholder_in_the_completion_is_still_rejected():
    _, processor = build_tiny_model(seed=3)
    cache = PromptEncodeCache(processor)
    sample = MultimodalSample(
        user("image", "Q"), [processor.image_token_id], images=[np.zeros((64, 64, 3), np.uint8)]
    )
    with pytest.raises(ValueError, match="placeholder"):
        cache.encode(sample)
