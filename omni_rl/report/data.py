"""What a run folder written by ``omni-rl train`` holds, read for the report: ``metrics.jsonl``, the
rollout dumps ``rollouts/step_NNNNNN.jsonl`` and ``config.yaml``. A bad line is skipped and named
(file and line); only a folder with neither metrics nor rollouts is an error."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METRICS_FILE = "metrics.jsonl"
ROLLOUTS_DIR = "rollouts"
CONFIG_FILE = "config.yaml"
_STEP_FILE = re.compile(r"step_(\d+)\.jsonl")


class RunFolderError(ValueError):
    """The folder is not a run folder (or cannot be read)."""


@dataclass
class RunData:
    run_dir: Path
    metrics: list[dict[str, Any]]  # one row per step, in file order (a resumed run's repeats: last wins)
    rollout_files: dict[int, Path]  # step -> dump
    config: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.config and isinstance(self.config.get("run_name"), str):
            return self.config["run_name"]
        return self.run_dir.name


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such folder")
    warnings: list[str] = []
    metrics_path = run_dir / METRICS_FILE
    metrics = read_metrics_rows(metrics_path, warnings) if metrics_path.is_file() else []
    rollout_dir = run_dir / ROLLOUTS_DIR
    files = {}
    if rollout_dir.is_dir():
        for path in rollout_dir.iterdir():
            match = _STEP_FILE.fullmatch(path.name)
            if match and path.is_file():
                files[int(match.group(1))] = path
    if not metrics and not files:
        raise RunFolderError(
            f"{run_dir}: neither {METRICS_FILE} nor {ROLLOUTS_DIR}/step_*.jsonl found; "
            "pass the run folder omni-rl train wrote (<output_dir>/<run_name>)"
        )
    config = None
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else None
        except (OSError, yaml.YAMLError) as exc:
            warnings.append(f"{config_path}: cannot read ({exc})")
    return RunData(run_dir, metrics, dict(sorted(files.items())), config, warnings)


def read_metrics_rows(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """metrics.jsonl rows with an int ``step``; non-finite values (null + ``nonfinite``) become NaN."""
    by_step: dict[int, dict[str, Any]] = {}
    for line_no, row in _jsonl(path, warnings):
        step = row.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            warnings.append(f"{path}:{line_no}: field 'step' must be an integer; line skipped")
            continue
        for key in row.pop("nonfinite", None) or {}:
            row[key] = math.nan
        by_step[step] = row  # a resumed run appends the steps it redid: the last one is the one kept
    return [by_step[s] for s in sorted(by_step)]


def read_rollouts(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    rows = []
    for line_no, row in _jsonl(path, warnings):
        if not isinstance(row.get("response"), str):
            warnings.append(f"{path}:{line_no}: field 'response' missing or not a string; line skipped")
            continue
        rows.append(row)
    return rows


def _jsonl(path: Path, warnings: list[str]) -> list[tuple[int, dict[str, Any]]]:
    out = []
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        warnings.append(f"{path}: cannot read ({exc.strerror or exc})")
        return out
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                warnings.append(f"{path}:{line_no}: invalid JSON ({exc.msg}); line skipped")
                continue
            if not isinstance(row, dict):
                warnings.append(f"{path}:{line_no}: not a JSON object; line skipped")
                continue
            out.append((line_no, row))
    return out


def pick_steps(steps: Sequence[int], limit: int) -> list[int]:
    """At most ``limit`` of ``steps`` (sorted), evenly spread, always the first and the last."""
    steps = sorted(steps)
    if limit <= 0 or len(steps) <= limit:
        return list(steps) if limit > 0 else []
    if limit == 1:
        return [steps[-1]]
    picks = {round(i * (len(steps) - 1) / (limit - 1)) for i in range(limit)}
    return [steps[i] for i in sorted(picks)]


@dataclass
class PromptGroup:
    """One prompt of a step and its responses (rows in sample order)."""

    env: str
    prompt_id: str
    prompt: str
    target: Any
    media: list[dict[str, Any]]
    rows: list[dict[str, Any]]


def group_rows(rows: Sequence[dict[str, Any]]) -> list[PromptGroup]:
    """Rows of one dump grouped by (env, prompt_id), in order of first appearance."""
    groups: dict[tuple[str, str], PromptGroup] = {}
    for row in rows:
        env, prompt_id = str(row.get("env", "")), str(row.get("prompt_id", row.get("id", "")))
        key = (env, prompt_id)
        if key not in groups:
            media = row.get("media") if isinstance(row.get("media"), list) else []
            prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else ""
            groups[key] = PromptGroup(env, prompt_id, prompt, row.get("target"), media, [])
        groups[key].rows.append(row)
    for group in groups.values():
        group.rows.sort(key=lambda r: r.get("sample_index") if isinstance(r.get("sample_index"), int) else 0)
    return list(groups.values())
