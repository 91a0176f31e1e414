"""Bad media during a run: each failure costs only its prompt's group, is logged once per prompt with the
dataset file, line and field, and is counted (``data/bad_media`` per step, per stage, and in total).

Stages: ``load`` (rows refused when the datasets were read: header probes), ``decode`` (the MediaStore
could not decode an item; a replacement prompt is drawn), ``generation`` (the processor or engine
refused the request) and ``train`` (the trainer could not encode a sample; its whole group is dropped).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from omni_rl.data.schema import MediaPart, Prompt
from omni_rl.media.decode import source_of
from omni_rl.media.types import MediaError

log = logging.getLogger("omni_rl.data")

STAGES = ("load", "decode", "generation", "train")


class NoUsablePromptsError(RuntimeError):
    """Every prompt drawn for a step had bad media: the data, not one sample, is broken."""


def media_field(prompt: Prompt, source: str) -> str:
    """The row field of the media part whose source label (a path) is ``source``, e.g.
    ``messages[1].content[0].image_url``; ``messages`` when no part matches."""
    for i, message in enumerate(prompt.messages):
        for j, part in enumerate(message.content):
            if isinstance(part, MediaPart) and _label(part) == source:
                return f"messages[{i}].content[{j}].{part.modality}_url"
    return "messages"


def _label(part: MediaPart) -> str:
    try:
        return source_of(part, None).label
    except MediaError:
        return part.url


class BadMediaLog:
    """Counts and logs media failures; ``metrics()`` gives this step's counts and the run's totals."""

    def __init__(self, load_skipped: int = 0) -> None:
        self.totals: Counter[str] = Counter({"load": load_skipped})
        self.step: Counter[str] = Counter()
        self.bad_prompts: set[str] = set()  # "env/id" of prompts whose media failed to decode

    def record(self, stage: str, prompt: Prompt, field: str, error: str) -> None:
        key = f"{prompt.env}/{prompt.id}"
        if key not in self.bad_prompts:  # one log line per prompt, not per epoch
            log.warning(
                "bad media (%s): %s: %s: %s; its group is dropped",
                stage,
                prompt.origin or f"prompt {prompt.id!r}",
                field,
                error,
            )
        if stage == "decode":
            self.bad_prompts.add(key)
        self.step[stage] += 1
        self.totals[stage] += 1

    def record_media_error(self, stage: str, prompt: Prompt, exc: MediaError) -> None:
        self.record(stage, prompt, media_field(prompt, exc.source), f"{type(exc).__name__}: {exc.reason}")

    def count(self, stage: str, n: int) -> None:
        """Failures reported as a count only (the trainer logs its own with each sample's origin)."""
        self.step[stage] += n
        self.totals[stage] += n

    def metrics(self) -> dict[str, float]:
        out = {"data/bad_media": float(sum(self.step[s] for s in STAGES if s != "load"))}
        out.update({f"data/bad_media/{s}": float(self.step[s]) for s in STAGES if s != "load"})
        out["data/bad_media_total"] = float(sum(self.totals.values()))
        out["data/bad_rows_at_load"] = float(self.totals["load"])
        self.step.clear()
        return out


def put_prompts(
    draw: Callable[[], Prompt],
    n: int,
    put: Callable[[Prompt], Any],
    bad: BadMediaLog,
    max_draws: int | None = None,
) -> list[tuple[Prompt, Any]]:
    """``n`` prompts from ``draw`` whose media ``put`` could store, with what ``put`` returned. A prompt
    whose media fail is logged and replaced by the next draw; known-bad prompts are skipped without a
    retry. NoUsablePromptsError after ``max_draws`` draws (default 20 x n) without ``n`` good ones."""
    limit = max_draws if max_draws is not None else 20 * n
    out: list[tuple[Prompt, Any]] = []
    draws = 0
    while len(out) < n:
        if draws >= limit:
            if out:
                log.warning("only %d of %d prompts with usable media after %d draws", len(out), n, draws)
                return out
            raise NoUsablePromptsError(
                f"{draws} prompts drawn in a row had bad media ({sum(bad.totals.values())} failures so far); "
                "check the data with `omni-rl data check FILE`"
            )
        prompt = draw()
        draws += 1
        if f"{prompt.env}/{prompt.id}" in bad.bad_prompts:
            bad.count("decode", 1)
            continue
        try:
            out.append((prompt, put(prompt)))
        except MediaError as exc:
            bad.record_media_error("decode", prompt, exc)
    return out


def record_failed_requests(groups: Sequence[Any], bad: BadMediaLog) -> None:
    """Groups whose generation request failed (processor, engine): logged and counted; they have no
    samples and take no further part in the step."""
    for group in groups:
        if group.result is not None and not group.result.ok:
            bad.record("generation", group.prompt, "messages", str(group.result.error))
