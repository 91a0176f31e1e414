"""Video decoding with PyAV: frames sampled by `fps` capped at `num_frames`, with their timestamps.

Sampling rule: for a clip of duration D, n = max(1, floor(D * fps)) frames at t_k = k / fps; when n would
exceed `num_frames`, `num_frames` frames spread uniformly over the clip instead (t_k = k * D / num_frames).
Each t_k takes the source frame nearest in time (duplicates dropped), so a clip with fewer frames than
asked keeps all of them. Frame times come from demuxed packet timestamps (no decode needed), which makes
the pre-flight token estimate exact. Frames are resized to one aspect-preserving tile near
`target_patches` patches (the Nemotron Omni video processor's rule), and the clip's audio track is decoded
too when `use_audio_in_video` is set (a clip without one gets `audio=None`).
Not handled: rotation side data of phone videos (frames are kept as stored).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from omni_rl.media.audio import decode_audio_stream, stream_duration
from omni_rl.media.params import AudioParams, VideoParams
from omni_rl.media.types import DecodedVideo, MediaDecodeError, MediaTooLargeError


@dataclass(frozen=True)
class VideoPlan:
    width: int
    height: int
    source_fps: float
    duration_s: float
    frame_pts: np.ndarray  # pts of the frames to keep, in stream time base
    timestamps_s: np.ndarray
    frame_indices: np.ndarray
    audio_duration_s: float | None  # duration of the audio track; None when the clip has none


def video_tile(height: int, width: int, params: VideoParams) -> tuple[int, int]:
    """(tile_h, tile_w) in patches: aspect-preserving, near `target_patches`, sides multiples of the merge."""
    target, m = params.target_patches, params.merge_size
    if not params.maintain_aspect_ratio:
        side = max(m, int(math.sqrt(target)) // m * m)
        return side, side
    aspect = width / max(height, 1)
    th = max(round(math.sqrt(target / aspect)), 1)
    tw = max(round(math.sqrt(target * aspect)), 1)
    if m > 1:
        up_h, up_w = th + (-th) % m, tw + (-tw) % m
        if up_h * up_w <= target:
            th, tw = up_h, up_w
        else:
            th, tw = max(m, th - th % m), max(m, tw - tw % m)
    return th, tw


def select_frames(times_s: np.ndarray, duration_s: float, params: VideoParams) -> np.ndarray:
    """Indices (into `times_s`, sorted ascending) of the frames to keep; see the module docstring."""
    want = max(1, math.floor(duration_s * params.fps + 1e-9))
    if want <= params.num_frames:
        targets = np.arange(want) / params.fps
    else:
        targets = np.arange(params.num_frames) * (duration_s / params.num_frames)
    right = np.clip(np.searchsorted(times_s, targets), 1, len(times_s) - 1) if len(times_s) > 1 else None
    if right is None:
        return np.zeros(1, dtype=np.int64)
    left = right - 1
    nearest = np.where(np.abs(times_s[left] - targets) <= np.abs(times_s[right] - targets), left, right)
    return np.unique(nearest).astype(np.int64)


def plan_video(data: bytes, params: VideoParams, label: str) -> VideoPlan:
    """Which frames to decode, from the container header and packet timestamps (no frame decode)."""
    with _open(data, label) as container:
        stream = _video_stream(container, label)
        header_duration = stream_duration(container, stream)
        if header_duration is not None and header_duration > params.max_duration_s:
            raise MediaTooLargeError(
                label, f"duration {header_duration:.2f} s > max_duration_s={params.max_duration_s}"
            )
        try:
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(label, f"corrupt video container: {exc}") from exc
        if not pts:
            raise MediaDecodeError(label, "video stream has no timestamped frames")
        time_base = float(stream.time_base)
        start = stream.start_time if stream.start_time is not None else pts[0]
        times = (np.asarray(pts, dtype=np.float64) - start) * time_base
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        if rate <= 0:
            rate = (len(times) - 1) / times[-1] if len(times) > 1 and times[-1] > 0 else 1.0
        duration = max(float(times[-1]) + 1.0 / rate, header_duration or 0.0)
        if duration > params.max_duration_s:
            raise MediaTooLargeError(
                label, f"duration {duration:.2f} s > max_duration_s={params.max_duration_s}"
            )
        audio_duration = None
        if container.streams.audio:
            audio_duration = stream_duration(container, container.streams.audio[0]) or duration
        keep = select_frames(times, duration, params)
        return VideoPlan(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            source_fps=rate,
            duration_s=duration,
            frame_pts=np.asarray(pts, dtype=np.int64)[keep],
            timestamps_s=times[keep],
            frame_indices=keep,
            audio_duration_s=audio_duration,
        )


def decode_video(data: bytes, params: VideoParams, audio_params: AudioParams, label: str) -> DecodedVideo:
    plan = plan_video(data, params, label)
    if params.resize:
        th, tw = video_tile(plan.height, plan.width, params)
        size = {"width": tw * params.patch_size, "height": th * params.patch_size}
    else:
        size = {"width": plan.width, "height": plan.height}
    frame_bytes = len(plan.frame_pts) * size["width"] * size["height"] * 3
    if frame_bytes > params.max_decoded_bytes:
        raise MediaTooLargeError(
            label,
            f"{len(plan.frame_pts)} frames of {size['width']}x{size['height']} = {frame_bytes} bytes "
            f"> max_decoded_bytes={params.max_decoded_bytes}",
        )
    wanted = {int(p): i for i, p in enumerate(plan.frame_pts)}
    frames: list[np.ndarray | None] = [None] * len(wanted)
    found = 0
    with _open(data, label) as container:
        stream = _video_stream(container, label)
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                slot = wanted.get(frame.pts) if frame.pts is not None else None
                if slot is None or frames[slot] is not None:
                    continue
                frames[slot] = frame.to_ndarray(format="rgb24", interpolation="BICUBIC", **size)
                found += 1
                if found == len(frames):
                    break
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(label, f"corrupt or truncated video data: {exc}") from exc
    if found < len(frames):
        raise MediaDecodeError(label, f"truncated video: decoded {found} of {len(frames)} sampled frames")
    stacked = np.stack(frames)  # type: ignore[arg-type]
    audio = None
    if params.use_audio_in_video:
        with _open(data, label) as container:
            if container.streams.audio:
                audio = decode_audio_stream(container, container.streams.audio[0], audio_params, label)
    for array in (stacked, plan.timestamps_s, plan.frame_indices):
        array.setflags(write=False)
    return DecodedVideo(
        frames=stacked,
        timestamps_s=plan.timestamps_s,
        frame_indices=plan.frame_indices,
        fps=params.fps,
        source_fps=plan.source_fps,
        duration_s=plan.duration_s,
        audio=audio,
    )


def sampling_metadata(video: DecodedVideo) -> dict[str, Any]:
    """How the frames were sampled from the source: the source frame rate, duration, frame count and
    the kept frames' indices. vLLM's processor and the HF processor (``video_metadata``) both label
    frame k of the prompt "sampled at frames_indices[k] * int(1000 / fps) / 1000 seconds", so the
    trainer and the engines must be given the same values to tokenise a video row the same way."""
    indices = [int(i) for i in video.frame_indices]
    total = max(round(video.duration_s * video.source_fps), (max(indices) + 1) if indices else 0)
    return {
        "fps": float(video.source_fps),
        "duration": float(video.duration_s),
        "total_num_frames": int(total),
        "frames_indices": indices,
    }


def _open(data: bytes, label: str) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data))
    except av.error.FFmpegError as exc:
        raise MediaDecodeError(
            label, f"not a readable video (corrupt, truncated or not a video): {exc}"
        ) from exc


def _video_stream(container: av.container.InputContainer, label: str) -> av.VideoStream:
    if not container.streams.video:
        raise MediaDecodeError(label, "no video stream")
    return container.streams.video[0]
