"""Frozen encoders run once per unique media item, not once per sample.

The G samples of a GRPO group share their media, and the same media come back in every forward of a
step (old log-probs, each PPO epoch and mini-batch, the KL reference). When a tower (the vision
encoder, the audio encoder) is frozen, its output depends only on its input, so ``TowerCache`` keeps
each item's features and serves them again:

- images: the tower's packed input is split per image (``image_grid_hw``); images are independent
  there (block-diagonal attention), so each image's features are its own;
- video: one item per packed frame group (a row of the tower's dense batch);
- audio: one item per clip (its valid frames; the stored features are padded or cut to the call's
  length, and the model keeps only each clip's valid positions).

Items are found by a cheap key (shape and a float64 sum) and confirmed with ``torch.equal`` against
the stored input, so a key collision never serves wrong features. The misses of a call run in one
tower forward. The projectors are not cached: they may train, and they run on every call.

Only towers with no trainable parameter are wrapped (checked on every call: a tower that is unfrozen
later bypasses the cache). The towers are outside the FSDP2 layer units (see
``distributed.fsdp_units``), so a rank that skips a tower's body issues no collective the others
wait for. The store is bounded (``max_bytes``, least recently used items leave first); ``clear()``
empties it (after loading weights).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class _Store:
    """key -> list of (input, features), least recently used first, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple, item: torch.Tensor) -> torch.Tensor | None:
        for stored, features in self.entries.get(key, ()):
            if stored.shape == item.shape and torch.equal(stored, item):
                self.entries.move_to_end(key)
                return features
        return None

    def put(self, key: tuple, item: torch.Tensor, features: torch.Tensor) -> None:
        size = item.numel() * item.element_size() + features.numel() * features.element_size()
        if size > self.max_bytes:
            return
        # copies: a view would keep the whole batch's input and output alive
        self.entries.setdefault(key, []).append((item.detach().clone(), features.detach().clone()))
        self.entries.move_to_end(key)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.bytes -= sum(i.numel() * i.element_size() + f.numel() * f.element_size() for i, f in evicted)

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


def _keys(items: list[torch.Tensor], extra: list[tuple]) -> list[tuple]:
    """(extra, shape, float64 sum) per item, with one device-to-host copy for all the sums."""
    if not items:
        return []
    sums = torch.stack([t.detach().sum(dtype=torch.float64) for t in items]).tolist()
    return [(*e, tuple(t.shape), s) for t, e, s in zip(items, extra, sums, strict=True)]


class TowerCache:
    """Wraps the frozen towers of ``models`` (the policy, and the KL reference: same frozen weights).

    ``encoded`` counts the items each tower actually encoded, ``served`` those answered from the store.
    """

    def __init__(self, models: list[nn.Module], max_bytes: int) -> None:
        self.store = _Store(max_bytes)
        self.encoded: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.wrapped: list[str] = []
        for model in models:
            vision, audio = getattr(model, "vision_model", None), getattr(model, "audio_tower", None)
            if vision is not None and _frozen(vision):
                self._wrap(vision, self._vision_forward)
                self.wrapped.append("vision")
            if audio is not None and _frozen(audio):
                self._wrap(audio, self._audio_forward)
                self.wrapped.append("audio")

    def clear(self) -> None:
        self.store.clear()

    def take_stats(self) -> dict[str, float]:
        """``stats()``, then the counts start again from zero (the trainer reports them per update)."""
        out = self.stats()
        self.encoded.clear()
        self.served.clear()
        return out

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind in sorted(set(self.encoded) | set(self.served)):
            out[f"encoder/{kind}_encoded"] = float(self.encoded[kind])
            out[f"encoder/{kind}_reused"] = float(self.served[kind])
        return out

    @staticmethod
    def _wrap(tower: nn.Module, forward: Callable[..., Any]) -> None:
        original = tower.forward  # the bound method; hooks (FSDP2's included) stay on __call__

        def cached(*args: Any, **kwargs: Any) -> Any:
            if _frozen(tower):
                return forward(original, *args, **kwargs)
            return original(*args, **kwargs)

        tower.forward = cached

    # ---- the vision tower: images (packed, with image_grid_hw) and video (dense frame groups) -------

    def _vision_forward(
        self, original: Callable[..., Any], pixel_values: torch.Tensor, image_grid_hw: Any = None, **kw: Any
    ) -> Any:
        if _wants_internals(kw):
            return original(pixel_values, image_grid_hw=image_grid_hw, **kw)
        if image_grid_hw is not None:
            grids = [tuple(g) for g in image_grid_hw.tolist()]
            items = list(pixel_values.split([h * w for h, w in grids]))
            extra = [("image", g) for g in grids]

            def encode(idx: list[int]) -> list[torch.Tensor]:
                packed = torch.cat([items[i] for i in idx])
                sub_grid = image_grid_hw[idx]
                features = original(packed, image_grid_hw=sub_grid, **kw).features
                return list(features.split([grids[i][0] * grids[i][1] for i in idx]))

            features = self._serve("image", items, extra, encode)
            return _Output(torch.cat(features))
        items = list(pixel_values.unbind(0))

        def encode_frames(idx: list[int]) -> list[torch.Tensor]:
            return list(original(torch.stack([items[i] for i in idx]), **kw).features.unbind(0))

        features = self._serve("video", items, [("video",)] * len(items), encode_frames)
        return _Output(torch.stack(features))

    # ---- the audio tower: padded clips with a mask -----------------------------------------------------

    def _audio_forward(
        self,
        original: Callable[..., Any],
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kw: Any,
    ) -> Any:
        return_dict = kw.pop("return_dict", True)
        if _wants_internals(kw) or attention_mask is None or not return_dict:
            return original(
                input_features=input_features, attention_mask=attention_mask, return_dict=return_dict, **kw
            )
        lengths = attention_mask.sum(-1).tolist()
        items = [input_features[i, : int(n)] for i, n in enumerate(lengths)]

        def encode(idx: list[int]) -> list[torch.Tensor]:
            out = original(
                input_features=input_features[idx], attention_mask=attention_mask[idx], return_dict=True, **kw
            ).last_hidden_state
            return list(out.unbind(0))

        features = self._serve("audio", items, [("audio",)] * len(items), encode)
        length = max(f.shape[0] for f in features)
        # each clip's valid positions come first; pad every row to the longest stored one
        rows = [
            f if f.shape[0] == length else torch.cat([f, f.new_zeros(length - f.shape[0], *f.shape[1:])])
            for f in features
        ]
        return _Output(None, last_hidden_state=torch.stack(rows))

    # ---- shared ---------------------------------------------------------------------------------------

    def _serve(
        self,
        kind: str,
        items: list[torch.Tensor],
        extra: list[tuple],
        encode: Callable[[list[int]], list[torch.Tensor]],
    ) -> list[torch.Tensor]:
        """Features per item: stored ones served, the misses (each distinct one once) encoded together."""
        keys = _keys(items, extra)
        out: list[torch.Tensor | None] = [self.store.get(k, t) for k, t in zip(keys, items, strict=True)]
        first: dict[int, int] = {}  # a missed item -> the first equal item of this call
        todo: list[int] = []
        for i, got in enumerate(out):
            if got is not None:
                continue
            same = next((j for j in todo if keys[j] == keys[i] and torch.equal(items[j], items[i])), None)
            if same is None:
                todo.append(i)
            first[i] = i if same is None else same
        if todo:
            for i, features in zip(todo, encode(todo), strict=True):
                out[i] = features
                self.store.put(keys[i], items[i], features)
            for i, j in first.items():
                out[i] = out[j]
        self.encoded[kind] += len(todo)
        self.served[kind] += len(items) - len(todo)
        return out  # type: ignore[return-value]


class _Output:
    """What the model reads of a tower's output: ``features`` (vision), ``last_hidden_state`` (audio)."""

    def __init__(self, features: torch.Tensor | None, last_hidden_state: torch.Tensor | None = None) -> None:
        self.features = features
        self.last_hidden_state = last_hidden_state
        self.hidden_states = None
        self.attentions = None


def _wants_internals(kwargs: dict[str, Any]) -> bool:
    """Attentions or hidden states asked for: the call runs the tower (the store keeps features only)."""
    return bool(kwargs.get("output_attentions") or kwargs.get("output_hidden_states"))


def _frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())
