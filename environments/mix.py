"""Mixing environments by weight: a deterministic, resumable prompt sampler.

Draw ``k`` picks an environment with probability proportional to its weight, from an RNG seeded by
``(seed, k)``; each environment walks its prompts in a fresh seeded permutation per epoch. The whole
position is therefore ``(draws, per-environment (epoch, index))``: ``state_dict()`` is a small dict the
RL loop checkpoints, and ``load_state_dict`` continues the exact same sequence.

A spec: ``{"name": env name, "weight": 1.0, "options": {...}, "data": path | list of rows or Prompts,
"label": unique key (default name), "generate": {"n": 64, "seed": 0}}``; ``generate`` writes the
environment's synthetic dataset under ``data_dir`` when no ``data`` is given.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from environments.base import EnvError, Environment, EnvRowError
from environments.registry import get
from omni_rl.data.schema import Prompt, RowError, validate_row
from omni_rl.media.params import MediaParams

log = logging.getLogger(__name__)

_SPEC_KEYS = {"name", "weight", "options", "data", "label", "generate"}
STATE_VERSION = 1


@dataclass
class MixEntry:
    label: str
    env: Environment
    weight: float
    prompts: list[Prompt]  # prepared by env.make_prompt, env field = label
    skipped: list[str] = dataclasses.field(default_factory=list)  # why rows were left out


class EnvMix:
    """Samples prepared prompts across environments by weight; see the module docstring."""

    def __init__(self, entries: Sequence[MixEntry], seed: int = 0) -> None:
        if not entries:
            raise EnvError("an environment mix needs at least one environment")
        labels = [e.label for e in entries]
        if len(set(labels)) != len(labels):
            raise EnvError(f"environment labels repeat: {labels}; give each spec a distinct label")
        for e in entries:
            if not e.prompts:
                raise EnvError(f"environment {e.label!r} has no prompts")
            if not (math.isfinite(e.weight) and e.weight > 0):
                raise EnvError(f"environment {e.label!r}: weight must be > 0, got {e.weight}")
        self.entries = list(entries)
        self.seed = int(seed)
        total = sum(e.weight for e in self.entries)
        self._cumulative = np.cumsum([e.weight / total for e in self.entries])
        self._by_label = {e.label: e for e in self.entries}
        self.draws = 0
        self._cursors = {e.label: [0, 0] for e in self.entries}
        self._orders: dict[str, tuple[int, np.ndarray]] = {}

    @property
    def skipped_rows(self) -> int:
        """Rows left out when the datasets were loaded (bad rows, bad media headers, misfits)."""
        return sum(len(e.skipped) for e in self.entries)

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.entries]

    @property
    def environments(self) -> dict[str, Environment]:
        return {e.label: e.env for e in self.entries}

    def environment_for(self, prompt: Prompt) -> Environment:
        try:
            return self._by_label[prompt.env].env
        except KeyError:
            raise EnvError(
                f"prompt {prompt.id!r} names environment {prompt.env!r}, not in {self.labels}"
            ) from None

    def sample(self) -> Prompt:
        k = self.draws
        u = np.random.default_rng([self.seed, k]).random()
        index = min(int(np.searchsorted(self._cumulative, u, side="right")), len(self.entries) - 1)
        entry = self.entries[index]
        self.draws = k + 1
        return entry.prompts[self._next_index(entry)]

    def sample_batch(self, n: int) -> list[Prompt]:
        return [self.sample() for _ in range(n)]

    def __iter__(self) -> Iterator[Prompt]:
        while True:
            yield self.sample()

    def _next_index(self, entry: MixEntry) -> int:
        cursor = self._cursors[entry.label]
        epoch, pos = cursor
        cached = self._orders.get(entry.label)
        if cached is None or cached[0] != epoch:
            salt = zlib.crc32(entry.label.encode())
            cached = (epoch, np.random.default_rng([self.seed, salt, epoch]).permutation(len(entry.prompts)))
            self._orders[entry.label] = cached
        index = int(cached[1][pos])
        cursor[:] = [epoch + 1, 0] if pos + 1 == len(entry.prompts) else [epoch, pos + 1]
        return index

    # ---- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "draws": self.draws,
            "cursors": {label: list(c) for label, c in self._cursors.items()},
            "sizes": {e.label: len(e.prompts) for e in self.entries},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise EnvError(f"mix state: version {state.get('version')!r}, expected {STATE_VERSION}")
        if state.get("seed") != self.seed:
            raise EnvError(f"mix state: seed {state.get('seed')!r} differs from this mix's seed {self.seed}")
        sizes, cursors = state.get("sizes", {}), state.get("cursors", {})
        if set(sizes) != set(self.labels) or set(cursors) != set(self.labels):
            raise EnvError(
                f"mix state: environments {sorted(sizes)} differ from this mix's {sorted(self.labels)}"
            )
        for e in self.entries:
            if sizes[e.label] != len(e.prompts):
                raise EnvError(
                    f"mix state: environment {e.label!r} had {sizes[e.label]} prompts, now {len(e.prompts)}"
                )
            epoch, pos = cursors[e.label]
            if not (
                isinstance(epoch, int) and isinstance(pos, int) and epoch >= 0 and 0 <= pos < len(e.prompts)
            ):
                raise EnvError(f"mix state: cursors.{e.label} = {cursors[e.label]!r} is out of range")
        draws = state.get("draws")
        if not isinstance(draws, int) or draws < 0:
            raise EnvError(f"mix state: draws = {draws!r} must be a non-negative integer")
        self.draws = draws
        self._cursors = {label: [int(c[0]), int(c[1])] for label, c in cursors.items()}
        self._orders.clear()


def mix_environments(
    specs: Sequence[Mapping[str, Any] | Any],
    seed: int = 0,
    *,
    data_dir: str | Path | None = None,
    check_media: bool = True,
    params: MediaParams | None = None,
) -> EnvMix:
    """Build each spec's environment, load and prepare its prompts, and mix them (module docstring)."""
    if not specs:
        raise EnvError("envs: at least one environment is needed")
    entries = [
        _entry(_as_mapping(spec, i), f"envs[{i}]", data_dir, check_media, params)
        for i, spec in enumerate(specs)
    ]
    return EnvMix(entries, seed=seed)


def _as_mapping(spec: Any, i: int) -> Mapping[str, Any]:
    if isinstance(spec, str):
        return {"name": spec}
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        return dataclasses.asdict(spec)
    if not isinstance(spec, Mapping):
        raise EnvError(
            f"envs[{i}]: must be a mapping {{name, weight, options, data}}, got {type(spec).__name__}"
        )
    return spec


def _entry(
    spec: Mapping[str, Any],
    where: str,
    data_dir: str | Path | None,
    check_media: bool,
    params: MediaParams | None,
) -> MixEntry:
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise EnvError(f"{where}: unknown key(s) {unknown}; expected {sorted(_SPEC_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise EnvError(f"{where}.name: required, an environment name")
    label = spec.get("label") or name
    weight = spec.get("weight", 1.0)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not (math.isfinite(weight) and weight > 0)
    ):
        raise EnvError(f"{where}.weight: must be a number > 0, got {weight!r}")
    options = spec.get("options") or {}
    if not isinstance(options, Mapping):
        raise EnvError(f"{where}.options: must be a mapping, got {type(options).__name__}")
    try:
        env = get(name, **options)
    except EnvError as exc:
        raise EnvError(f"{where}: {exc}") from None
    data = spec.get("data")
    if data is None and spec.get("generate") is not None:
        data = _generated(env, spec["generate"], where, data_dir)
    if data is None:
        raise EnvError(f"{where}.data: required (a dataset path or a list of rows), or set generate")
    raw, skipped = _load(data, where, check_media, params)
    prompts = []
    for prompt in raw:
        try:
            prepared = env.make_prompt(prompt)
        except EnvRowError as exc:
            skipped.append(str(exc))
            continue
        prompts.append(dataclasses.replace(prepared, env=label))
    for reason in skipped[:10]:
        log.warning("%s (%s): skipping row: %s", where, label, reason)
    if skipped:
        log.warning("%s (%s): %d rows kept, %d skipped", where, label, len(prompts), len(skipped))
    if not prompts:
        raise EnvError(
            f"{where} ({label}): no usable rows" + (f"; first problem: {skipped[0]}" if skipped else "")
        )
    return MixEntry(label, env, float(weight), prompts, skipped)


def _generated(env: Environment, gen: Any, where: str, data_dir: str | Path | None) -> Path:
    if not isinstance(gen, Mapping) or set(gen) - {"n", "seed"}:
        raise EnvError(f"{where}.generate: must be {{n, seed}}")
    if data_dir is None:
        raise EnvError(f"{where}.generate: needs a data_dir to write the synthetic dataset to")
    try:
        return type(env).generate(data_dir, int(gen.get("n", 64)), int(gen.get("seed", 0)))
    except (EnvError, ValueError) as exc:
        raise EnvError(f"{where}.generate: {exc}") from None


def _load(
    data: Any, where: str, check_media: bool, params: MediaParams | None
) -> tuple[list[Prompt], list[str]]:
    if isinstance(data, str | Path):
        from omni_rl.data.loading import DatasetError, load_prompts

        try:
            report = load_prompts(data, check_media=check_media, params=params)
        except DatasetError as exc:
            raise EnvError(f"{where}.data: {exc}") from None
        return report.prompts, [str(issue) for issue in report.issues]
    if not isinstance(data, list | tuple):
        raise EnvError(f"{where}.data: must be a dataset path or a list of rows, got {type(data).__name__}")
    prompts, skipped = [], []
    for i, row in enumerate(data):
        if isinstance(row, Prompt):
            prompts.append(row)
            continue
        try:
            prompts.append(validate_row(row, check_media=check_media, params=params))
        except RowError as exc:
            skipped.append(f"{where}.data[{i}]: {exc}")
    return prompts, skipped
