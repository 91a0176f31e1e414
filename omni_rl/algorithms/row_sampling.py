"""Per-row sampling settings (``prompt.meta["sampling"]``, e.g. from a NeMo Gym row's ``temperature``,
``top_p`` and ``max_output_tokens``) applied to a request's SamplingParams.

- ``max_tokens``: honoured up to the run's ``generation.sampling.max_tokens`` (the bound the memory plan
  and the trainer's batches are sized for).
- ``top_p``: honoured (it changes only which tokens the sampler may draw).
- ``temperature``: honoured only when it equals the run's: the trainer recomputes log-probs at the run's
  one temperature, so another one would make the policy-gradient ratio wrong. A differing value is
  logged once and the run's temperature is used.
Greedy requests (evaluation) stay greedy.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from omni_rl.generation.base import SamplingParams

log = logging.getLogger(__name__)
_warned: set[str] = set()


def apply_row_sampling(params: SamplingParams, meta: dict[str, Any]) -> SamplingParams:
    row = meta.get("sampling")
    if not isinstance(row, dict) or not row:
        return params
    changes: dict[str, Any] = {}
    max_tokens = row.get("max_tokens")
    if _number(max_tokens) and max_tokens >= 1:
        changes["max_tokens"] = min(int(max_tokens), params.max_tokens)
    top_p = row.get("top_p")
    if _number(top_p) and 0 < top_p <= 1 and params.temperature > 0:
        changes["top_p"] = float(top_p)
    temperature = row.get("temperature")
    if _number(temperature) and params.temperature > 0 and not math.isclose(temperature, params.temperature):
        _warn_once(
            "temperature",
            f"row sampling temperature {temperature} differs from generation.sampling.temperature "
            f"{params.temperature}; using the run's (the trainer recomputes log-probs at one temperature)",
        )
    return dataclasses.replace(params, **changes) if changes else params


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)
