"""LoRA checkpoints: a step folder keeps only the adapters (and their AdamW state) in ``state/`` plus
``lora.json`` (the LoRA settings and the base model); ``omni-rl export`` merges them into the base
weights, read one tensor at a time from the base checkpoint, and writes an HF folder."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omni_rl.training.lora import LoraSettings, apply_lora, merged_with

MANIFEST = "lora.json"


def write_manifest(folder: Path, settings: LoraSettings, base_model: str) -> None:
    body = {"lora": dataclasses.asdict(settings), "base_model": str(base_model)}
    (folder / MANIFEST).write_text(json.dumps(body, indent=2), encoding="utf-8")


def read_manifest(folder: Path) -> tuple[LoraSettings, str] | None:
    """(settings, base model) of a LoRA step folder; None for a full-weight checkpoint."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return LoraSettings(**body["lora"]), str(body["base_model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a LoRA manifest ({type(exc).__name__}: {exc})") from exc


def base_tensors(model: nn.Module, folder: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(native name, whole tensor) of ``model``'s state dict read from the checkpoint ``folder`` (either
    layout), one tensor at a time (memory mapped)."""
    from omni_rl.models.sharded_load import CheckpointFiles, plan_for, read_rows

    plan = plan_for(model, folder)
    files = CheckpointFiles(folder)
    for name, like in model.state_dict().items():
        if like.dim() == 0:
            value = files.tensor(plan[name].key)
        else:
            value = read_rows(files, plan[name], 0, like.shape[0], like.shape[0])
        yield name, value.reshape(like.shape)


def merged_tensors(
    config: Any, base_folder: str | Path, settings: LoraSettings, adapters: dict[str, torch.Tensor]
) -> Iterator[tuple[str, torch.Tensor]]:
    """The merged weights (native names) of a LoRA checkpoint's ``adapters`` on the base at
    ``base_folder``, a tensor at a time."""
    from omni_rl.models.nemotron_omni import build_on_meta

    base = build_on_meta(config)
    adapted = apply_lora(build_on_meta(config), settings)
    return merged_with(adapted, base_tensors(base, base_folder), adapters)
