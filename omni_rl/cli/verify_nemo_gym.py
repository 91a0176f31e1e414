"""``omni-rl verify --server-url URL``: re-score rows with a NeMo Gym resources server (``POST /verify``).

Rows, one per JSONL line:
- NeMo Gym rollout rows (what NeMo Gym's rollout collection writes): ``responses_create_params``, a
  ``response`` that is a Responses API object, the verifier fields and the recorded ``reward`` and other
  verdict keys; they are sent back as they are, without the verdict keys and the ``--drop-field`` keys.
- Our rollout dumps from a ``nemo_gym`` environment (``runs/NAME/rollouts/step_*.jsonl``): ``response``
  text, ``target`` = the verifier fields, ``responses_create_params`` (without inline media).
- NeMo Gym dataset rows with a ``response`` text added: ``responses_create_params`` + verifier fields.
Each row's recorded ``reward`` (if any) is compared with the new one. Failures (server down, 4xx/5xx) are
counted and reported per row; the command still exits 0 unless the input or the options are unusable.
"""

from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client (httpx, the environments package) is imported when the command runs
    from environments.nemo_gym_client import GymVerdict

PARAMS_KEY = "responses_create_params"

_REPORT_KEYS = ("recorded_reward", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("NeMo Gym (instead of --verifier)")
    group.add_argument("--server-url", help="re-score with this NeMo Gym resources server (POST /verify)")
    group.add_argument(
        "--drop-field",
        action="append",
        default=[],
        metavar="KEY",
        help="top-level key of NeMo Gym rollout rows not to send back (an output field of the server)",
    )
    group.add_argument("--timeout-s", type=float, default=60.0, help="per request")
    group.add_argument("--no-sessions", action="store_true", help="skip /seed_session and /close_session")
    group.add_argument("--model", default="omni-rl", help="model named in the response objects built")


def build_request(row: dict[str, Any], drop: set[str], model: str) -> dict[str, Any]:
    """The /verify body for a row (module docstring); ValueError naming the field for a row that fits none."""
    from environments.nemo_gym_client import VERDICT_KEYS, verify_body, without_nulls

    params = row.get(PARAMS_KEY)
    if not isinstance(params, dict):
        raise ValueError(f"{PARAMS_KEY}: required, an object (a NeMo Gym row)")
    response = row.get("response")
    if isinstance(response, dict):  # a NeMo Gym rollout row
        skip = set(VERDICT_KEYS) | set(_REPORT_KEYS) | drop
        return {**{k: v for k, v in row.items() if k not in skip}, PARAMS_KEY: without_nulls(params)}
    if not isinstance(response, str):
        raise ValueError("response: must be a Responses API object or the response text")
    if "step" in row and "prompt_id" in row:  # our rollout dump: the verifier fields are the target
        fields = row.get("target")
        if not isinstance(fields, dict):
            raise ValueError("target: must be the row's verifier fields (an object)")
    else:
        skip = {PARAMS_KEY, "response", *VERDICT_KEYS, *_REPORT_KEYS, *drop}
        fields = {k: v for k, v in row.items() if k not in skip}
    return verify_body(fields, params, response, model)


def run(args: argparse.Namespace) -> int:
    from environments.nemo_gym_client import NemoGymClient
    from omni_rl.cli.verify import BadRow, print_summary, report

    try:
        client = NemoGymClient(args.server_url, timeout_s=args.timeout_s, sessions=not args.no_sessions)
    except ValueError as exc:
        report("error", str(exc))
        return 2
    if not args.input.is_file():
        report("error", f"cannot read {args.input}: no such file")
        return 2
    drop = set(args.drop_field)
    rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    bad: list[BadRow] = []
    try:
        with args.input.open("r", encoding="utf-8", errors="replace") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad.append(BadRow(line_no, "-", f"invalid JSON: {exc.msg} at column {exc.colno}"))
                    continue
                if not isinstance(row, dict):
                    bad.append(BadRow(line_no, "-", f"row must be a JSON object, got {type(row).__name__}"))
                    continue
                try:
                    rows.append((line_no, row, build_request(row, drop, args.model)))
                except ValueError as exc:
                    field, _, reason = str(exc).partition(": ")
                    bad.append(BadRow(line_no, field, reason))
    except OSError as exc:
        report("error", f"cannot read {args.input}: {exc}")
        return 2
    for item in bad[: args.show_bad]:
        report("skipped", f"{args.input}:{item.line} field {item.field!r}: {item.reason}")
    if len(bad) > args.show_bad:
        report("skipped", f"... and {len(bad) - args.show_bad} more bad rows")

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
            verdicts: list[GymVerdict] = list(pool.map(lambda r: client.verify(r[2]), rows))
    finally:
        client.close()

    failed = [(line, v) for (line, _, _), v in zip(rows, verdicts, strict=True) if v.error]
    for line, verdict in failed[: args.show_bad]:
        report("error", f"{args.input}:{line}: {verdict.error}")
    if len(failed) > args.show_bad:
        report("error", f"... and {len(failed) - args.show_bad} more rows the server did not score")

    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as out:
            for (_, row, _), verdict in zip(rows, verdicts, strict=True):
                out.write(json.dumps(scored_row(row, verdict), default=str) + "\n")
    print_summary(summarize(len(rows) + len(bad), len(bad), rows, verdicts), "nemo_gym", Path(args.input))
    return 0


def scored_row(row: dict[str, Any], verdict: GymVerdict) -> dict[str, Any]:
    out = {**row, "reward": verdict.reward, "mask_sample": verdict.mask_sample}
    out.update(failure_kind=verdict.failure_kind, failure_reason=verdict.failure_reason, error=verdict.error)
    if verdict.reward_components:
        out["reward_components"] = verdict.reward_components
    if "reward" in row:
        out["recorded_reward"] = row["reward"]
    return out


def summarize(
    total: int, bad: int, rows: list[tuple[int, dict[str, Any], dict[str, Any]]], verdicts: list[GymVerdict]
) -> dict[str, Any]:
    scored = [v for v in verdicts if not v.error]
    recorded = [
        (row["reward"], v.reward)
        for (_, row, _), v in zip(rows, verdicts, strict=True)
        if not v.error and isinstance(row.get("reward"), int | float) and math.isfinite(row["reward"])
    ]
    out: dict[str, Any] = {
        "rows": total,
        "bad_rows": bad,
        "scored": len(scored),
        "errors": len(verdicts) - len(scored),
        "masked": sum(1 for v in verdicts if v.mask_sample),
        "mean_reward": sum(v.reward for v in scored) / len(scored) if scored else 0.0,
    }
    if recorded:
        out["recorded_mean_reward"] = sum(old for old, _ in recorded) / len(recorded)
        out["reward_changed"] = sum(1 for old, new in recorded if abs(old - new) > 1e-6)
    return out
