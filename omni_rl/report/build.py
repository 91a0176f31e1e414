"""``build_report``: a run folder -> one static HTML file plus ``<name>_media/`` beside it."""

from __future__ import annotations

import datetime
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_rl.report.curves import chart_svgs
from omni_rl.report.data import PromptGroup, group_rows, load_run, pick_steps, read_rollouts
from omni_rl.report.media import MediaLimits, MediaWriter
from omni_rl.report.page import StepView, page

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class ReportOptions:
    max_steps: int = 20  # rollout steps in the browser (evenly spread, first and last always)
    prompts_per_step: int = 8  # prompts shown per step, taken in turn from each environment
    responses_per_prompt: int = 16  # of a prompt's G responses
    media: MediaLimits = field(default_factory=MediaLimits)

    def __post_init__(self) -> None:
        for name in ("max_steps", "prompts_per_step", "responses_per_prompt"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ReportResult:
    path: Path
    steps_shown: list[int]
    media_files: int
    media_failed: int
    warnings: list[str]


def interleave(groups: Sequence[PromptGroup], limit: int) -> list[PromptGroup]:
    """Up to ``limit`` groups, one from each environment in turn (so a small cap still shows every env)."""
    by_env: dict[str, list[PromptGroup]] = defaultdict(list)
    for g in groups:
        by_env[g.env].append(g)
    out: list[PromptGroup] = []
    queues = [list(v) for _, v in sorted(by_env.items())]
    while len(out) < limit and any(queues):
        for queue in queues:
            if queue and len(out) < limit:
                out.append(queue.pop(0))
    return out


def _summary(run: Any, steps_shown: Sequence[int]) -> list[tuple[str, str]]:
    cfg = run.config or {}
    items = [("run folder", str(run.run_dir))]
    for key in ("algorithm", "steps", "prompts_per_step", "group_size"):
        if key in cfg:
            items.append((key, str(cfg[key])))
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    if model:
        items.append(("model", "tiny (random)" if model.get("tiny") else str(model.get("path", "?"))))
    if run.metrics:
        last = run.metrics[-1]
        items.append(("steps logged", f"{len(run.metrics)} (last {last['step']})"))
        tail = run.metrics[-20:]
        for key in ("reward/mean", "accuracy/mean"):
            values = [r[key] for r in tail if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
            if values:
                items.append((f"{key} (last {len(values)} steps)", f"{sum(values) / len(values):.3f}"))
    items.append(("rollout steps shown", f"{len(steps_shown)} of {len(run.rollout_files)}"))
    items.append(("generated", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")))
    return items


def build_report(
    run_dir: str | Path, out: str | Path | None = None, options: ReportOptions | None = None
) -> ReportResult:
    options = options or ReportOptions()
    run = load_run(run_dir)
    out_path = Path(out) if out is not None else run.run_dir / REPORT_FILE
    out_path.parent.mkdir(parents=True, exist_ok=True)
    media = MediaWriter(out_path.parent, f"{out_path.stem}_media", options.media)

    steps_shown = pick_steps(list(run.rollout_files), options.max_steps)
    views, envs = [], set()
    for step in steps_shown:
        groups = group_rows(read_rollouts(run.rollout_files[step], run.warnings))
        envs.update(g.env for g in groups)
        views.append(StepView(step, interleave(groups, options.prompts_per_step), len(groups)))
    envs.update(
        k.split("/", 1)[1]
        for row in run.metrics
        for k in row
        if k.startswith("reward/") and k != "reward/mean"
    )
    envs = {e for e in envs if "/" not in e}  # reward/<env>/<component> are not environments

    html = page(
        title=f"omni-rl report: {run.name}",
        summary=_summary(run, steps_shown),
        charts=chart_svgs(run.metrics),
        steps=views,
        envs=sorted(envs),
        media=media,
        max_responses=options.responses_per_prompt,
        notes=run.warnings[:50]
        + ([f"... and {len(run.warnings) - 50} more"] if len(run.warnings) > 50 else []),
    )
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out_path)
    return ReportResult(out_path, steps_shown, media.written, media.failed, run.warnings)
