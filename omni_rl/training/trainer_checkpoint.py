"""Saving and restoring a ``PolicyTrainer``: model and AdamW state (sharded, torch.distributed.checkpoint),
an HF folder, scheduler, step, RNG, data position. The on-disk layout and its atomicity are in
:mod:`omni_rl.training.checkpoint`."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from omni_rl.config import to_dict
from omni_rl.models.hf_export import export_hf
from omni_rl.models.layout import to_native
from omni_rl.training import checkpoint as ckpt
from omni_rl.training import distributed as dist_utils
from omni_rl.training.lora import adapter_state
from omni_rl.training.lora_checkpoint import write_manifest

if TYPE_CHECKING:
    from omni_rl.training.trainer import PolicyTrainer

log = logging.getLogger(__name__)
FORMAT = 2  # 1: full optimizer.pt written by rank 0 (still loads)


def save_trainer(trainer: PolicyTrainer, root: str | Path, data_state: dict | None = None) -> Path:
    """Collective. Rank 0 makes a temp folder; every rank writes its model and AdamW shards into
    ``state/`` (torch.distributed.checkpoint) and takes part in the streamed HF export to ``model/``;
    rank 0 writes the scheduler and ``trainer_state.json`` and commits the folder atomically."""
    if trainer.parallel == "fsdp":
        dist_utils.reshard(trainer.model)
    rngs = dist_utils.gather_objects(ckpt.capture_rng())
    tmp = ckpt.new_temp_dir(root, trainer.step) if trainer.rank == 0 else None
    tmp = Path(dist_utils.gather_objects(str(tmp))[0])
    lora = trainer.cfg.lora
    try:
        sharded = {
            "model": _model_state(trainer),
            "optim": get_optimizer_state_dict(trainer.model, trainer.optimizer),
        }
        dcp.save(sharded, checkpoint_id=str(tmp / ckpt.DCP_DIR))
        if lora is not None:  # only the adapters: `omni-rl export` merges them into the base
            if trainer.rank == 0:
                write_manifest(tmp, lora, trainer.cfg.model.path)
        else:
            export_hf(trainer.model, trainer.hf_model, trainer.processor, tmp / ckpt.MODEL_DIR,
                      layout=trainer.cfg.checkpoint_layout, rank=trainer.rank)  # fmt: skip
    except BaseException:
        if trainer.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    path = Path(root) / ckpt.step_dir_name(trainer.step)
    if trainer.rank == 0:
        state = {
            "format": FORMAT,
            "step": trainer.step,
            "world_size": trainer.world_size,
            "rng": rngs,
            "data_state": data_state or {},
            "config": to_dict(trainer.cfg),
        }
        try:
            torch.save(trainer.scheduler.state_dict(), tmp / ckpt.SCHEDULER_FILE)
            (tmp / ckpt.STATE_FILE).write_text(json.dumps(state))  # last: marks the folder complete
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        path = ckpt.commit_checkpoint(root, trainer.step, tmp, trainer.cfg.keep_last)
    dist_utils.barrier()
    return path


def load_trainer(trainer: PolicyTrainer, path: str | Path) -> dict:
    """Restore model, AdamW, scheduler, step and RNG; a format-2 checkpoint loads on any number of
    ranks (each reads the parts of the shards it now owns)."""
    path = Path(path)
    if not ckpt.is_complete(path):
        latest = ckpt.find_latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"{path}: no complete checkpoint")
        path = latest
    state = ckpt.read_state(path)
    if trainer.parallel == "fsdp":
        dist_utils.reshard(trainer.model)
    if state.get("format") == 1:
        _load_format_1(trainer, path)
    elif state.get("format") == FORMAT:
        _load_sharded(trainer, path / ckpt.DCP_DIR)
    else:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r}, expected {FORMAT} (or 1)")
    trainer.scheduler.load_state_dict(torch.load(path / ckpt.SCHEDULER_FILE, weights_only=True))
    trainer.step = int(state["step"])
    rngs = state["rng"]
    if len(rngs) != trainer.world_size:
        log.warning("%s: RNG states of %d ranks, running %d", path, len(rngs), trainer.world_size)
    ckpt.restore_rng(rngs[trainer.rank % len(rngs)])
    return state["data_state"]


def _model_state(trainer: PolicyTrainer) -> dict:
    """What a checkpoint keeps of the model: everything, or with LoRA only the adapters."""
    state = get_model_state_dict(trainer.model)
    return state if trainer.cfg.lora is None else adapter_state(state)


def _load_sharded(trainer: PolicyTrainer, folder: Path) -> None:
    saved = dcp.FileSystemReader(str(folder)).read_metadata().state_dict_metadata
    names = {n for n, _ in trainer.model.named_parameters()}
    unknown = {k.split(".", 2)[2].rsplit(".", 1)[0] for k in saved if k.startswith("optim.state.")} - names
    if unknown:
        raise KeyError(f"{folder}: optimizer state for unknown parameters {sorted(unknown)[:5]}")
    # the template, built by hand: get_optimizer_state_dict on a fresh optimizer runs a fake step (and
    # fails for FSDP2 parameters without state); hyperparameters are the current ones (the scheduler
    # state restores the learning rate)
    fqn = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = [
        {**{k: v for k, v in g.items() if k != "params"}, "params": [fqn[id(p)] for p in g["params"]]}
        for g in trainer.optimizer.param_groups
    ]
    optim: dict = {"state": {}, "param_groups": groups}
    for name, param in trainer.model.named_parameters():
        # a parameter that never had a gradient has no AdamW state: it keeps none, exactly as saved
        keys = {k.rsplit(".", 1)[1]: m for k, m in saved.items() if k.startswith(f"optim.state.{name}.")}
        if keys:
            optim["state"][name] = {
                key: torch.zeros((), dtype=m.properties.dtype)
                if not m.size
                else torch.zeros_like(param, dtype=m.properties.dtype)
                for key, m in keys.items()
            }
    sharded = {"model": _model_state(trainer), "optim": optim}
    dcp.load(sharded, checkpoint_id=str(folder))
    # LoRA: the checkpoint holds the adapters; the frozen base stays as loaded from model.path
    strict = trainer.cfg.lora is None
    set_model_state_dict(trainer.model, sharded["model"], options=StateDictOptions(strict=strict))
    # not strict: parameters that never had a gradient have no state (as when saved)
    set_optimizer_state_dict(
        trainer.model, trainer.optimizer, sharded["optim"], options=StateDictOptions(strict=False)
    )


def _load_format_1(trainer: PolicyTrainer, path: Path) -> None:
    weights = to_native(trainer.hf_model, ckpt.load_safetensors_folder(path / ckpt.MODEL_DIR))
    full = StateDictOptions(full_state_dict=True, strict=True)
    set_model_state_dict(trainer.model, weights, options=full)
    optim_state = torch.load(path / ckpt.OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    unknown = set(optim_state["state"]) - {n for n, _ in trainer.model.named_parameters()}
    if unknown:
        raise KeyError(f"{path}: optimizer state for unknown parameters {sorted(unknown)[:5]}")
    # not strict: a parameter that never had a gradient has no AdamW state yet, exactly as before
    lenient = StateDictOptions(full_state_dict=True, strict=False)
    set_optimizer_state_dict(trainer.model, trainer.optimizer, optim_state, options=lenient)
