"""A video row is tokenised the same way by the trainer, the torch sampler and the vLLM engine: all three
get how the frames were sampled (source fps, frame indices), so the prompt labels every frame with the
same timestamp ("Frame 2 sampled at 0.40 seconds"); before, the trainer kept only the frames and its
prompt said "Frame 2" while vLLM's said "Frame 2 sampled at ...". The vLLM side here is the HF processor
given exactly the metadata ``vllm_inputs`` hands vLLM (vLLM's own processor labels frames with the
same rule: tests/vllm_cpu/test_vllm_video_prompt.py compares the engine's prompt ids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_fixtures import write_mp4
from transformers.video_utils import VideoMetadata

from omni_rl.algorithms.media_refs import materialize
from omni_rl.data.schema import MediaPart
from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.generation.prompts import to_sample
from omni_rl.generation.vllm_inputs import vllm_prompt
from omni_rl.media import MediaParams, MediaStore
from omni_rl.media.params import VideoParams
from omni_rl.media.video import sampling_metadata
from omni_rl.models.batching import MultimodalSample, encode_sample
from omni_rl.models.tiny import TinyOmniSpec, build_processor

MESSAGES = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which way?"}]}]


@pytest.fixture(scope="module")
def video_row(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    path = write_mp4(Path(folder) / "clip.mp4", seconds=1.2, fps=10, size=(64, 64))
    params = MediaParams(video=VideoParams(fps=5.0, num_frames=4, target_patches=16))
    store = MediaStore(1 << 26, backend="local", params=params)
    ref = store.put(MediaPart("video", str(path)), count=10)
    return build_processor(TinyOmniSpec()), store, ref


def engine_prompt_ids(processor, store, ref) -> list[int]:
    """What the vLLM path builds: its text and its (frames, metadata) item, tokenised with the metadata."""
    prompt = vllm_prompt(
        GenerationRequest("v", MESSAGES, [ref], SamplingParams()), processor.tokenizer, store
    )
    frames, meta = prompt["multi_modal_data"]["video"]
    fields = {k: meta[k] for k in ("fps", "duration", "total_num_frames", "frames_indices")}
    out = processor(text=[prompt["prompt"]], videos=[frames], video_metadata=VideoMetadata(**fields),
                    return_tensors="pt", add_special_tokens=False)  # fmt: skip
    return out["input_ids"][0].tolist()


def test_trainer_sampler_and_engine_tokenise_a_video_row_alike(video_row):
    processor, store, ref = video_row
    video = store.get(ref)
    assert len(video.frame_indices) == 4 and video.frame_indices[-1] > 3  # sampled, not consecutive
    assert video.source_fps == pytest.approx(10.0)

    trainer = encode_sample(processor, materialize(MultimodalSample(MESSAGES, videos=[ref]), store))
    sampler = encode_sample(processor, to_sample(GenerationRequest("v", MESSAGES, [ref], SamplingParams()),
                                                 store, processor.audio_sampling_rate))  # fmt: skip
    engine = engine_prompt_ids(processor, store, ref)
    assert trainer.input_ids == sampler.input_ids == engine

    text = processor.tokenizer.decode(engine)
    step_ms = int(1000 / 10.0)  # both processors: frame index x int(1000 / source fps) ms
    for k, index in enumerate(video.frame_indices):
        label = "Frame" if k % processor.video_temporal_patch_dim == 0 else "frame"
        assert f"{label} {k + 1} sampled at {index * step_ms / 1000:.2f} seconds" in text


def test_without_the_metadata_the_prompt_differs(video_row):
    """What the trainer did before: frames only. The test above would catch a regression."""
    processor, store, ref = video_row
    frames_only = MultimodalSample(MESSAGES, videos=[np.asarray(store.get(ref).frames)])
    assert encode_sample(processor, frames_only).input_ids != engine_prompt_ids(processor, store, ref)


def test_sampling_metadata_is_what_vllm_receives(video_row):
    from omni_rl.generation.vllm_inputs import video_input

    _, store, ref = video_row
    video = store.get(ref)
    frames, meta = video_input(video)
    assert frames is video.frames and meta == {**sampling_metadata(video), "video_backend": "omni_rl",
                                               "do_sample_frames": False}  # fmt: skip
