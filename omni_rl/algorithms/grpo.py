"""The GRPO loop, top to bottom.

Each step:

1. sample ``prompts_per_step`` prompts from the environment mix; put each prompt's media into the
   MediaStore once (the driver keeps only references);
2. generate ``group_size`` samples per prompt on the generation workers;
3. score every sample on the environment workers (in parallel; a crashed worker is restarted and its
   share retried);
4. group-relative advantages; groups whose rewards are all equal are dropped (no signal), or, with
   ``advantage.dynamic_sampling``, replaced by drawing more prompts (``dynamic_sampling``);
5. one trainer step on the kept samples (the trainer resolves the media references itself);
6. sync the new weights to the generation workers;
7. log metrics, dump rollouts, checkpoint every ``checkpoint.every`` steps.

With ``max_staleness: k`` (``one_step_off_policy`` is k = 1) the samples of steps s+1..s+k are generated
while step s trains: a sample is at most k updates old and carries its weight version. The sampler's
logprobs are the behaviour policy of ``trainer.mismatch``; the PPO ratio is against the trainer's own
recomputed logprobs (``omni_rl.training.ppo_update``). A crashed engine is streamed the last synced
weights and its pending requests run again on them (their samples carry that version).
``run_grpo(cfg, resume=True)`` continues from the latest checkpoint of the run folder.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from omni_rl.algorithms import rollouts as R
from omni_rl.algorithms.bad_media import BadMediaLog, record_failed_requests
from omni_rl.algorithms.config import GRPOConfig
from omni_rl.algorithms.dynamic_sampling import build_step_batch
from omni_rl.algorithms.loop_state import LoopState, maybe_checkpoint, restore, run_eval
from omni_rl.algorithms.setup import ROLLOUTS, run_summary, start_reference, start_run
from omni_rl.config import to_dict
from omni_rl.logging import MetricsLogger, RolloutDumper, Timer, tokens_per_second

log = logging.getLogger(__name__)


def run_grpo(cfg: GRPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train; returns a summary (last step, final metrics, wall time, run folder)."""
    ahead = cfg.max_staleness  # async: steps generated ahead of the trainer
    if ahead and (cfg.generation.mode == "local" or cfg.generation.sleep_while_training):
        raise ValueError(
            "max_staleness / one_step_off_policy: needs generation.mode=ray without sleep_while_training (the engines must "
            "keep generating while the trainer steps)"
        )
    started = time.perf_counter()
    run = start_run(cfg, generation=True, scoring=True)
    try:
        state = restore(run) if resume else LoopState()
        if state.step > 0 or ahead:  # engines start from the initial weights; async keeps every version
            run.generation.sync(run.trainer, version=state.step)
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
            queue: deque[tuple[list[R.Group], Any]] = deque()  # (groups, handle) generated ahead (async)
            for step in range(state.step + 1, cfg.steps + 1):
                timer = Timer()
                step_start = time.perf_counter()

                # 1-2. prompts -> G samples each (or collect what was generated during the last step)
                with timer.phase("generate"):
                    if not queue:
                        queue.append(_submit(cfg, run, step, bad))
                    groups, handle = queue.popleft()
                    failed = R.attach_results(groups, run.generation.collect(handle))
                    record_failed_requests(groups, bad)
                    mix_state = run.mix.state_dict()  # the position after this step's prompts
                    while len(queue) < ahead and step + len(queue) < cfg.steps:  # up to `ahead` steps on
                        queue.append(_submit(cfg, run, step + len(queue) + 1, bad))
                # 3-4. rewards, advantages (dynamic sampling draws more prompts until enough groups differ)
                batch = build_step_batch(cfg, run, step, groups, bad, timer)
                groups = batch.groups
                if not queue:
                    mix_state = run.mix.state_dict()  # after the refills too
                gen_tokens = sum(len(s.token_ids) for g in groups for s in g.samples)
                items = R.train_items(
                    batch.train_groups,
                    off_policy=ahead > 0,
                    chat_kwargs=cfg.generation.sampling.chat_kwargs,
                )
                if not items:  # all groups zero-variance: a zero-advantage step keeps step counts aligned
                    for g in batch.train_groups[:1]:
                        g.keep = [True] * len(g.samples)
                        g.advantages = [0.0] * len(g.samples)
                    items = R.train_items(batch.train_groups[:1], off_policy=False, chat_kwargs={})

                # 5-6. update the policy, then the generation engines' copy of it
                if reference is not None:  # KL penalty: logprobs of the frozen initial policy
                    with timer.phase("reference"):
                        for item, ref in zip(items, reference.compute_logprobs(items), strict=True):
                            item.ref_logprobs = ref
                sleep = cfg.generation.sleep_while_training
                if sleep:
                    run.generation.sleep(cfg.generation.sleep_level)
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
                    **(R.staleness_metrics(groups, step - 1) if ahead else {}),
                    **batch.stats,
                    **R.train_metrics(train),
                    **media,
                    **bad.metrics(),
                    **timer.pop_metrics(),
                    "timing/step_s": step_s,
                    "throughput/gen_tokens_per_s": tokens_per_second(
                        gen_tokens, timer.seconds("generate") or step_s
                    ),
                    "throughput/samples_per_s": sum(len(g.samples) for g in groups) / step_s,
                    "generation/failed_requests": float(failed + batch.failed),
                    "generation/worker_retries": float(run.generation.retries),
                    "score/worker_retries": float(run.scorer.retries),
                }
                if cfg.eval.every and step % cfg.eval.every == 0:
                    row.update(run_eval(cfg, run, step))
                dumper.dump(step, R.rollout_rows(groups, envs))
                metrics.log(row, step)
                last = row
                maybe_checkpoint(cfg, run, step, mix_state, final=step == cfg.steps)
            for waiting, _ in queue:
                R.release_groups(waiting, run.store)
    finally:
        run.close()
    return run_summary(cfg, last, started)


def _submit(cfg: GRPOConfig, run: Any, step: int, bad: BadMediaLog) -> tuple[list[R.Group], Any]:
    """This step's groups (a prompt whose media fail is replaced by the next draw), sent to generation."""
    groups = R.draw_groups(cfg, run, step, bad)
    return groups, run.generation.submit([g.request for g in groups])
