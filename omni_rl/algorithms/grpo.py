"""The GRPO loop, top to bottom.

Each step:

1. sample ``prompts_per_step`` prompts from the environment mix; put each prompt's media into the
   MediaStore once (the driver keeps only references);
2. generate ``group_size`` samples per prompt on the generation workers;
3. score every sample on the environment workers (in parallel; a crashed worker is restarted and its
   share retried);
4. group-relative advantages; groups whose rewards are all equal are dropped (no signal);
5. one trainer step on the kept samples (the trainer resolves the media references itself);
6. sync the new weights to the generation workers;
7. log metrics, dump rollouts, checkpoint every ``checkpoint.every`` steps.

With ``one_step_off_policy`` the samples of step k+1 are generated while step k trains: generation then
lags one update behind, and the sampler's logprobs serve as the behaviour policy of the importance ratio.
``run_grpo(cfg, resume=True)`` continues from the latest checkpoint of the run folder.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.bad_media import BadMediaLog, record_failed_requests
from omni_rl.algorithms.config import GRPOConfig
from omni_rl.algorithms.loop_state import LoopState, maybe_checkpoint, restore, run_eval
from omni_rl.algorithms.masking import group_advantages
from omni_rl.algorithms.setup import ROLLOUTS, run_summary, start_reference, start_run
from omni_rl.config import to_dict
from omni_rl.logging import MetricsLogger, RolloutDumper, Timer, tokens_per_second

log = logging.getLogger(__name__)


def run_grpo(cfg: GRPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train; returns a summary (last step, final metrics, wall time, run folder)."""
    if cfg.one_step_off_policy and (cfg.generation.mode == "local" or cfg.generation.sleep_while_training):
        raise ValueError(
            "one_step_off_policy: needs generation.mode=ray without sleep_while_training (the engines must "
            "keep generating while the trainer steps)"
        )
    started = time.perf_counter()
    run = start_run(cfg, generation=True, scoring=True)
    try:
        state = restore(run) if resume else LoopState()
        if state.step > 0:
            run.generation.sync(run.trainer, version=state.step)  # engines start from the initial weights
        reference = start_reference(run) if cfg.trainer.policy_loss.kl_coef > 0 else None
        dumper = RolloutDumper(
            cfg.run_dir / ROLLOUTS, cfg.logging.rollouts_every, cfg.logging.rollouts_max_rows
        )
        envs = run.mix.environments
        bad = BadMediaLog(load_skipped=run.mix.skipped_rows)
        last: dict[str, float] = {}
        with MetricsLogger.from_config(
            cfg.logging, cfg.run_dir, total_steps=cfg.steps, start_step=state.step, run_config=to_dict(cfg)
        ) as metrics:
            pending = None  # (groups, handle) generated ahead (one-step-off-policy)
            for step in range(state.step + 1, cfg.steps + 1):
                timer = Timer()
                step_start = time.perf_counter()

                # 1-2. prompts -> G samples each (or collect what was generated during the last step)
                with timer.phase("generate"):
                    if pending is None:
                        pending = _submit(cfg, run, step, bad)
                    groups, handle = pending
                    failed = R.attach_results(groups, run.generation.collect(handle))
                    record_failed_requests(groups, bad)
                    mix_state = run.mix.state_dict()  # the position after this step's prompts
                    pending = (
                        _submit(cfg, run, step + 1, bad)
                        if cfg.one_step_off_policy and step < cfg.steps
                        else None
                    )
                gen_tokens = sum(len(s.token_ids) for g in groups for s in g.samples)

                # 3. rewards from the environments' verifiers
                with timer.phase("score"):
                    R.attach_scores(groups, run.scorer.score(R.score_tasks_of(groups)))

                # 4. advantages per group
                scored = [g for g in groups if g.samples]
                adv = group_advantages(scored, cfg.advantage)  # masked samples take no part
                for i, g in enumerate(scored):
                    g.advantages, g.keep = adv.advantages[i].tolist(), adv.keep[i].tolist()
                items = R.train_items(
                    scored,
                    off_policy=cfg.one_step_off_policy,
                    chat_kwargs=cfg.generation.sampling.chat_kwargs,
                )
                if not items:  # all groups zero-variance: a zero-advantage step keeps step counts aligned
                    for g in scored[:1]:
                        g.keep = [True] * len(g.samples)
                        g.advantages = [0.0] * len(g.samples)
                    items = R.train_items(scored[:1], off_policy=False, chat_kwargs={})

                # 5-6. update the policy, then the generation engines' copy of it
                if reference is not None:  # KL penalty: logprobs of the frozen initial policy
                    with timer.phase("reference"):
                        for item, ref in zip(items, reference.compute_logprobs(items), strict=True):
                            item.ref_logprobs = ref
                sleep = cfg.generation.sleep_while_training
                if sleep:
                    run.generation.sleep()
                with timer.phase("train"):
                    train = run.trainer.train_step(items, loss="grpo")
                bad.count("train", int(train.get("dropped_groups", 0)))
                with timer.phase("sync"):
                    if sleep:
                        run.generation.wake_up()
                    run.generation.sync(run.trainer, version=step)
                media = R.media_metrics(run.store.stats())  # while this step's samples hold their refs
                R.release_groups(groups, run.store)

                # 7. metrics, rollouts, checkpoint
                step_s = time.perf_counter() - step_start
                row = {
                    **R.reward_metrics(groups),
                    **{
                        k: v
                        for k, v in adv.stats.items()
                        if k.startswith(("groups/", "samples/", "advantage/"))
                    },
                    **R.train_metrics(train),
                    **media,
                    **bad.metrics(),
                    **timer.pop_metrics(),
                    "timing/step_s": step_s,
                    "throughput/gen_tokens_per_s": tokens_per_second(
                        gen_tokens, timer.seconds("generate") or step_s
                    ),
                    "throughput/samples_per_s": sum(len(g.samples) for g in groups) / step_s,
                    "generation/failed_requests": float(failed),
                    "generation/worker_retries": float(run.generation.retries),
                    "score/worker_retries": float(run.scorer.retries),
                }
                if cfg.eval.every and step % cfg.eval.every == 0:
                    row.update(run_eval(cfg, run, step))
                dumper.dump(step, R.rollout_rows(groups, envs))
                metrics.log(row, step)
                last = row
                maybe_checkpoint(cfg, run, step, mix_state, final=step == cfg.steps)
            if pending is not None:
                R.release_groups(pending[0], run.store)
    finally:
        run.close()
    return run_summary(cfg, last, started)


def _submit(cfg: GRPOConfig, run: Any, step: int, bad: BadMediaLog) -> tuple[list[R.Group], Any]:
    """This step's groups (a prompt whose media fail is replaced by the next draw), sent to generation."""
    groups = R.draw_groups(cfg, run, step, bad)
    return groups, run.generation.submit([g.request for g in groups])
