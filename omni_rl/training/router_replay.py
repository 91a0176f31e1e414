"""MoE router replay (R3: "Rollout Routing Replay", Ma et al. 2025; verl's ``router_replay``).

The sampler records, for every token it forwarded and every MoE layer, the top-k experts its router chose
(``RouteRecorder``; layout ``[tokens, moe_layers, k]``, the layout vLLM's ``routed_experts`` uses). The
trainer then replays them (``replay_routes``): each router's top-k indices are replaced by the sampler's,
while the gate weights are recomputed from the trainer's own router logits at those indices, so the
router still gets a gradient and only the discrete choice is forced. A small kernel difference that flips
a near-tie between the k-th and (k+1)-th expert then no longer changes which experts run.

Routers are the modules ``moe_aux.is_router`` finds, taken in module order (the order a forward calls
them). Replay needs the router to return ``(logits, weights, indices)`` and to weigh experts as
transformers' ``NemotronHTopkRouter`` does: sigmoid scores gathered at the chosen indices, normalised
when ``norm_topk_prob``, times ``routed_scaling_factor`` (the score-correction bias only chooses experts,
it never weighs them).

Metrics over the tokens that carry a recorded route: ``moe/router_mismatch`` is the fraction of
(token, MoE layer) pairs whose experts used by the trainer differ from the sampler's (0 with replay),
``moe/router_mismatch_natural`` the same for the experts the trainer's router would choose itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from omni_rl.training.moe_aux import is_router

log = logging.getLogger(__name__)


def router_modules(model: nn.Module) -> list[nn.Module]:
    return [m for _, m in model.named_modules() if is_router(m)]


def _split(name: str, out: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not (isinstance(out, tuple) and len(out) == 3 and not out[2].is_floating_point()):
        raise TypeError(f"router replay: router {name} must return (logits, weights, indices)")
    return out  # type: ignore[return-value]


class RouteRecorder:
    """Records the experts each router chooses; ``take`` returns what the forwards since the last call
    chose, ``[tokens, moe_layers, k]`` (int16, CPU). Use as a context manager around the forwards."""

    def __init__(self, model: nn.Module) -> None:
        self.routers = router_modules(model)
        if not self.routers:
            raise ValueError(f"router replay: no MoE routers found in {type(model).__name__}")
        self._pending: list[list[torch.Tensor]] = [[] for _ in self.routers]
        self._handles: list = []

    def __enter__(self) -> RouteRecorder:
        for i, router in enumerate(self.routers):

            def hook(_m: nn.Module, _inp: object, out: object, i: int = i) -> None:
                self._pending[i].append(_split(f"#{i}", out)[2].detach().to("cpu", torch.int16))

            self._handles.append(router.register_forward_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def take(self) -> torch.Tensor:
        counts = {len(p) for p in self._pending}
        if counts != {1}:
            raise RuntimeError(
                f"router replay: expected one call per router since the last take, got {counts}"
            )
        out = torch.stack([p[0] for p in self._pending], dim=1)
        self._pending = [[] for _ in self.routers]
        return out


def gate_weights(router: nn.Module, logits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """NemotronH's top-k gate weights at ``indices`` from the router ``logits`` (see the module doc)."""
    if not hasattr(router, "routed_scaling_factor"):
        raise TypeError(
            f"router replay: {type(router).__name__} is not a NemotronH-style top-k router "
            "(no routed_scaling_factor); its gate weights cannot be recomputed"
        )
    weights = logits.float().sigmoid().gather(1, indices.long())
    if getattr(router, "norm_topk_prob", False):
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * router.routed_scaling_factor


@dataclass
class ReplayStats:
    routed: float = 0.0  # (token, layer) pairs with a recorded route
    differ_used: float = 0.0
    differ_natural: float = 0.0

    def metrics(self) -> dict[str, float]:
        if not self.routed:
            return {}
        return {
            "moe/router_mismatch": self.differ_used / self.routed,
            "moe/router_mismatch_natural": self.differ_natural / self.routed,
        }


def forced_routes(
    attention_mask: torch.Tensor, routes: Sequence[np.ndarray | torch.Tensor | None], layers: int, k: int
) -> torch.Tensor:
    """``[layers, B * L, k]`` expert ids for a right-padded batch (-1: no recorded route, the router
    chooses): row b's route for its position t lands at b * L + t."""
    B, L = attention_mask.shape
    out = torch.full((layers, B * L, k), -1, dtype=torch.long)
    for b, r in enumerate(routes):
        if r is None:
            continue
        r = torch.as_tensor(np.asarray(r)).long()
        if r.dim() != 3 or r.shape[1] != layers or r.shape[2] != k:
            raise ValueError(
                f"routed_experts of row {b}: shape {tuple(r.shape)}, expected [tokens, {layers}, {k}]"
            )
        n = min(r.shape[0], int(attention_mask[b].sum()))
        out[:, b * L : b * L + n] = r[:n].permute(1, 0, 2)
    return out


@contextlib.contextmanager
def replay_routes(
    model: nn.Module,
    attention_mask: torch.Tensor,
    routes: Sequence[np.ndarray | torch.Tensor | None],
    *,
    enforce: bool,
) -> Iterator[ReplayStats]:
    """Within the context every router of ``model`` uses the recorded ``routes`` (one per batch row,
    ``[tokens, layers, k]`` or None) when ``enforce``; either way the yielded stats count how many
    routes the trainer's router would choose differently. Keep the context open through backward when
    gradient checkpointing recomputes the layers (the stats count the first forward only)."""
    routers = router_modules(model)
    stats = ReplayStats()
    if not routers or all(r is None for r in routes):
        yield stats
        return
    k = int(getattr(routers[0], "top_k", 0)) or int(
        np.asarray(next(r for r in routes if r is not None)).shape[2]
    )
    forced = forced_routes(attention_mask, routes, len(routers), k)
    calls = [0] * len(routers)
    handles = []
    for i, router in enumerate(routers):

        def hook(mod: nn.Module, _inp: object, out: object, i: int = i):
            logits, weights, idx = _split(type(mod).__name__, out)
            if forced.shape[1] != idx.shape[0]:  # e.g. video tokens pruned inside the forward
                if calls[i] == 0:
                    log.warning(
                        "router replay: %d routed tokens, %d recorded; not replayed",
                        idx.shape[0],
                        forced.shape[1],
                    )
                calls[i] += 1
                return None
            f = forced[i].to(idx.device)
            has = (f >= 0).all(dim=-1)
            used = torch.where(has[:, None], f, idx.long()) if enforce else idx.long()
            if calls[i] == 0:  # not again when gradient checkpointing recomputes the layer
                recorded = f.sort(dim=-1).values
                stats.routed += float(has.sum())
                for name, chosen in (("differ_used", used), ("differ_natural", idx.long())):
                    differs = (chosen.sort(dim=-1).values != recorded).any(dim=-1) & has
                    setattr(stats, name, getattr(stats, name) + float(differs.sum()))
            calls[i] += 1
            if not enforce:
                return None
            return logits, gate_weights(mod, logits, used).to(weights.dtype), used.to(idx.dtype)

        handles.append(router.register_forward_hook(hook))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()
