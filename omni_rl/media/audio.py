"""Audio decoding to mono float32 at 16 kHz (configurable): soundfile first (wav, flac, mp3, ogg, ...),
PyAV for containers libsndfile cannot open (m4a/aac, ...). Resampling uses soxr (high quality).

Truncation is an error, never a silently shorter clip: libsndfile reads a cut-off WAV as a shorter one, so
the RIFF data chunk's declared size is checked against the bytes present, and for other formats the frames
read are compared with the frames the header declares (MP3 headers are estimates: a shortfall of more than
1% and two MPEG frames counts as truncation).
"""

from __future__ import annotations

import io

import av
import numpy as np
import soundfile as sf
import soxr

from omni_rl.media.params import AudioParams
from omni_rl.media.types import DecodedAudio, MediaDecodeError, MediaTooLargeError

_MP3_FRAME = 1152


def probe_audio(data: bytes, params: AudioParams, label: str) -> float:
    """Duration in seconds from the header (no decode), or from PyAV's container metadata; the sample
    rate and duration limits are checked, and a clip with no samples is refused."""
    try:
        info = sf.info(io.BytesIO(data))
        rate, duration = int(info.samplerate), info.frames / info.samplerate
    except sf.LibsndfileError:
        try:
            with av.open(io.BytesIO(data)) as container:
                stream = _first_audio_stream(container, label)
                rate, duration = int(stream.rate or 0), stream_duration(container, stream)
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(label, f"not a readable audio file: {exc}") from exc
    if duration is None:
        raise MediaDecodeError(label, "audio duration unknown from the header")
    if duration <= 0:
        raise MediaDecodeError(label, "no audio samples")
    _check_rate_and_duration(rate, duration, params, label)
    return duration


def decode_audio(data: bytes, params: AudioParams, label: str) -> DecodedAudio:
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except sf.LibsndfileError:
        return _decode_with_av(data, params, label)
    with handle:
        rate, declared = handle.samplerate, handle.frames
        _check_rate_and_duration(rate, declared / rate, params, label)
        if (problem := _wav_truncation(data)) is not None:
            raise MediaDecodeError(label, f"truncated WAV file: {problem}")
        try:
            samples = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise MediaDecodeError(label, f"corrupt or truncated audio data: {exc}") from exc
        fmt = handle.format
    missing = declared - len(samples)
    tolerance = max(2 * _MP3_FRAME, declared // 100) if fmt == "MP3" else 0
    if missing > tolerance:
        raise MediaDecodeError(
            label, f"truncated audio: header declares {declared} frames, read {len(samples)}"
        )
    return _finish(samples.mean(axis=1, dtype=np.float32), rate, params, label)


def decode_audio_stream(
    container: av.container.InputContainer, stream: av.AudioStream, params: AudioParams, label: str
) -> DecodedAudio:
    """Decode one PyAV audio stream (also used for the audio track of a video)."""
    rate = stream.rate or stream.codec_context.sample_rate
    duration = stream_duration(container, stream)
    _check_rate_and_duration(rate, duration or 0.0, params, label)
    # downmix and convert to packed float at the source rate; soxr does the rate change
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    total = 0
    limit = int(params.max_duration_s * rate)
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += len(chunk)
            if total > limit:
                raise MediaTooLargeError(label, f"audio longer than max_duration_s={params.max_duration_s}")
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise MediaDecodeError(label, f"corrupt or truncated audio data: {exc}") from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return _finish(samples, rate, params, label)


def _decode_with_av(data: bytes, params: AudioParams, label: str) -> DecodedAudio:
    try:
        container = av.open(io.BytesIO(data))
    except av.error.FFmpegError as exc:
        raise MediaDecodeError(label, f"not a recognised audio format (corrupt or not audio): {exc}") from exc
    with container:
        return decode_audio_stream(container, _first_audio_stream(container, label), params, label)


def _first_audio_stream(container: av.container.InputContainer, label: str) -> av.AudioStream:
    if not container.streams.audio:
        raise MediaDecodeError(label, "no audio stream")
    return container.streams.audio[0]


def stream_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_rate_and_duration(rate: int, duration_s: float, params: AudioParams, label: str) -> None:
    if rate < params.min_source_rate:
        raise MediaDecodeError(label, f"sample rate {rate} Hz < min_source_rate={params.min_source_rate} Hz")
    if duration_s > params.max_duration_s:
        raise MediaTooLargeError(
            label, f"duration {duration_s:.2f} s > max_duration_s={params.max_duration_s}"
        )


def _finish(mono: np.ndarray, rate: int, params: AudioParams, label: str) -> DecodedAudio:
    if mono.size == 0:
        raise MediaDecodeError(label, "no audio samples")
    if not np.isfinite(mono).all():
        raise MediaDecodeError(label, "audio contains NaN or infinite samples")
    if rate != params.sample_rate:
        mono = soxr.resample(mono, rate, params.sample_rate, quality="HQ").astype(np.float32, copy=False)
    mono = np.ascontiguousarray(mono)
    mono.setflags(write=False)
    return DecodedAudio(samples=mono, sample_rate=params.sample_rate, source_rate=int(rate))


def _wav_truncation(data: bytes) -> str | None:
    """A description of the problem if a RIFF/WAVE data chunk is cut short, else None."""
    if len(data) < 12 or data[8:12] != b"WAVE" or data[:4] not in (b"RIFF", b"RIFX"):
        return None
    order = "little" if data[:4] == b"RIFF" else "big"
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], order)
        if chunk == b"data":
            present = len(data) - pos - 8
            if size in (0, 0xFFFFFFFF) or present >= size:  # 0 / 0xFFFFFFFF: length left open by a streamer
                return None
            return f"data chunk declares {size} bytes, {present} present"
        pos += 8 + size + (size & 1)
    return None
