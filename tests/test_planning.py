"""The memory planner (omni-rl plan): every shipped GPU config fits its GPUs and a 16 GB GPU does not; the
planned bytes of parameters, gradients and optimizer states equal what the trainer allocates (1 and 2
gloo ranks); the activation formulas equal what autograd saves at real width; omni-rl train refuses a
plan that cannot fit."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from planning_measure import tiny_worker

from omni_rl.algorithms.setup import check_memory_plan
from omni_rl.cli import main
from omni_rl.cli.train import load_run_config
from omni_rl.planning import PlanError, make_plan
from omni_rl.planning.memory import TrainerSettings, trainer_rows
from omni_rl.planning.shapes import model_shape
from omni_rl.training.distributed import launch_local

ROOT = Path(__file__).resolve().parents[1]
GPU_CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("tiny_"))
PLAN_LINE = re.compile(
    r"^PLAN fits=(true|false) params_total=(\d+) params_active=(\d+) trainer_gib_per_gpu=([\d.]+) "
    r"engine_gib_per_gpu=([\d.]+) gpu_gib=([\d.]+)$"
)


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_gpu_config_fits(path, capsys):
    assert main(["plan", "--config", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    found = PLAN_LINE.match(out[-1])
    assert found, out[-1]
    fits, total, active, trainer, engine, gpu = found.groups()
    size = load_run_config(path, []).cluster.placement.gpu_memory_gib
    assert fits == "true" and float(gpu) == size in (80, 141)  # 8 x 80 GB nodes, or one H200
    assert 31e9 < int(total) < 34e9 and 3e9 < int(active) < 6e9  # the real model, from its name
    assert 0 < float(trainer) <= size and float(engine) <= size
    assert "trainer rank (per GPU)" in "\n".join(out)


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.name)
def test_a_16_gb_gpu_does_not_fit_and_the_settings_to_change_are_named(path, capsys):
    assert main(["plan", "--config", str(path), "cluster.placement.gpu_memory_gib=16"]) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("PLAN fits=false ")
    assert "DOES NOT FIT" in out and "to make it fit, change: " in out
    assert "cluster.placement.trainer_workers" in out


def test_plan_rows_of_the_colocated_config():
    plan = make_plan(load_run_config(ROOT / "configs/nemotron_omni_grpo.yaml", []))
    assert [c.name for c in plan.checks] == ["colocated GPU, generating", "colocated GPU, training"]
    rows = {r.what: r.bytes for r in plan.trainer_resident + plan.engine}
    total, trainable = plan.shape.numel(), plan.shape.numel(trainable=True)
    assert rows["parameters (bfloat16)"] == pytest.approx(total * 2 / 8, rel=0.01)  # + FSDP2 padding
    assert rows["optimizer states (AdamW, 2 x float32)"] == pytest.approx(trainable * 8 / 8, rel=0.01)
    assert plan.engines == 2 and plan.sync_bytes == total * 2


def test_a_gpu_size_is_needed_without_a_gpu(capsys):
    path = str(ROOT / "configs/nemotron_omni_grpo.yaml")
    assert main(["plan", "--config", path, "cluster.placement.gpu_memory_gib=null"]) == 2
    assert "cluster.placement.gpu_memory_gib" in capsys.readouterr().err


def test_the_tiny_cpu_config_is_planned_too(capsys):
    assert main(["plan", "--config", str(ROOT / "configs/tiny_grpo_cpu.yaml")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("PLAN fits=true params_total=276902 ")


def test_train_refuses_a_plan_that_does_not_fit_unless_told_not_to_check():
    cfg = load_run_config(ROOT / "configs/tiny_grpo_cpu.yaml", ["cluster.placement.gpu_memory_gib=0.5"])
    with pytest.raises(PlanError, match="does not fit its GPUs") as info:
        check_memory_plan(cfg, "gpu")
    assert "PLAN fits=false" in str(info.value)
    check_memory_plan(replace(cfg, plan=replace(cfg.plan, check=False)), "gpu")  # skipped
    check_memory_plan(cfg, "cpu")  # CPU placements have no GPU memory to check


def planned(config, ranks: int, rank: int, param_dtype: str, optimizer_dtype: str) -> dict[str, float]:
    shape = model_shape(config)
    s = TrainerSettings(ranks, param_dtype, optimizer_dtype, param_dtype, True, 1024, False, 64)
    resident, transient, _ = trainer_rows(shape, s, rank)
    rows = {r.what.split(" (")[0]: r.bytes for r in resident + transient}
    return {
        "parameters": rows["parameters"],
        "gradients": rows["gradients"],
        "optimizer": rows["optimizer states"],
    }


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("param_dtype", ["float32", "bfloat16"])
def test_planned_bytes_equal_what_the_tiny_trainer_allocates(ranks, param_dtype, tmp_path):
    from test_trainer import tiny

    launch_local(tiny_worker, ranks, param_dtype, str(tmp_path))
    config = tiny()[0].config
    for rank in range(ranks):
        want = planned(config, ranks, rank, param_dtype, "float32")
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=0.05), (rank, key, got, want)


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_planned_bytes_equal_what_a_real_width_slice_allocates(ranks, tmp_path):
    """Real hidden size, Mamba / attention / MoE widths and all 128 experts (three decoder layers,
    ~1.4B parameters) in bf16 with bf16 moments, so that two ranks fit this machine."""
    from planning_measure import slice_worker

    from omni_rl.planning.measure import slice_config

    launch_local(slice_worker, ranks, str(tmp_path))
    config = slice_config()[0]
    for rank in range(ranks):
        want = planned(config, ranks, rank, "bfloat16", "bfloat16")
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["parameters"] > 2.6e9 / ranks  # the slice really is at real width
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=0.05), (rank, key, got, want)


def test_activation_formulas_equal_what_autograd_saves_at_real_width():
    """Attention and MoE layers at the real widths (8 experts instead of 128: a token's activations do not
    depend on the expert count beyond the router's scores, which the formula counts), bf16, CPU."""
    from omni_rl.models.nemotron_omni import real_config
    from omni_rl.planning.measure import saved_bytes_per_token
    from omni_rl.planning.memory import TORCH_MAMBA_CHUNK_TERMS, layer_activation_bytes

    text = real_config().text_config
    text.layers_block_type = ["linear_attention", "full_attention", "moe"]
    text.num_hidden_layers, text.n_routed_experts, text.vocab_size = 3, 8, 512
    measured = saved_bytes_per_token(text, tokens=256)
    shape = SimpleNamespace(text={**vars(text), "head_dim": text.head_dim})
    for kind in ("full_attention", "moe"):
        assert layer_activation_bytes(shape, kind, 2, True) == pytest.approx(measured[kind], rel=0.02), kind
    # Mamba-2 on CPU runs the pure-torch fallback: its chunk-quadratic terms are the calibrated part
    torch_path = layer_activation_bytes(shape, "linear_attention", 2, fused_mamba=False)
    assert torch_path == pytest.approx(measured["linear_attention"], rel=0.05), TORCH_MAMBA_CHUNK_TERMS
    assert layer_activation_bytes(shape, "linear_attention", 2, fused_mamba=True) < torch_path


def test_the_readme_shows_the_plan_as_it_is(capsys):
    """README's `omni-rl plan` output for the colocated config is what the command prints today."""
    assert main(["plan", "--config", str(ROOT / "configs/nemotron_omni_grpo.yaml")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_one_gpu_lora_config_counts_a_frozen_base_and_the_adapters():
    """ONE 141 GB H200, colocated, LoRA, sleeping engine: the base is held once in bf16 without gradients
    or AdamW state, only the adapters train, and the reference (KL) is the base itself (no copy)."""
    cfg = load_run_config(ROOT / "configs/nemotron_omni_grpo_1gpu.yaml", [])
    assert cfg.trainer.lora is not None and cfg.generation.sleep_while_training
    assert cfg.trainer.policy_loss.kl_coef > 0
    plan = make_plan(cfg)
    assert plan.fits and plan.gpu_bytes == 141 * 2**30
    assert [c.name for c in plan.checks] == ["colocated GPU, generating", "colocated GPU, training"]
    shape, rows = plan.shape, {r.what: r.bytes for r in plan.trainer_resident + plan.trainer_transient}
    adapters = shape.numel(trainable=True)
    assert adapters == shape.numel(groups=("lora",)) and 0 < adapters < 1e-3 * shape.base_numel()
    assert rows["parameters (bfloat16)"] == (shape.base_numel() + adapters) * 2
    assert rows["optimizer states (AdamW, 2 x float32)"] == adapters * 8 + 4 * sum(
        1 for p in shape.params if p.trainable
    )
    assert rows["gradients (bfloat16)"] == adapters * 2
    assert [r.bytes for r in plan.reference] == [0.0]
    assert plan.sync_bytes == shape.base_numel() * 2  # merged weights, not adapters
    # without LoRA the same GPU cannot hold the trainer (full AdamW state) and the engine
    full = replace(cfg, trainer=replace(cfg.trainer, lora=None))
    assert not make_plan(full).fits


def test_the_reference_is_a_frozen_shard_on_every_trainer_rank():
    cfg = load_run_config(ROOT / "configs/nemotron_omni_grpo.yaml", ["trainer.policy_loss.kl_coef=0.01"])
    plan = make_plan(cfg)
    (row,) = plan.reference
    assert row.bytes == pytest.approx(plan.shape.numel() * 2 / 8, rel=0.01)  # bf16, sharded 1/8
    assert "sharded 1/8" in row.note
    assert all(any(r is row for r in c.rows) for c in plan.checks)  # in both phases of the GPU
