"""Decoded media items, references to them in the store, and the errors media handling raises."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

Modality = Literal["image", "audio", "video"]
MODALITIES: tuple[Modality, ...] = ("image", "audio", "video")


class MediaError(ValueError):
    """Base of every media error; the message names the source (a path or a short data: URL label)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across processes (Ray)
        return (type(self), (self.source, self.reason))


class MediaNotFoundError(MediaError):
    """The path (or file:// URL) does not exist or is not a regular file."""


class MediaTooLargeError(MediaError):
    """Over a configured limit: bytes, duration or pixels."""


class MediaPathError(MediaError):
    """A media path that leaves the dataset's folder while that is not allowed."""


class MediaDecodeError(MediaError):
    """Corrupt, truncated or unsupported media, or a URL that cannot be read."""


class MediaBudgetError(RuntimeError):
    """The store cannot hold an item within its byte budget because everything it holds is referenced."""


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """RGB pixels already resized to the model's patch grid (height and width multiples of the patch)."""

    pixels: np.ndarray  # uint8 (H, W, 3)
    source_size: tuple[int, int]  # (width, height) after EXIF orientation, before resizing

    modality: Modality = field(default="image", init=False)

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Mono float32 waveform at `sample_rate` (16 kHz unless configured otherwise)."""

    samples: np.ndarray  # float32 (N,)
    sample_rate: int
    source_rate: int

    modality: Modality = field(default="audio", init=False)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)


@dataclass(frozen=True, eq=False)
class DecodedVideo:
    """Sampled frames with their presentation times, and optionally the clip's audio track."""

    frames: np.ndarray  # uint8 (T, H, W, 3)
    timestamps_s: np.ndarray  # float64 (T,): presentation time of each kept frame
    frame_indices: np.ndarray  # int64 (T,): index of each kept frame in the source stream
    fps: float  # requested sampling rate (frames per second)
    source_fps: float
    duration_s: float
    audio: DecodedAudio | None = None

    modality: Modality = field(default="video", init=False)

    @property
    def nbytes(self) -> int:
        own = self.frames.nbytes + self.timestamps_s.nbytes + self.frame_indices.nbytes
        return int(own + (self.audio.nbytes if self.audio is not None else 0))


DecodedMedia = DecodedImage | DecodedAudio | DecodedVideo


@dataclass(frozen=True)
class MediaRef:
    """A small, picklable handle to one decoded item held by a `MediaStore`.

    `handle` is the Ray ObjectRef of the item in ray mode (None in local mode); passing a MediaRef to a Ray
    task or actor passes that ObjectRef along, so any process of the job reads the item without a copy.
    Persist `detached()` refs: a plain `pickle` of a ref with a handle makes Ray pin the object for the
    rest of the job (out-of-band ObjectRef serialization).
    """

    key: str
    modality: Modality
    nbytes: int
    source: str
    handle: Any = field(default=None, compare=False, repr=False)

    def detached(self) -> MediaRef:
        """The same reference without its ObjectRef (safe to pickle or log; `get` asks the index)."""
        return replace(self, handle=None)
