"""The ``grounding`` verifier: target validation, coordinate conventions, hit test and IoU.
The behaviour is documented in ``verifiers.grounding`` (the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from verifiers.base import BaseOptions, OptionError, Verifier, VerifierError, VerifyResult
from verifiers.grounding.parse import Prediction, parse_prediction
from verifiers.registry import register

Coords = Literal["pixel", "norm1", "norm1000", "auto"]
_EDGE_TOLERANCE = 1e-6  # pixels; absorbs float rounding when normalised values are scaled back


@dataclass
class GroundingOptions(BaseOptions):
    mode: Literal["point", "iou"] = "point"
    coords: Coords = "auto"
    iou_threshold: float = 0.5
    # iou mode: score 1/0 by iou >= iou_threshold instead of the IoU itself
    binary: bool = False
    # point mode reward shape (``correct`` is always the hit test):
    #   none   1 inside the box, else 0 (ScreenSpot-Pro);
    #   edge   1 inside, else (1 - d/r)^2 with d the distance to the box's nearest edge;
    #   center (1 - d/r)^2 everywhere, d the distance to the box centre (NeMo Gym's gui_coordinate);
    # d in image-normalised units (dx / width, dy / height), 0 once d >= r = shaping_radius.
    shaping: Literal["none", "edge", "center"] = "none"
    shaping_radius: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 < self.shaping_radius <= 2.0:
            raise OptionError(f"grounding: option shaping_radius={self.shaping_radius} must be in (0, 2]")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise OptionError(f"grounding: option iou_threshold={self.iou_threshold} must be in (0, 1]")


@dataclass(frozen=True)
class Target:
    box: tuple[float, float, float, float]
    width: float
    height: float


def _numbers(value: Any, field: str, count: int) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != count:
        raise VerifierError(f"grounding target.{field} must be a list of {count} numbers, got {value!r:.80}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise VerifierError(f"grounding target.{field} must hold finite numbers, got {value!r:.80}")
        out.append(float(item))
    return tuple(out)


def parse_target(target: Any, mode: str = "point") -> Target:
    """Validate a target dict; errors name the field at fault."""
    if not isinstance(target, dict):
        raise VerifierError(
            f'grounding target must be {{"bbox": [x1, y1, x2, y2], "image_size": [w, h]}}, '
            f"got {type(target).__name__}"
        )
    if "bbox" not in target:
        raise VerifierError("grounding target is missing field 'bbox' ([x1, y1, x2, y2] in pixels)")
    size_key = "image_size" if "image_size" in target else "img_size"
    if size_key not in target:
        raise VerifierError("grounding target is missing field 'image_size' ([width, height] in pixels)")
    x1, y1, x2, y2 = _numbers(target["bbox"], "bbox", 4)
    width, height = _numbers(target[size_key], size_key, 2)
    if width <= 0 or height <= 0:
        raise VerifierError(f"grounding target.{size_key} must be positive, got [{width:g}, {height:g}]")
    if x2 < x1:
        raise VerifierError(f"grounding target.bbox: x2 ({x2:g}) < x1 ({x1:g}); expected [x1, y1, x2, y2]")
    if y2 < y1:
        raise VerifierError(f"grounding target.bbox: y2 ({y2:g}) < y1 ({y1:g}); expected [x1, y1, x2, y2]")
    if x1 > width or y1 > height or x2 < 0 or y2 < 0:
        raise VerifierError(
            f"grounding target.bbox [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies wholly outside the image "
            f"(target.{size_key} [{width:g}, {height:g}]; is it written [height, width]?)"
        )
    if mode == "iou" and (x2 == x1 or y2 == y1):
        raise VerifierError("grounding target.bbox has zero area; iou mode needs a box with an area")
    return Target((x1, y1, x2, y2), width, height)


def resolve_coords(values: Sequence[float], coords: str, width: float, height: float) -> str:
    """The convention to read ``values`` in (the ``auto`` rule is in the package docstring)."""
    if coords != "auto":
        return coords
    if all(0.0 <= v <= 1.0 for v in values):
        return "norm1"
    xs, ys = values[0::2], values[1::2]
    off_screen = any(x > width for x in xs) or any(y > height for y in ys)
    if off_screen and all(0.0 <= v <= 1000.0 for v in values):
        return "norm1000"
    return "pixel"


def to_pixels(values: Sequence[float], coords: str, width: float, height: float) -> list[float]:
    """Scale x/y pairs from ``coords`` (pixel, norm1, norm1000) to pixels."""
    if coords == "pixel":
        return [float(v) for v in values]
    scale = 1.0 if coords == "norm1" else 1000.0
    return [v * (width if i % 2 == 0 else height) / scale for i, v in enumerate(values)]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes (corners in any order); 0 if no area."""
    ax1, ax2 = sorted((a[0], a[2]))
    ay1, ay2 = sorted((a[1], a[3]))
    bx1, bx2 = sorted((b[0], b[2]))
    by1, by2 = sorted((b[1], b[3]))
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def shaped_distance(point: Sequence[float], goal: Target, shaping: str) -> float:
    """Distance in image-normalised units from ``point`` to the box edge (0 inside) or its centre."""
    x1, y1, x2, y2 = goal.box
    if shaping == "center":
        dx, dy = point[0] - (x1 + x2) / 2, point[1] - (y1 + y2) / 2
    else:
        dx = max(x1 - point[0], 0.0, point[0] - x2)
        dy = max(y1 - point[1], 0.0, point[1] - y2)
    return math.hypot(dx / goal.width, dy / goal.height)


def distance_reward(distance: float, radius: float) -> float:
    """(1 - d/r)^2 for d < r, else 0: 1 at the target, falling smoothly to 0 at the radius."""
    return (1.0 - distance / radius) ** 2 if distance < radius else 0.0


def _inside(point: Sequence[float], box: Sequence[float]) -> bool:
    x, y = point
    tol = _EDGE_TOLERANCE
    return box[0] - tol <= x <= box[2] + tol and box[1] - tol <= y <= box[3] + tol


@register("grounding")
class GroundingVerifier(Verifier):
    Options = GroundingOptions
    options: GroundingOptions

    def check_target(self, target: Any) -> None:
        parse_target(target, self.options.mode)

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        opts = self.options
        goal = parse_target(target, opts.mode)
        prediction = parse_prediction(response)
        if prediction is None:
            return VerifyResult(0.0, False, None, {"format": None, "reason": "no coordinates found"})
        convention = resolve_coords(prediction.values, opts.coords, goal.width, goal.height)
        pixels = to_pixels(prediction.values, convention, goal.width, goal.height)
        details: dict[str, Any] = {
            "format": prediction.format,
            "coords": convention,
            "raw": list(prediction.values),
            "kind": "box" if prediction.is_box else "point",
        }
        if opts.mode == "iou":
            return self._score_iou(prediction, pixels, goal, details)
        click = [(pixels[0] + pixels[2]) / 2, (pixels[1] + pixels[3]) / 2] if prediction.is_box else pixels
        details["click"] = click
        hit = _inside(click, goal.box)
        if opts.shaping == "none":
            return VerifyResult(float(hit), hit, pixels, details)
        distance = shaped_distance(click, goal, opts.shaping)
        details["distance"] = distance
        return VerifyResult(distance_reward(distance, opts.shaping_radius), hit, pixels, details)

    def _score_iou(
        self, prediction: Prediction, pixels: list[float], goal: Target, details: dict[str, Any]
    ) -> VerifyResult:
        opts = self.options
        if not prediction.is_box:
            details.update(iou=0.0, reason="iou mode needs a predicted box, got a point")
            return VerifyResult(0.0, False, pixels, details)
        iou = box_iou(pixels, goal.box)
        details["iou"] = iou
        correct = iou >= opts.iou_threshold
        score = float(correct) if opts.binary else iou
        return VerifyResult(score, correct, pixels, details)

    def summarize(self, results: Iterable[VerifyResult]) -> dict[str, float]:
        results = list(results)
        summary = super().summarize(results)
        summary["unparsed"] = sum(r.error is None and r.details.get("format", "") is None for r in results)
        return summary
