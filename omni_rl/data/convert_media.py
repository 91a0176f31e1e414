"""Media for ``omni-rl data convert``: turn a source dataset's media value (a path, a file:// or data: URL,
bytes, an HF ``{"bytes", "path"}`` struct, a PIL image or an ``{"array", "sampling_rate"}`` clip) into a URL
relative to the output JSONL's folder.

Bytes and copied files are stored once per content under ``<OUT stem>_media/<blake2b>.<ext>``, so the same
image used by many rows is written once. With ``reference=True`` source files are not copied: the row points
at them by a relative path (which may leave the output folder; training then needs
``media.allow_outside_paths: true``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omni_rl.data.schema import RowError
from omni_rl.media import sources
from omni_rl.media.params import MediaParams
from omni_rl.media.types import MediaError, Modality

_CHUNK = 1 << 20
# leading bytes -> extension, for bytes without a file name (images are named by PIL's format instead)
_MAGIC = (
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"ID3", ".mp3"),
    (b"\xff\xfb", ".mp3"),
    (b"\xff\xf3", ".mp3"),
    (b"\x1a\x45\xdf\xa3", ".webm"),
)


class MediaWriter:
    """Media of converted rows; counts files written, files reused (same content) and files referenced."""

    def __init__(self, out: Path, source_base: Path, params: MediaParams, reference: bool = False) -> None:
        self.root = out.parent  # rows' URLs are relative to this folder
        self.folder = self.root / f"{out.stem}_media"
        self.source_base = source_base  # where relative source paths resolve
        self.params = params
        self.reference = reference
        self.written = self.reused = self.referenced = 0
        self.outside = 0  # referenced files outside the output folder
        self._names: dict[str, str] = {}  # content digest -> file name

    def add(self, modality: Modality, value: Any, field: str) -> list[str]:
        """URLs for one source value (None: none; a list: one each)."""
        if value is None:
            return []
        if isinstance(value, list | tuple):
            return [url for i, v in enumerate(value) for url in self.add(modality, v, f"{field}[{i}]")]
        return [self._one(modality, value, field)]

    def _one(self, modality: Modality, value: Any, field: str) -> str:
        if isinstance(value, str):
            return self._from_url(modality, value, field)
        if isinstance(value, bytes | bytearray | memoryview):
            return self._store(modality, bytes(value), None, field)
        if isinstance(value, Mapping):
            if value.get("bytes") is not None:
                return self._store(modality, bytes(value["bytes"]), value.get("path"), field)
            if modality == "audio" and value.get("array") is not None:
                return self._store(modality, _wav(value, field), "clip.wav", field)
            if isinstance(value.get("path"), str):
                return self._from_url(modality, value["path"], field)
            raise RowError(
                field, f"a {modality} object needs 'bytes' or 'path' (or 'array' and 'sampling_rate')"
            )
        if type(value).__module__.startswith("PIL.") and hasattr(value, "save"):
            buf = io.BytesIO()
            value.save(buf, format="PNG")
            return self._store(modality, buf.getvalue(), None, field)
        raise RowError(
            field, f"a {modality} must be a path, URL, bytes or {{bytes, path}}, got {type(value).__name__}"
        )

    def _from_url(self, modality: Modality, url: str, field: str) -> str:
        try:
            source = sources.resolve(url.strip(), self.source_base)
            limit = self.params.max_bytes(modality)
            if source.path is None:  # a data: URL
                return self._store(modality, sources.read_bytes(source, limit), None, field)
            sources.check_exists(source, limit)
        except MediaError as exc:
            raise RowError(field, f"{type(exc).__name__}: {exc}") from exc
        path = source.path
        if self.reference:
            self.referenced += 1
            url = Path(os.path.relpath(path.absolute(), self.root.absolute())).as_posix()
            self.outside += url.startswith("../")
            return url
        digest = hashlib.blake2b(digest_size=20)
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        if not (suffix := path.suffix.lower()):
            with path.open("rb") as handle:
                suffix = _extension(modality, handle.read(4096), field)
        return self._put(digest.hexdigest(), suffix, lambda tmp: shutil.copyfile(path, tmp))

    def _store(self, modality: Modality, data: bytes, source_name: Any, field: str) -> str:
        limit = self.params.max_bytes(modality)
        if len(data) > limit:
            raise RowError(field, f"{len(data)} bytes > {modality}.max_bytes={limit}")
        if not data:
            raise RowError(field, f"empty {modality} bytes")
        # images are named by their format (PIL reads the header); audio / video by the source name if any
        named = modality != "image" and isinstance(source_name, str)
        suffix = Path(source_name).suffix.lower() if named else ""
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):  # no name, or an odd one
            suffix = ""
        digest = hashlib.blake2b(data, digest_size=20).hexdigest()
        return self._put(
            digest, suffix or _extension(modality, data, field), lambda tmp: tmp.write_bytes(data)
        )

    def _put(self, digest: str, suffix: str, write: Callable[[Path], object]) -> str:
        """The URL of the content ``digest``, written (atomically) the first time it is seen."""
        name = self._names.get(digest)
        if name is None:
            name = self._names[digest] = digest + suffix
            if not (self.folder / name).exists():  # else left there by an earlier run
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{name}.tmp{os.getpid()}"
                write(tmp)
                tmp.replace(self.folder / name)
                self.written += 1
                return f"{self.folder.name}/{name}"
        self.reused += 1
        return f"{self.folder.name}/{name}"


def _extension(modality: Modality, head: bytes, field: str) -> str:
    """A file extension from the leading bytes (the header is enough for PIL to name an image's format)."""
    if modality == "image":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(head)) as img:
                fmt = (img.format or "png").lower()
        except (UnidentifiedImageError, OSError) as exc:
            raise RowError(field, f"not an image PIL can read: {exc}") from exc
        return {"jpeg": ".jpg"}.get(fmt, f".{fmt}")
    if head[:4] == b"RIFF":
        return ".wav" if head[8:12] == b"WAVE" else ".avi"
    if head[4:8] == b"ftyp":
        return ".m4a" if modality == "audio" else ".mp4"
    return next((ext for magic, ext in _MAGIC if head.startswith(magic)), ".bin")


def _wav(clip: Mapping[str, Any], field: str) -> bytes:
    import numpy as np
    import soundfile as sf

    rate = clip.get("sampling_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise RowError(f"{field}.sampling_rate", f"must be a positive integer, got {rate!r}")
    samples = np.asarray(clip["array"], dtype=np.float32)
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # (channels, frames) -> (frames, channels)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
