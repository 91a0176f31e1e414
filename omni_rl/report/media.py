"""Media copies for the report, written beside the HTML and linked by relative paths.

Every file is converted to a form Chromium plays whatever the source was: images become PNG thumbnails
(longest side ``image_px``), audio becomes Opus in WebM and video VP9 in WebM (longest side ``video_px``),
both cut to ``max_seconds``. Files are named by a digest of their source bytes, so a prompt shown at many
steps is converted once. A file that is missing or cannot be decoded is reported, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

log = logging.getLogger(__name__)

KINDS = ("image", "audio", "video")
_SUFFIX = {"image": ".png", "audio": ".webm", "video": ".webm"}
_AUDIO_RATE = 48_000  # Opus runs at 48 kHz
_VIDEO_MAX_FPS = 30


@dataclass(frozen=True)
class MediaLimits:
    image_px: int = 256  # longest side of an image thumbnail
    video_px: int = 256  # longest side of a video preview
    max_seconds: float = 30.0  # audio and video are cut here
    max_files: int = 500  # media files written in all; later ones are listed but not copied
    max_source_bytes: int = 200 * 1024 * 1024  # sources larger than this are not read


@dataclass(frozen=True)
class Written:
    """A converted media file (``href`` relative to the HTML) or why there is none (``error``)."""

    kind: str
    href: str | None = None
    error: str | None = None


class MediaWriter:
    """Converts media into ``<out_dir>/<folder>/`` on demand; ``href``s are ``<folder>/<file>``."""

    def __init__(self, out_dir: Path, folder: str, limits: MediaLimits) -> None:
        self.root = out_dir / folder
        self.folder = folder
        self.limits = limits
        self._done: dict[tuple[str, str], Written] = {}
        self.written = 0
        self.failed = 0

    def add(self, kind: str, path: str | None) -> Written:
        if kind not in KINDS:
            return Written(kind, error=f"unknown media type {kind!r}")
        if not path:
            return Written(kind, error="no local file recorded for this media")
        key = (kind, path)
        if key not in self._done:
            self._done[key] = self._convert(kind, Path(path))
        return self._done[key]

    def _convert(self, kind: str, source: Path) -> Written:
        if self.written >= self.limits.max_files:
            return Written(
                kind, error=f"not copied: the report's media cap ({self.limits.max_files}) is reached"
            )
        try:
            size = source.stat().st_size
            if size > self.limits.max_source_bytes:
                return Written(kind, error=f"{source}: {size} bytes, over the report's source limit")
            data = source.read_bytes()
        except OSError as exc:
            self.failed += 1
            return Written(kind, error=f"{source}: {exc.strerror or exc}")
        name = hashlib.sha256(kind.encode() + data).hexdigest()[:20] + _SUFFIX[kind]
        target = self.root / name
        try:
            if not target.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".tmp-{name}")
                {"image": self._image, "audio": self._audio, "video": self._video}[kind](source, tmp)
                tmp.replace(target)
        except Exception as exc:  # undecodable media must not stop the report
            self.failed += 1
            log.warning("report: cannot convert %s %s: %s", kind, source, exc)
            return Written(kind, error=f"{source}: cannot convert ({type(exc).__name__}: {exc})")
        self.written += 1
        return Written(kind, href=f"{self.folder}/{name}")

    def _image(self, source: Path, target: Path) -> None:
        with Image.open(source) as img:
            img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
            img.thumbnail((self.limits.image_px, self.limits.image_px))
            img.save(target, format="PNG", optimize=True)

    def _audio(self, source: Path, target: Path) -> None:
        with av.open(str(source)) as src, av.open(str(target), mode="w", format="webm") as dst:
            if not src.streams.audio:
                raise ValueError("no audio stream")
            out = dst.add_stream("libopus", rate=_AUDIO_RATE)
            out.layout = "mono"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=_AUDIO_RATE)
            for frame in src.decode(src.streams.audio[0]):
                if frame.time is not None and frame.time > self.limits.max_seconds:
                    break
                for chunk in resampler.resample(frame):
                    dst.mux(out.encode(chunk))
            for chunk in resampler.resample(None):
                dst.mux(out.encode(chunk))
            dst.mux(out.encode(None))

    def _video(self, source: Path, target: Path) -> None:
        with av.open(str(source)) as src, av.open(str(target), mode="w", format="webm") as dst:
            if not src.streams.video:
                raise ValueError("no video stream")
            stream = src.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(2, 1)
            rate = min(Fraction(rate).limit_denominator(1000), Fraction(_VIDEO_MAX_FPS))
            width, height = _fit(
                stream.codec_context.width, stream.codec_context.height, self.limits.video_px
            )
            out = dst.add_stream("libvpx-vp9", rate=rate)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}
            max_frames = max(1, int(self.limits.max_seconds * rate))
            for index, frame in enumerate(src.decode(stream)):
                if index >= max_frames:
                    break
                image = frame.reformat(width=width, height=height, format="yuv420p")
                image.pts, image.time_base = index, Fraction(1) / rate
                dst.mux(out.encode(image))
            dst.mux(out.encode(None))


def _fit(width: int, height: int, longest: int) -> tuple[int, int]:
    """Aspect-preserving size with the longest side at most ``longest``, both sides even (yuv420p)."""
    scale = min(1.0, longest / max(width, height, 1))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
