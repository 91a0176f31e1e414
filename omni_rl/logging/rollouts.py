"""Rollout dumps: ``rollouts/step_000123.jsonl``, one sampled response per line.

Rows are what ``omni-rl verify --verifier NAME --input rollouts/step_000123.jsonl`` reads:
``id``, ``response``, ``target`` and the verifier's extra fields at the top level, plus bookkeeping
(``step``, ``env``, ``prompt_id``, ``sample_index``, ``reward``, per-verifier ``scores``), which
verifiers ignore. Media is never written inline: arrays, bytes, images and base64 data URIs become
small ``{"omitted": ...}`` stubs; paths and media references (strings) stay. The prompt's media listed
under ``media`` (``[{"type", "url", "path"}]``, for ``omni-rl report``) are the exception: a data: URL
there is written once to ``<directory>/media/<digest>.<ext>`` and ``path`` names that file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import mimetypes
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

# Row keys the dumper owns; a verifier field may not use them.
ROW_KEYS = ("id", "step", "env", "prompt_id", "sample_index", "response", "target", "reward", "scores")
MEDIA_DIR = "media"  # data: URL media of the dumped prompts, beside the dumps
# arrays up to this many elements (1-D) are kept as lists (e.g. boxes, token counts)
_SMALL_ARRAY = 256


@dataclass
class Rollout:
    """One sampled response and how it was scored."""

    prompt_id: str | int
    sample_index: int
    env: str
    response: str
    target: Any
    reward: float
    scores: dict[str, float] = field(default_factory=dict)  # verifier name -> score
    fields: dict[str, Any] = field(default_factory=dict)  # extra verifier inputs (top level in the row)
    extra: dict[str, Any] = field(default_factory=dict)  # anything else (advantage, tokens, prompt)

    def to_row(self, step: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": rollout_id(step, self.prompt_id, self.sample_index),
            "step": step,
            "env": self.env,
            "prompt_id": self.prompt_id,
            "sample_index": self.sample_index,
            "response": self.response,
            "target": self.target,
            "reward": self.reward,
            "scores": dict(self.scores),
        }
        for source in (self.fields, self.extra):
            for key, value in source.items():
                if key in row:
                    raise ValueError(f"rollout field {key!r} clashes with a rollout row key {ROW_KEYS}")
                row[key] = value
        return row


def rollout_id(step: int, prompt_id: str | int, sample_index: int) -> str:
    return f"{step}/{prompt_id}/{sample_index}"


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with media replaced by ``{"omitted": kind, ...}`` stubs."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:200]:
            return {"omitted": "data-uri", "mime": value[5 : value.find(";")], "chars": len(value)}
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return {"omitted": "bytes", "size": len(value)}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        dims = [int(d) for d in shape]
        if len(dims) == 0 or (len(dims) == 1 and dims[0] <= _SMALL_ARRAY):
            return jsonable(value.tolist())
        return {"omitted": type(value).__name__, "shape": dims, "dtype": str(getattr(value, "dtype", ""))}
    if hasattr(value, "mode") and hasattr(value, "size") and hasattr(value, "getpixel"):  # PIL image
        return {"omitted": "image", "size": list(value.size), "mode": value.mode}
    return {"omitted": type(value).__name__}


class RolloutDumper:
    """Writes ``<directory>/step_NNNNNN.jsonl`` every ``every`` steps (0: never)."""

    def __init__(self, directory: str | Path, every: int = 1, max_rows: int | None = None) -> None:
        if every < 0:
            raise ValueError(f"every must be >= 0, got {every}")
        self.directory = Path(directory)
        self.every = every
        self.max_rows = max_rows

    def path_for(self, step: int) -> Path:
        return self.directory / f"step_{step:06d}.jsonl"

    def should_dump(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def dump(self, step: int, rollouts: Iterable[Rollout | Mapping[str, Any]]) -> Path | None:
        """Write the rollouts of ``step`` (if due); returns the file written, or None."""
        if not self.should_dump(step):
            return None
        rows = []
        spilled: dict[str, str | None] = {}  # data: URL -> file written (G rows share a prompt's media)
        self.directory.mkdir(parents=True, exist_ok=True)
        for index, item in enumerate(rollouts):
            if self.max_rows is not None and index >= self.max_rows:
                break
            row = self._row(step, item, index)
            if isinstance(row.get("media"), list):
                row["media"] = [self._spill(entry, spilled) for entry in row["media"]]
            rows.append(jsonable(row))
        path = self.path_for(step)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(tmp, path)  # readers never see a half-written file
        return path

    def _spill(self, entry: Any, spilled: dict[str, str | None]) -> Any:
        """A media entry whose url is a base64 data: URL gets ``path`` = a file written beside the dump."""
        url = entry.get("url") if isinstance(entry, Mapping) else None
        if not isinstance(url, str) or not url.startswith("data:") or entry.get("path"):
            return entry
        if url not in spilled:
            spilled[url] = write_data_url(url, self.directory / MEDIA_DIR)
        return {**entry, "path": spilled[url]}

    @staticmethod
    def _row(step: int, item: Rollout | Mapping[str, Any], index: int) -> dict[str, Any]:
        if isinstance(item, Rollout):
            return item.to_row(step)
        if not isinstance(item, Mapping):
            raise TypeError(f"rollout {index}: expected a Rollout or a mapping, got {type(item).__name__}")
        for key in ("response", "target"):
            if key not in item:
                raise ValueError(f"rollout {index}: missing field {key!r}")
        if not isinstance(item["response"], str):
            raise ValueError(f"rollout {index}: field 'response' must be a string")
        row = {"step": step, **item}
        row.setdefault("id", rollout_id(step, row.get("prompt_id", index), row.get("sample_index", 0)))
        return row


def write_data_url(url: str, directory: Path) -> str | None:
    """Write a base64 data: URL's payload to ``directory/<digest><ext>`` (once); its absolute path, or
    None when the URL is malformed (the sample was already scored 0 for it) or the file cannot be written."""
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    mime = header[5:].split(";")[0]
    ext = mimetypes.guess_extension(mime) or ".bin"
    path = directory / f"{hashlib.sha256(data).hexdigest()[:24]}{ext}"
    try:
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    except OSError:  # a full disk costs the report its picture, not the run
        return None
    return str(path.resolve())
