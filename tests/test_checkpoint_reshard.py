"""Sharded checkpoints (torch.distributed.checkpoint) resume on a different number of ranks: saved by 2
FSDP2 ranks and resumed by 1, and the other way round, the next step's loss equals the loss of the run
that kept going. Every rank writes only its own shards."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from omni_rl.training.distributed import launch_local

TESTS = Path(__file__).parent


def _trainer(rank: int, world: int, init: str):
    sys.path.insert(0, str(TESTS))
    from test_trainer import make_items, tiny
    from test_trainer_dp import make_pairs

    from omni_rl.training.trainer import PolicyTrainer
    from omni_rl.training.trainer_config import TrainerConfig

    model, processor = tiny()
    trainer = PolicyTrainer(
        TrainerConfig(lr=3e-3, parallel="fsdp"), rank, world, init, model_and_processor=(model, processor)
    )
    items = make_items(processor, n=4, video=False)
    # DPO: its loss depends on the weights; reference log-probs of the initial weights, as a run keeps them
    pairs = trainer.reference_logps(make_pairs(items)[rank::world])
    return trainer, pairs


def save_worker(rank: int, world: int, init: str, root: str, out: str) -> None:
    trainer, pairs = _trainer(rank, world, init)
    for _ in range(2):
        trainer.train_step(pairs, loss="dpo")
    path = trainer.save_checkpoint(root, data_state={"position": 2})
    files = sorted(p.name for p in (path / "state").iterdir())
    loss = trainer.train_step(pairs, loss="dpo")["loss"]
    if rank == 0:
        Path(out, f"save{world}.json").write_text(json.dumps({"loss": loss, "files": files}))


def resume_worker(rank: int, world: int, init: str, root: str, out: str) -> None:
    trainer, pairs = _trainer(rank, world, init)
    data = trainer.load_checkpoint(root)
    loss = trainer.train_step(pairs, loss="dpo")["loss"]
    if rank == 0:
        Path(out, f"resume{world}.json").write_text(
            json.dumps({"loss": loss, "data": data, "step": trainer.step})
        )


@pytest.mark.parametrize(("saved_by", "resumed_by"), [(2, 1), (1, 2)])
def test_resume_on_another_number_of_ranks_gives_the_same_next_loss(saved_by, resumed_by, tmp_path):
    root = tmp_path / "checkpoints"
    launch_local(save_worker, saved_by, str(root), str(tmp_path))
    launch_local(resume_worker, resumed_by, str(root), str(tmp_path))
    saved = json.loads((tmp_path / f"save{saved_by}.json").read_text())
    resumed = json.loads((tmp_path / f"resume{resumed_by}.json").read_text())
    assert resumed["data"] == {"position": 2} and resumed["step"] == 3
    assert resumed["loss"] == pytest.approx(saved["loss"], rel=1e-5, abs=1e-6)
    shard_files = [f for f in saved["files"] if f.endswith(".distcp")]
    assert len(shard_files) == saved_by  # each rank wrote its own shards


def test_omni_rl_export_writes_an_hf_folder_bucket_by_bucket(tmp_path):
    """From the sharded state of a checkpoint saved by 2 ranks: 1 MiB buckets (several files), loaded by
    transformers and by load_policy with the weights the ranks trained; bf16 on request."""
    import torch
    from transformers import NemotronH_Omni_Reasoning_V3

    from omni_rl.cli import main
    from omni_rl.models.loading import load_policy

    root = tmp_path / "checkpoints"
    launch_local(save_worker, 2, str(root), str(tmp_path))
    step = root / "step_000002"
    saved, _ = load_policy(step / "model", dtype="float32", device="cpu")  # the folder the save streamed
    assert main(["export", str(root), str(tmp_path / "hf"), "--layout", "hf", "--bucket-mib", "1"]) == 0
    files = sorted(p.name for p in (tmp_path / "hf").glob("*.safetensors"))
    assert len(files) > 1
    plain = NemotronH_Omni_Reasoning_V3.from_pretrained(tmp_path / "hf")
    want = saved.state_dict()
    assert [k for k, v in plain.state_dict().items() if not torch.equal(v, want[k])] == []
    assert main(["export", str(step), str(tmp_path / "bf16"), "--dtype", "bfloat16"]) == 0
    half, _ = load_policy(tmp_path / "bf16", dtype="bfloat16", device="cpu")
    assert all(
        torch.equal(v, want[k].to(torch.bfloat16))
        for k, v in half.state_dict().items()
        if v.is_floating_point()
    )
