"""Line charts as inline SVG, drawn by hand (no plotting library, no script): one chart per metric group,
several series each, with axes, ticks, a legend and a native tooltip per point set."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 400, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 34  # plot margins (px)


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (step, value), finite values only


def moving_mean(points: Sequence[tuple[float, float]], window: int) -> list[tuple[float, float]]:
    """Trailing mean over ``window`` points (fewer at the start); window 1 returns the points."""
    out, total = [], 0.0
    for i, (x, y) in enumerate(points):
        total += y
        if i >= window:
            total -= points[i - window][1]
        out.append((x, total / min(i + 1, window)))
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def fmt_tick(value: float, spacing: float) -> str:
    """A tick label with as many decimals as the tick spacing needs (so neighbours never print alike)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or spacing < 1e-4:
        return f"{value:.2e}"
    decimals = max(0, -math.floor(math.log10(spacing) + 1e-9))
    return f"{value:.{decimals}f}"


def line_chart(title: str, series: Sequence[Series], *, note: str = "") -> str:
    """An ``<svg>`` chart; an empty series list gives a chart that says there is no data."""
    series = [s for s in series if s.points]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}'
        + (f' <tspan class="chart-note">{escape(note)}</tspan>' if note else "")
        + "</text>",
    ]
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    if not series:
        parts.append(
            f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle">no data</text></svg>'
        )
        return "".join(parts)
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    xmin, xmax = min(xs), max(xs)
    ymin, ymax = min(ys), max(ys)
    if ymax == ymin:
        pad = abs(ymax) * 0.1 or 1.0
        ymin, ymax = ymin - pad, ymax + pad
    if xmax == xmin:
        xmin, xmax = xmin - 1, xmax + 1

    def px(x: float) -> float:
        return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0)

    def py(y: float) -> float:
        return y0 - (y - ymin) / (ymax - ymin) * (y0 - y1)

    parts.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" class="plot-area"/>')
    yticks = nice_ticks(ymin, ymax)
    spacing = yticks[1] - yticks[0] if len(yticks) > 1 else abs(ymax - ymin) or 1.0
    for tick in yticks:
        y = py(tick)
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{fmt_tick(tick, spacing)}</text>'
        )
    for tick in nice_ticks(xmin, xmax, 6):
        if float(tick).is_integer():  # steps are whole numbers
            x = px(tick)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}" class="axis"/>')
            parts.append(
                f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" class="tick">{int(tick)}</text>'
            )
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 4}" text-anchor="middle" class="tick">step</text>')
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        last = s.points[-1][1]
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6">'
            f"<title>{escape(s.name)}: last {fmt(last)}, min {fmt(min(y for _, y in s.points))}, "
            f"max {fmt(max(y for _, y in s.points))}</title></polyline>"
        )
        if len(s.points) == 1:
            x, y = s.points[0]
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>')
    legend_y = y1 + 12
    longest = max(len(s.name) for s in series)
    parts.append(
        f'<rect x="{x0 + 3}" y="{y1 + 2}" width="{22 + 5.6 * longest:.0f}" height="{12 * len(series) + 3}" '
        'class="legend-box"/>'
    )
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        y = legend_y + 12 * i
        parts.append(f'<rect x="{x0 + 6}" y="{y - 7}" width="10" height="3" fill="{color}"/>')
        parts.append(f'<text x="{x0 + 20}" y="{y}" class="legend">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
