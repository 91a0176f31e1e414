"""Memory planning: per-role, per-GPU bytes of a run before it starts (``omni-rl plan``)."""

from omni_rl.planning.plan import Plan, PlanError, format_plan, make_plan, plan_line
from omni_rl.planning.shapes import ModelShape, model_config, model_shape

__all__ = [
    "ModelShape",
    "Plan",
    "PlanError",
    "format_plan",
    "make_plan",
    "model_config",
    "model_shape",
    "plan_line",
]
