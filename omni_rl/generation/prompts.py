"""From a ``GenerationRequest`` to a ``MultimodalSample`` the processor can encode.

Messages become chat-template dicts (media parts become ``{"type": modality}``, which the template
turns into placeholders); the request's media items are matched to the media parts in order, checked
(modality, audio sample rate, array shapes) and handed over as the decoded arrays themselves: no
copy, no re-decode, whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from omni_rl.data.schema import MediaPart, Message, TextPart
from omni_rl.generation.base import GenerationRequest, MediaResolver, resolve_media
from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedVideo
from omni_rl.media.video import sampling_metadata
from omni_rl.models.batching import MultimodalSample

PART_MODALITY = {
    "image": "image",
    "image_url": "image",
    "audio": "audio",
    "audio_url": "audio",
    "input_audio": "audio",
    "video": "video",
    "video_url": "video",
}
DECODED_TYPES = {"image": DecodedImage, "audio": DecodedAudio, "video": DecodedVideo}


def chat_messages(messages: Sequence[Message | Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Chat-template dicts and the modality of each media part, in order."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise ValueError("messages: must be a non-empty list of messages")
    out: list[dict[str, Any]] = []
    modalities: list[str] = []
    for i, message in enumerate(messages):
        if isinstance(message, Message):
            content: Any = [_part_of(p) for p in message.content]
            out.append({"role": message.role, "content": content})
        elif isinstance(message, Mapping):
            if not isinstance(message.get("role"), str):
                raise ValueError(f"messages[{i}].role: must be a string, got {message.get('role')!r}")
            content = message.get("content")
            if content is not None and not isinstance(content, str | list | tuple):
                raise ValueError(f"messages[{i}].content: must be a string or a list of parts")
            out.append(dict(message))
        else:
            raise ValueError(f"messages[{i}]: must be a Message or a dict, got {type(message).__name__}")
        if isinstance(content, list | tuple):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind in PART_MODALITY:
                    modalities.append(PART_MODALITY[kind])
                elif kind != "text":
                    raise ValueError(
                        f"messages[{i}].content[{j}].type: must be text or one of {sorted(PART_MODALITY)}, "
                        f"got {kind!r}"
                    )
    return out, modalities


def _part_of(part: TextPart | MediaPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": part.modality}


def to_sample(
    request: GenerationRequest, resolver: MediaResolver | None, sampling_rate: int
) -> MultimodalSample:
    """The ``MultimodalSample`` (no completion) for ``request``; ValueError naming the bad field."""
    messages, modalities = chat_messages(request.messages)
    items = resolve_media(resolver, request.media)
    if len(items) != len(modalities):
        raise ValueError(
            f"media: messages have {len(modalities)} media part(s) but {len(items)} item(s) given"
        )
    arrays: dict[str, list[np.ndarray]] = {"image": [], "audio": [], "video": []}
    video_metadata = [sampling_metadata(item) for item in items if isinstance(item, DecodedVideo)]
    for i, (modality, item) in enumerate(zip(modalities, items, strict=True)):
        expected = DECODED_TYPES[modality]
        if not isinstance(item, expected):
            raise ValueError(
                f"media[{i}]: the {i + 1}-th media part is {modality}, got {type(item).__name__} "
                f"(expected {expected.__name__})"
            )
        arrays[modality].append(_array_of(item, i, sampling_rate))
    return MultimodalSample(
        prompt=messages,
        images=arrays["image"],
        audio=arrays["audio"],
        videos=arrays["video"],
        video_metadata=video_metadata,
        chat_kwargs=dict(request.chat_kwargs),
    )


def _array_of(item: DecodedImage | DecodedAudio | DecodedVideo, index: int, sampling_rate: int) -> np.ndarray:
    if isinstance(item, DecodedImage):
        array, shape = item.pixels, "(H, W, 3) uint8"
        ok = array.ndim == 3 and array.shape[-1] == 3 and array.dtype == np.uint8
    elif isinstance(item, DecodedAudio):
        if item.sample_rate != sampling_rate:
            raise ValueError(
                f"media[{index}]: audio at {item.sample_rate} Hz, the processor expects {sampling_rate} Hz"
            )
        array, shape = item.samples, "(N,) float32"
        ok = array.ndim == 1 and array.size > 0 and np.issubdtype(array.dtype, np.floating)
    else:
        array, shape = item.frames, "(T, H, W, 3) uint8"
        ok = array.ndim == 4 and array.shape[0] > 0 and array.shape[-1] == 3 and array.dtype == np.uint8
    if not ok:
        raise ValueError(f"media[{index}]: array of shape {array.shape} {array.dtype}, expected {shape}")
    return array
