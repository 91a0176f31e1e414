"""Worker processes for tests/test_sharded_load.py: FSDP2 trainer ranks that load a checkpoint folder by
reading only their own rows."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def load_worker(rank: int, world: int, init: str, folder: str, dtype: str, out: str) -> None:
    cfg = TrainerConfig(parallel="fsdp", model=PolicyModelConfig(path=folder, param_dtype=dtype))
    trainer = PolicyTrainer(cfg, rank, world, init)
    full = get_model_state_dict(
        trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if rank == 0:
        torch.save(full, Path(out, "state.pt"))


def rss_worker(rank: int, world: int, init: str, folder: str, out: str) -> None:
    """Peak RSS before loading (imports, the meta model, the process group) and after."""
    import omni_rl.models.loading as loading
    import omni_rl.models.sharded_load as sharded

    marks: dict[str, int] = {}
    original = sharded.load_shards

    def measured(*args, **kwargs):
        marks["before"] = peak_rss_bytes()
        result = original(*args, **kwargs)
        marks["after"] = peak_rss_bytes()
        marks.update(result)
        return result

    import omni_rl.training.trainer as trainer_module

    trainer_module.load_shards = measured
    assert loading.build_policy_on_meta  # the meta path is the one measured
    cfg = TrainerConfig(parallel="fsdp", model=PolicyModelConfig(path=folder, param_dtype="float32"))
    trainer = PolicyTrainer(cfg, rank, world, init)
    marks["local_param_bytes"] = sum(p.to_local().numel() * 4 for p in trainer.model.parameters())
    Path(out, f"rss{rank}.json").write_text(json.dumps(marks))
