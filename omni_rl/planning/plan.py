"""``make_plan(run_config)``: memory per role and per GPU before anything starts, and whether it fits.

Roles: a trainer rank, a generation engine shard, both on one GPU when colocated, the KL reference when
``kl_coef > 0``. A colocated GPU is checked in its two phases: generating (the trainer's resident state +
the engine) and training (the trainer's peak + what a sleeping engine keeps, or the whole engine when it
does not sleep). ``format_plan`` prints the tables and the ``PLAN ...`` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omni_rl.planning.memory import (
    DTYPE_BYTES,
    EngineSettings,
    GiB,
    Row,
    TrainerSettings,
    engine_rows,
    total,
    trainer_rows,
)
from omni_rl.planning.shapes import ModelShape, frozen_groups, model_config, model_shape


class PlanError(ValueError):
    """The plan cannot be made (e.g. no GPU memory size known for a GPU placement)."""


@dataclass
class GpuCheck:
    name: str  # e.g. "colocated GPU, generating"
    rows: list[Row]
    capacity: float  # bytes

    @property
    def used(self) -> float:
        return total(self.rows)

    @property
    def fits(self) -> bool:
        return self.used <= self.capacity


@dataclass
class Plan:
    device: str
    mode: str
    shape: ModelShape
    trainer_resident: list[Row]
    trainer_transient: list[Row]
    trainer_host: list[Row] = field(default_factory=list)  # host memory per rank (offload)
    engine: list[Row] = field(default_factory=list)
    engine_budget: float = 0.0  # what a vLLM engine takes of its GPU (gpu_memory_utilization x GPU)
    reference: list[Row] = field(default_factory=list)
    checks: list[GpuCheck] = field(default_factory=list)
    gpu_bytes: float = 0.0
    sync_bytes: float = 0.0  # weights sent to each engine per step (serving dtype)
    engines: int = 0
    advice: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return all(c.fits for c in self.checks)

    @property
    def trainer_bytes(self) -> float:
        return total(self.trainer_resident) + total(self.trainer_transient) + total(self.reference)

    @property
    def engine_bytes(self) -> float:
        return max(self.engine_budget, total(self.engine)) if self.engine else 0.0


def trainer_settings(cfg: Any, device: str) -> TrainerSettings:
    t = cfg.trainer
    placement = cfg.cluster.placement
    sharded = t.parallel == "fsdp" or (t.parallel == "auto" and device == "gpu")
    param = t.model.param_dtype
    compute = (
        t.compute_dtype
        if t.compute_dtype != "auto"
        else ("bfloat16" if sharded and device == "gpu" else param)
    )
    optim = param if t.optimizer_dtype == "param" else t.optimizer_dtype
    return TrainerSettings(
        ranks=placement.trainer_workers,
        param_dtype=param,
        optimizer_dtype=optim,
        compute_dtype=compute,
        sharded=sharded,
        micro_batch_tokens=t.micro_batch_tokens,
        gradient_checkpointing=t.model.gradient_checkpointing,
        logprob_chunk_size=t.logprob_chunk_size,
        fused_mamba=cfg.plan.fused_mamba if device == "gpu" else False,
        offload=t.offload,
        reduce_float32=t.reduce_dtype == "float32",
    )


def engine_settings(cfg: Any, shape: ModelShape) -> tuple[EngineSettings, float]:
    """The engine's settings and the share of its GPU it takes (vLLM's gpu_memory_utilization; 0: none)."""
    gen, placement = cfg.generation, cfg.cluster.placement
    opts = dict(gen.options)
    vllm = gen.backend == "vllm"
    length = opts.get("max_model_len") or shape.text["max_position_embeddings"]
    dtype = opts.get("dtype", "bfloat16" if vllm else cfg.trainer.model.param_dtype)
    kv = opts.get("kv_cache_dtype", "auto")
    settings = EngineSettings(
        tp=placement.generation_tp,
        dtype=dtype,
        kv_dtype=dtype if kv == "auto" else ("fp8" if kv.startswith("fp8") else kv),
        state_dtype=cfg.plan.mamba_state_dtype or dtype,
        max_num_seqs=int(opts.get("max_num_seqs", 64 if vllm else cfg.prompts_per_step * cfg.group_size)),
        max_model_len=int(length),
        reserve_gib=cfg.plan.engine_reserve_gib,
    )
    share = float(opts.get("gpu_memory_utilization", 0.5)) if vllm else 0.0
    return settings, share


def gpu_memory(cfg: Any) -> float:
    size = cfg.cluster.placement.gpu_memory_gib
    if size:
        return float(size) * GiB
    import torch

    if torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(0).total_memory)
    raise PlanError(
        "cluster.placement.gpu_memory_gib: unknown and no GPU here to measure; set it (e.g. 80 for an "
        "80 GB GPU)"
    )


def make_plan(cfg: Any, shape: ModelShape | None = None, device: str | None = None) -> Plan:
    """The plan of run config ``cfg``; ``device`` overrides the placement's (``auto`` plans for GPUs)."""
    placement = cfg.cluster.placement
    device = device or (placement.device if placement.device != "auto" else "gpu")
    if shape is None:
        shape = model_shape(model_config(cfg), frozen_groups(cfg.trainer.model), cfg.trainer.lora)
    settings = trainer_settings(cfg, device)
    resident, transient, host = trainer_rows(shape, settings)
    plan = Plan(device, placement.mode, shape, resident, transient, host)
    plan.reference = reference_rows(cfg, shape, settings)
    generation = getattr(cfg, "generation", None)
    offline = getattr(cfg, "mode", "") == "offline"  # offline DPO samples nothing
    ray_engines = (
        generation is not None
        and not offline
        and generation.mode == "ray"
        and placement.generation_workers != 0
    )
    if ray_engines:
        settings, share = engine_settings(cfg, shape)
        plan.engine = engine_rows(shape, settings)
        plan.sync_bytes = shape.base_numel() * DTYPE_BYTES[settings.dtype]
        plan.engines = placement.generation_workers or max(1, placement.trainer_workers // settings.tp)
    if device != "gpu":
        return plan
    gpu = gpu_memory(cfg)
    plan.gpu_bytes = gpu
    reserve = Row("trainer reserve", cfg.plan.trainer_reserve_gib * GiB, "plan.trainer_reserve_gib")
    trainer_peak = [*resident, *transient, reserve, *plan.reference]
    if ray_engines:
        plan.engine_budget = share * gpu
        engine_held = (
            [Row(f"engine (gpu_memory_utilization={share:g})", plan.engine_budget)] if share else plan.engine
        )
        if share and total(plan.engine) > plan.engine_budget:
            plan.checks.append(
                GpuCheck(f"engine needs within its {share:g} of the GPU", plan.engine, plan.engine_budget)
            )
    if ray_engines and placement.mode == "colocated":
        asleep = cfg.generation.sleep_while_training
        awake_rows = engine_held
        idle = [Row("sleeping engine", cfg.plan.engine_reserve_gib * GiB)] if asleep else awake_rows
        plan.checks.append(
            GpuCheck("colocated GPU, generating", [*resident, reserve, *plan.reference, *awake_rows], gpu)
        )
        plan.checks.append(GpuCheck("colocated GPU, training", [*trainer_peak, *idle], gpu))
    else:
        plan.checks.append(GpuCheck("trainer GPU", trainer_peak, gpu))
        if ray_engines:
            plan.checks.append(GpuCheck("generation GPU", engine_held, gpu))
    plan.advice = advice(plan, cfg)
    return plan


def reference_rows(cfg: Any, shape: ModelShape, s: TrainerSettings) -> list[Row]:
    """The reference (GRPO's KL, online DPO) on each trainer rank (``omni_rl.training.reference``): a frozen
    copy sharded like the policy (no gradients, no optimizer state); none with LoRA (the frozen base)."""
    online_dpo = getattr(cfg, "mode", "") == "online"
    if cfg.trainer.policy_loss.kl_coef <= 0 and not (online_dpo or cfg.trainer.hold_reference):
        return []
    if cfg.trainer.lora is not None:
        return [Row("reference model (KL)", 0.0, "the LoRA base with adapters off: no copy")]
    ranks = s.ranks if s.sharded else 1
    numel = sum(x.shard_numel(ranks) for x in shape.params)
    shard = f"frozen copy sharded 1/{ranks} like the policy" if ranks > 1 else "frozen full copy"
    return [Row(f"reference model (KL, {s.param_dtype})", numel * DTYPE_BYTES[s.param_dtype], shard)]


def advice(plan: Plan, cfg: Any) -> list[str]:
    """Settings to change, for each check that does not fit."""
    out: list[str] = []
    failing = [c.name for c in plan.checks if not c.fits]
    trainer_side = any("trainer" in n or "training" in n or "generating" in n for n in failing)
    engine_side = any("engine" in n or "generation" in n or "generating" in n for n in failing)
    t = cfg.trainer
    if trainer_side:
        if not t.model.gradient_checkpointing:
            out.append("trainer.model.gradient_checkpointing=true")
        out.append(f"trainer.micro_batch_tokens (now {t.micro_batch_tokens}) lower")
        if t.model.param_dtype == "float32":
            out.append("trainer.model.param_dtype=bfloat16 (with trainer.optimizer_dtype=float32)")
        out.append(f"cluster.placement.trainer_workers (now {cfg.cluster.placement.trainer_workers}) higher")
        if not t.offload:
            out.append("trainer.offload=true (sharded state in host memory)")
        if not (t.model.freeze_vision and t.model.freeze_audio):
            out.append("trainer.model.freeze_vision / freeze_audio=true")
    if engine_side and plan.engine:
        out.append(f"cluster.placement.generation_tp (now {cfg.cluster.placement.generation_tp}) higher")
        out.append("generation.options.max_num_seqs or max_model_len lower")
        share = cfg.generation.options.get("gpu_memory_utilization")
        if share is not None:
            out.append(f"generation.options.gpu_memory_utilization (now {share}) to what the engine needs")
        if plan.mode == "colocated" and not cfg.generation.sleep_while_training:
            out.append("generation.sleep_while_training=true")
        if plan.mode == "colocated":
            out.append("cluster.placement.mode=separate")
    return out


def _fmt(rows: list[Row]) -> list[str]:
    return [f"  {r.what:<58} {r.gib:9.2f} GiB  {r.note}".rstrip() for r in rows]


def format_plan(plan: Plan) -> str:
    c = plan.shape.counts
    lines = [
        f"model: {c.total:,} parameters, {c.active:,} active per token; "
        f"{plan.shape.numel(trainable=True):,} trainable; {len(plan.shape.layer_types)} decoder layers",
        f"placement: {plan.device}, {plan.mode}",
        "",
        "trainer rank (per GPU): kept between steps",
        *_fmt(plan.trainer_resident),
        "trainer rank (per GPU): during a step",
        *_fmt(plan.trainer_transient),
    ]
    if plan.trainer_host:
        lines += ["trainer rank: host memory (trainer.offload)", *_fmt(plan.trainer_host)]
    if plan.reference:
        lines += ["reference (KL) on each trainer rank", *_fmt(plan.reference)]
    if plan.engine:
        lines += [f"generation engine shard (per GPU, {plan.engines} engines)", *_fmt(plan.engine)]
        lines.append(f"  {'weight sync per step and engine':<58} {plan.sync_bytes / GiB:9.2f} GiB")
    for check in plan.checks:
        state = "fits" if check.fits else "DOES NOT FIT"
        lines += ["", f"{check.name}: {check.used / GiB:.2f} of {check.capacity / GiB:.2f} GiB: {state}"]
        lines += _fmt(check.rows)
    if plan.advice:
        lines += ["", "to make it fit, change: " + "; ".join(plan.advice)]
    lines.append(plan_line(plan))
    return "\n".join(lines)


def plan_line(plan: Plan) -> str:
    c = plan.shape.counts
    return (
        f"PLAN fits={str(plan.fits).lower()} params_total={c.total} params_active={c.active} "
        f"trainer_gib_per_gpu={plan.trainer_bytes / GiB:.2f} engine_gib_per_gpu={plan.engine_bytes / GiB:.2f} "
        f"gpu_gib={plan.gpu_bytes / GiB:.2f}"
    )
