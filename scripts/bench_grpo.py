"""Our GRPO loop against TRL's ``GRPOTrainer`` on equal work: trained samples per second, and the time to
reach reward 0.8 on the same task.

    python scripts/bench_grpo.py [--steps 40] [--warmup 2] [--prompts 8] [--group 16] [--max-tokens 16]

TRL is a benchmark-only dependency (``pip install -e .[bench]``). TRL 1.16 cannot run the Nemotron Omni
class (neither its processor's image inputs nor its fused-LM-head forward fit that model), so both sides
run the same *text* rendition of the synthetic colour task on the same tiny decoder weights: ours through
the Nemotron Omni model (no media in the prompts), TRL through its language model
(``NemotronHForCausalLM``, the identical decoder).

Equal settings on both sides: on-policy, one update per batch, no KL term, temperature 1, no top-k/top-p;
``--prompts`` x ``--group`` samples of up to ``--max-tokens`` tokens per step (the mean completion length
is printed for both); the same learning rate (1e-3, constant) and one micro-batch of all samples; no
filtering on either side (ours: ``filter_zero_variance`` and dynamic sampling off, so every sample is
trained, as in TRL); gradient checkpointing off on both; the mcq verifier as the reward; ``--threads``
torch threads. "Warm": samples/s counts the steps after ``--warmup``; the time to 0.8 is the wall time
from the end of the warm-up steps to the first step whose 5-step mean reward is >= 0.8 (inf: not reached
within ``--steps``).

Lines: one per side, then ``RESULT grpo_speed_ratio=X grpo_time_to_08_ratio=Y`` (X = ours / TRL samples
per second, Y = TRL / ours time to 0.8; nan when neither side reached 0.8).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/tiny_grpo_cpu.yaml"
COLOURS = ("red", "green", "blue", "yellow")


def text_task(out: Path, n: int) -> Path:
    """mcq rows: the colour is named in the text, options in a fixed order (A red ... D yellow)."""
    rows = []
    for i in range(n):
        colour = COLOURS[i % 4]
        rows.append(
            {
                "id": f"colour-{i}",
                "env": "mcq",
                "messages": [
                    {"role": "user", "content": f"The picture is {colour}. What colour is the picture?"}
                ],
                "target": "ABCD"[i % 4],
                "meta": {"choices": dict(zip("ABCD", COLOURS, strict=True))},
            }
        )
    path = out / "colour_text.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@dataclass
class Side:
    samples_per_s: float
    time_to_08: float  # seconds after the warm-up; inf when not reached
    mean_length: float
    final_reward: float


def summarise(
    args: argparse.Namespace, step_s: list[float], rewards: list[float], lengths: list[float]
) -> Side:
    """Warm samples/s and the time from the end of the warm-up to the first 5-step mean reward >= 0.8."""
    warm = step_s[args.warmup :]
    elapsed, time_to_08 = 0.0, math.inf
    for i in range(args.warmup, len(step_s)):
        elapsed += step_s[i]
        window = rewards[max(0, i - 4) : i + 1]
        if len(window) == 5 and sum(window) / 5 >= 0.8:
            time_to_08 = elapsed
            break
    return Side(
        samples_per_s=len(warm) * args.prompts * args.group / sum(warm),
        time_to_08=time_to_08,
        mean_length=sum(lengths) / max(1, len(lengths)),
        final_reward=sum(rewards[-5:]) / max(1, len(rewards[-5:])),
    )


def ours(args: argparse.Namespace, model: Path, data: Path, out: Path, mode: str) -> Side:
    from omni_rl.algorithms.config import GRPOConfig
    from omni_rl.algorithms.grpo import run_grpo
    from omni_rl.config import load_config
    from omni_rl.logging import read_metrics

    overrides = [
        f"output_dir={out}",
        f"run_name=ours-{mode}",
        "model.tiny=false",
        f"model.path={model}",
        f"envs=[{{name: mcq, data: '{data}'}}]",
        f"steps={args.steps}",
        f"prompts_per_step={args.prompts}",
        f"group_size={args.group}",
        f"generation.sampling.max_tokens={args.max_tokens}",
        f"cluster.placement.cpu_threads={args.threads}",
        "checkpoint.at_end=false",
        "eval.every=0",
        "logging.console=false",
        "logging.tensorboard=false",
        "logging.rollouts_every=0",
        # equal work: every sample trained (TRL filters nothing), one micro-batch, no checkpointing
        "advantage.filter_zero_variance=false",
        "advantage.dynamic_sampling.enabled=false",
        "trainer.lr=1e-3",
        f"trainer.micro_batch_size={args.prompts * args.group}",
        "trainer.micro_batch_tokens=1000000",
        "trainer.model.gradient_checkpointing=false",
    ]
    if mode == "local":
        overrides += [
            "generation.mode=local",
            "scoring.mode=local",
            "trainer_run.mode=local",
            "media_store=local",
        ]
    elif mode == "ray-async":
        overrides += ["one_step_off_policy=true"]
    summary = run_grpo(load_config(GRPOConfig, CONFIG, overrides))
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    return summarise(
        args,
        [r["timing/step_s"] for r in rows],
        [r["reward/mean"] for r in rows],
        [r["response/length_mean"] for r in rows],
    )


def run_trl(args: argparse.Namespace, model: Path, data: Path, out: Path) -> Side:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import environments
    from omni_rl.data import load_prompts
    from omni_rl.models.loading import load_policy

    env = environments.get("mcq")
    prompts = [env.make_prompt(p) for p in load_prompts(data).prompts]
    by_id = {p.id: p for p in prompts}
    rows = [{"prompt": [{"role": "user", "content": p.messages[-1].text}], "pid": p.id} for p in prompts]

    def reward(prompts, completions, pid, **_):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [env.score(by_id[i], t).reward for t, i in zip(texts, pid, strict=True)]

    class StepTimes(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_begin(self, *_, **__):
            self.ends.append(time.perf_counter())

        def on_step_end(self, *_, **__):
            self.ends.append(time.perf_counter())

    policy, processor = load_policy(model, dtype="float32", device="cpu")
    config = GRPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=args.prompts * args.group,
        num_generations=args.group,
        max_completion_length=args.max_tokens,
        num_iterations=1,
        beta=0.0,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_steps=args.steps,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        gradient_checkpointing=False,
        gradient_accumulation_steps=1,
        dataloader_num_workers=0,
        seed=0,
    )
    times = StepTimes()
    trainer = GRPOTrainer(
        model=policy.language_model,
        reward_funcs=reward,
        args=config,
        train_dataset=Dataset.from_list(rows * max(1, args.steps)),
        processing_class=processor.tokenizer,
        callbacks=[times],
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    step_s = [b - a for a, b in zip(times.ends, times.ends[1:], strict=False)]
    return summarise(
        args, step_s, [h["reward"] for h in logs], [h.get("completions/mean_length", 0.0) for h in logs]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="ray", help="our configurations to time (ray, local, ray-async)")
    args = parser.parse_args()
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    import trl

    from omni_rl.models import save_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as tmp:
        out = Path(tmp)
        model = save_tiny_model(out / "model")
        data = text_task(out, 64)
        results = {}
        for mode in [m for m in args.modes.split(",") if m]:
            results[mode] = ours(args, model, data, out, mode)
            print(f"ours ({mode}): {_line(results[mode])}", flush=True)
        baseline = run_trl(args, model, data, out)
        print(f"TRL {trl.__version__} GRPOTrainer: {_line(baseline)}", flush=True)
        setup = f"P={args.prompts} G={args.group} max_tokens={args.max_tokens} threads={args.threads}"
        print(
            f"setup: tiny Nemotron Omni decoder, text colour task, {setup}, steps {args.steps} (warm-up {args.warmup})"
        )
        mine = results.get("ray", next(iter(results.values())))
        speed = mine.samples_per_s / baseline.samples_per_s
        if math.isinf(mine.time_to_08) and math.isinf(baseline.time_to_08):
            time_ratio = math.nan
        else:
            time_ratio = baseline.time_to_08 / mine.time_to_08
        print(f"RESULT grpo_speed_ratio={speed:.3f} grpo_time_to_08_ratio={time_ratio:.3f}")


def _line(side: Side) -> str:
    return (
        f"{side.samples_per_s:.1f} trained samples/s, reward 0.8 after {side.time_to_08:.1f} s, "
        f"mean completion {side.mean_length:.1f} tokens, final 5-step reward {side.final_reward:.2f}"
    )


if __name__ == "__main__":
    main()
