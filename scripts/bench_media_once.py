"""Media work per GRPO step in the trainer: processor calls, encoder forwards and step time, with the
processor run once per sample ("before") and once per unique prompt ("after", ``PromptEncodeCache``).

A step is ``--prompts`` groups of ``--group`` samples (image, audio and video prompts in turn; each
group's samples share the prompt and its media and differ in their completions) on the tiny random
Nemotron Omni. Encoder work is counted with forward hooks on ``vision_model`` and ``audio_tower``: the leading
dimension of each call's input summed (image/video patches, audio clips), so a media item encoded once
per sample counts G times. The encoders still run once per sample row in both cases:
what is shared is the processor's output (pixel values, audio features, video frames, token ids).

    python scripts/bench_media_once.py [--prompts 6] [--group 16] [--steps 3]

Last line: ``RESULT media_processor_calls_before=A after=B encoder_rows_before=C after=D
trainer_step_s_before=E after=F``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from omni_rl.models import MultimodalSample, build_tiny_model
from omni_rl.models.batching import encode_sample
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
    trainer = PolicyTrainer(
        TrainerConfig(lr=1e-4, micro_batch_size=args.group), model_and_processor=(model, processor)
    )
    calls = {"processor": 0, "encoder": 0}
    if not shared:

        def per_sample(sample):
            calls["processor"] += 1
            return encode_sample(processor, sample)

        trainer.prompt_cache.encode = per_sample  # type: ignore[method-assign]

    def count(_module, inputs, _output):
        first = next((x for x in inputs if isinstance(x, torch.Tensor)), None)
        calls["encoder"] += 0 if first is None else int(first.shape[0])

    for name in ("vision_model", "audio_tower"):
        getattr(model, name).register_forward_hook(count)
    items = step_items(processor, args.prompts, args.group)
    trainer.train_step(items)  # warm-up
    calls.update(processor=0, encoder=0)
    trainer.prompt_cache.processor_calls = 0
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(items)
    seconds = (time.perf_counter() - started) / args.steps
    processor_calls = calls["processor"] if not shared else trainer.prompt_cache.processor_calls
    return processor_calls // args.steps, calls["encoder"] // args.steps, seconds


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
    for label, (proc, enc, sec) in (("per sample", before), ("per prompt", after)):
        print(f"processor {label}: {proc} processor calls, {enc} encoder input rows, {sec:.3f} s per step")
    print(
        f"RESULT media_processor_calls_before={before[0]} after={after[0]} encoder_rows_before={before[1]} "
        f"after={after[1]} trainer_step_s_before={before[2]:.3f} after={after[2]:.3f}"
    )


if __name__ == "__main__":
    main()
