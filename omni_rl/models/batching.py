"""Batching (prompt with media, completion token ids) samples for the Nemotron Omni forward.

Each sample goes through the HF processor alone (``encode_sample``), then ``collate`` right-pads
the token ids and merges the media tensors the way ``NemotronH_Omni_Reasoning_V3.forward`` takes
them for a whole batch: image patches concatenated in sample order (``image_grid_hw`` rows follow),
audio clips stacked with their mel frames zero-padded to the longest clip (``input_features_mask``
marks real frames), video frames concatenated.

Limits of the pinned modeling code (transformers 5.19), checked here with clear errors:
- images and videos cannot share one forward (a sample or a batch): both use the image placeholder
  token and ``forward`` requires each modality's features to fill all of those tokens;
- one video per sample (the processor expands only the first ``<video>``);
- videos in one batch need the same frame size (one packed tensor). Each video's frames are padded
  to a multiple of the temporal patch by repeating the last frame, exactly what the model does for a
  single video, so concatenating videos does not merge frames of different videos into one tubelet.
``group_for_batching`` splits samples into groups that satisfy these rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PLACEHOLDERS = {"images": "<image>", "audio": "<so_embedding>", "videos": "<video>"}


@dataclass
class MultimodalSample:
    """A prompt (chat messages or already rendered text with placeholders), its media in placeholder
    order, and the completion token ids to score (may be empty)."""

    prompt: str | list[dict[str, Any]]
    completion_ids: Sequence[int] = ()
    images: Sequence[Any] = ()  # PIL images or HxWxC uint8 arrays
    audio: Sequence[np.ndarray] = ()  # mono float waveforms at the processor's sampling rate (16 kHz)
    videos: Sequence[Any] = ()  # at most one: TxHxWxC uint8 array (or list of frames)
    # per video, how its frames were sampled (``omni_rl.media.video.sampling_metadata``): the prompt then
    # labels each frame with its timestamp, as vLLM's processor does with the same metadata; None or
    # absent: frames are labelled by number only
    video_metadata: Sequence[dict[str, Any] | None] = ()
    chat_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"enable_thinking": False}


@dataclass
class EncodedSample:
    """One processed sample: token ids (prompt + completion) and its media tensors."""

    input_ids: list[int]
    prompt_length: int
    media: dict[str, torch.Tensor]

    @property
    def modalities(self) -> frozenset[str]:
        keys = {"pixel_values": "image", "input_features": "audio", "pixel_values_videos": "video"}
        return frozenset(name for key, name in keys.items() if key in self.media)

    @property
    def video_frame_shape(self) -> tuple[int, ...] | None:
        video = self.media.get("pixel_values_videos")
        return None if video is None else tuple(video.shape[1:])


@dataclass
class MultimodalBatch:
    """Right-padded batch. ``completion_mask[b, t]`` is True where token t of row b is scored."""

    input_ids: torch.Tensor  # (B, L) long
    attention_mask: torch.Tensor  # (B, L) long
    completion_mask: torch.Tensor  # (B, L) bool
    prompt_lengths: list[int]
    media: dict[str, torch.Tensor]

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for ``NemotronH_Omni_Reasoning_V3.forward``."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, **self.media}

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> MultimodalBatch:
        """Move to ``device``; floating media tensors are also cast to ``dtype`` when given."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, dtype) if (dtype is not None and t.is_floating_point()) else t.to(device)

        return MultimodalBatch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            completion_mask=self.completion_mask.to(device),
            prompt_lengths=list(self.prompt_lengths),
            media={k: move(v) for k, v in self.media.items()},
        )

    def completions(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Per-sample 1-D tensors of ``values[b, t]`` at the scored positions (e.g. log-probs)."""
        return [values[b][self.completion_mask[b]] for b in range(values.shape[0])]


def _check_media(sample: MultimodalSample, text: str) -> None:
    for name, token in PLACEHOLDERS.items():
        count, given = text.count(token), len(getattr(sample, name))
        if count != given:
            raise ValueError(f"sample.{name}: prompt has {count} {token} placeholder(s) but {given} item(s)")
    if sample.images and sample.videos:
        raise ValueError("sample: images and videos in one prompt are not supported (transformers 5.19)")
    if len(sample.videos) > 1:
        raise ValueError(f"sample.videos: at most one video per prompt, got {len(sample.videos)}")


def _pad_video_frames(frames: torch.Tensor, temporal_patch: int) -> torch.Tensor:
    remainder = frames.shape[0] % temporal_patch
    if remainder == 0:
        return frames
    repeat = frames[-1:].expand(temporal_patch - remainder, *frames.shape[1:])
    return torch.cat([frames, repeat], dim=0)


def encode_sample(processor, sample: MultimodalSample) -> EncodedSample:
    """Run the processor on one sample (no special tokens added, as vLLM does for this model)."""
    if isinstance(sample.prompt, str):
        text = sample.prompt
    else:
        text = processor.apply_chat_template(
            sample.prompt, tokenize=False, add_generation_prompt=True, **sample.chat_kwargs
        )
    _check_media(sample, text)
    kwargs: dict[str, Any] = {}
    if sample.images:
        kwargs["images"] = list(sample.images)
    if sample.audio:
        kwargs["audio"] = [np.asarray(a, dtype=np.float32).reshape(-1) for a in sample.audio]
        kwargs["sampling_rate"] = processor.audio_sampling_rate
    if sample.videos:
        kwargs["videos"] = [np.asarray(sample.videos[0])]
        meta = sample.video_metadata[0] if sample.video_metadata else None
        if meta is not None:  # the processor takes one VideoMetadata (one video per prompt)
            from transformers.video_utils import VideoMetadata

            kwargs["video_metadata"] = VideoMetadata(**meta)
    out = processor(text=[text], return_tensors="pt", add_special_tokens=False, **kwargs)
    prompt_ids = out["input_ids"][0].tolist()
    media = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask")}
    if "pixel_values_videos" in media:
        media["pixel_values_videos"] = _pad_video_frames(
            media["pixel_values_videos"], processor.video_temporal_patch_dim
        )
    if "input_features" in media and "input_features_mask" not in media:  # needed to unpad clips
        raise RuntimeError("processor returned audio features without input_features_mask")
    completion = [int(t) for t in sample.completion_ids]
    placeholders = {processor.image_token_id, processor.video_token_id, processor.audio_token_id}
    if placeholders.intersection(completion):
        raise ValueError(
            "sample.completion_ids: contains a media placeholder token (forbid them when sampling)"
        )
    return EncodedSample(input_ids=prompt_ids + completion, prompt_length=len(prompt_ids), media=media)


def group_for_batching(encoded: Sequence[EncodedSample]) -> list[list[int]]:
    """Indices grouped so that each group can be one ``collate`` batch (see module docstring)."""
    groups: dict[Any, list[int]] = {}
    for i, sample in enumerate(encoded):
        key = ("video", sample.video_frame_shape) if "video" in sample.modalities else ("main",)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def collate(encoded: Sequence[EncodedSample], pad_token_id: int) -> MultimodalBatch:
    """Right-pad ``encoded`` into one batch; raises ValueError if they cannot share a forward."""
    if not encoded:
        raise ValueError("collate: no samples")
    modalities = frozenset().union(*(s.modalities for s in encoded))
    if {"image", "video"} <= modalities:
        raise ValueError("collate: images and videos cannot share a batch; use group_for_batching")
    video_shapes = {s.video_frame_shape for s in encoded if s.video_frame_shape is not None}
    if len(video_shapes) > 1:
        raise ValueError(
            f"collate: videos of different frame sizes {sorted(video_shapes)}; use group_for_batching"
        )

    length = max(len(s.input_ids) for s in encoded)
    input_ids = torch.full((len(encoded), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
    completion_mask = torch.zeros((len(encoded), length), dtype=torch.bool)
    for row, sample in enumerate(encoded):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids, dtype=torch.long)
        attention_mask[row, :n] = 1
        completion_mask[row, sample.prompt_length : n] = True
    completion_mask[:, 0] = False  # the first token has no context to score it

    media: dict[str, torch.Tensor] = {}
    for key in ("pixel_values", "image_grid_hw", "pixel_values_videos"):
        parts = [s.media[key] for s in encoded if key in s.media]
        if parts:
            media[key] = torch.cat(parts, dim=0)
    clips = [
        (s.media["input_features"], s.media["input_features_mask"])
        for s in encoded
        if "input_features" in s.media
    ]
    if clips:
        frames = max(f.shape[1] for f, _ in clips)
        media["input_features"] = torch.cat(
            [torch.nn.functional.pad(f, (0, 0, 0, frames - f.shape[1])) for f, _ in clips], dim=0
        )
        media["input_features_mask"] = torch.cat(
            [torch.nn.functional.pad(m.bool(), (0, frames - m.shape[1])) for _, m in clips], dim=0
        )
    return MultimodalBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        completion_mask=completion_mask,
        prompt_lengths=[s.prompt_length for s in encoded],
        media=media,
    )
