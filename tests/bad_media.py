"""Write every kind of bad media file the data path must survive (used by the bad-media tests)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels and that holds no image data (what a
    decompression bomb looks like to a header probe)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def empty_wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, dtype=np.float32), 16000, format="WAV")
    return buf.getvalue()


def break_file(path: Path, kind: str, outside: Path) -> str | None:
    """Damage the media file at ``path`` as ``kind`` says; returns a replacement URL for the row (or None
    to keep the row's URL). Kinds caught at load by the header probe: missing, empty, corrupt, text,
    bomb, no_samples, outside, truncated (PNG, MP4). Kinds that pass the probe and fail only when decoded:
    truncated (WAV), truncated_jpeg, no_frames (an MP4 whose frames do not decode)."""
    data = path.read_bytes()
    if kind == "missing":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: max(len(data) // 3, 64)])
    elif kind == "truncated_jpeg":
        return truncated_jpeg(path)
    elif kind == "no_frames":
        path.write_bytes(_garble(data))
    elif kind == "corrupt":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    elif kind == "text":
        path.write_text("this is not media\n")
    elif kind == "bomb":
        path.write_bytes(png_header_only(100_000, 100_000))
    elif kind == "no_samples":
        path.write_bytes(empty_wav())
    elif kind == "outside":
        target = outside / f"escaped{path.suffix}"
        target.write_bytes(data)
        return str(target)  # an absolute path outside the dataset's folder
    else:
        raise ValueError(kind)
    return None


def _garble(data: bytes) -> bytes:
    """An MP4 whose container and packet timestamps survive but whose frame data do not decode: the
    payload of the ``mdat`` box is overwritten, the ``moov`` index is left alone."""
    out = bytearray(data)
    start, moov = data.index(b"mdat") + 4, data.find(b"moov")
    end = moov - 4 if moov > start else len(out)
    out[start:end] = bytes(end - start)
    return bytes(out)


def truncated_jpeg(path: Path) -> str:
    """The image re-saved as a JPEG without its last bytes (the header is whole: only decoding finds it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="JPEG", quality=95)
    target = path.with_suffix(".jpg")
    target.write_bytes(buf.getvalue()[:-32])  # the end of the scan data and the EOI marker
    return f"{path.parent.name}/{target.name}"


def rewrite_rows(jsonl: Path, damage: dict[int, str], outside: Path) -> dict[int, str]:
    """Apply ``damage`` {row index: kind} to the media of those rows; returns {line number: kind}."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    for index, kind in damage.items():
        part = next(p for m in rows[index]["messages"] if isinstance(m["content"], list) for p in m["content"]
                    if p["type"].endswith("_url"))  # fmt: skip
        spec = part[part["type"]]
        url = spec["url"] if isinstance(spec, dict) else spec
        new = break_file(jsonl.parent / url, kind, outside)
        if new is not None:
            part[part["type"]] = {"url": new}
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {index + 1: kind for index, kind in damage.items()}
