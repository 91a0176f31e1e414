"""Workers for tests/test_planning.py: what a trainer rank allocates, in its own process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omni_rl.models import MultimodalSample
from omni_rl.planning.measure import build_slice, measure_step
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig


def tiny_worker(rank: int, world: int, init: str, param_dtype: str, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import make_items, tiny

    model, processor = tiny()
    cfg = TrainerConfig(lr=1e-3, parallel="fsdp", model=PolicyModelConfig(param_dtype=param_dtype))
    trainer = PolicyTrainer(cfg, rank, world, init, model_and_processor=(model, processor))
    items = make_items(processor, n=4, video=False)[rank::world]
    Path(out, f"rank{rank}.json").write_text(json.dumps(measure_step(trainer, items)))


def slice_worker(rank: int, world: int, init: str, out: str) -> None:
    model, processor = build_slice()
    cfg = TrainerConfig(
        lr=1e-5,
        parallel="fsdp",
        optimizer_dtype="param",
        reduce_dtype="compute",  # no float32 copy of the MoE layer's 1.3B gradients (machine memory)
        model=PolicyModelConfig(param_dtype="bfloat16"),
    )
    trainer = PolicyTrainer(cfg, rank, world, init, model_and_processor=(model, processor))
    tok = processor.tokenizer
    prompt = [{"role": "user", "content": [{"type": "text", "text": f"question {rank}"}]}]
    sample = MultimodalSample(prompt, [*tok("an answer")["input_ids"], tok.eos_token_id])
    Path(out, f"rank{rank}.json").write_text(json.dumps(measure_step(trainer, [TrainItem(sample, 1.0)])))
