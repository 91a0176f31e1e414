"""Starting a run: run folder and resolved config, the model (a tiny one made on first use), the
environment mix, the MediaStore, Ray and the placement of trainer / generation / environment workers.

``start_run`` returns a ``Run`` holding all of them; ``Run.close`` stops what it started.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_rl.algorithms.config import EnvSpec, GRPOConfig, RunConfig, env_spec_dict
from omni_rl.cluster.connect import JOB_ENV
from omni_rl.config import save_config

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
ROLLOUTS = "rollouts"


def prepare_model(cfg: RunConfig) -> str:
    """The checkpoint folder of the policy; ``model.tiny`` builds and saves it once (atomically)."""
    if not cfg.model.is_tiny:
        return cfg.model.path
    from omni_rl.models.tiny import TinyOmniSpec, save_tiny_model

    spec = dataclasses.replace(TinyOmniSpec(), **_spec_overrides(cfg.model.tiny_spec))
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    out = Path(cfg.model.path) if cfg.model.path else cfg.cache_dir / f"tiny-{digest}"
    if (out / "config.json").is_file():
        return str(out)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    save_tiny_model(tmp, spec)
    try:
        tmp.rename(out)
    except OSError:  # another run made it first
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny model at %s", out)
    return str(out)


def _spec_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    from omni_rl.models.tiny import TinyOmniSpec

    names = {f.name for f in dataclasses.fields(TinyOmniSpec)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"model.tiny_spec: unknown field(s) {unknown}; fields: {sorted(names)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


def build_mix(specs: list[EnvSpec], seed: int, data_dir: Path, params: Any = None) -> Any:
    """The seeded environment mix; ``generate`` specs write their synthetic data under ``data_dir`` first."""
    import environments

    prepared = []
    for i, spec in enumerate(specs):
        raw = env_spec_dict(spec)
        gen = raw.pop("generate", None)
        if raw.get("data") is None and gen is not None:
            unknown = sorted(set(gen) - {"n", "seed", "shuffle_choices"})
            if unknown:
                raise ValueError(
                    f"envs[{i}].generate: unknown key(s) {unknown}; expected n, seed, shuffle_choices"
                )
            n, gseed = int(gen.get("n", 64)), int(gen.get("seed", 0))
            kwargs = {} if "shuffle_choices" not in gen else {"shuffle_choices": bool(gen["shuffle_choices"])}
            fixed = "" if gen.get("shuffle_choices", True) else "-fixed"
            folder = data_dir / f"{spec.name}-n{n}-s{gseed}{fixed}"
            cls = environments.get_class(spec.name)
            jsonl = folder / f"{spec.name}.jsonl"
            if not jsonl.is_file():
                jsonl = cls.generate(folder, n, gseed, **kwargs)
            raw["data"] = str(jsonl)
        prepared.append(raw)
    return environments.mix_environments(prepared, seed=seed, params=params)


def needs_ray(cfg: RunConfig) -> bool:
    modes = [cfg.trainer_run.mode, cfg.media_store]
    if isinstance(cfg, GRPOConfig) or getattr(cfg, "mode", "") == "online":
        modes += [cfg.generation.mode, cfg.scoring.mode]  # type: ignore[attr-defined]
    return "ray" in modes


@dataclass
class Run:
    cfg: RunConfig
    model_path: str
    store: Any
    trainer: Any
    generation: Any = None
    scorer: Any = None
    mix: Any = None
    cluster: Any = None
    reservation: Any = None
    trainer_options: list[dict[str, Any]] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def checkpoint_dir(self) -> Path:
        return self.cfg.run_dir / CHECKPOINTS

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # closing must not hide the run's own error
                log.warning("while closing the run: %s", exc)
        self.closers = []


def start_run(cfg: RunConfig, *, generation: bool, scoring: bool) -> Run:
    """Everything a loop needs; the caller must ``close()`` the Run."""
    from omni_rl.media import MediaStore

    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, cfg.run_dir / "config.yaml")
    log.info("run folder %s", cfg.run_dir.resolve())
    if JOB_ENV in os.environ and not Path(cfg.output_dir).is_absolute():
        log.warning(
            "output_dir %r is relative: inside a Ray job it lies in the job's working-dir copy (%s); "
            "set output_dir to an absolute path on shared storage to keep runs",
            cfg.output_dir,
            cfg.run_dir.resolve(),
        )
    model_path = prepare_model(cfg)
    trainer_cfg = dataclasses.replace(
        cfg.trainer,
        model=dataclasses.replace(cfg.trainer.model, path=model_path),
        seed=cfg.seed,
        keep_last=cfg.checkpoint.keep,
        hold_reference=getattr(cfg, "mode", "") == "online",  # online DPO scores against the initial policy
    )
    use_ray = needs_ray(cfg)
    run = Run(cfg, model_path, store=None, trainer=None)
    try:
        slots: dict[str, list[dict[str, Any]]] = {}
        if use_ray:
            slots = _start_ray(cfg, run, generation, scoring)
        else:
            _set_threads(cfg.cluster.placement.cpu_threads)
        backend = "ray" if cfg.media_store == "auto" and use_ray else cfg.media_store
        backend = "local" if backend == "auto" else backend
        name = f"{cfg.run_name}-{os.getpid()}"
        run.store = MediaStore(cfg.media_budget_bytes, backend=backend, params=cfg.media_params(), name=name)
        run.closers.append(run.store.shutdown)
        run.trainer_options = slots.get("trainer", [])
        run.trainer = _start_trainer(cfg, trainer_cfg, run.store, slots)
        run.closers.append(run.trainer.close)
        if generation:
            run.generation = _start_generation(cfg, model_path, run, slots)
            run.closers.append(run.generation.close)
        if scoring or generation:
            run.mix = build_mix(cfg.envs, cfg.seed, cfg.cache_dir / "data", cfg.media_params())  # type: ignore[attr-defined]
        if scoring:
            run.scorer = _start_scoring(cfg, run.mix, slots)
            run.closers.append(run.scorer.close)
    except BaseException:
        run.close()
        raise
    return run


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _start_ray(cfg: RunConfig, run: Run, generation: bool, scoring: bool) -> dict[str, list[dict[str, Any]]]:
    from omni_rl.cluster import ENVIRONMENT, GENERATION, TRAINER, connect, plan_placement, reserve, shutdown

    info = connect(cfg.cluster)
    run.cluster = info
    run.closers.append(lambda: shutdown(info))
    placement = cfg.cluster.placement
    ray_gen = generation and cfg.generation.mode == "ray"  # type: ignore[attr-defined]
    ray_env = scoring and cfg.scoring.mode == "ray"  # type: ignore[attr-defined]
    placement = dataclasses.replace(
        placement,
        generation_workers=placement.generation_workers if ray_gen else 0,
        env_workers=placement.env_workers if ray_env else 0,
    )
    plan = plan_placement(placement, info.resources)
    log.info("%s", plan.describe())
    check_memory_plan(cfg, plan.device)
    reservation = reserve(plan, timeout_s=placement.ready_timeout_s)
    run.reservation = reservation
    run.closers.append(reservation.remove)
    return {
        role: [reservation.options(s) for s in plan.role(role)] for role in (TRAINER, GENERATION, ENVIRONMENT)
    }


def check_memory_plan(cfg: RunConfig, device: str) -> None:
    """Before any actor starts on GPUs: refuse a run whose memory plan does not fit (``omni-rl plan``
    prints the same). ``plan.check: false`` skips it; an unknown GPU size is logged and skipped."""
    if device != "gpu" or not cfg.plan.check:
        return
    from omni_rl.planning import PlanError, format_plan, make_plan, plan_line

    try:
        plan = make_plan(cfg, device=device)
    except PlanError as exc:
        log.warning("memory plan not checked: %s", exc)
        return
    log.info("%s", plan_line(plan))
    if not plan.fits:
        raise PlanError(
            "the run does not fit its GPUs (omni-rl plan shows the same; plan.check=false starts anyway):\n"
            + format_plan(plan)
        )


def _start_trainer(
    cfg: RunConfig, trainer_cfg: Any, store: Any, slots: dict[str, list[dict[str, Any]]]
) -> Any:
    from omni_rl.algorithms.workers import LocalTrainer, RayTrainer

    if cfg.trainer_run.mode == "local":
        return LocalTrainer(trainer_cfg, store)
    return RayTrainer(trainer_cfg, store, slots["trainer"])


def _start_generation(cfg: Any, model_path: str, run: Run, slots: dict[str, list[dict[str, Any]]]) -> Any:
    from omni_rl.algorithms.workers import LocalGeneration, LocalTrainer, RayGeneration, check_sleep_mode

    gen = cfg.generation
    options = {**gen.options, **route_recording(cfg)}
    layout = "original" if gen.backend == "vllm" else "native"
    sync = dataclasses.asdict(gen.sync)
    check_sleep_mode(gen, cfg.cluster.placement.device)
    if gen.mode == "ray":
        return RayGeneration(
            model_path,
            gen.backend,
            options,
            run.store,
            slots["generation"],
            layout=layout,
            max_restarts=gen.max_retries,
            max_retries=gen.max_retries,
            name_prefix=actor_prefix(cfg),
            sync=sync,
        )
    if gen.backend != "torch":
        raise ValueError("generation.mode=local runs the torch sampler only; use mode=ray for vllm")
    from omni_rl.generation.torch_backend import TorchBackend

    if isinstance(run.trainer, LocalTrainer):
        policy = run.trainer.trainer
        backend = TorchBackend(policy.model, policy.processor, media_resolver=run.store, **options)
        return LocalGeneration(backend, shared=True)
    backend = TorchBackend.from_pretrained(model_path, media_resolver=run.store, **options)
    return LocalGeneration(backend, shared=False, sync=sync)


def route_recording(cfg: Any) -> dict[str, Any]:
    """Backend options for ``trainer.router_replay``: the sampler records the experts it routes to."""
    if not cfg.trainer.router_replay:
        return {}
    if cfg.generation.backend == "vllm":
        return {"return_routed_experts": True}  # vLLM's enable_return_routed_experts
    return {"record_routes": True}


def _start_scoring(cfg: Any, mix: Any, slots: dict[str, list[dict[str, Any]]]) -> Any:
    from omni_rl.algorithms.scoring import EnvWorkerPool, LocalScorer

    if cfg.scoring.mode == "local":
        return LocalScorer(mix.environments)
    specs = {e.label: (e.env.name, _env_options(cfg, e.label)) for e in mix.entries}
    return EnvWorkerPool(
        specs,
        slots["environment"],
        max_restarts=cfg.scoring.max_restarts,
        max_retries=cfg.scoring.max_retries,
        name_prefix=actor_prefix(cfg),
    )


def actor_prefix(cfg: RunConfig) -> str:
    """Actor names: ``omni-rl-<run>-<driver pid>-env-0``, ``...-gen-0`` (``ray.get_actor`` finds them)."""
    return f"omni-rl-{cfg.run_name}-{os.getpid()}"


def _env_options(cfg: Any, label: str) -> dict[str, Any]:
    for spec in cfg.envs:
        if (spec.label or spec.name) == label:
            return dict(spec.options)
    raise KeyError(label)


def start_reference(run: Run) -> Any:
    """The KL reference: held by the trainer ranks themselves (a frozen copy sharded like the policy, or
    the LoRA base with adapters off; ``omni_rl.training.reference``), so it needs no GPU of its own."""
    from omni_rl.algorithms.workers import TrainerReference

    return TrainerReference(run.trainer, run.cfg.trainer.dpo_length_average)


def run_summary(cfg: RunConfig, last: dict[str, Any], started: float) -> dict[str, Any]:
    """What a finished GRPO or DPO run returns: final step, last metrics row, wall time, run folder."""
    return {
        "step": cfg.steps,
        "metrics": last,
        "wall_s": time.perf_counter() - started,
        "run_dir": str(cfg.run_dir.resolve()),
    }
