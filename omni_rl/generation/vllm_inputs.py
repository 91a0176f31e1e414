"""What the vLLM backend hands to vLLM for one request: the rendered prompt and its multimodal data.

Media items are the decoded arrays from ``omni_rl.media`` (a MediaStore resolves MediaRefs once per
request, never per sample): image pixels as a PIL image, audio as ``(waveform, sample_rate)`` (vLLM
resamples to the model's rate), video as ``(frames, metadata)`` where the metadata says how the
frames were sampled from the source, so vLLM's processor does not sample them again.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from omni_rl.generation.base import GenerationRequest, MediaResolver, resolve_media
from omni_rl.generation.prompts import chat_messages
from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedVideo

DECODED = {"image": DecodedImage, "audio": DecodedAudio, "video": DecodedVideo}


def vllm_prompt(request: GenerationRequest, tokenizer, resolver: MediaResolver | None) -> dict[str, Any]:
    """``{"prompt": text, "multi_modal_data": {...}}``; ValueError naming the bad field."""
    messages, modalities = chat_messages(request.messages)
    items = resolve_media(resolver, request.media)
    if len(items) != len(modalities):
        raise ValueError(
            f"media: messages have {len(modalities)} media part(s) but {len(items)} item(s) given"
        )
    data: dict[str, list[Any]] = {}
    for i, (modality, item) in enumerate(zip(modalities, items, strict=True)):
        if not isinstance(item, DECODED[modality]):
            raise ValueError(
                f"media[{i}]: the {i + 1}-th media part is {modality}, got {type(item).__name__} "
                f"(expected {DECODED[modality].__name__})"
            )
        data.setdefault(modality, []).append(media_input(item))
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **request.chat_kwargs
    )
    prompt: dict[str, Any] = {"prompt": text}
    if data:
        prompt["multi_modal_data"] = {k: v[0] if len(v) == 1 else v for k, v in data.items()}
    return prompt


def media_input(item: DecodedImage | DecodedAudio | DecodedVideo) -> Any:
    """vLLM's multimodal item for one decoded item."""
    if isinstance(item, DecodedImage):
        from PIL import Image

        return Image.fromarray(item.pixels)
    if isinstance(item, DecodedAudio):
        return (item.samples, float(item.sample_rate))
    return video_input(item)


def guard_llvmlite_for_vllm() -> None:
    """vLLM 0.32's CPU worker scans every module's attributes at start-up (``_rebind_kernels``) and
    calls ``vars(value).get``; llvmlite's ``ffi.lib`` (imported by numba, imported by librosa, which
    the Parakeet feature extractor needs) answers ``__dict__`` with a wrapped C function, and the
    engine start fails (``'_lib_fn_wrapper' object has no attribute 'get'``). Give that lookup a
    plain dict, in llvmlite's own function cache (it never calls ``lib.__dict__`` as a function)."""
    ffi = sys.modules.get("llvmlite.binding.ffi")
    table = getattr(getattr(ffi, "lib", None), "_fntab", None)
    if isinstance(table, dict) and not isinstance(table.get("__dict__"), dict):
        table["__dict__"] = {}


def video_input(video: DecodedVideo) -> tuple[np.ndarray, dict[str, Any]]:
    """vLLM's video item: the frames and the metadata of how they were sampled from the source."""
    from omni_rl.media.video import sampling_metadata

    return video.frames, {**sampling_metadata(video), "video_backend": "omni_rl", "do_sample_frames": False}
