"""The planner against measurement: bytes of parameters, gradients and AdamW state that a trainer rank
allocates (FSDP2 on gloo, CPU) next to what ``omni-rl plan``'s memory model predicts, for the tiny model
and for a real-width slice of Nemotron 3 Nano Omni (real hidden size, Mamba / attention / MoE widths and
all 128 experts; three decoder layers), on 1 and 2 ranks. Also the memory plan of the real model for each
shipped GPU config.

    python scripts/bench_plan.py            # ~5 min on 2 cores, ~16 GB peak
    python scripts/bench_plan.py --quick    # the tiny model only

Last line: RESULT plan_max_rel_err=X (the largest |predicted - measured| / measured over every row).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from omni_rl.models import MultimodalSample
from omni_rl.planning.measure import build_slice, measure_step, slice_config
from omni_rl.planning.memory import TrainerSettings, trainer_rows
from omni_rl.planning.shapes import model_shape
from omni_rl.training.distributed import launch_local
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # model -> (param dtype, optimizer dtype, reduce dtype)
    "tiny": ("float32", "float32", "float32"),
    "slice": ("bfloat16", "bfloat16", "compute"),  # two ranks of the slice must fit 24 GB
}


def build(which: str):
    if which == "slice":
        return build_slice()
    from omni_rl.models import build_tiny_model

    return build_tiny_model()


def worker(rank: int, world: int, init: str, which: str, out: str) -> None:
    param, optim, reduce = SETTINGS[which]
    model, processor = build(which)
    cfg = TrainerConfig(lr=1e-5, parallel="fsdp", optimizer_dtype=optim, reduce_dtype=reduce,
                        model=PolicyModelConfig(param_dtype=param))  # fmt: skip
    trainer = PolicyTrainer(cfg, rank, world, init, model_and_processor=(model, processor))
    tok = processor.tokenizer
    prompt = [{"role": "user", "content": [{"type": "text", "text": f"question {rank}"}]}]
    sample = MultimodalSample(prompt, [*tok("an answer")["input_ids"], tok.eos_token_id])
    Path(out, f"{which}-{world}-{rank}.json").write_text(
        json.dumps(measure_step(trainer, [TrainItem(sample, 1.0)]))
    )


def predicted(which: str, ranks: int, rank: int) -> dict[str, float]:
    from omni_rl.models.tiny import TinyOmniSpec, build_config, build_processor

    if which == "slice":
        config = slice_config()[0]
    else:
        spec = TinyOmniSpec()
        config = build_config(spec, build_processor(spec).tokenizer)
    param, optim, _ = SETTINGS[which]
    s = TrainerSettings(ranks, param, optim, param, True, 1024, False, 64)
    resident, transient, _ = trainer_rows(model_shape(config), s, rank)
    rows = {r.what.split(" (")[0]: r.bytes for r in resident + transient}
    return {
        "parameters": rows["parameters"],
        "gradients": rows["gradients"],
        "optimizer": rows["optimizer states"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    args = parser.parse_args()
    worst = 0.0
    print(
        f"{'model':<6} {'ranks':>5} {'rank':>4} {'row':<11} {'predicted MiB':>14} {'measured MiB':>13} {'rel err':>8}"
    )
    with tempfile.TemporaryDirectory() as out:
        for which in ("tiny",) if args.quick else ("tiny", "slice"):
            for world in (1, 2):
                launch_local(worker, world, which, out)
                for rank in range(world):
                    got = json.loads(Path(out, f"{which}-{world}-{rank}.json").read_text())
                    for key, want in predicted(which, world, rank).items():
                        err = abs(want - got[key]) / got[key]
                        worst = max(worst, err)
                        print(f"{which:<6} {world:>5} {rank:>4} {key:<11} {want / 2**20:>14.2f} "
                              f"{got[key] / 2**20:>13.2f} {err:>8.4f}")  # fmt: skip
    print(f"RESULT plan_max_rel_err={worst:.4f}")


if __name__ == "__main__":
    main()
