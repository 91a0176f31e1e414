"""The generation interface: sampling parameters, requests, results and the ``GenerationBackend`` ABC.

Every backend (``torch`` here, ``vllm`` later) takes the same ``GenerationRequest`` objects and returns
the same ``GenerationResult`` objects, so the RL loop does not know which one runs.

Log-probabilities, exactly (``SampleOutput``):
- ``logprobs[i]`` = log mu(token_i | context), where mu is the distribution the token was drawn from:
  the model's logits with the banned tokens (media placeholders) removed, divided by ``temperature``,
  then truncated by ``top_k`` and ``top_p`` (in that order) and renormalised. This is the behaviour
  policy of importance weights (vLLM's ``processed_logprobs``). Greedy (temperature 0) gives 0.0.
- ``model_logprobs[i]`` = log_softmax(logits / temperature) over the whole vocabulary (temperature 1
  when greedy): no ban, no truncation. It is what ``omni_rl.models.logprobs.completion_scores(...,
  temperature=T)`` recomputes from the same tokens, so the trainer/sampler ratio is 1 on-policy.
  The two differ by the truncation and by log(1 - banned mass); with ``top_k=0, top_p=1`` only by
  the latter, which is tiny for a trained model (a random tiny model puts ~1% on media tokens).
  Backends that cannot compute it (vLLM) return None.

Stop strings: a sample stops at the first token whose decoded text completes a stop string. Its
``token_ids`` keep every sampled token up to and including that one (their log-probs are real and
the trainer scores exactly what was sampled); ``text`` is the decoded text cut just before the stop
string (``include_stop_str_in_output=False``, the default, as vLLM) or just after it. EOS and
``stop_token_ids`` end a sample with the token kept in ``token_ids`` and dropped from ``text``
(special tokens are skipped when decoding).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from omni_rl.data.schema import Message, Prompt
from omni_rl.media.types import DecodedMedia, MediaRef

FinishReason = Literal["stop", "length", "error"]
Layout = Literal["native", "original"]
MediaItem = MediaRef | DecodedMedia
# a MediaStore (anything with get_many) or a callable: list of MediaRef -> list of decoded items
MediaResolver = Any


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``top_k=0`` (or -1) and ``top_p=1`` disable truncation; ``temperature=0`` is
    greedy. ``min_tokens``: EOS and ``stop_token_ids`` cannot be sampled before that many tokens (vLLM's
    ``min_tokens``; stop strings still end a sample). ``seed`` makes a request's samples reproducible
    (sample j uses its own stream derived from (seed, j), independent of what else is in the batch)."""

    n: int = 1
    max_tokens: int = 256
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    seed: int | None = None
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        # lists are accepted and stored as tuples (the object stays hashable and immutable)
        object.__setattr__(self, "stop", _str_tuple(self.stop, "stop"))
        object.__setattr__(self, "stop_token_ids", _int_tuple(self.stop_token_ids, "stop_token_ids"))
        if self.top_k == -1:
            object.__setattr__(self, "top_k", 0)
        checks = [
            ("n", _is_int(self.n) and self.n >= 1, "an integer >= 1"),
            ("max_tokens", _is_int(self.max_tokens) and self.max_tokens >= 1, "an integer >= 1"),
            ("min_tokens", _is_int(self.min_tokens) and self.min_tokens >= 0, "an integer >= 0"),
            ("temperature", _is_num(self.temperature) and self.temperature >= 0, "a number >= 0"),
            ("top_p", _is_num(self.top_p) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("top_k", _is_int(self.top_k) and self.top_k >= 0, "an integer >= 0 (0 or -1: off)"),
            ("seed", self.seed is None or _is_int(self.seed), "an integer or None"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name}: must be {what}, got {getattr(self, name)!r}")
        if any(s == "" for s in self.stop):
            raise ValueError("SamplingParams.stop: empty stop string")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationRequest:
    """One prompt. ``messages``: our ``Message`` objects or chat dicts whose content is a string or a
    list of parts ``{"type": "text", "text": ...}`` / ``{"type": "image" | "audio" | "video"}`` (the
    OpenAI ``*_url`` part types are accepted too; their URL is ignored). ``media``: one item per
    media part, in the order the parts appear: a ``MediaRef`` (resolved by the backend's resolver)
    or an already decoded item. ``chat_kwargs`` go to the chat template (e.g. enable_thinking)."""

    request_id: str
    messages: Sequence[Message | Mapping[str, Any]]
    media: Sequence[MediaItem] = ()
    sampling: SamplingParams = field(default_factory=SamplingParams)
    chat_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_prompt(
        cls,
        prompt: Prompt,
        media: Sequence[MediaItem],
        sampling: SamplingParams,
        chat_kwargs: Mapping[str, Any] | None = None,
    ) -> GenerationRequest:
        """A request for a dataset ``Prompt`` whose media parts are given, in order, as ``media``."""
        return cls(prompt.id, prompt.messages, list(media), sampling, dict(chat_kwargs or {}))


@dataclass
class SampleOutput:
    """One completion; see the module docstring for what ``logprobs`` and ``model_logprobs`` hold."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: FinishReason
    stop_reason: str | int | None = None  # the stop string or stop token id that ended it
    model_logprobs: list[float] | None = None
    # router replay: the experts chosen for every forwarded token (prompt, then all completion tokens but
    # the last) in every MoE layer, [tokens, moe_layers, k] (``TorchBackendOptions.record_routes``)
    routed_experts: np.ndarray | None = None


@dataclass
class GenerationResult:
    """The samples of one request, or ``error`` (a message) and no samples when the request failed
    (bad media, prompt over the context limit, ...); one failed request never fails the others."""

    request_id: str
    samples: list[SampleOutput] = field(default_factory=list)
    prompt_token_ids: list[int] = field(default_factory=list)
    error: str | None = None
    weight_version: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class GenerationBackend(ABC):
    """Generates G samples per prompt from the current policy weights."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in request order."""

    @abstractmethod
    def update_weights(
        self, state: Mapping[str, torch.Tensor], layout: Layout = "native", version: int | None = None
    ) -> dict[str, Any]:
        """Copy ``state`` (all or some of the policy's tensors, named in ``layout``) into the weights
        used for sampling; ``version`` (default: previous + 1) is reported in later results."""

    # streaming weight sync (``weight_buckets``): begin, one call per bucket, finish
    def begin_sync(self) -> None:  # noqa: B027 - optional hook
        """A new set of weights starts arriving (``load_bucket`` calls follow, then ``finish_sync``)."""

    def load_bucket(self, weights: Sequence[tuple[str, torch.Tensor]], layout: Layout = "native") -> int:
        """Copy one bucket's tensors (views the caller frees afterwards) into the weights in place."""
        raise NotImplementedError(f"{type(self).__name__}: no bucketed weight sync")

    def finish_sync(self, version: int | None = None) -> dict[str, Any]:
        """All buckets are in: report ``version`` from now on (default: previous + 1)."""
        raise NotImplementedError(f"{type(self).__name__}: no bucketed weight sync")

    def sleep(self, level: int = 1) -> None:
        """Free accelerator memory while the trainer steps (colocated): level 1 offloads the weights
        to host memory, level 2 discards them (the next sync restores them)."""
        raise NotImplementedError(f"{type(self).__name__}: no sleep mode")

    def wake_up(self) -> None:
        raise NotImplementedError(f"{type(self).__name__}: no sleep mode")

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Backend name, model, device, dtype, limits and the current weight version."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (engines, GPU memory)."""


def resolve_media(resolver: MediaResolver | None, items: Sequence[MediaItem]) -> list[DecodedMedia]:
    """Decoded items for ``items``: MediaRefs go (in one batch) through ``resolver``."""
    refs = [(i, item) for i, item in enumerate(items) if isinstance(item, MediaRef)]
    out: list[Any] = list(items)
    if refs:
        if resolver is None:
            raise ValueError("media: MediaRef given but the backend has no media resolver (a MediaStore)")
        getter: Callable[[list[MediaRef]], Sequence[DecodedMedia]] = getattr(resolver, "get_many", resolver)
        decoded = list(getter([ref for _, ref in refs]))
        if len(decoded) != len(refs):
            raise ValueError(f"media: resolver returned {len(decoded)} item(s) for {len(refs)} reference(s)")
        for (i, _), item in zip(refs, decoded, strict=True):
            out[i] = item
    return out


# backends by name, imported on first use (the vLLM one needs vLLM installed)
BACKENDS: dict[str, str] = {
    "torch": "omni_rl.generation.torch_backend:TorchBackend",
    "vllm": "omni_rl.generation.vllm_backend:VLLMBackend",  # needs the vLLM environment (docs/vllm.md)
}


def backend_class(name: str) -> type[GenerationBackend]:
    if name not in BACKENDS:
        raise ValueError(f"generation backend must be one of {sorted(BACKENDS)}, got {name!r}")
    module, attr = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    if not all(isinstance(s, str) for s in items):
        raise ValueError(f"SamplingParams.{name}: must be a list of strings, got {value!r}")
    return items


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    items = tuple(value or ())
    if not all(_is_int(t) and t >= 0 for t in items):
        raise ValueError(f"SamplingParams.{name}: must be a list of token ids (integers >= 0), got {value!r}")
    return items
