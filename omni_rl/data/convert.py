"""``omni-rl data convert FORMAT SRC OUT``: omni-rl rows (JSONL, media beside it) from datasets users have.

Formats (examples in docs/data.md):

- ``llava`` / ``sharegpt``: a JSON list or JSONL of ``{"conversations": [{"from": "human" | "gpt" | "system",
  "value": ...}], "image": path or list, "audio": ..., "video": ...}`` (also ``images`` / ``audios`` /
  ``videos``, and ``"messages": [{"role", "content"}]`` turns). ``<image>`` / ``<audio>`` / ``<video>`` in a
  human turn put the next file of that kind there; files without placeholders go first in the first human
  turn. The last gpt turn is the target (``--target-field`` takes it from a field instead); earlier turns
  stay as messages. Rows with ``chosen`` and ``rejected`` (a string or a gpt turn) become DPO rows.
- ``hf``: a ``datasets`` folder saved with ``save_to_disk`` (or a parquet / JSON file ``datasets`` loads);
  media columns are found from their Image / Audio / Video features.
- ``parquet``: a parquet file whose media columns hold paths, bytes or ``{bytes, path}`` structs.

Media are copied (or, from bytes, written) once per content under ``<OUT stem>_media/`` (see
``convert_media``). Every row is checked as training loads it (``validate_row``, media headers probed) and
against its environment; a bad source row is printed with file, line or row, and field, then skipped.
Exit status: 0 every row converted; 1 some rows skipped, or none written; 2 unreadable input or bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import environments
from environments.base import EnvRowError
from omni_rl.data.convert_formats import PROMPT_COLUMNS, Build, open_llava, open_table, split_names
from omni_rl.data.convert_media import MediaWriter
from omni_rl.data.loading import DatasetError, RowIssue
from omni_rl.data.schema import RowError, validate_row
from omni_rl.media.params import MediaParams
from omni_rl.media.types import MODALITIES

HELP = "convert a LLaVA/ShareGPT, HF datasets or parquet dataset to omni-rl rows (JSONL + media)"
FORMATS = ("llava", "sharegpt", "hf", "parquet")
_TABLE_FLAGS = ("prompt_field", "image_field", "audio_field", "video_field", "split")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "exit status: 0 every row converted; 1 some rows skipped (each printed with file, line/row and "
        "field) or none written; 2 unreadable input or bad arguments. Examples: docs/data.md"
    )
    parser.add_argument("format", metavar="FORMAT", choices=FORMATS, help="llava, sharegpt, hf or parquet")
    parser.add_argument(
        "src",
        metavar="SRC",
        type=Path,
        help="source: .json/.jsonl (llava), saved datasets folder or file (hf), .parquet",
    )
    parser.add_argument(
        "out", metavar="OUT", type=Path, help="output .jsonl; media go to <OUT stem>_media/ beside it"
    )
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="environment of every row, checked against it (default: each row's env field)",
    )
    parser.add_argument(
        "--id-field",
        metavar="F",
        default="id",
        help="field holding the row id (default id; else <SRC stem>-<row>)",
    )
    parser.add_argument(
        "--target-field", metavar="F", help="field holding the target (llava default: the last gpt turn)"
    )
    parser.add_argument(
        "--prompt-field",
        metavar="F",
        help=f"hf/parquet: prompt text column (default: first of {', '.join(PROMPT_COLUMNS)})",
    )
    for m in MODALITIES:
        parser.add_argument(
            f"--{m}-field",
            metavar="F,...",
            help=f"hf/parquet: {m} column(s), comma-separated (default: {m} features, or {m}/{m}s)",
        )
    parser.add_argument(
        "--meta-fields",
        metavar="F,...",
        default="",
        help="comma-separated fields copied into meta (e.g. choices)",
    )
    parser.add_argument(
        "--media-dir",
        metavar="DIR",
        type=Path,
        help="where relative source media paths resolve (default: SRC's folder)",
    )
    parser.add_argument(
        "--reference-media",
        action="store_true",
        help="point rows at the source media files instead of copying them",
    )
    parser.add_argument("--split", metavar="NAME", help="hf: split of a saved DatasetDict (default train)")
    parser.add_argument("--limit", metavar="N", type=int, help="convert at most this many source rows")


@dataclass
class _Session:
    """What converting one row needs besides the row."""

    args: argparse.Namespace
    params: MediaParams
    out: Path
    build: Build
    unit: str
    seen: dict[str, str] = field(default_factory=dict)  # id -> where it was first seen
    envs: dict[str, Any] = field(default_factory=dict)  # name -> environment (default options) or RowError


def run(args: argparse.Namespace) -> int:
    src, out = Path(args.src), Path(args.out)
    fmt = "llava" if args.format == "sharegpt" else args.format
    try:
        if out.suffix.lower() != ".jsonl":
            raise ValueError(f"{out}: the output must be a .jsonl file")
        if not src.exists():
            raise DatasetError(f"{src}: no such file or directory")
        if fmt == "llava" and (flags := [f for f in _TABLE_FLAGS if getattr(args, f)]):
            raise ValueError(f"--{flags[0].replace('_', '-')} applies to the hf and parquet formats")
        params = MediaParams(allow_outside_paths=args.reference_media)
        media = MediaWriter(out, args.media_dir or src.parent, params, reference=args.reference_media)
        opened = open_llava(src, args, media) if fmt == "llava" else open_table(src, fmt, args, media)
        rows, unit, build = opened
        session = _Session(args, params, out, build, unit)
        if args.env:
            _environment(args.env, session)  # an unknown name fails here, not on every row
    except (DatasetError, ValueError, OSError) as exc:
        print(f"omni-rl data convert: {exc}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    read = written = skipped = 0
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for index, raw in rows:
                if args.limit is not None and read >= args.limit:
                    break
                read += 1
                try:
                    if isinstance(raw, RowIssue):
                        raise RowError(raw.field, raw.reason)
                    handle.write(_convert(raw, index, session) + "\n")
                    written += 1
                except Exception as exc:  # one bad row never stops the conversion
                    bad = (exc.field, exc.reason) if isinstance(exc, RowError) else ("<row>", repr(exc))
                    print(RowIssue(str(src), index, *bad, unit), file=sys.stderr)  # type: ignore[arg-type]
                    skipped += 1
    except (DatasetError, ValueError, OSError) as exc:  # the source broke off mid-way
        tmp.unlink(missing_ok=True)
        print(f"omni-rl data convert: {src}: cannot read: {exc}", file=sys.stderr)
        return 2
    if written:
        tmp.replace(out)
    else:
        tmp.unlink(missing_ok=True)
    print(
        f"{src}: {read} rows read, {written} written, {skipped} skipped" + (f" -> {out}" if written else "")
    )
    print(
        f"media: {media.written} files written, {media.reused} reused (same content), {media.referenced} referenced"
    )
    if media.outside:
        print(
            f"note: {media.outside} referenced media lie outside {out.parent}: set media.allow_outside_paths: true"
        )
    return 0 if written and not skipped else 1


def _convert(raw: Any, index: int, session: _Session) -> str:
    """One source row -> one checked JSONL line; RowError names the field at fault."""
    args = session.args
    if not isinstance(raw, Mapping):
        raise RowError("<row>", f"must be an object, got {type(raw).__name__}")
    messages, target, chosen, rejected = session.build(raw)
    row_id = raw.get(args.id_field)
    if row_id is None:
        row_id = f"{Path(args.src).stem}-{index}"
    elif isinstance(row_id, bool) or not isinstance(row_id, str | int):
        raise RowError(args.id_field, f"an id must be a string or integer, got {type(row_id).__name__}")
    env = args.env or raw.get("env")
    if not isinstance(env, str) or not env:
        raise RowError("env", "missing: pass --env NAME or give the source rows an env field")
    row: dict[str, Any] = {"id": row_id, "env": env, "messages": messages, "target": target}
    if chosen is not None or rejected is not None:
        row.update(chosen=chosen, rejected=rejected)
    if meta := {f: raw[f] for f in split_names(args.meta_fields) if raw.get(f) is not None}:
        row["meta"] = meta
    prompt = validate_row(row, base_dir=str(session.out.parent), params=session.params)
    if prompt.id in session.seen:
        raise RowError(args.id_field, f"duplicate id {prompt.id!r} (first at {session.seen[prompt.id]})")
    if not prompt.is_preference:  # DPO rows are not scored: no target to check
        try:
            _environment(prompt.env, session).make_prompt(prompt)
        except EnvRowError as exc:
            raise RowError(exc.field, f"environment {prompt.env!r}: {exc.reason}") from None
    try:
        line = json.dumps(row, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise RowError("<row>", f"not JSON-serialisable: {exc}") from None
    session.seen[prompt.id] = f"{session.unit} {index}"
    return line


def _environment(name: str, session: _Session) -> Any:
    """The environment ``name`` with default options, built once; RowError when it is not registered."""
    if name not in session.envs:
        try:
            session.envs[name] = environments.get(name)
        except environments.EnvError as exc:
            session.envs[name] = RowError("env", f"environment {name!r}: {exc}")
    if isinstance(session.envs[name], RowError):
        raise session.envs[name]
    return session.envs[name]
