"""Preference pairs for DPO: synthetic ones from multiple-choice prompts, online ones from scored samples,
and their conversion to ``PreferencePair`` items holding media references.

Synthetic rows (``write_preference_rows``): for each prepared multiple-choice prompt, chosen = the correct
option letter, rejected = a wrong letter picked by a seeded RNG. They are written as dataset rows (the
prompt's messages, ``chosen``, ``rejected``) beside the source dataset, so relative media paths still work
and ``load_prompts`` reads them back like any preference dataset.
"""

from __future__ import annotations

import json
import os
import string
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omni_rl.algorithms.media_refs import sample_with_refs
from omni_rl.data.schema import MediaPart, Prompt
from omni_rl.training.items import PreferencePair


def _letters(prompt: Prompt) -> list[str]:
    choices = prompt.meta.get("choices")
    if isinstance(choices, dict):
        return [str(k).strip("() ").upper() for k in choices]
    if isinstance(choices, list | tuple):
        return list(string.ascii_uppercase[: len(choices)])
    raise ValueError(f"prompt {prompt.id!r}: meta.choices is needed to pick a wrong option")


def preference_row(prompt: Prompt, rng: np.random.Generator) -> dict[str, Any]:
    """A dataset row: chosen = the correct letter, rejected = another option's letter."""
    target = str(prompt.target).strip("() ").upper()
    wrong = [letter for letter in _letters(prompt) if letter != target]
    if not wrong:
        raise ValueError(f"prompt {prompt.id!r}: no wrong option to reject")
    rejected = wrong[int(rng.integers(len(wrong)))]
    return {
        "id": prompt.id,
        "env": prompt.env,
        "messages": [_message_dict(m) for m in prompt.messages],
        "chosen": [{"role": "assistant", "content": target}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "meta": {"target": target},
    }


def _message_dict(message: Any) -> dict[str, Any]:
    content = []
    for part in message.content:
        if isinstance(part, MediaPart):
            content.append(part.to_openai())
        else:
            content.append({"type": "text", "text": part.text})
    return {"role": message.role, "content": content}


def write_preference_rows(prompts: Sequence[Prompt], out: Path, seed: int) -> Path:
    """Write the rows of ``prompts`` to ``out`` (JSONL, atomically); media URLs are kept as given, so
    ``out`` must sit in the folder the source dataset's relative URLs start from."""
    rng = np.random.default_rng([seed, zlib.crc32(b"preferences")])
    rows = [preference_row(p, rng) for p in prompts]
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, out)
    return out


@dataclass
class PreferenceExample:
    """A preference row ready to train: prompt, media references and both completions' token ids."""

    prompt: Prompt
    refs: list[Any]
    chosen_ids: list[int]
    rejected_ids: list[int]
    ref_chosen: float | None = None
    ref_rejected: float | None = None

    def pair(self, chat_kwargs: dict[str, Any] | None = None) -> PreferencePair:
        return PreferencePair(
            chosen=sample_with_refs(self.prompt, self.refs, self.chosen_ids, chat_kwargs),
            rejected=sample_with_refs(self.prompt, self.refs, self.rejected_ids, chat_kwargs),
            ref_chosen_logp=self.ref_chosen,
            ref_rejected_logp=self.ref_rejected,
            group=f"{self.prompt.env}/{self.prompt.id}",
            origin=self.prompt.origin,
        )


def completion_ids(tokenizer: Any, messages: Sequence[Any]) -> list[int]:
    """Token ids of an assistant completion (its text, then EOS: what the sampler stops on)."""
    text = "".join(m.text for m in messages)
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("an empty completion cannot be scored")
    return ids


def best_worst_pairs(groups: Sequence[Any], min_gap: float = 1e-6) -> list[tuple[Any, int, int]]:
    """Online DPO: per group, (group, index of the best sample, index of the worst) when their rewards
    differ by more than ``min_gap``; ties go to the earliest sample. Masked samples are never chosen."""
    out = []
    for g in groups:
        rewards = g.rewards
        masked = {i for i, s in enumerate(getattr(g, "scores", ())) if getattr(s, "masked", False)}
        usable = [i for i in range(len(rewards)) if i not in masked]
        if len(usable) < 2:
            continue
        best = max(usable, key=lambda i: (rewards[i], -i))
        worst = min(usable, key=lambda i: (rewards[i], i))
        if (
            rewards[best] - rewards[worst] > min_gap
            and g.samples[best].token_ids
            and g.samples[worst].token_ids
        ):
            out.append((g, best, worst))
    return out
