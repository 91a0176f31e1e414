"""Samples that carry media *references*: what the driver builds and ships; workers resolve them.

The driver turns a prompt into a ``MultimodalSample`` whose ``images`` / ``audio`` / ``videos`` hold
``MediaRef`` objects (a content key and, with the Ray store, an ObjectRef); ``materialize`` in the worker
swaps them for the decoded arrays, read from the MediaStore without a copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from omni_rl.data.schema import Prompt
from omni_rl.generation.prompts import chat_messages
from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedVideo, MediaRef
from omni_rl.media.video import sampling_metadata
from omni_rl.models.batching import MultimodalSample
from omni_rl.training.items import PreferencePair, TrainItem


def sample_with_refs(
    prompt: Prompt,
    refs: Sequence[MediaRef],
    completion_ids: Sequence[int] = (),
    chat_kwargs: dict[str, Any] | None = None,
) -> MultimodalSample:
    """``prompt``'s chat messages with its media parts' references in placeholder order."""
    messages, modalities = chat_messages(prompt.messages)
    if len(modalities) != len(refs):
        raise ValueError(
            f"prompt {prompt.id!r}: {len(modalities)} media part(s) but {len(refs)} reference(s)"
        )
    by_modality: dict[str, list[MediaRef]] = {"image": [], "audio": [], "video": []}
    for modality, ref in zip(modalities, refs, strict=True):
        by_modality[modality].append(ref)
    return MultimodalSample(
        prompt=messages,
        completion_ids=list(completion_ids),
        images=by_modality["image"],
        audio=by_modality["audio"],
        videos=by_modality["video"],
        chat_kwargs=dict(chat_kwargs or {}),
    )


def _array(item: Any) -> Any:
    if isinstance(item, DecodedImage):
        return item.pixels
    if isinstance(item, DecodedAudio):
        return item.samples
    if isinstance(item, DecodedVideo):
        return item.frames
    return item


def materialize(sample: MultimodalSample, store: Any) -> MultimodalSample:
    """``sample`` with every MediaRef replaced by its decoded array (one ``get_many`` per sample)."""
    fields = ("images", "audio", "videos")
    refs = [x for name in fields for x in getattr(sample, name) if isinstance(x, MediaRef)]
    if not refs:
        return sample
    if store is None:
        raise ValueError("sample holds MediaRefs but this worker has no MediaStore to resolve them")
    decoded = iter(store.get_many(refs))
    items = {
        name: [next(decoded) if isinstance(x, MediaRef) else x for x in getattr(sample, name)]
        for name in fields
    }
    replaced = {name: [_array(x) for x in values] for name, values in items.items()}
    if any(isinstance(v, DecodedVideo) for v in items["videos"]):  # the prompt labels frame timestamps
        replaced["video_metadata"] = [
            sampling_metadata(v) if isinstance(v, DecodedVideo) else None for v in items["videos"]
        ]
    return dataclasses.replace(sample, **replaced)


def materialize_items(items: Sequence[Any], store: Any) -> list[Any]:
    """TrainItems, PreferencePairs or bare samples with their media resolved."""
    out: list[Any] = []
    for item in items:
        try:
            if isinstance(item, TrainItem):
                out.append(dataclasses.replace(item, sample=materialize(item.sample, store)))
            elif isinstance(item, PreferencePair):
                out.append(
                    dataclasses.replace(
                        item,
                        chosen=materialize(item.chosen, store),
                        rejected=materialize(item.rejected, store),
                    )
                )
            else:
                out.append(materialize(item, store))
        except Exception as exc:  # the trainer drops the item's group (TrainItem / PreferencePair)
            if not isinstance(item, TrainItem | PreferencePair):
                raise
            out.append(
                dataclasses.replace(item, media_error=f"media not available: {type(exc).__name__}: {exc}")
            )
    return out
