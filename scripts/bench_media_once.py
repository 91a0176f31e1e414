"""Media work per GRPO step in the trainer: processor calls, encoder forwards and step time, "before"
(the processor and the frozen encoders once per sample) and "after" (the processor once per unique
prompt, ``PromptEncodeCache``; the frozen encoders once per unique media item, ``TowerCache``).

A step is ``--prompts`` groups of ``--group`` samples (image, audio and video prompts in turn; each
group's samples share the prompt and its media and differ in their completions) on the tiny random
Nemotron Omni with its vision and audio encoders frozen (as in the GPU configs), on both sides. A step
is the loop's two trainer calls: the old log-probs (``compute_logprobs``) and the update
(``train_step``). Encoder work is counted in media items encoded (an image, a video frame group, an
audio clip): forward hooks on ``vision_model`` and ``audio_tower`` before, the cache's own count after.
The tiny model's encoders are small next to its decoder, so the step time moves less than it would at
real width.

    python scripts/bench_media_once.py [--prompts 6] [--group 16] [--steps 3]

Last line: ``RESULT media_processor_calls_before=A after=B encoder_items_before=C after=D
trainer_step_s_before=E after=F``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from PIL import Image

from omni_rl.models import MultimodalSample, build_tiny_model
from omni_rl.models.batching import encode_sample
from omni_rl.models.loading import freeze
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig


def step_items(processor, prompts: int, group: int, seed: int = 0) -> list[TrainItem]:
    rng = np.random.default_rng(seed)
    tok = processor.tokenizer
    items = []
    for p in range(prompts):
        kind = ("image", "audio", "video")[p % 3]
        media: dict = {
            "image": {"images": [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))]},
            "audio": {"audio": [(rng.standard_normal(16000) * 0.1).astype(np.float32)]},
            "video": {"videos": [rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)]},
        }[kind]
        content = [{"type": kind}, {"type": "text", "text": f"Question {p}?"}]
        for g in range(group):
            ids = tok(f"answer {g} {p}", add_special_tokens=False)["input_ids"]
            sample = MultimodalSample([{"role": "user", "content": content}], ids, **media)
            items.append(TrainItem(sample, advantage=float(rng.normal()), group=f"g{p}"))
    return items


def measure(shared: bool, args: argparse.Namespace) -> tuple[int, int, float]:
    model, processor = build_tiny_model(seed=3)
    freeze(model, ["vision", "audio"])
    cfg = TrainerConfig(lr=1e-4, micro_batch_size=args.group, encoder_cache_mb=1024 if shared else 0)
    trainer = PolicyTrainer(cfg, model_and_processor=(model, processor))
    calls = {"processor": 0, "encoder": 0, "cached": 0}
    if not shared:

        def per_sample(sample):
            calls["processor"] += 1
            return encode_sample(processor, sample)

        trainer.prompt_cache.encode = per_sample  # type: ignore[method-assign]

        def count(_module, args, kwargs, _output):  # items in the call: images, frame groups, clips
            grid = kwargs.get("image_grid_hw")
            first = args[0] if args else kwargs.get("input_features")
            calls["encoder"] += int(grid.shape[0]) if grid is not None else int(first.shape[0])

        for name in ("vision_model", "audio_tower"):
            getattr(model, name).register_forward_hook(count, with_kwargs=True)

    def step(seed: int) -> None:  # new prompts and media every step, as in a run
        items = step_items(processor, args.prompts, args.group, seed)
        old = trainer.compute_logprobs([it.sample for it in items])
        metrics = trainer.train_step(
            [dataclasses.replace(it, old_logprobs=lp) for it, lp in zip(items, old, strict=True)]
        )
        calls["cached"] += int(sum(v for k, v in metrics.items() if k.endswith("_encoded")))

    step(0)  # warm-up
    calls.update(processor=0, encoder=0, cached=0)
    trainer.prompt_cache.processor_calls = 0
    started = time.perf_counter()
    for seed in range(1, args.steps + 1):
        step(seed)
    seconds = (time.perf_counter() - started) / args.steps
    processor_calls = calls["processor"] if not shared else trainer.prompt_cache.processor_calls
    encoded = calls["encoder"] if not shared else calls["cached"]
    return processor_calls // args.steps, encoded // args.steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    before = measure(False, args)
    after = measure(True, args)
    for label, (proc, enc, sec) in (("per sample", before), ("per prompt / item", after)):
        print(f"media work {label}: {proc} processor calls, {enc} encoder items, {sec:.3f} s per step")
    print(
        f"RESULT media_processor_calls_before={before[0]} after={after[0]} encoder_items_before={before[1]} "
        f"after={after[1]} trainer_step_s_before={before[2]:.3f} after={after[2]:.3f}"
    )


if __name__ == "__main__":
    main()
