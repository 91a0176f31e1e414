"""The prompt token ids vLLM's engine builds for a video row (its own nano_nemotron_vl processor, given the
frames and how they were sampled) equal the trainer's (``materialize`` + ``encode_sample``, which now
pass the same sampling metadata to the HF processor): frame timestamps included."""

from __future__ import annotations

import pytest

from omni_rl.algorithms.media_refs import materialize
from omni_rl.data.schema import MediaPart
from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.media import MediaParams, MediaStore
from omni_rl.media.params import VideoParams
from omni_rl.models.batching import MultimodalSample, encode_sample
from tests.media_fixtures import write_mp4
from tests.vllm_cpu.support import requires_vllm, start_engine, stop_engine, tiny_checkpoint, user

pytestmark = [requires_vllm, pytest.mark.slow]
ray = pytest.importorskip("ray")


def test_engine_and_trainer_tokenise_a_video_row_alike(tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    store = engine = None
    try:
        folder, _, processor = tiny_checkpoint(tmp_path / "tiny")
        clip = write_mp4(tmp_path / "clip.mp4", seconds=1.2, fps=10, size=(64, 64))
        params = MediaParams(video=VideoParams(fps=5.0, num_frames=4, target_patches=16))
        store = MediaStore(budget_bytes=1 << 26, backend="ray", params=params, name="vllm-video")
        ref = store.put(MediaPart("video", str(clip)), count=4)
        engine = start_engine(folder, media_store=store, dtype="bfloat16")
        request = GenerationRequest("vid", user("video"), [ref], SamplingParams(n=1, max_tokens=1, seed=0))
        (result,) = ray.get(engine.generate.remote([request]))
        assert result.ok, result.error
        trainer = encode_sample(processor, materialize(MultimodalSample(user("video"), videos=[ref]), store))
        assert result.prompt_token_ids == trainer.input_ids
        assert "sampled at" in processor.tokenizer.decode(trainer.input_ids)
    finally:
        if engine is not None:
            stop_engine(engine)
        if store is not None:
            store.shutdown()
        ray.shutdown()
