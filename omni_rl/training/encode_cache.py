"""The processor runs once per unique prompt (text and media) in a trainer call, not once per sample.

The G samples of a GRPO group share their prompt and its media and differ only in the completion, so
the processor's output for the prompt (token ids with the expanded media placeholders, pixel values,
audio features, video frames) is computed once and the completion ids are appended per sample. The
media tensors are shared between those samples (``collate`` concatenates them into new tensors, nothing
writes into them). The cache is emptied at the start of every ``train_step`` / ``compute_logprobs``, so
it holds at most one step's prompts.

The encoders' forwards are shared separately, by ``tower_cache.TowerCache``, and only when the encoders
are frozen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import numpy as np

from omni_rl.models.batching import EncodedSample, MultimodalSample, encode_sample


def _digest(item: Any) -> str:
    array = np.ascontiguousarray(np.asarray(item))
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{array.dtype}{array.shape}".encode())
    h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def prompt_key(sample: MultimodalSample) -> str:
    """What the processor's output depends on: the prompt, the chat options and the media content."""
    text = (
        sample.prompt
        if isinstance(sample.prompt, str)
        else json.dumps(sample.prompt, sort_keys=True, default=str)
    )
    media = [[_digest(x) for x in getattr(sample, name)] for name in ("images", "audio", "videos")]
    return json.dumps([text, sample.chat_kwargs, media], sort_keys=True, default=str)


class PromptEncodeCache:
    """``encode(sample)`` = ``encode_sample(processor, sample)``, with the prompt part computed once."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self._cache: dict[str, EncodedSample] = {}
        self.processor_calls = 0
        self.reused = 0

    def clear(self) -> None:
        self._cache.clear()

    def encode(self, sample: MultimodalSample) -> EncodedSample:
        key = prompt_key(sample)
        prompt = self._cache.get(key)
        if prompt is None:
            prompt = encode_sample(self.processor, dataclasses.replace(sample, completion_ids=()))
            self._cache[key] = prompt
            self.processor_calls += 1
        else:
            self.reused += 1
        return append_completion(self.processor, prompt, sample.completion_ids)


def append_completion(processor: Any, prompt: EncodedSample, completion_ids: Any) -> EncodedSample:
    """The prompt's encoding with ``completion_ids`` after it (the checks ``encode_sample`` makes)."""
    completion = [int(t) for t in completion_ids]
    placeholders = {processor.image_token_id, processor.video_token_id, processor.audio_token_id}
    if placeholders.intersection(completion):
        raise ValueError(
            "sample.completion_ids: contains a media placeholder token (forbid them when sampling)"
        )
    return EncodedSample(
        input_ids=prompt.input_ids[: prompt.prompt_length] + completion,
        prompt_length=prompt.prompt_length,
        media=prompt.media,
    )
