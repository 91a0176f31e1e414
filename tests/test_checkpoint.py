"""Training checkpoints: exact resume in a fresh process, HF folder loadable by transformers, atomic
writes (an exception or a SIGKILL mid-save leaves the last good checkpoint), pointer, pruning, RNG."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import make_items, tiny
from transformers import NemotronH_Omni_Reasoning_V3

from omni_rl.models import load_policy, save_tiny_model
from omni_rl.training import checkpoint as ckpt
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def resume_config(model_dir: str) -> TrainerConfig:
    return TrainerConfig(
        model=PolicyModelConfig(path=model_dir),
        lr=1e-3,
        warmup_steps=2,
        schedule="cosine",
        total_steps=8,
        max_grad_norm=1.0,
        micro_batch_tokens=150,
        keep_last=2,
    )


def step_items(processor, step: int) -> list[TrainItem]:
    """Items of a step with fixed old logprobs, so the loss value depends on the weights."""
    items = make_items(processor, seed=step, n=4)
    for item in items:
        n = len(item.sample.completion_ids)
        item.old_logprobs = [-(5.0 + 0.1 * j) for j in range(n)]
    return items


def draws() -> list[float]:
    return [random.random(), float(np.random.rand()), float(torch.rand(()))]


def snapshot(trainer: PolicyTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


RESUME_CHILD = """
import sys, torch
torch.set_num_threads({threads})  # the parent's: another thread count changes the reduction order
sys.path[:0] = [{tests!r}, {root!r}]
from test_checkpoint import draws, resume_config, snapshot, step_items
from omni_rl.training.trainer import PolicyTrainer
t = PolicyTrainer(resume_config({model!r}))
data = t.load_checkpoint({root_ckpt!r})
rng = draws()
metrics = t.train_step(step_items(t.processor, 2))
torch.save({{"data": data, "rng": rng, "metrics": metrics, "params": snapshot(t), "step": t.step}}, {out!r})
"""


def test_resume_in_a_fresh_process_continues_exactly(tmp_path: Path):
    model_dir = str(save_tiny_model(tmp_path / "tiny", seed=3))
    root = tmp_path / "checkpoints"
    t = PolicyTrainer(resume_config(model_dir))
    for step in range(2):
        t.train_step(step_items(t.processor, step))
    saved = t.save_checkpoint(root, data_state={"epoch": 0, "position": 8})
    assert saved.name == "step_000002" and ckpt.find_latest_checkpoint(root) == saved
    rng = draws()
    metrics = t.train_step(step_items(t.processor, 2))
    params = snapshot(t)

    out = tmp_path / "child.pt"
    code = RESUME_CHILD.format(
        tests=str(TESTS),
        root=str(ROOT),
        model=model_dir,
        root_ckpt=str(root),
        out=str(out),
        threads=torch.get_num_threads(),
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    child = torch.load(out, weights_only=False)
    assert child["data"] == {"epoch": 0, "position": 8}
    assert child["rng"] == rng and child["step"] == t.step == 3
    for key in ("loss", "grad_norm", "lr", "entropy", "policy/ratio_mean"):
        assert child["metrics"][key] == metrics[key], key
    assert metrics["policy/ratio_mean"] != pytest.approx(1.0, abs=1e-3)  # weights matter for this loss
    worst = max((child["params"][n] - p).abs().max().item() for n, p in params.items())
    assert worst <= 1e-7, worst


@pytest.mark.parametrize("layout", ["original", "hf"])
def test_model_folder_loads_with_transformers(tmp_path: Path, layout: str):
    t = PolicyTrainer(TrainerConfig(lr=1e-3, checkpoint_layout=layout), model_and_processor=tiny())
    t.train_step(make_items(t.processor, n=3))
    path = t.save_checkpoint(tmp_path)
    names = sorted(p.name for p in path.iterdir())
    assert names == ["model", "scheduler.pt", "state", "trainer_state.json"]
    assert (path / "model" / "model.safetensors.index.json").is_file()
    assert (path / "state" / ".metadata").is_file()  # torch.distributed.checkpoint
    config = json.loads((path / "model" / "config.json").read_text())
    assert ("llm_config" in config) == (layout == "original")
    loaded, _ = load_policy(path / "model", dtype="float32", device="cpu")
    want = t.model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())
    if layout == "hf":  # plain transformers, no omni_rl code
        plain = NemotronH_Omni_Reasoning_V3.from_pretrained(path / "model")
        assert all(torch.equal(v, want[k]) for k, v in plain.state_dict().items())
    state = json.loads((path / "trainer_state.json").read_text())
    assert state["step"] == 1 and state["config"]["lr"] == 1e-3 and len(state["rng"]) == 1


def test_exception_mid_save_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch):
    t = PolicyTrainer(TrainerConfig(lr=1e-3), model_and_processor=tiny())
    items = make_items(t.processor, n=3)
    t.train_step(items)
    good = t.save_checkpoint(tmp_path, data_state={"position": 1})
    good_params = snapshot(t)
    t.train_step(items)
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        if str(f).endswith(ckpt.SCHEDULER_FILE):  # after the shards and the HF folder were written
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        t.save_checkpoint(tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_000001"]
    assert ckpt.find_latest_checkpoint(tmp_path) == good
    fresh = PolicyTrainer(TrainerConfig(lr=1e-3), model_and_processor=tiny())
    assert fresh.load_checkpoint(tmp_path) == {"position": 1} and fresh.step == 1
    assert all(torch.equal(p, good_params[n]) for n, p in fresh.model.named_parameters())


KILL_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
from omni_rl.training import checkpoint as ckpt
def write(tmp):
    (tmp / "model").mkdir()
    (tmp / "model" / "model.safetensors").write_bytes(b"partial")
    os.kill(os.getpid(), signal.SIGKILL)
ckpt.write_checkpoint({dir!r}, 2, write)
"""


def good_writer(tag: str):
    def write(tmp: Path) -> None:
        (tmp / "payload.txt").write_text(tag)
        (tmp / ckpt.STATE_FILE).write_text(json.dumps({"tag": tag}))

    return write


def test_sigkill_mid_save_leaves_previous_checkpoint(tmp_path: Path):
    first = ckpt.write_checkpoint(tmp_path, 1, good_writer("one"))
    code = KILL_CHILD.format(root=str(ROOT), dir=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(ckpt.TMP_PREFIX)]
    assert len(leftovers) == 1 and not (tmp_path / "step_000002").exists()
    assert (
        ckpt.find_latest_checkpoint(tmp_path) == first
        and (tmp_path / "latest").read_text() == "step_000001\n"
    )
    third = ckpt.write_checkpoint(tmp_path, 3, good_writer("three"))
    assert not any(p.name.startswith(ckpt.TMP_PREFIX) for p in tmp_path.iterdir())  # cleaned
    assert ckpt.find_latest_checkpoint(tmp_path) == third


def test_pointer_fallback_pruning_and_resave(tmp_path: Path):
    for step in range(1, 5):
        ckpt.write_checkpoint(tmp_path, step, good_writer(str(step)), keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000003", "step_000004"]
    ckpt.write_checkpoint(tmp_path, 4, good_writer("again"), keep_last=2)
    assert (tmp_path / "step_000004" / "payload.txt").read_text() == "again"
    # an incomplete folder (no trainer_state.json) is never chosen, even when the pointer names it
    (tmp_path / "step_000009").mkdir()
    (tmp_path / "latest").write_text("step_000009\n")
    assert ckpt.find_latest_checkpoint(tmp_path) == tmp_path / "step_000004"
    (tmp_path / "latest").unlink()
    assert ckpt.find_latest_checkpoint(tmp_path) == tmp_path / "step_000004"
    assert ckpt.find_latest_checkpoint(tmp_path / "missing") is None
    with pytest.raises(RuntimeError, match=r"trainer_state\.json"):
        ckpt.write_checkpoint(tmp_path, 5, lambda tmp: None)
    assert not (tmp_path / "step_000005").exists()
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        PolicyTrainer(TrainerConfig(), model_and_processor=tiny()).load_checkpoint(tmp_path / "missing")


def test_rng_state_round_trip_through_json():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    state = json.loads(json.dumps(ckpt.capture_rng()))
    first = draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng(state)
    assert draws() == first


def test_write_text_atomic_replaces(tmp_path: Path):
    target = tmp_path / "latest"
    ckpt.write_text_atomic(target, "a")
    ckpt.write_text_atomic(target, "b")
    assert target.read_text() == "b" and os.listdir(tmp_path) == ["latest"]
