"""``omni-rl verify``: score a JSONL file of responses with one verifier, without Ray, torch or a GPU; or,
with ``--server-url``, re-score NeMo Gym rows with a NeMo Gym resources server (``verify_nemo_gym``).

Row: ``{"id"?, "response": str, "target": ..., ...fields}``. Bad rows (invalid JSON, missing field)
are reported with their line number, counted and skipped; a row the verifier cannot score gets
score 0 and an ``error``. Exit code 0 unless the input cannot be read or the command is misused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import verifiers
from omni_rl.cli import verify_nemo_gym
from verifiers.base import Verifier, VerifyResult

RESERVED = ("id", "response", "target")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verifier", help=f"one of: {', '.join(verifiers.names())} (or --server-url)")
    parser.add_argument("--input", required=True, type=Path, help="JSONL file, one row per line")
    parser.add_argument("--output", type=Path, help="write scored rows here (JSONL)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="K=V", help="verifier option (repeatable)"
    )
    parser.add_argument("--workers", type=int, default=1, help="rows scored in parallel")
    parser.add_argument(
        "--show-bad",
        type=int,
        default=20,
        help="bad rows and row errors listed in full (the rest are counted)",
    )
    verify_nemo_gym.add_arguments(parser)


@dataclass
class BadRow:
    line: int
    field: str
    reason: str


@dataclass
class Row:
    line: int
    data: dict[str, Any]


def read_rows(path: Path) -> Iterator[Row | BadRow]:
    """Rows of a JSONL file; malformed ones come back as BadRow with line number and field."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield BadRow(line_no, "-", f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(data, dict):
                yield BadRow(line_no, "-", f"row must be a JSON object, got {type(data).__name__}")
                continue
            missing = [key for key in ("response", "target") if key not in data]
            if missing:
                yield BadRow(line_no, missing[0], "missing required field")
                continue
            if not isinstance(data["response"], str):
                yield BadRow(line_no, "response", f"must be a string, got {type(data['response']).__name__}")
                continue
            yield Row(line_no, data)


def parse_option_args(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


def score_row(verifier: Verifier, row: Row) -> VerifyResult:
    fields = {k: v for k, v in row.data.items() if k not in RESERVED}
    return verifier.verify(row.data["response"], row.data["target"], **fields)


def run(args: argparse.Namespace) -> int:
    if (args.verifier is None) == (args.server_url is None):
        report("error", "give either --verifier NAME or --server-url URL (a NeMo Gym resources server)")
        return 2
    if args.server_url is not None:
        return verify_nemo_gym.run(args)
    try:
        verifier = verifiers.get(args.verifier, **parse_option_args(args.option))
    except (verifiers.VerifierError, ValueError) as exc:
        report("error", str(exc))
        return 2
    if not args.input.is_file():
        report("error", f"cannot read {args.input}: no such file")
        return 2
    try:
        items = list(read_rows(args.input))
    except OSError as exc:
        report("error", f"cannot read {args.input}: {exc}")
        return 2

    rows = [item for item in items if isinstance(item, Row)]
    bad = [item for item in items if isinstance(item, BadRow)]
    for item in bad[: args.show_bad]:
        report("skipped", f"{args.input}:{item.line} field {item.field!r}: {item.reason}")
    if len(bad) > args.show_bad:
        report("skipped", f"... and {len(bad) - args.show_bad} more bad rows")

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results = list(pool.map(lambda row: score_row(verifier, row), rows))

    failed = [(row, result) for row, result in zip(rows, results, strict=True) if result.error]
    for row, result in failed[: args.show_bad]:
        report("error", f"{args.input}:{row.line}: {result.error}")
    if len(failed) > args.show_bad:
        report("error", f"... and {len(failed) - args.show_bad} more rows with verifier errors")

    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as out:
            for row, result in zip(rows, results, strict=True):
                out.write(json.dumps({**row.data, **result.to_dict()}, default=str) + "\n")

    summary = {"rows": len(items), "bad_rows": len(bad), **verifier.summarize(results)}
    print_summary(summary, args.verifier, args.input)
    return 0


def report(kind: str, message: str) -> None:
    """One plain line on stderr (no markup: messages may quote untrusted text)."""
    print(f"{kind}: {message}", file=sys.stderr)


def print_summary(summary: dict[str, Any], name: str, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    print(f"omni-rl verify: {name} on {path}")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console(file=sys.stdout).print(table)
