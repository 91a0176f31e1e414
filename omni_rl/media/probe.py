"""Cheap checks of a media part before training: resolve it, then read its header (no pixel or sample
decode). Catches what can be known without decoding: missing, empty, over-size or unreadable files,
decompression bombs (pixel count from the header), audio with no samples, videos with no frames,
paths that leave the dataset's folder. Truncation inside the data shows only when decoding; the training
loop then drops that prompt's group (see docs/data.md)."""

from __future__ import annotations

from dataclasses import dataclass

from omni_rl.media import sources
from omni_rl.media.audio import probe_audio
from omni_rl.media.decode import MediaPartLike, source_of
from omni_rl.media.image import probe_image
from omni_rl.media.params import MediaParams
from omni_rl.media.types import Modality
from omni_rl.media.video import VideoPlan, plan_video


@dataclass(frozen=True)
class MediaProbe:
    modality: Modality
    width: int = 0  # image / video frame, in source pixels (0 for audio)
    height: int = 0
    duration_s: float = 0.0  # audio / video
    video: VideoPlan | None = None


def check_part(part: MediaPartLike, params: MediaParams) -> MediaProbe | None:
    """Run the check ``params.probe`` asks for; MediaError names the file and the problem."""
    if params.probe == "none":
        return None
    source = source_of(part, params)
    if params.probe == "exists":
        sources.check_exists(source, params.max_bytes(part.modality))
        return None
    return probe_part(part, params)


def probe_part(part: MediaPartLike, params: MediaParams) -> MediaProbe:
    """Header facts of one media part (reads its bytes once, decodes nothing)."""
    source = source_of(part, params)
    data = sources.read_bytes(source, params.max_bytes(part.modality))
    if part.modality == "image":
        width, height = probe_image(data, params.image, source.label)
        return MediaProbe("image", width, height)
    if part.modality == "audio":
        return MediaProbe("audio", duration_s=probe_audio(data, params.audio, source.label))
    plan = plan_video(data, params.video, source.label)
    return MediaProbe("video", plan.width, plan.height, plan.duration_s, plan)
