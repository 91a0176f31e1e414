"""The environment contract: a dataset row (``Prompt``) in, a prompt for the model out; a response in,
a reward out, from one or more verifiers combined by weight.

Single-turn environments score one response (``score``); ``reset``/``step`` run them as a one-step
episode so the RL loop drives every environment the same way. Multi-turn environments
(``MultiTurnEnvironment``) answer each response with the next observation until the episode ends.
Scoring never raises: a verifier error, a malformed target or an exception in a hook gives reward 0
with ``error`` set, so one bad row never stops an RL step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import verifiers
from omni_rl.data.schema import MediaPart, Message, Prompt, TextPart
from verifiers.base import OptionError, Verifier, VerifierError, parse_options


class EnvError(Exception):
    """An environment cannot be built, or cannot prepare or run a prompt."""


class EnvOptionError(EnvError, ValueError):
    """An option name or value is not valid for an environment."""


class EnvRowError(EnvError, ValueError):
    """A prompt does not fit an environment; names the prompt and the field at fault."""

    def __init__(self, prompt: Prompt, field: str, reason: str) -> None:
        where = prompt.origin or f"prompt {prompt.id!r}"
        super().__init__(f"{where}: {field}: {reason}")
        self.prompt_id, self.field, self.reason = prompt.id, field, reason


@dataclass(frozen=True)
class VerifierSpec:
    """One verifier of an environment: registry name, weight in the reward, options, and the key its
    score is reported under (``label``, default the name; two specs of the same verifier need labels)."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def key(self) -> str:
        return self.label or self.name

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> VerifierSpec:
        if isinstance(raw, VerifierSpec):
            return raw
        if isinstance(raw, str):
            return cls(raw)
        if not isinstance(raw, dict):
            raise EnvOptionError(f"{where}: must be a verifier name or {{name, weight, options, label}}")
        unknown = sorted(set(raw) - {"name", "weight", "options", "label"})
        if unknown:
            raise EnvOptionError(f"{where}: unknown key(s) {unknown}; expected name, weight, options, label")
        name, weight = raw.get("name"), raw.get("weight", 1.0)
        if not isinstance(name, str) or not name:
            raise EnvOptionError(f"{where}.name: required, a verifier name")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise EnvOptionError(f"{where}.weight: must be a number, got {weight!r}")
        options = raw.get("options") or {}
        if not isinstance(options, dict):
            raise EnvOptionError(f"{where}.options: must be a mapping, got {type(options).__name__}")
        label = raw.get("label")
        if label is not None and not isinstance(label, str):
            raise EnvOptionError(f"{where}.label: must be a string")
        return cls(name, float(weight), dict(options), label)


@dataclass
class EnvScore:
    reward: float  # weighted mean of the verifier scores, in [0, 1]; 0 when any verifier failed
    correct: bool  # every verifier judged the response correct
    scores: dict[str, float] = field(default_factory=dict)  # verifier key -> score
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> extracted, correct, details
    error: str | None = None
    # the reward is not a valid measurement (the scorer or its infrastructure failed): no training signal
    masked: bool = False
    failure_kind: str | None = None  # low-cardinality failure name, counted per environment

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EpisodeState:
    """One episode in progress; ``messages`` grows by each response and observation."""

    prompt: Prompt
    messages: list[Message]
    turn: int = 0  # responses taken so far
    done: bool = False
    rewards: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # the environment's own episode data

    @property
    def total_reward(self) -> float:
        return sum(self.rewards)


@dataclass
class StepResult:
    observation: list[Message] | None  # the next messages for the model; None when the episode is done
    reward: float  # this step's reward; an episode's return is the sum over its steps
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class EnvOptions:
    """Options every environment accepts."""

    # System message added to prompts that have none.
    system_prompt: str | None = None
    # Text appended to the last user message (answer-format hint). None: the environment's default; "": none.
    instruction: str | None = None
    # Replace the default verifiers: a list of {name, weight, options, label}.
    verifiers: list[Any] | None = None
    # Options merged into the first default verifier's options.
    verifier_options: dict[str, Any] = field(default_factory=dict)


class Environment:
    """Subclass, set ``Options`` (extending EnvOptions), ``default_instruction`` and ``default_verifiers``;
    override ``check``, ``target_for``, ``fields_for`` or ``prompt_lines`` where the task needs it."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[EnvOptions]] = EnvOptions
    multi_turn: ClassVar[bool] = False
    default_instruction: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        owner = self.name or type(self).__name__
        try:
            self.options = parse_options(self.Options, options, owner=f"environment {owner}")  # type: ignore[arg-type]
        except OptionError as exc:
            raise EnvOptionError(str(exc)) from None
        self.validate_options()
        self.specs = self._resolve_specs(owner)
        self.verifiers: dict[str, Verifier] = {}
        for i, spec in enumerate(self.specs):
            try:
                self.verifiers[spec.key] = verifiers.get(spec.name, **spec.options)
            except VerifierError as exc:
                raise EnvOptionError(f"environment {owner}: verifiers[{i}] ({spec.name}): {exc}") from None

    # ---- hooks -----------------------------------------------------------------------------------

    def validate_options(self) -> None:
        """Raise EnvOptionError for option values that do not make sense together."""

    def default_verifiers(self) -> list[VerifierSpec]:
        return []

    @property
    def instruction(self) -> str:
        return self.default_instruction if self.options.instruction is None else self.options.instruction

    def prompt_lines(self, prompt: Prompt) -> list[str]:
        """Lines appended to the last user message (each only if not already there)."""
        return [self.instruction] if self.instruction else []

    def check(self, prompt: Prompt) -> None:
        """Raise EnvRowError when ``prompt`` cannot be scored here (by default: each verifier's target check)."""
        try:
            target = self.target_for(prompt)
        except EnvRowError:
            raise
        except Exception as exc:
            raise EnvRowError(prompt, "target", str(exc)) from None
        for key, verifier in self.verifiers.items():
            try:
                verifier.check_target(target)
            except VerifierError as exc:
                raise EnvRowError(prompt, "target", f"{key}: {exc}") from None

    def target_for(self, prompt: Prompt) -> Any:
        return prompt.target

    def fields_for(self, prompt: Prompt) -> dict[str, Any]:
        """Extra keyword fields passed to every verifier (e.g. the options of a multiple-choice row)."""
        return {}

    @classmethod
    def generate(cls, out_dir: str | Path, n: int, seed: int = 0) -> Path:
        """Write a synthetic dataset of ``n`` rows (JSONL + media) under ``out_dir``; returns the JSONL."""
        raise EnvError(f"environment {cls.name!r} has no synthetic data generator")

    @classmethod
    def has_generator(cls) -> bool:
        return cls.generate.__func__ is not Environment.generate.__func__  # type: ignore[attr-defined]

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    # ---- prompts ---------------------------------------------------------------------------------

    def make_prompt(self, prompt: Prompt) -> Prompt:
        """The prompt the model sees: system prompt and instruction added; deterministic and idempotent
        (text already present is not added again). Raises EnvRowError for a prompt that does not fit."""
        self.check(prompt)
        messages = list(prompt.messages)
        system = self.options.system_prompt
        if system and not any(m.role == "system" for m in messages):
            messages.insert(0, Message("system", (TextPart(system),)))
        lines = self.prompt_lines(prompt)
        if lines:
            messages = append_to_last_user(messages, lines, prompt)
        return dataclasses.replace(prompt, messages=tuple(messages))

    # ---- scoring ---------------------------------------------------------------------------------

    def score(self, prompt: Prompt, response: str) -> EnvScore:
        """Weighted verifier scores of ``response``; never raises."""
        try:
            target, fields = self.target_for(prompt), self.fields_for(prompt)
        except Exception as exc:
            return EnvScore(0.0, False, error=f"{type(exc).__name__}: {exc}")
        return self.score_target(response, target, fields)

    def score_batch(self, items: Sequence[tuple[Prompt, str]]) -> list[EnvScore]:
        """Score several (prompt, response) pairs; environments that score remotely override this to
        score them concurrently. Never raises."""
        return [self.score(prompt, response) for prompt, response in items]

    def score_target(self, response: str, target: Any, fields: dict[str, Any] | None = None) -> EnvScore:
        fields = fields or {}
        scores: dict[str, float] = {}
        details: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        correct = True
        for spec in self.specs:
            try:
                result = self.verifiers[spec.key].verify(response, target, **fields)
                score = float(result.score)
                if not math.isfinite(score):
                    raise ValueError(f"score {score} is not finite")
            except Exception as exc:  # verify() does not raise; a user verifier might, or misbehave
                result = verifiers.VerifyResult(0.0, False, error=f"{type(exc).__name__}: {exc}")
                score = 0.0
            scores[spec.key] = min(1.0, max(0.0, score))
            details[spec.key] = {
                **result.details,
                "extracted": result.extracted,
                "correct": bool(result.correct),
            }
            correct = correct and bool(result.correct)
            if result.error:
                errors.append(f"{spec.key}: {result.error}")
        if errors:
            return EnvScore(0.0, False, scores, details, "; ".join(errors))
        total = sum(spec.weight for spec in self.specs)
        reward = sum(spec.weight * scores[spec.key] for spec in self.specs) / total
        return EnvScore(reward, correct, scores, details)

    # ---- episodes --------------------------------------------------------------------------------

    def reset(self, prompt: Prompt) -> EpisodeState:
        """Start an episode on a prompt already prepared by ``make_prompt``."""
        return EpisodeState(prompt=prompt, messages=list(prompt.messages))

    def step(self, state: EpisodeState, response: str) -> StepResult:
        """Single-turn: score the response; the episode ends after one step."""
        if state.done:
            raise EnvError(f"episode of prompt {state.prompt.id!r} is already done")
        result = self.score(state.prompt, response)
        state.messages.append(assistant_message(response))
        state.turn += 1
        state.done = True
        state.rewards.append(result.reward)
        return StepResult(None, result.reward, True, {"score": result})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    def _resolve_specs(self, owner: str) -> list[VerifierSpec]:
        opts = self.options
        if opts.verifiers is not None:
            if not isinstance(opts.verifiers, list) or not opts.verifiers:
                raise EnvOptionError(f"environment {owner}: option verifiers must be a non-empty list")
            specs = [VerifierSpec.from_dict(raw, f"verifiers[{i}]") for i, raw in enumerate(opts.verifiers)]
        else:
            specs = self.default_verifiers()
            if opts.verifier_options and specs:
                first = specs[0]
                specs[0] = dataclasses.replace(first, options={**first.options, **opts.verifier_options})
            elif opts.verifier_options:
                raise EnvOptionError(f"environment {owner}: verifier_options given but it has no verifiers")
        if not specs:
            raise EnvOptionError(f"environment {owner}: no verifiers (set option verifiers)")
        keys = [s.key for s in specs]
        if len(set(keys)) != len(keys):
            raise EnvOptionError(f"environment {owner}: verifier keys {keys} repeat; give each spec a label")
        for i, spec in enumerate(specs):
            if not (math.isfinite(spec.weight) and spec.weight >= 0):
                raise EnvOptionError(f"environment {owner}: verifiers[{i}].weight must be >= 0")
        if sum(s.weight for s in specs) <= 0:
            raise EnvOptionError(f"environment {owner}: verifier weights sum to 0")
        return specs


class MultiTurnEnvironment(Environment):
    """Episodes of several turns: implement ``transition``; ``step`` keeps the books and the turn limit."""

    multi_turn = True

    def step(self, state: EpisodeState, response: str) -> StepResult:
        if state.done:
            raise EnvError(f"episode of prompt {state.prompt.id!r} is already done")
        state.messages.append(assistant_message(response))
        state.turn += 1
        final = state.turn >= self.max_turns
        try:
            result = self.transition(state, response, final=final)
        except Exception as exc:  # robust like score(): end the episode with no reward
            result = StepResult(None, 0.0, True, {"error": f"{type(exc).__name__}: {exc}"})
        if final and not result.done:
            result = StepResult(None, result.reward, True, {**result.info, "truncated": True})
        if result.done:
            result.observation = None
        elif result.observation:
            state.messages.extend(result.observation)
        state.done = result.done
        state.rewards.append(result.reward)
        return result

    @property
    def max_turns(self) -> int:
        return int(getattr(self.options, "max_turns", 1))

    def transition(self, state: EpisodeState, response: str, *, final: bool) -> StepResult:
        """Judge ``response`` (already appended to ``state.messages``); return the next observation, or
        done with the reward. ``final``: the turn limit is reached, so the episode must end now."""
        raise NotImplementedError


def assistant_message(text: str) -> Message:
    return Message("assistant", (TextPart(text),))


def append_to_last_user(messages: list[Message], lines: list[str], prompt: Prompt) -> list[Message]:
    """Append each of ``lines`` that is not already a line of the last user message's text, one per line."""
    index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if index is None:
        raise EnvRowError(prompt, "messages", "has no user message to add the instruction to")
    message = messages[index]
    present = {ln.strip() for p in message.content if isinstance(p, TextPart) for ln in p.text.splitlines()}
    wanted = [sub for line in lines for sub in line.splitlines() if sub.strip()]
    missing = [line for line in wanted if line.strip() not in present]
    if not missing:
        return messages
    parts = list(message.content)
    addition = "\n".join(missing)
    if parts and isinstance(parts[-1], TextPart):
        head = parts[-1].text.rstrip()
        parts[-1] = TextPart(f"{head}\n{addition}" if head else addition)
    else:
        parts.append(TextPart(addition))
    out = list(messages)
    out[index] = Message(message.role, tuple(parts))
    return out


def require_media(prompt: Prompt, modality: str, at_least: int = 1) -> list[MediaPart]:
    parts = [p for p in prompt.media_parts() if p.modality == modality]
    if len(parts) < at_least:
        need = "an" if at_least == 1 else f"at least {at_least}"
        raise EnvRowError(prompt, "messages", f"needs {need} {modality} part(s), found {len(parts)}")
    return parts
