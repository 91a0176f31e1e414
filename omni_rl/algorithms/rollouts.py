"""Pieces of a GRPO step: prompt groups and their generation requests, scored samples, train items,
per-step metrics and rollout rows.

A ``Group`` is one prompt and its G samples. The driver keeps only ids, token ids, texts, rewards and
media *references* here; the decoded media stay in the MediaStore.
"""

from __future__ import annotations

import functools
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from environments.base import EnvScore
from omni_rl.algorithms.bad_media import BadMediaLog, put_prompts
from omni_rl.algorithms.config import SamplingConfig
from omni_rl.algorithms.media_refs import sample_with_refs
from omni_rl.algorithms.row_sampling import apply_row_sampling
from omni_rl.algorithms.scoring import ScoreTask
from omni_rl.data.schema import Prompt
from omni_rl.generation.base import GenerationRequest, GenerationResult, SamplingParams
from omni_rl.logging.rollouts import Rollout
from omni_rl.media.sources import resolve
from omni_rl.media.types import MediaRef
from omni_rl.training.items import TrainItem


@dataclass
class Group:
    prompt: Prompt
    refs: list[MediaRef]
    request: GenerationRequest
    result: GenerationResult | None = None
    scores: list[EnvScore] = field(default_factory=list)
    advantages: list[float] = field(default_factory=list)
    keep: list[bool] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.prompt.env

    @property
    def samples(self) -> list[Any]:
        return [] if self.result is None else self.result.samples

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.scores]


def sampling_params(cfg: SamplingConfig, n: int, seed: int | None, greedy: bool = False) -> SamplingParams:
    return SamplingParams(
        n=n,
        max_tokens=cfg.max_tokens,
        min_tokens=cfg.min_tokens,
        temperature=0.0 if greedy else cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        stop=tuple(cfg.stop),
        seed=seed,
    )


def request_seed(run_seed: int, step: int, index: int) -> int:
    """A fixed seed per (run, step, prompt): a resumed run samples exactly what the first one would."""
    return zlib.crc32(f"{run_seed}/{step}/{index}".encode())


def make_groups(
    prompts: Sequence[Prompt] | Callable[[], Prompt],
    store: Any,
    cfg: SamplingConfig,
    n: int,
    run_seed: int,
    step: int,
    *,
    count: int | None = None,
    greedy: bool = False,
    bad: BadMediaLog | None = None,
    start: int = 0,
) -> list[Group]:
    """One request per prompt (``n`` samples); each prompt's media are put into the store once.

    ``prompts``: a list (a prompt whose media fail is skipped) or a draw function (``count`` groups; a
    prompt whose media fail is replaced by the next draw). Failures are logged and counted in ``bad``.
    ``start``: the index of the first group in its step (request ids and seeds; refills of a step)."""
    bad = bad if bad is not None else BadMediaLog()
    if callable(prompts):
        draw, limit = prompts, None
        count = count if count is not None else 1
    else:
        draw, count = iter(prompts).__next__, len(prompts)
        limit = count
    put = functools.partial(_put_media, store=store, n=n)  # one reference per sample, one decode
    groups = []
    for i, (prompt, refs) in enumerate(put_prompts(draw, count, put, bad, max_draws=limit), start=start):
        params = sampling_params(cfg, n, None if greedy else request_seed(run_seed, step, i), greedy)
        params = apply_row_sampling(params, prompt.meta)
        request = GenerationRequest(
            f"{step}/{i}/{prompt.id}", prompt.messages, refs, params, dict(cfg.chat_kwargs)
        )
        groups.append(Group(prompt, refs, request))
    return groups


def draw_groups(
    cfg: Any, run: Any, step: int, bad: BadMediaLog, *, count: int | None = None, start: int = 0
) -> list[Group]:
    """A step's ``prompts_per_step`` groups (or ``count``, numbered from ``start``) of ``group_size``
    from the run's environment mix; a prompt whose media fail is replaced by the next draw."""
    return make_groups(
        run.mix.sample,
        run.store,
        cfg.generation.sampling,
        cfg.group_size,
        cfg.seed,
        step,
        count=cfg.prompts_per_step if count is None else count,
        bad=bad,
        start=start,
    )


def _put_media(prompt: Prompt, *, store: Any, n: int) -> list[MediaRef]:
    return store.put_many(prompt.media_parts(), count=n)


def release_groups(groups: Sequence[Group], store: Any) -> None:
    for group in groups:
        store.release_many(group.refs, count=group.request.sampling.n)


def attach_results(groups: Sequence[Group], results: Sequence[GenerationResult]) -> int:
    """Pair results with groups (by position, checked by id); returns how many requests failed."""
    failed = 0
    for group, result in zip(groups, results, strict=True):
        if result.request_id != group.request.request_id:
            raise RuntimeError(
                f"result {result.request_id!r} returned for request {group.request.request_id!r}"
            )
        group.result = result
        failed += int(not result.ok)
    return failed


def score_tasks_of(groups: Sequence[Group]) -> list[ScoreTask]:
    return [ScoreTask(g.label, g.prompt, s.text) for g in groups for s in g.samples]


def attach_scores(groups: Sequence[Group], scores: Sequence[EnvScore]) -> None:
    it = iter(scores)
    for g in groups:
        g.scores = [next(it) for _ in g.samples]


def train_items(groups: Sequence[Group], *, off_policy: bool, chat_kwargs: dict[str, Any]) -> list[TrainItem]:
    """Kept samples as TrainItems holding media references. The sampler's logprobs (``model_logprobs``
    when the engine gives them: the same quantity the trainer computes) are the behaviour policy of the
    mismatch correction; the trainer computes the old (proximal) logprobs itself, on-policy or not
    (``off_policy`` no longer changes the items; ``trainer.mismatch`` corrects for older weights too)."""
    items = []
    for g in groups:
        for sample, adv, keep in zip(g.samples, g.advantages, g.keep, strict=True):
            if not keep or not sample.token_ids:
                continue
            behaviour = sample.model_logprobs if sample.model_logprobs is not None else sample.logprobs
            items.append(
                TrainItem(
                    sample=sample_with_refs(g.prompt, g.refs, sample.token_ids, chat_kwargs),
                    advantage=float(adv),
                    sampler_logprobs=list(behaviour),
                    routed_experts=sample.routed_experts,
                    group=g.request.request_id,
                    origin=g.prompt.origin,
                    weight_version=g.result.weight_version if g.result else None,
                )
            )
    return items


def staleness_metrics(groups: Sequence[Group], trainer_version: int) -> dict[str, float]:
    """How many updates behind the trainer (at ``trainer_version``) the step's samples were drawn."""
    lags = [trainer_version - g.result.weight_version for g in groups if g.result and g.samples]
    if not lags:
        return {}
    return {"async/staleness_max": float(max(lags)), "async/staleness_mean": float(np.mean(lags))}


def reward_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """Reward and accuracy per environment and overall, response lengths, failures."""
    per_env: dict[str, list[EnvScore]] = defaultdict(list)
    lengths, truncated, errors = [], 0, 0
    for g in groups:
        per_env[g.label].extend(g.scores)
        for s in g.samples:
            lengths.append(len(s.token_ids))
            truncated += int(s.finish_reason == "length")
        errors += sum(1 for sc in g.scores if sc.error)
    every = [sc for scores in per_env.values() for sc in scores]
    out: dict[str, float] = {}
    if every:
        out["reward/mean"] = float(np.mean([s.reward for s in every]))
        out["accuracy/mean"] = float(np.mean([s.correct for s in every]))
    for label, scores in sorted(per_env.items()):
        out[f"reward/{label}"] = float(np.mean([s.reward for s in scores]))
        out[f"accuracy/{label}"] = float(np.mean([s.correct for s in scores]))
        out.update(score_counts(label, scores))
    if lengths:
        out["response/length_mean"] = float(np.mean(lengths))
        out["response/length_max"] = float(max(lengths))
        out["response/truncated_frac"] = truncated / len(lengths)
    out["score/errors"] = float(errors)
    return out


def score_counts(label: str, scores: Sequence[EnvScore]) -> dict[str, float]:
    """Per environment: errors, masked samples, failures by kind, and the mean of each score key when a
    score has several (verifiers, or a NeMo Gym server's reward components)."""
    out = {
        f"score/{label}/errors": float(sum(1 for s in scores if s.error)),
        f"score/{label}/masked": float(sum(1 for s in scores if s.masked)),
    }
    kinds = defaultdict(int)
    keys: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if s.failure_kind:
            kinds[s.failure_kind] += 1
        for key, value in s.scores.items():
            keys[key].append(value)
    out.update({f"score/{label}/failure/{kind}": float(n) for kind, n in sorted(kinds.items())})
    if len(keys) > 1:
        out.update({f"score/{label}/{key}": float(np.mean(v)) for key, v in sorted(keys.items())})
    return out


def train_metrics(raw: dict[str, float]) -> dict[str, float]:
    """The trainer's step metrics under ``train/`` (KL: to the reference when computed, else to pi_old)."""
    out = {f"train/{k}": v for k, v in raw.items()}
    kl = raw.get("kl_ref", raw.get("policy/approx_kl_old"))
    if kl is not None:
        out["train/kl"] = kl
    clip = [raw[k] for k in ("policy/clip_frac_low", "policy/clip_frac_high") if k in raw]
    if clip:
        out["train/clip_frac"] = float(sum(clip))
    return out


def media_metrics(stats: dict[str, dict[str, int]]) -> dict[str, float]:
    """MediaStore counters; ``dedup_ratio``: bytes one copy per sample would take over bytes held."""
    total = stats.get("total", {})
    out = {f"media/{k}": float(v) for k, v in total.items()}
    naive, held = total.get("naive_bytes", 0), total.get("bytes_held", 0)
    if held and naive:
        out["media/dedup_ratio"] = naive / held
    return out


def rollout_rows(groups: Sequence[Group], envs: dict[str, Any]) -> list[Rollout]:
    """Rows ``omni-rl verify`` can re-score (target and verifier fields from the environment), with what
    ``omni-rl report`` shows: the prompt's text and media, verifier details, advantage."""
    rows = []
    for g in groups:
        env = envs[g.label]
        try:
            target, fields = env.target_for(g.prompt), env.fields_for(g.prompt)
        except Exception:  # a bad row already scored 0; still dump what was sampled
            target, fields = g.prompt.target, {}
        shown = {"prompt": prompt_text(g.prompt), "media": media_entries(g.prompt)}
        for i, (sample, score) in enumerate(zip(g.samples, g.scores, strict=True)):
            extra = {
                "advantage": g.advantages[i] if i < len(g.advantages) else None,
                "correct": score.correct,
                "masked": score.masked,
                "score_error": score.error,
                "completion_tokens": len(sample.token_ids),
                "finish_reason": sample.finish_reason,
                "weight_version": g.result.weight_version if g.result else None,
                **shown,
                "details": score.details,
                "error": score.error,
            }
            rows.append(
                Rollout(
                    prompt_id=g.prompt.id,
                    sample_index=i,
                    env=g.label,
                    response=sample.text,
                    target=target,
                    reward=score.reward,
                    scores=dict(score.scores),
                    fields=dict(fields),
                    extra={k: v for k, v in extra.items() if k not in fields},  # a verifier field wins
                )
            )
    return rows


def prompt_text(prompt: Prompt) -> str:
    """The text of the prompt's turns, for people reading the dump."""
    return "\n\n".join(m.text for m in prompt.messages if m.text)


def media_entries(prompt: Prompt) -> list[dict[str, Any]]:
    """``{"type", "url", "path"}`` per media part: ``path`` is the resolved local file (None for data:
    URLs, which the dumper writes beside the dump)."""
    out = []
    for part in prompt.media_parts():
        try:
            path = resolve(part.url, part.base_dir).path
        except Exception:  # a malformed URL: the sample already scored 0; keep the URL for the reader
            path = None
        out.append({"type": part.modality, "url": part.url, "path": str(path.resolve()) if path else None})
    return out
