"""Decode parameters per modality, with Nemotron Omni defaults.

Fields listed in a class's `LIMITS` only bound what is accepted (bytes, duration, pixels); they never change
a decoded item, so they are left out of the cache key and items decoded under different limits are shared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from omni_rl.media.types import Modality

_MiB = 1 << 20
ProbeMode = Literal["header", "exists", "none"]
PROBE_MODES: tuple[str, ...] = ("header", "exists", "none")


@dataclass(frozen=True)
class ImageParams:
    patch_size: int = 16
    downsample_ratio: float = 0.5  # pixel shuffle: grid sides are multiples of 1 / ratio
    min_patches: int = 1024
    max_patches: int = 13312
    resize: bool = True  # False keeps native pixels (the budget estimate still uses the grid)
    max_bytes: int = 64 * _MiB
    max_source_pixels: int = 1 << 26  # ~67 Mpx, checked from the header before decoding

    LIMITS: ClassVar[tuple[str, ...]] = ("max_bytes", "max_source_pixels")

    def __post_init__(self) -> None:
        _check_positive(self, "patch_size", "min_patches", "max_patches", "max_bytes", "max_source_pixels")
        if self.min_patches > self.max_patches:
            raise ValueError(f"min_patches={self.min_patches} > max_patches={self.max_patches}")
        _check_merge(self.downsample_ratio)

    @property
    def merge_size(self) -> int:
        return round(1 / self.downsample_ratio)


@dataclass(frozen=True)
class AudioParams:
    sample_rate: int = 16000
    min_source_rate: int = 8000
    max_duration_s: float = 600.0
    max_bytes: int = 512 * _MiB

    LIMITS: ClassVar[tuple[str, ...]] = ("min_source_rate", "max_duration_s", "max_bytes")

    def __post_init__(self) -> None:
        _check_positive(self, "sample_rate", "min_source_rate", "max_duration_s", "max_bytes")


@dataclass(frozen=True)
class VideoParams:
    fps: float = 2.0
    num_frames: int = 256  # at most this many frames; a longer clip is sampled uniformly instead
    patch_size: int = 16
    downsample_ratio: float = 0.5
    target_patches: int = 1024  # each frame is resized to an aspect-preserving tile near this many patches
    maintain_aspect_ratio: bool = True
    resize: bool = True
    use_audio_in_video: bool = False
    max_duration_s: float = 3600.0
    max_bytes: int = 4096 * _MiB
    max_decoded_bytes: int = 2048 * _MiB  # frames x height x width x 3, checked before decoding

    LIMITS: ClassVar[tuple[str, ...]] = ("max_duration_s", "max_bytes", "max_decoded_bytes")

    def __post_init__(self) -> None:
        _check_positive(
            self,
            "fps",
            "num_frames",
            "patch_size",
            "target_patches",
            "max_duration_s",
            "max_bytes",
            "max_decoded_bytes",
        )
        _check_merge(self.downsample_ratio)

    @property
    def merge_size(self) -> int:
        return round(1 / self.downsample_ratio)


@dataclass(frozen=True)
class MediaParams:
    """The decode parameters of all modalities; the audio ones also apply to a video's audio track."""

    image: ImageParams = field(default_factory=ImageParams)
    audio: AudioParams = field(default_factory=AudioParams)
    video: VideoParams = field(default_factory=VideoParams)
    # a media path that leaves the dataset file's folder ("..", an absolute path, a file:// URL) is refused
    # unless this is set
    allow_outside_paths: bool = False
    # what loading checks per media file: "header" (exists, size, and the header's pixels / duration /
    # sample rate, no decode), "exists" (exists and byte size only) or "none"
    probe: ProbeMode = "header"

    def __post_init__(self) -> None:
        if self.probe not in PROBE_MODES:
            raise ValueError(f"probe must be one of {list(PROBE_MODES)}, got {self.probe!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MediaParams:
        data = dict(data or {})
        unknown = set(data) - {"image", "audio", "video", "allow_outside_paths", "probe"}
        if unknown:
            raise ValueError(f"unknown media params section(s) {sorted(unknown)}")
        return cls(
            image=ImageParams(**data.get("image", {})),
            audio=AudioParams(**data.get("audio", {})),
            video=VideoParams(**data.get("video", {})),
            allow_outside_paths=bool(data.get("allow_outside_paths", False)),
            probe=data.get("probe", "header"),
        )

    def for_modality(self, modality: Modality) -> ImageParams | AudioParams | VideoParams:
        return {"image": self.image, "audio": self.audio, "video": self.video}[modality]

    def max_bytes(self, modality: Modality) -> int:
        return self.for_modality(modality).max_bytes

    def cache_params(self, modality: Modality) -> str:
        """Canonical JSON of the parameters that shape a decoded item of `modality` (part of its key)."""
        fields = _shaping_fields(self.for_modality(modality))
        if modality == "video" and self.video.use_audio_in_video:
            fields["audio"] = _shaping_fields(self.audio)
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _shaping_fields(params: ImageParams | AudioParams | VideoParams) -> dict[str, Any]:
    return {k: v for k, v in asdict(params).items() if k not in params.LIMITS}


def _check_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be > 0, got {value!r}")


def _check_merge(ratio: float) -> None:
    if not 0 < ratio <= 1 or abs(1 / ratio - round(1 / ratio)) > 1e-9:
        raise ValueError(f"downsample_ratio must be 1/k for an integer k >= 1, got {ratio!r}")
