"""Configuration of the policy trainer (plain dataclasses; ``omni_rl.config.load_config`` loads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from omni_rl.training.dpo_loss import DPOConfig
from omni_rl.training.lora import LoraSettings
from omni_rl.training.mismatch import MismatchConfig
from omni_rl.training.moe_aux import MoEAuxConfig
from omni_rl.training.overlong import OverlongConfig
from omni_rl.training.policy_loss import PolicyLossConfig

Schedule = Literal["constant", "cosine", "linear"]
Parallel = Literal["auto", "replicate", "fsdp"]


@dataclass
class PolicyModelConfig:
    """Where the policy comes from and how it is loaded (see ``omni_rl.models.load_policy``)."""

    path: str = ""  # HF checkpoint folder (or hub name); required by the trainer
    param_dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # master weights and AdamW state
    trust_remote_code: bool = False
    freeze_vision: bool = False
    freeze_audio: bool = False
    freeze_projectors: bool = False
    freeze_router: bool = False
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None
    # FSDP2: build on the meta device, shard, and read only each rank's rows from the safetensors files
    # (no process holds the whole model); False: every rank loads the whole model, then shards it
    sharded_load: bool = True


@dataclass
class TrainerConfig:
    model: PolicyModelConfig = field(default_factory=PolicyModelConfig)
    # AdamW; its two moments are kept in ``optimizer_dtype`` ("param": the parameters' dtype). float32
    # moments with bfloat16 parameters give pure-bf16 training with full-precision optimizer state
    optimizer_dtype: Literal["param", "float32"] = "float32"
    lr: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0  # applied to >= 2-D weights only (not to biases, norms, embeddings' 1-D)
    # schedule: linear warm-up over ``warmup_steps`` optimiser steps, then constant / cosine / linear
    # decay to ``min_lr_ratio * lr`` at ``total_steps``
    warmup_steps: int = 0
    schedule: Schedule = "constant"
    total_steps: int | None = None
    min_lr_ratio: float = 0.0
    max_grad_norm: float | None = 1.0  # None: no clipping (the norm is still reported)
    skip_nonfinite_grads: bool = True  # a step whose grad norm is inf/nan changes nothing
    # micro-batches: a micro-batch holds at most this many padded tokens (rows x longest row; a longer
    # sample is a micro-batch of its own) and at most ``micro_batch_size`` rows when set
    micro_batch_tokens: int = 8192
    micro_batch_size: int | None = None
    logprob_chunk_size: int = 1024  # LM-head rows per chunk (memory: chunk x vocab floats)
    # frozen encoders (model.freeze_vision / freeze_audio) run once per unique media item: their
    # features are kept, up to this many MiB, and reused by every sample and forward that has the item
    # (omni_rl.training.tower_cache). 0: off
    encoder_cache_mb: int = 1024
    # the sampler's temperature: logits are divided by it. None: a GRPO run takes
    # generation.sampling.temperature (GRPOConfig); a standalone trainer uses 1.0
    temperature: float | None = None
    log_entropy: bool = True
    policy_loss: PolicyLossConfig = field(default_factory=PolicyLossConfig)
    overlong: OverlongConfig = field(default_factory=OverlongConfig)  # truncated samples: none/mask/penalty
    # PPO-style updates per rollout batch: ``epochs`` passes over it, each split into ``mini_batches``
    # optimiser steps (per rank). Above 1 update the trainer first recomputes the old logprobs itself
    # (``omni_rl.training.ppo_update``); 1 x 1 is the single update of plain GRPO
    epochs: int = 1
    mini_batches: int = 1
    mismatch: MismatchConfig = field(default_factory=MismatchConfig)  # sampler/trainer correction
    # MoE router replay (R3): the trainer's forwards use the experts the sampler chose for each token
    router_replay: bool = False
    dpo: DPOConfig = field(default_factory=DPOConfig)
    dpo_length_average: bool = False  # DPO on mean (not summed) token logprobs; see dpo_loss
    moe_aux: MoEAuxConfig = field(default_factory=MoEAuxConfig)
    moe_load_stats: bool = True  # report expert-load metrics of MoE routers
    # LoRA adapters on the language model instead of full fine-tuning (omni_rl.training.lora); the
    # frozen base is then also the KL reference. None: every unfrozen parameter trains
    lora: LoraSettings | None = None
    # keep a frozen copy of the initial policy on the trainer ranks for ``reference_logprobs`` (also
    # implied by policy_loss.kl_coef > 0; with LoRA the base is the reference and no copy is made)
    hold_reference: bool = False
    # placement
    seed: int = 0  # seeds python, numpy and torch when the trainer is built
    device: str = "auto"  # "auto": cuda if available, else cpu
    # "auto": FSDP2 on CUDA, gradient all-reduce of full replicas ("replicate") on CPU
    parallel: Parallel = "auto"
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 under FSDP2 on CUDA
    # FSDP2 only: keep the sharded parameters, gradients and optimizer state in host memory (the
    # optimizer steps on the CPU); the GPU holds what one forward/backward gathers
    offload: bool = False
    # FSDP2 only: dtype of the gradient reduce-scatter ("compute": the compute dtype, no float32 copy of
    # each unit's unsharded gradients)
    reduce_dtype: Literal["float32", "compute"] = "float32"
    # checkpoints
    checkpoint_layout: Literal["original", "hf"] = "original"  # config layout of the model/ folder
    keep_last: int | None = 3  # step folders kept (None: all)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"TrainerConfig.{name} {why}, got {getattr(self, name)!r}")

        if self.lr <= 0:
            raise bad("lr", "must be > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise bad("betas", "must be two numbers in [0, 1)")
        if self.eps <= 0:
            raise bad("eps", "must be > 0")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if self.encoder_cache_mb < 0:
            raise bad("encoder_cache_mb", "must be >= 0")
        if self.warmup_steps < 0:
            raise bad("warmup_steps", "must be >= 0")
        if self.schedule not in ("constant", "cosine", "linear"):
            raise bad("schedule", "must be 'constant', 'cosine' or 'linear'")
        if self.schedule != "constant" and (
            self.total_steps is None or self.total_steps <= self.warmup_steps
        ):
            raise bad(
                "total_steps", f"must be > warmup_steps={self.warmup_steps} for schedule={self.schedule!r}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise bad("min_lr_ratio", "must be in [0, 1]")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise bad("max_grad_norm", "must be > 0 (or None)")
        if self.micro_batch_tokens < 1:
            raise bad("micro_batch_tokens", "must be >= 1")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise bad("micro_batch_size", "must be >= 1 (or None)")
        if self.logprob_chunk_size < 1:
            raise bad("logprob_chunk_size", "must be >= 1")
        if self.temperature is not None and self.temperature <= 0:
            raise bad("temperature", "must be > 0 (or None)")
        if self.epochs < 1:
            raise bad("epochs", "must be >= 1")
        if self.mini_batches < 1:
            raise bad("mini_batches", "must be >= 1")
        if self.parallel not in ("auto", "replicate", "fsdp"):
            raise bad("parallel", "must be 'auto', 'replicate' or 'fsdp'")
        if self.offload and self.parallel == "replicate":
            raise bad("offload", "needs parallel='fsdp' (or 'auto' on CUDA)")
        if self.keep_last is not None and self.keep_last < 1:
            raise bad("keep_last", "must be >= 1 (or None)")
