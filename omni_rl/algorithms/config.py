"""Run configs of the loops: ``GRPOConfig`` (``algorithm: grpo``) and ``DPORunConfig`` (``algorithm: dpo``).

Loaded with ``omni_rl.config.load_config`` from YAML plus ``a.b=c`` overrides; the resolved config is saved
to ``<output_dir>/<run_name>/config.yaml``. Sections shared by both loops live in ``RunConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omni_rl.cluster.config import ClusterConfig
from omni_rl.logging.config import LoggingConfig
from omni_rl.media.params import MediaParams
from omni_rl.training.advantages import AdvantageConfig
from omni_rl.training.trainer_config import TrainerConfig

Algorithm = Literal["grpo", "dpo"]


def _bad(where: str, why: str, value: Any) -> ValueError:
    return ValueError(f"{where} {why}, got {value!r}")


@dataclass
class ModelConfig:
    """The policy: an HF checkpoint folder, or ``tiny: true`` for a tiny random Nemotron Omni that is
    made on first use under ``<output_dir>/.cache/tiny-<hash of tiny_spec>`` (``path`` may name where)."""

    path: str = ""
    tiny: bool | None = None  # None: tiny unless a path is given (a config naming a model is never tiny)
    tiny_spec: dict[str, Any] = field(default_factory=dict)  # TinyOmniSpec field overrides

    @property
    def is_tiny(self) -> bool:
        return (not self.path) if self.tiny is None else self.tiny

    def __post_init__(self) -> None:
        if not self.is_tiny and not self.path:
            raise ValueError("model.path: required (an HF checkpoint folder), or set model.tiny=true")


@dataclass
class EnvSpec:
    """One environment of the mix (see ``environments.mix_environments``). ``generate: {n, seed}`` writes
    the environment's synthetic dataset under ``<output_dir>/.cache/data`` when ``data`` is not given;
    ``shuffle_choices: false`` there keeps the multiple-choice options in a fixed order."""

    name: str = ""
    weight: float = 1.0
    label: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    generate: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("envs[].name: required, an environment name (omni-rl envs lists them)")


@dataclass
class SamplingConfig:
    """How each rollout is sampled (``omni_rl.generation.SamplingParams``; n is the group size)."""

    max_tokens: int = 64
    min_tokens: int = 0  # EOS / stop tokens cannot end a sample before this many tokens
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off (on-policy logprobs need no truncation)
    stop: list[str] = field(default_factory=list)
    chat_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {enable_thinking: false}


@dataclass
class WeightSyncConfig:
    """How weights reach the engines after each step (``generation.weight_transports``)."""

    bucket_mb: float = 256  # weights travel in buckets of this many MiB (a larger tensor: its own bucket)
    dtype: str = "auto"  # serving dtype; "auto": the engine's own (bf16 for the real model)
    transport: Literal["ray", "cuda_ipc", "broadcast"] = "ray"
    group_backend: Literal["gloo", "nccl"] = "nccl"  # the broadcast transport's process group

    def __post_init__(self) -> None:
        if not self.bucket_mb > 0:
            raise ValueError(f"generation.sync.bucket_mb: must be > 0, got {self.bucket_mb}")


@dataclass
class GenerationConfig:
    backend: Literal["torch", "vllm"] = "torch"
    # "ray": GenerationWorker actors (count and placement from cluster.placement); "local": the torch
    # sampler runs in the driver on the trainer's own model (no weight sync; tiny CPU runs and tests)
    mode: Literal["ray", "local"] = "ray"
    options: dict[str, Any] = field(default_factory=dict)  # backend options (e.g. max_num_seqs, dtype)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_retries: int = 2  # a crashed worker is restarted and its requests retried this many times
    # colocated GPUs: engines sleep (free weights and KV cache) while the trainer steps, wake before sync
    sleep_while_training: bool = False
    sleep_level: int = (
        1  # 1: weights offloaded to host memory while asleep; 2: discarded, the sync restores them
    )
    sync: WeightSyncConfig = field(default_factory=WeightSyncConfig)


@dataclass
class ScoringConfig:
    # "ray": environment worker actors (count from cluster.placement.env_workers); "local": in the driver
    mode: Literal["ray", "local"] = "ray"
    max_restarts: int = 3  # Ray restarts a crashed environment worker this many times
    max_retries: int = 2  # and the loop retries the scoring of its samples this many times


@dataclass
class TrainerRunConfig:
    mode: Literal["ray", "local"] = "ray"  # "local": the trainer runs in the driver process


@dataclass
class CheckpointConfig:
    every: int = 0  # save every N steps (and at the end); 0: only at the end
    keep: int | None = 3  # step folders kept (None: all)
    at_end: bool = True


@dataclass
class EvalConfig:
    every: int = 0  # greedy accuracy on `prompts` held-out prompts every N steps (0: never)
    prompts: int = 32


@dataclass
class PlanConfig:
    """The memory plan (``omni-rl plan``, and the check ``omni-rl train`` runs before a GPU placement)."""

    check: bool = True  # false: omni-rl train starts without checking that the plan fits
    trainer_reserve_gib: float = 2.0  # CUDA context, NCCL buffers, allocator fragmentation per trainer GPU
    engine_reserve_gib: float = 4.0  # CUDA context, graphs and workspace of an engine (also while asleep)
    fused_mamba: bool = True  # GPU trainers run mamba_ssm's fused kernels (False: the torch fallback)
    mamba_state_dtype: str | None = None  # Mamba state in the engine; None: the serving dtype


@dataclass
class RunConfig:
    """What every loop needs."""

    algorithm: Algorithm = "grpo"
    run_name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    steps: int = 100
    model: ModelConfig = field(default_factory=ModelConfig)
    # MediaParams: sections {image: {...}, audio: {...}, video: {...}} (tiny models need small patch
    # counts), allow_outside_paths, probe (docs/data.md)
    media: dict[str, Any] = field(default_factory=dict)
    media_store: Literal["auto", "local", "ray"] = "auto"  # auto: ray when Ray runs workers
    media_budget_bytes: int = 8 << 30
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    trainer_run: TrainerRunConfig = field(default_factory=TrainerRunConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise _bad("steps", "must be >= 1", self.steps)
        if not self.run_name or "/" in self.run_name:
            raise _bad("run_name", "must be a non-empty name without '/'", self.run_name)
        try:
            MediaParams.from_dict(self.media)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"media: {exc}") from None

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    @property
    def cache_dir(self) -> Path:
        return Path(self.output_dir) / ".cache"

    def media_params(self) -> MediaParams:
        return MediaParams.from_dict(self.media)


@dataclass
class GRPOConfig(RunConfig):
    algorithm: Algorithm = "grpo"
    prompts_per_step: int = 8
    group_size: int = 16
    envs: list[EnvSpec] = field(default_factory=list)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    advantage: AdvantageConfig = field(default_factory=AdvantageConfig)
    # async GRPO: generation runs up to ``max_staleness`` steps ahead of the trainer, so a sample is at
    # most that many updates old (importance-weighted with the sampler's log-probs); 0: on-policy
    max_staleness: int = 0
    one_step_off_policy: bool = False  # alias of max_staleness: 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algorithm != "grpo":
            raise _bad("algorithm", "must be 'grpo' for a GRPO config", self.algorithm)
        if self.prompts_per_step < 1:
            raise _bad("prompts_per_step", "must be >= 1", self.prompts_per_step)
        if self.group_size < 2:
            raise _bad("group_size", "must be >= 2 (advantages compare samples of a prompt)", self.group_size)
        if not self.envs:
            raise ValueError("envs: at least one environment is needed")
        if self.max_staleness < 0:
            raise _bad("max_staleness", "must be >= 0", self.max_staleness)
        if self.one_step_off_policy and self.max_staleness == 0:
            self.max_staleness = 1
        self.trainer.overlong.check(self.generation.sampling.max_tokens)
        resolve_temperature(self.trainer, self.generation.sampling)


def resolve_temperature(trainer: TrainerConfig, sampling: SamplingConfig) -> None:
    """One temperature: the trainer divides its logits by the sampler's (else the importance ratio is
    off by the temperature). ``trainer.temperature: None`` takes the sampling one (1.0 for greedy
    sampling, which has no temperature); two different values are an error naming both fields."""
    sampled = sampling.temperature
    if trainer.temperature is None:
        trainer.temperature = float(sampled) if sampled > 0 else 1.0
    elif sampled > 0 and trainer.temperature != sampled:
        raise ValueError(
            f"trainer.temperature={trainer.temperature!r} differs from generation.sampling.temperature="
            f"{sampled!r}: the trainer must score samples at the sampler's temperature (set one of them, "
            "or both to the same value; trainer.temperature defaults to the sampling one)"
        )


@dataclass
class PreferenceDataConfig:
    """Offline DPO data: a JSONL/parquet of rows with chosen/rejected, or ``synthetic`` pairs built from
    an environment's dataset (chosen = the correct option letter, rejected = a wrong one)."""

    path: str | None = None
    synthetic: EnvSpec | None = None
    eval_fraction: float = 0.125  # held out for preference accuracy

    def __post_init__(self) -> None:
        if not 0 <= self.eval_fraction < 1:
            raise _bad("data.eval_fraction", "must be in [0, 1)", self.eval_fraction)


@dataclass
class DPORunConfig(RunConfig):
    algorithm: Algorithm = "dpo"
    mode: Literal["offline", "online"] = "offline"
    pairs_per_step: int = 16
    data: PreferenceDataConfig = field(default_factory=PreferenceDataConfig)
    # online: sample group_size per prompt, pair the best with the worst when their scores differ
    envs: list[EnvSpec] = field(default_factory=list)
    prompts_per_step: int = 8
    group_size: int = 8
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algorithm != "dpo":
            raise _bad("algorithm", "must be 'dpo' for a DPO config", self.algorithm)
        if self.pairs_per_step < 1:
            raise _bad("pairs_per_step", "must be >= 1", self.pairs_per_step)
        if self.mode == "offline" and not (self.data.path or self.data.synthetic):
            raise ValueError("data: offline DPO needs data.path (preference rows) or data.synthetic")
        if self.mode == "online" and not self.envs:
            raise ValueError("envs: online DPO samples prompts from environments; give at least one")
        if self.mode == "online" and self.group_size < 2:
            raise _bad("group_size", "must be >= 2 to build pairs", self.group_size)


CONFIG_CLASSES: dict[str, type[RunConfig]] = {"grpo": GRPOConfig, "dpo": DPORunConfig}


def env_spec_dict(spec: EnvSpec) -> dict[str, Any]:
    """The spec as ``mix_environments`` takes it (``None`` fields left out)."""
    return {k: v for k, v in dataclasses.asdict(spec).items() if v is not None}
