"""The DPO loop, top to bottom; offline (a preference dataset) or online (pairs from the policy's samples).

Offline:
1. load the preference rows (``data.path``, or synthetic pairs built from an environment's dataset),
   hold out ``data.eval_fraction`` of them; put each row's media into the MediaStore once;
2. reference logprobs of every pair, once, from the initial weights (saved in the run folder, so a
   resumed run uses the same ones);
3. each step: the next ``pairs_per_step`` pairs (a seeded permutation per epoch) -> one DPO step;
4. every ``eval.every`` steps: preference accuracy on the held-out pairs (policy margin over the
   reference's: chosen above rejected).

Online: sample ``group_size`` completions per prompt, score them with the environments, pair the best with
the worst sample of each group whose scores differ, reference logprobs from a frozen copy of the initial
policy, one DPO step, weight sync to the generation workers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.bad_media import BadMediaLog, put_prompts, record_failed_requests
from omni_rl.algorithms.config import DPORunConfig
from omni_rl.algorithms.loop_state import maybe_checkpoint, restore, run_eval
from omni_rl.algorithms.preferences import (
    PreferenceExample,
    best_worst_pairs,
    completion_ids,
    write_preference_rows,
)
from omni_rl.algorithms.setup import ROLLOUTS, build_mix, run_summary, start_run
from omni_rl.config import to_dict
from omni_rl.logging import MetricsLogger, RolloutDumper, Timer
from omni_rl.training.items import PreferencePair

log = logging.getLogger(__name__)
REF_FILE = "reference_logps.json"


def run_dpo(cfg: DPORunConfig, *, resume: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    online = cfg.mode == "online"
    run = start_run(cfg, generation=online, scoring=online)
    try:
        state = restore(run) if resume else None
        start = state.step if state else 0
        with MetricsLogger.from_config(
            cfg.logging, cfg.run_dir, total_steps=cfg.steps, start_step=start, run_config=to_dict(cfg)
        ) as metrics:
            if online:
                last = _online(cfg, run, start, metrics)
            else:
                last = _offline(cfg, run, start, state.extra if state else {}, metrics)
    finally:
        run.close()
    return run_summary(cfg, last, started)


# ---- offline -------------------------------------------------------------------------------------


def load_preferences(cfg: DPORunConfig) -> list[Any]:
    """Preference prompts from ``data.path``, or synthetic ones built (once) from ``data.synthetic``."""
    from omni_rl.data import load_prompts

    if cfg.data.path:
        path = Path(cfg.data.path)
    else:
        spec = cfg.data.synthetic
        assert spec is not None
        mix = build_mix([spec], cfg.seed, cfg.cache_dir / "data", cfg.media_params())
        entry = mix.entries[0]
        source = Path(mix_source(entry))
        path = source.with_name(f"{source.stem}.preferences-s{cfg.seed}.jsonl")
        if not path.is_file():
            write_preference_rows(entry.prompts, path, cfg.seed)
    report = load_prompts(path, params=cfg.media_params())
    prompts = [p for p in report.prompts if p.is_preference]
    if not prompts:
        raise ValueError(f"data.path: {path} has no rows with chosen and rejected")
    return prompts


def mix_source(entry: Any) -> str:
    """The dataset file a mix entry was loaded from (from its prompts' origin, 'file:line')."""
    origin = entry.prompts[0].origin
    return origin.rsplit(":", 1)[0] if ":" in origin else origin


def _offline(
    cfg: DPORunConfig, run: Any, start: int, extra: dict, metrics: MetricsLogger
) -> dict[str, float]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.model_path)
    prompts = load_preferences(cfg)
    order = np.random.default_rng([cfg.seed, 7]).permutation(len(prompts))
    n_eval = round(len(prompts) * cfg.data.eval_fraction)
    bad = BadMediaLog()
    ordered = [prompts[i] for i in order]
    # a pair whose media cannot be decoded is logged and left out
    stored = put_prompts(
        iter(ordered).__next__,
        len(ordered),
        lambda p: run.store.put_many(p.media_parts(), count=1),
        bad,
        max_draws=len(ordered),
    )
    examples = [
        PreferenceExample(p, refs, completion_ids(tokenizer, p.chosen), completion_ids(tokenizer, p.rejected))
        for p, refs in stored
    ]
    n_eval = min(n_eval, len(examples) - 1) if n_eval else 0
    held_out, train = examples[:n_eval], examples[n_eval:]
    load_metrics = bad.metrics()
    if not train:
        raise ValueError("data: no training pairs left after the held-out split (lower data.eval_fraction)")
    _reference(cfg, run, examples, start)
    cursor = int(extra.get("pairs_seen", 0))
    last: dict[str, float] = {}
    if start == 0 and held_out:
        metrics.log(_preference_accuracy(run, held_out, cfg), 0)
    for step in range(start + 1, cfg.steps + 1):
        timer = Timer()
        t0 = time.perf_counter()
        batch = []
        for _ in range(cfg.pairs_per_step):
            epoch, pos = divmod(cursor, len(train))
            perm = np.random.default_rng([cfg.seed, 11, epoch]).permutation(len(train))
            batch.append(train[int(perm[pos])].pair(cfg.generation.sampling.chat_kwargs))
            cursor += 1
        with timer.phase("train"):
            raw = run.trainer.train_step(batch, loss="dpo")
        bad.count("train", int(raw.get("dropped_groups", 0)))
        row = {**R.train_metrics(raw), **timer.pop_metrics(), "timing/step_s": time.perf_counter() - t0}
        row.update(load_metrics if step == start + 1 else {})
        row.update(bad.metrics())
        row["dpo/train_accuracy"] = raw.get("rewards/accuracy", float("nan"))
        row["throughput/pairs_per_s"] = len(batch) / row["timing/step_s"]
        if held_out and cfg.eval.every and (step % cfg.eval.every == 0 or step == cfg.steps):
            row.update(_preference_accuracy(run, held_out, cfg))
        metrics.log(row, step)
        last = row
        maybe_checkpoint(cfg, run, step, None, final=step == cfg.steps, extra={"pairs_seen": cursor})
    return last


def _reference(cfg: DPORunConfig, run: Any, examples: list[PreferenceExample], start: int) -> None:
    """Reference logps of every example: computed at step 0 and saved; read back when resuming."""
    path = cfg.run_dir / REF_FILE
    if start > 0 and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        for ex in examples:
            ex.ref_chosen, ex.ref_rejected = saved[ex.prompt.id]
        return
    pairs = run.trainer.reference_logps([ex.pair() for ex in examples])
    for ex, pair in zip(examples, pairs, strict=True):
        ex.ref_chosen, ex.ref_rejected = pair.ref_chosen_logp, pair.ref_rejected_logp
    path.write_text(
        json.dumps({ex.prompt.id: [ex.ref_chosen, ex.ref_rejected] for ex in examples}), encoding="utf-8"
    )


def _preference_accuracy(run: Any, examples: list[PreferenceExample], cfg: DPORunConfig) -> dict[str, float]:
    """Held-out pairs whose implicit reward (policy minus reference logp) ranks chosen above rejected."""
    current = run.trainer.reference_logps([ex.pair() for ex in examples])  # the current weights' logps
    margins = [
        (p.ref_chosen_logp - ex.ref_chosen) - (p.ref_rejected_logp - ex.ref_rejected)
        for ex, p in zip(examples, current, strict=True)
    ]
    return {
        "dpo/eval_accuracy": float(np.mean([m > 0 for m in margins])),
        "dpo/eval_margin": float(np.mean(margins)) * cfg.trainer.dpo.beta,
        # the policy itself (not relative to the reference) ranks chosen above rejected; ~0.5 at the start
        "dpo/eval_policy_accuracy": float(
            np.mean([p.ref_chosen_logp > p.ref_rejected_logp for p in current])
        ),
    }


# ---- online --------------------------------------------------------------------------------------


def _online(cfg: DPORunConfig, run: Any, start: int, metrics: MetricsLogger) -> dict[str, float]:
    from omni_rl.algorithms.setup import start_reference

    reference = start_reference(run)
    if start > 0:
        run.generation.sync(run.trainer, version=start)
    dumper = RolloutDumper(cfg.run_dir / ROLLOUTS, cfg.logging.rollouts_every, cfg.logging.rollouts_max_rows)
    last: dict[str, float] = {}
    bad = BadMediaLog(load_skipped=run.mix.skipped_rows)
    for step in range(start + 1, cfg.steps + 1):
        timer = Timer()
        t0 = time.perf_counter()
        with timer.phase("generate"):
            groups = R.draw_groups(cfg, run, step, bad)
            R.attach_results(groups, run.generation.generate([g.request for g in groups]))
            record_failed_requests(groups, bad)
            mix_state = run.mix.state_dict()
        with timer.phase("score"):
            R.attach_scores(groups, run.scorer.score(R.score_tasks_of(groups)))
        chat = cfg.generation.sampling.chat_kwargs
        chosen = best_worst_pairs([g for g in groups if g.samples])
        pairs = [
            PreferenceExample(g.prompt, g.refs, g.samples[b].token_ids, g.samples[w].token_ids).pair(chat)
            for g, b, w in chosen
        ]
        row: dict[str, float] = {"dpo/pairs": float(len(pairs))}
        if pairs:
            with timer.phase("reference"):
                pairs = reference.reference_logps(pairs)
            with timer.phase("train"):
                raw = run.trainer.train_step(pairs, loss="dpo")
            bad.count("train", int(raw.get("dropped_groups", 0)))
            with timer.phase("sync"):
                run.generation.sync(run.trainer, version=step)
            row.update(R.train_metrics(raw))
            row["dpo/train_accuracy"] = raw.get("rewards/accuracy", float("nan"))
        R.release_groups(groups, run.store)
        row.update(R.reward_metrics(groups))
        row.update(R.media_metrics(run.store.stats()))
        row.update(bad.metrics())
        row.update(timer.pop_metrics())
        row["timing/step_s"] = time.perf_counter() - t0
        if cfg.eval.every and step % cfg.eval.every == 0:
            row.update(run_eval(cfg, run, step))
        dumper.dump(step, R.rollout_rows(groups, run.mix.environments))
        metrics.log(row, step)
        last = row
        maybe_checkpoint(cfg, run, step, mix_state, final=step == cfg.steps)
    return last


def as_pairs(examples: list[PreferenceExample]) -> list[PreferencePair]:
    return [ex.pair() for ex in examples]
