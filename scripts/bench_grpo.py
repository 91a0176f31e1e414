"""Our GRPO loop against TRL's ``GRPOTrainer`` on equal work: trained samples per second, and the time to
reach reward 0.8 on the same task.

    python scripts/bench_grpo.py [--steps 80] [--warmup 2] [--prompts 8] [--group 16] [--min-tokens 16]
        [--max-tokens 24] [--warm-steps 250] [--modes ray,ray-async]

TRL is a benchmark-only dependency (``pip install -e .[bench]``). TRL 1.16 cannot run the Nemotron Omni
class (neither its processor's image inputs nor its fused-LM-head forward fit that model), so both sides
run the same *text* rendition of the synthetic colour task on the same tiny decoder weights: ours through
the Nemotron Omni model (no media in the prompts), TRL through its language model
(``NemotronHForCausalLM``, the identical decoder).

Both start from the same weights: the tiny random model after ``--warm-steps`` supervised steps on the
answer format (``warm_start``; right ~40% of the time), since from random weights neither side learns
the task in a bench's time.

Equal settings on both sides: on-policy, one update per batch, no KL term, temperature 1, no top-k/top-p;
``--prompts`` x ``--group`` samples per step of ``--min-tokens`` to ``--max-tokens`` tokens (EOS masked
before the minimum: ours ``min_tokens``, TRL ``min_new_tokens``; the mean completion length is printed
for both); the same learning rate (1e-3, constant) and one micro-batch of all samples; no filtering on
either side (ours: ``filter_zero_variance`` and dynamic sampling off, so every sample is trained, as in
TRL); gradient checkpointing off on both; the mcq verifier as the reward; ``--threads`` torch threads
(ours: per actor; generation and training take turns, except in ``ray-async``). "Warm": samples/s
counts the steps after ``--warmup``; the time to 0.8 is the wall time from the end of the warm-up steps
to the first step whose 5-step mean reward is >= 0.8 (inf: not reached within ``--steps``).

``--modes``: our configurations (``ray``: the loop's actors, on-policy; ``local``: one process;
``ray-async``: one-step-off-policy, generation overlapping training; TRL has no CPU equivalent, its
async GRPO needs a vLLM server). Lines: one per side, each mode's two ratios, then
``RESULT grpo_speed_ratio=X grpo_time_to_08_ratio=Y`` for the on-policy ``ray`` mode (X = ours / TRL
samples per second, Y = TRL / ours time to 0.8; nan when neither side reached 0.8).
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
# the answer format the warm start teaches: 16 tokens of the tiny tokenizer, then <|im_end|>
ANSWER = "I read the question; the answer is {}."


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


def warm_start(model_dir: Path, data: Path, steps: int, seed: int = 0) -> Path:
    """Supervised steps that teach the tiny random model the answer format (``ANSWER``), with the right
    letter half the time and a random one otherwise. Both sides then start RL from these same weights,
    answering in >= 16 tokens and right ~40% of the time (measured), and RL has the rest of the
    colour-to-letter mapping to learn. From the random model neither side passed reward 0.06 in 40
    steps: it almost never writes a valid answer."""
    import environments
    from omni_rl.data import load_prompts
    from omni_rl.models.loading import load_policy

    torch.manual_seed(seed)
    model, processor = load_policy(model_dir, dtype="float32", device="cpu")
    tok = processor.tokenizer
    env = environments.get("mcq")
    prompts = [env.make_prompt(p) for p in load_prompts(data).prompts]
    # token ids once: each prompt rendered by the chat template, and the answer for each letter
    prompt_ids = [
        tok(
            tok.apply_chat_template(
                [{"role": "user", "content": p.messages[-1].text}], add_generation_prompt=True, tokenize=False
            ),
            add_special_tokens=False,
        ).input_ids
        for p in prompts
    ]
    answer_ids = {
        c: tok(ANSWER.format(c) + tok.eos_token, add_special_tokens=False).input_ids for c in "ABCD"
    }
    lm = model.language_model
    opt = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows, labels = [], []
        for i in torch.randint(len(prompts), (32,), generator=gen).tolist():
            # the right letter half the time, else a random one (the supervised optimum answers right
            # 0.5 + 0.5 / 4 of the time; 250 steps reach ~0.4)
            right = bool(torch.rand((), generator=gen) < 0.5)
            letter = prompts[i].target if right else "ABCD"[int(torch.randint(4, (1,), generator=gen))]
            p_ids, a_ids = prompt_ids[i], answer_ids[letter]
            rows.append(p_ids + a_ids)
            labels.append([-100] * len(p_ids) + a_ids)
        width = max(map(len, rows))
        ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        target = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
        logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model_dir.parent / f"{model_dir.name}-warm"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    print(
        f"warm start: {steps} supervised steps on the answer format (right letter half the time), final loss {loss.item():.3f}"
    )
    return out


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
        f"generation.sampling.min_tokens={args.min_tokens}",
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
        generation_kwargs={"min_new_tokens": args.min_tokens},  # EOS masked before it, as ours
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
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--min-tokens", type=int, default=16, help="EOS masked before this many tokens")
    parser.add_argument("--warm-steps", type=int, default=250, help="supervised format steps (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--modes", default="ray,ray-async", help="our configurations to time (ray, local, ray-async)"
    )
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
        if args.warm_steps:
            model = warm_start(model, data, args.warm_steps)
        results = {}
        for mode in [m for m in args.modes.split(",") if m]:
            results[mode] = ours(args, model, data, out, mode)
            print(f"ours ({mode}): {_line(results[mode])}", flush=True)
        baseline = run_trl(args, model, data, out)
        print(f"TRL {trl.__version__} GRPOTrainer: {_line(baseline)}", flush=True)
        setup = f"P={args.prompts} G={args.group} tokens={args.min_tokens}-{args.max_tokens} threads={args.threads}"
        print(
            f"setup: tiny Nemotron Omni decoder, text colour task, {setup}, steps {args.steps} (warm-up {args.warmup})"
        )
        for mode, side in results.items():  # every mode against TRL; the RESULT line is on-policy "ray"
            speed, time_ratio = _ratios(side, baseline)
            print(f"ours ({mode}) / TRL: speed {speed:.3f}, time to 0.8 {time_ratio:.3f}")
        speed, time_ratio = _ratios(results.get("ray", next(iter(results.values()))), baseline)
        print(f"RESULT grpo_speed_ratio={speed:.3f} grpo_time_to_08_ratio={time_ratio:.3f}")


def _ratios(mine: Side, baseline: Side) -> tuple[float, float]:
    """(ours / TRL trained samples per second, TRL / ours time to 0.8; nan when neither reached it)."""
    speed = mine.samples_per_s / baseline.samples_per_s
    if math.isinf(mine.time_to_08) and math.isinf(baseline.time_to_08):
        return speed, math.nan
    return speed, baseline.time_to_08 / mine.time_to_08


def _line(side: Side) -> str:
    return (
        f"{side.samples_per_s:.1f} trained samples/s, reward 0.8 after {side.time_to_08:.1f} s, "
        f"mean completion {side.mean_length:.1f} tokens, final 5-step reward {side.final_reward:.2f}"
    )


if __name__ == "__main__":
    main()
