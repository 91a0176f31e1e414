"""Training checkpoints on disk: atomic step folders, a ``latest`` pointer, pruning, RNG state.

Layout of ``<root>/step_000010/``::

    state/               torch.distributed.checkpoint: model and AdamW state, each rank its own shards
                         (loads on any number of ranks)
    model/               HF folder (safetensors, config, processor): from_pretrained / vLLM load it;
                         written tensor bucket by tensor bucket, never the whole model in one process
    scheduler.pt         LR scheduler state
    trainer_state.json   step, per-rank RNG states, the caller's data position, the config

(Format 1 checkpoints held ``optimizer.pt``, the full AdamW state, instead of ``state/``; they still
load.)

A checkpoint is written into ``<root>/.tmp-step_000010-<pid>-<hex>/`` (``trainer_state.json`` last),
flushed to disk, then renamed to ``step_000010`` with ``os.replace``; ``<root>/latest`` (the folder
name) is replaced last the same way. A crash at any point leaves the previous checkpoint and pointer
intact; leftover temp folders are ignored by readers and removed by the next save. Readers trust a
folder only if it holds ``trainer_state.json``. Rank 0 creates and commits the folder; every rank writes
its shards into it in between.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

LATEST = "latest"
STATE_FILE = "trainer_state.json"
MODEL_DIR = "model"
DCP_DIR = "state"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
TMP_PREFIX = ".tmp-"
_STEP_RE = re.compile(r"^step_(\d+)$")


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def is_complete(path: Path) -> bool:
    return path.is_dir() and (path / STATE_FILE).is_file()


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete step folders under ``root``, oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_RE.match(p.name)) and is_complete(p)]
    return [p for _, p in sorted(found)]


def find_latest_checkpoint(root: str | Path) -> Path | None:
    """The folder named by ``<root>/latest`` if complete, else the highest complete step folder."""
    root = Path(root)
    pointer = root / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if _STEP_RE.match(name) and is_complete(root / name):
            return root / name
        log.warning("%s names %r, which is not a complete checkpoint; scanning", pointer, name)
    found = list_checkpoints(root)
    return found[-1] if found else None


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def clean_temporaries(root: Path) -> list[Path]:
    """Remove leftovers of interrupted saves (temp folders/files); returns what was removed."""
    removed = []
    for p in root.iterdir() if root.is_dir() else []:
        if p.name.startswith(TMP_PREFIX):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed.append(p)
    return removed


def write_checkpoint(
    root: str | Path, step: int, write: Callable[[Path], None], keep_last: int | None = None
) -> Path:
    """Create ``<root>/step_<step>`` atomically: ``write(tmp_dir)`` fills a temp folder, which must
    end up holding ``trainer_state.json``; then rename, update ``latest``, prune to ``keep_last``."""
    tmp = new_temp_dir(root, step)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_checkpoint(root, step, tmp, keep_last)


def new_temp_dir(root: str | Path, step: int) -> Path:
    """A fresh temp folder for the checkpoint of ``step`` (leftovers of interrupted saves removed)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for p in clean_temporaries(root):
        log.warning("removed %s left by an interrupted save", p)
    tmp = root / f"{TMP_PREFIX}{step_dir_name(step)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def commit_checkpoint(root: str | Path, step: int, tmp: Path, keep_last: int | None = None) -> Path:
    """Make the filled temp folder ``tmp`` the checkpoint of ``step``: flush, rename, point ``latest``
    at it, prune to ``keep_last``. The temp folder is removed on failure."""
    root = Path(root)
    final = root / step_dir_name(step)
    try:
        if not (tmp / STATE_FILE).is_file():
            raise RuntimeError(f"checkpoint writer did not create {STATE_FILE}")
        _fsync_tree(tmp)
        if final.exists():  # re-saving a step: move the old one aside, drop it after the swap
            old = root / f"{TMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(root / LATEST, final.name + "\n")
    if keep_last is not None:
        for old in list_checkpoints(root)[:-keep_last]:
            if old != final:
                shutil.rmtree(old)
    return final


# RNG state as JSON-able data ------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """Python, numpy and torch (CPU, and CUDA when available) RNG states of this process."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def read_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
    return json.loads((path / STATE_FILE).read_text())


def load_safetensors_folder(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of the ``*.safetensors`` files in ``folder`` (sharded or not), on CPU."""
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors files")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(f, device="cpu"))
    return out
