"""The two mixed-precision modes on CPU/gloo (2 FSDP2 ranks) against the float32 run: bf16 compute over
float32 master weights (FSDP2 MixedPrecisionPolicy, float32 reduce-scatter), and pure bf16 parameters with
float32 AdamW moments. Their DPO losses over four steps equal the float32 run's within bf16 tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omni_rl.training.distributed import launch_local

MODES = {
    "float32": {"param": "float32", "compute": "float32"},
    "mixed": {"param": "float32", "compute": "bfloat16"},
    "bf16": {"param": "bfloat16", "compute": "bfloat16"},
}


def precision_worker(rank: int, world: int, init: str, mode: str, out: str) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import make_items, tiny
    from test_trainer_dp import make_pairs

    from omni_rl.training.trainer import PolicyTrainer
    from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

    model, processor = tiny()
    m = MODES[mode]
    cfg = TrainerConfig(
        lr=2e-3,
        parallel="fsdp",
        compute_dtype=m["compute"],
        optimizer_dtype="float32",
        model=PolicyModelConfig(param_dtype=m["param"]),
    )
    trainer = PolicyTrainer(cfg, rank, world, init, model_and_processor=(model, processor))
    items = make_items(processor, n=6, video=False)[rank::world]
    # DPO: its loss depends on the weights (GRPO's is -mean advantage at ratio 1 whatever the weights)
    pairs = trainer.reference_logps(make_pairs(items))
    losses = [trainer.train_step(pairs, loss="dpo")["loss"] for _ in range(4)]
    logprob = float(sum(t.sum() for t in trainer.compute_logprobs(items)))
    if rank == 0:
        states = [s for s in trainer.optimizer.state.values()]
        moment_dtypes = sorted({str(s["exp_avg"].dtype) for s in states})
        Path(out, f"{mode}.json").write_text(
            json.dumps({"losses": losses, "logprob": logprob, "moments": moment_dtypes})
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("precision")
    for mode in MODES:
        launch_local(precision_worker, 2, mode, str(out))
    return {mode: json.loads((out / f"{mode}.json").read_text()) for mode in MODES}


@pytest.mark.parametrize("mode", ["mixed", "bf16"])
def test_losses_equal_the_float32_run_within_bf16_tolerance(runs, mode):
    want, got = runs["float32"]["losses"], runs[mode]["losses"]
    assert want[0] == pytest.approx(0.6931, abs=1e-3) and want[-1] < want[0] - 1e-3  # DPO learns
    assert got != want  # the mode really computed in bf16
    for a, b in zip(got, want, strict=True):
        assert abs(a - b) <= 2e-2 * abs(b), (got, want)
    assert runs[mode]["logprob"] == pytest.approx(runs["float32"]["logprob"], rel=2e-2)


def test_optimizer_moments_are_float32_in_every_mode(runs):
    assert all(run["moments"] == ["torch.float32"] for run in runs.values())
