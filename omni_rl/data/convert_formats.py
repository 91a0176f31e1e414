"""Source formats of ``omni-rl data convert`` (described in ``omni_rl.data.convert``): each ``open_*``
returns the source rows as ``(index, raw row or RowIssue)``, the unit of the index ("line" or "row") and a
function building one raw row into ``(messages, target, chosen, rejected)``; RowError names the source
field at fault."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni_rl.data.convert_media import MediaWriter
from omni_rl.data.loading import DatasetError, _jsonl_rows
from omni_rl.data.schema import RowError
from omni_rl.media.types import MODALITIES, Modality

PROMPT_COLUMNS = ("prompt", "question", "instruction", "query")
TARGET_COLUMNS = ("target", "answer", "label", "transcript", "transcription", "sentence", "text")
_MEDIA_KEYS: dict[Modality, tuple[str, str]] = {m: (m, f"{m}s") for m in MODALITIES}
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_PLACEHOLDER = re.compile(r"<(image|audio|video)>")

Build = Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], Any, Any, Any]]
Opened = tuple[Iterator[tuple[int, Any]], str, Build]


# ---- llava / sharegpt -----------------------------------------------------------------------------


def open_llava(src: Path, args: argparse.Namespace, media: MediaWriter) -> Opened:
    """A .jsonl file is read line by line (a bad line is a bad row); any other file as one JSON list."""
    if src.suffix.lower() == ".jsonl":
        rows, unit = _jsonl_rows(src), "line"
    else:
        try:
            data = json.loads(src.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise DatasetError(
                f"{src}: not a JSON file ({exc}); JSON Lines files must end in .jsonl"
            ) from exc
        if not isinstance(data, list):
            raise DatasetError(f"{src}: expected a JSON list of rows, got {type(data).__name__}")
        rows, unit = enumerate(data), "row"
    return rows, unit, lambda raw: _llava_row(raw, args.target_field, media)


def _llava_row(raw: Mapping[str, Any], target_field: str | None, media: MediaWriter) -> tuple:
    key = "conversations" if "conversations" in raw else "messages"
    turns = raw.get(key)
    if not isinstance(turns, list) or not turns:
        raise RowError("conversations", "required: a non-empty list of turns")
    pending: dict[Modality, list[str]] = {}
    field_of: dict[Modality, str] = {}
    for m, names in _MEDIA_KEYS.items():
        field_of[m] = next((n for n in names if raw.get(n) is not None), names[0])
        pending[m] = media.add(m, raw.get(field_of[m]), field_of[m])
    given = {m: len(urls) for m, urls in pending.items()}
    placed = dict.fromkeys(MODALITIES, 0)
    messages = []
    for i, turn in enumerate(turns):
        role, text = _turn(turn, f"{key}[{i}]")
        if role != "user" and _PLACEHOLDER.search(text):
            raise RowError(
                f"{key}[{i}].value", f"media placeholders are allowed in human turns only, not {role}"
            )
        content: Any = _placed(text, pending, placed, f"{key}[{i}].value") if role == "user" else text
        messages.append({"role": role, "content": content})
    for m in MODALITIES:
        if placed[m] and pending[m]:
            raise RowError(field_of[m], f"{given[m]} {m} file(s) but {placed[m]} <{m}> placeholder(s)")
    first_user = next((msg for msg in messages if msg["role"] == "user"), None)
    if first_user is None:
        raise RowError(key, "has no human turn")
    leading = [_media_part(m, url) for m in MODALITIES for url in pending[m]]  # no placeholders: media first
    if leading:
        first_user["content"] = leading + _parts(first_user["content"])
    chosen, rejected = raw.get("chosen"), raw.get("rejected")
    target = raw.get(target_field) if target_field else None
    if chosen is not None or rejected is not None:
        if messages[-1]["role"] != "user":
            raise RowError(
                key, "a DPO row's conversation must end with a human turn (chosen/rejected answer it)"
            )
        return messages, target, _completion(chosen, "chosen"), _completion(rejected, "rejected")
    if target_field:
        if target is None:
            raise RowError(target_field, "missing target")
        if messages[-1]["role"] == "assistant":
            messages.pop()  # the model answers in its place
    elif messages[-1]["role"] == "assistant":
        target = messages.pop()["content"].strip()
    else:
        raise RowError(key, "the last turn must be from gpt: it is the target (or pass --target-field)")
    if not messages or messages[-1]["role"] != "user":
        raise RowError(key, "needs a human turn before the answer")
    return messages, target, None, None


def _turn(turn: Any, where: str) -> tuple[str, str]:
    if not isinstance(turn, Mapping):
        raise RowError(where, f"a turn must be an object, got {type(turn).__name__}")
    speaker = turn.get("from", turn.get("role"))
    role = _ROLES.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise RowError(f"{where}.from", f"unsupported speaker {speaker!r}; expected human, gpt or system")
    text = turn.get("value", turn.get("content"))
    if not isinstance(text, str):
        raise RowError(f"{where}.value", f"must be a string, got {type(text).__name__}")
    return role, text


def _placed(text: str, pending: dict[Modality, list[str]], placed: dict[Modality, int], where: str) -> Any:
    """A human turn's content: text split at each placeholder, the next file of that kind put there (the
    newlines next to a placeholder, as in LLaVA's "<image>\n...", are dropped; other text is kept as is)."""
    parts: list[dict[str, Any]] = []
    pieces = _PLACEHOLDER.split(text.strip())  # text, kind, text, kind, ..., text
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            piece = piece.lstrip("\n") if i > 0 else piece
            piece = piece.rstrip("\n") if i < len(pieces) - 1 else piece
            parts += [{"type": "text", "text": piece}] if piece.strip() else []
            continue
        m: Modality = piece  # type: ignore[assignment]
        if not pending[m]:
            raise RowError(where, f"more <{m}> placeholders than {m} files")
        parts.append(_media_part(m, pending[m].pop(0)))
        placed[m] += 1
    if not parts:
        return ""
    return parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content.strip()}] if content.strip() else []


def _media_part(modality: Modality, url: str) -> dict[str, Any]:
    return {"type": f"{modality}_url", f"{modality}_url": {"url": url}}


def _completion(value: Any, name: str) -> Any:
    """chosen / rejected: a string, a gpt turn, or a list of gpt turns -> assistant message(s)."""
    if value is None or isinstance(value, str):
        return None if value is None else {"role": "assistant", "content": value}
    if isinstance(value, list):
        return [_completion(v, f"{name}[{i}]") for i, v in enumerate(value)]
    role, text = _turn(value, name)
    return {"role": role, "content": text}


# ---- hf / parquet ---------------------------------------------------------------------------------


@dataclass
class _Columns:
    prompt: str | None
    target: str | None
    media: dict[Modality, list[str]]
    labels: list[str] | None = None  # names of a ClassLabel target

    def describe(self) -> str:
        media = ", ".join(f"{m}={','.join(c)}" for m, c in self.media.items() if c)
        return f"columns: prompt={self.prompt or '-'}, target={self.target or '-'}" + (
            f", {media}" if media else ""
        )


def open_table(src: Path, fmt: str, args: argparse.Namespace, media: MediaWriter) -> Opened:
    """hf: loaded with ``datasets`` (media columns from the features); parquet: read with pyarrow."""
    features: Mapping[str, Any] | None = None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(src)
        except Exception as exc:  # pyarrow raises several types for a file that is not parquet
            raise DatasetError(f"{src}: cannot read parquet: {exc}") from exc
        names = list(table.schema_arrow.names)
        batches = (b.to_pylist() for b in table.iter_batches(batch_size=256))
    else:
        ds = _load_hf(src, args.split)
        names, features = list(ds.column_names), ds.features
        # arrow batches hold media as stored ({bytes, path}): nothing is decoded (datasets 5 decodes
        # audio and video only through torchcodec); the bytes are written out unchanged
        batches = (b.to_pylist() for b in ds.with_format("arrow").iter(batch_size=256))
    cols = _columns(args, names, features)
    print(cols.describe())
    rows = enumerate(row for batch in batches for row in batch)
    return rows, "row", lambda raw: _table_row(raw, cols, media)


def _load_hf(src: Path, split: str | None) -> Any:
    import datasets

    loaders = {".parquet": datasets.Dataset.from_parquet, ".json": datasets.Dataset.from_json}
    loaders[".jsonl"] = loaders[".json"]
    try:
        if src.is_dir():
            loaded = datasets.load_from_disk(str(src))
        elif src.suffix.lower() in loaders:
            loaded = loaders[src.suffix.lower()](str(src), keep_in_memory=True)
        else:
            raise DatasetError(f"{src}: expected a saved datasets folder, .parquet, .json or .jsonl")
    except DatasetError:
        raise
    except Exception as exc:  # datasets raises many types for an unreadable dataset
        raise DatasetError(f"{src}: cannot load with datasets: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        split = split or "train"
        if split not in loaded:
            raise DatasetError(f"{src}: no split {split!r}; choose --split from {sorted(loaded)}")
        loaded = loaded[split]
    return loaded


def _columns(args: argparse.Namespace, names: list[str], features: Mapping[str, Any] | None) -> _Columns:
    for flag in ("prompt_field", "target_field", *(f"{m}_field" for m in MODALITIES)):
        for name in split_names(getattr(args, flag)):
            if name not in names:
                raise ValueError(
                    f"--{flag.replace('_', '-')}: no column {name!r}; columns: {', '.join(names)}"
                )
    media: dict[Modality, list[str]] = {}
    for m in MODALITIES:
        if given := split_names(getattr(args, f"{m}_field")):
            media[m] = given
        elif features is not None and (typed := [c for c in names if _feature_kind(features[c]) == m]):
            media[m] = typed
        else:
            media[m] = [c for c in _MEDIA_KEYS[m] if c in names]
    taken = {c for cols in media.values() for c in cols}
    prompt = args.prompt_field or next((c for c in PROMPT_COLUMNS if c in names and c not in taken), None)
    target = args.target_field or next(
        (c for c in TARGET_COLUMNS if c in names and c not in taken and c != prompt), None
    )
    labels = getattr(features[target], "names", None) if features is not None and target else None
    return _Columns(prompt, target, media, labels)


def _feature_kind(feature: Any) -> str | None:
    import datasets

    inner = getattr(feature, "feature", feature)  # List(Image()) / Sequence(Audio())
    kinds = {datasets.Image: "image", datasets.Audio: "audio", datasets.Video: "video"}
    return next((k for cls, k in kinds.items() if isinstance(inner, cls)), None)


def _table_row(raw: Mapping[str, Any], cols: _Columns, media: MediaWriter) -> tuple:
    content = [
        _media_part(m, url)
        for m, names in cols.media.items()
        for c in names
        for url in media.add(m, raw.get(c), c)
    ]
    text = raw.get(cols.prompt) if cols.prompt else None
    if text is not None and not isinstance(text, str):
        raise RowError(cols.prompt or "prompt", f"must be a string, got {type(text).__name__}")
    content += _parts(text or "")
    if not content:
        raise RowError(cols.prompt or "prompt", "no prompt text and no media")
    messages = [{"role": "user", "content": content}]
    target = raw.get(cols.target) if cols.target else None
    if cols.labels and isinstance(target, int) and 0 <= target < len(cols.labels):
        target = cols.labels[target]  # a ClassLabel: its name
    chosen, rejected = _completion(raw.get("chosen"), "chosen"), _completion(raw.get("rejected"), "rejected")
    if target is None and chosen is None and rejected is None:
        raise RowError(
            cols.target or "target",
            "missing target" if cols.target else "no target column: pass --target-field",
        )
    return messages, target, chosen, rejected


def split_names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]
