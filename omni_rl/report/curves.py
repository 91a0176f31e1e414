"""Which metrics.jsonl keys are drawn, grouped into charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from omni_rl.report.charts import Series, line_chart, moving_mean

MAX_SERIES = 8  # per chart; more would be unreadable
SMOOTH_FROM = 40  # steps: from here on, noisy per-step rates are drawn as a moving mean

# (title, key prefixes or exact keys, smooth); a chart whose keys are absent is left out
CHARTS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("Reward", ("reward/",), True),
    ("Accuracy", ("accuracy/",), True),
    ("KL", ("train/kl", "train/kl_ref"), False),
    ("Entropy", ("train/entropy",), False),
    ("Response length (tokens)", ("response/length_mean", "response/length_max"), False),
    ("Timings (s)", ("timing/",), False),
    ("Loss", ("train/loss",), False),
    ("Grad norm", ("train/grad_norm",), False),
    ("Groups with zero reward variance", ("groups/zero_variance_frac",), False),
    ("Eval accuracy", ("eval/",), False),
    ("DPO", ("dpo/",), False),
    ("Generated tokens/s", ("throughput/gen_tokens_per_s",), False),
)


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key.startswith(p) if p.endswith("/") else key == p for p in patterns)


def _series(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    points = []
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            points.append((float(row["step"]), float(value)))
    return points


def _order(key: str) -> tuple[int, str]:
    # overall means first, then per environment, alphabetically
    return (0 if key.endswith("/mean") or key == "eval/accuracy" else 1, key)


def chart_svgs(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys = sorted({k for row in rows for k in row if k not in ("step", "time")}, key=_order)
    charts = []
    for title, patterns, smooth in CHARTS:
        chosen = [k for k in keys if _matches(k, patterns)]
        if title == "Timings (s)":
            chosen = [k for k in chosen if k.endswith("_s")]
        if not chosen:
            continue
        note = ""
        if len(chosen) > MAX_SERIES:
            note = f"(first {MAX_SERIES} of {len(chosen)} series)"
            chosen = chosen[:MAX_SERIES]
        series = []
        for key in chosen:
            points = _series(rows, key)
            if smooth and len(points) >= SMOOTH_FROM:
                window = max(2, len(points) // 10)
                points = moving_mean(points, window)
                note = note or f"(mean of the last {window} steps)"
            label = key.split("/", 1)[1] if key.startswith(patterns[0]) and patterns[0].endswith("/") else key
            series.append(Series(label, points))
        charts.append(line_chart(title, series, note=note))
    return charts
