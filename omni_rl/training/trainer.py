"""The policy trainer: model + AdamW in one process (one data-parallel rank), usable without Ray.

One ``train_step`` is one optimiser update over the items given to this rank:

1. encode every item once with the processor; pack into micro-batches (``items``);
2. the loss normaliser of the *global* batch (all items on all ranks: tokens, sequences or pairs) is
   summed across ranks, and every micro-batch's loss divides by it, times the world size (gradients
   are averaged over ranks). So neither the micro-batch split nor the number of ranks changes the
   update, up to float summation order;
3. per micro-batch: forward (``completion_scores``: chunked LM head), policy or DPO loss, MoE
   auxiliary loss when its coefficients are > 0 (weighted by the micro-batch's share of the global
   tokens), backward (gradients accumulate);
4. gradients averaged across ranks (``replicate``; FSDP2 reduce-scatters during the last backward),
   global-norm clipping, AdamW step, scheduler step.

Under FSDP2 every rank must run the same number of forwards: ranks with fewer micro-batches repeat
their last one with a zero loss weight.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
)

from omni_rl.models.batching import EncodedSample, MultimodalSample
from omni_rl.models.layout import LAYOUTS, to_original
from omni_rl.models.loading import (
    build_policy_on_meta,
    disable_dropout,
    freeze_norm_statistics,
    load_policy,
    resolve_dtype,
)
from omni_rl.models.logprobs import completion_scores
from omni_rl.models.sharded_load import init_buffers, load_shards, plan_for
from omni_rl.training import distributed as dist_utils
from omni_rl.training import weight_sync
from omni_rl.training.aggregation import loss_normalizer
from omni_rl.training.dpo_loss import dpo_loss, sequence_logps
from omni_rl.training.encode_cache import PromptEncodeCache
from omni_rl.training.items import (
    MicroBatch,
    PreferencePair,
    TrainItem,
    check_items,
    check_pair,
    loss_masks,
    make_units,
    per_token,
    plan_micro_batches,
)
from omni_rl.training.lora import (
    apply_lora,
    init_adapter_shards,
    merged_named_weights,
    renamed_plan,
)
from omni_rl.training.moe_aux import collect_router_logits, freeze_routers, is_router, moe_aux_loss
from omni_rl.training.optim import build_optimizer, build_scheduler, clip_gradients
from omni_rl.training.policy_loss import policy_loss
from omni_rl.training.ppo_update import run_updates
from omni_rl.training.reference import frozen_copy, scoring_model
from omni_rl.training.router_replay import ReplayStats, replay_routes
from omni_rl.training.step_metrics import MetricSums
from omni_rl.training.tower_cache import TowerCache
from omni_rl.training.trainer_checkpoint import load_trainer, save_trainer
from omni_rl.training.trainer_config import TrainerConfig

log = logging.getLogger(__name__)
LossKind = Literal["grpo", "dpo"]


def resolve_device(device: str) -> torch.device:
    """ "auto": CUDA when available. A bare "cuda" gets ``LOCAL_RANK`` (torchrun) or the current device
    (Ray gives each actor its own GPU as device 0)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        torch.cuda.set_device(dev)
    return dev


class PolicyTrainer:
    """Holds the policy, its processor, AdamW and the LR schedule for one rank.

    ``rank``/``world_size``/``init_method`` set up data parallelism (``init_method`` e.g.
    ``tcp://host:port``; every rank calls every method in the same order). ``model_and_processor``
    skips loading ``cfg.model.path`` (tests, benchmarks).
    """

    def __init__(
        self,
        cfg: TrainerConfig,
        rank: int = 0,
        world_size: int = 1,
        init_method: str | None = None,
        model_and_processor: tuple[Any, Any] | None = None,
    ) -> None:
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.device = resolve_device(cfg.device)
        parallel = cfg.parallel
        if parallel == "auto":
            parallel = "fsdp" if self.device.type == "cuda" else "replicate"
        self.parallel = parallel
        param_dtype = resolve_dtype(cfg.model.param_dtype, self.device)
        if cfg.compute_dtype == "auto":
            compute = torch.bfloat16 if (parallel == "fsdp" and self.device.type == "cuda") else param_dtype
        else:
            compute = resolve_dtype(cfg.compute_dtype, self.device)
        if compute != param_dtype and parallel != "fsdp":
            raise ValueError(
                f"TrainerConfig.compute_dtype={cfg.compute_dtype!r} differs from model.param_dtype="
                f"{cfg.model.param_dtype!r}: only parallel='fsdp' computes in another dtype"
            )
        self.compute_dtype = compute
        dist_utils.init_process_group(rank, world_size, init_method, self.device, always=parallel == "fsdp")
        seed_everything(cfg.seed)

        stream_from = None  # (checkpoint folder, source plan): each rank reads its rows after sharding
        m = cfg.model
        if model_and_processor is None and not m.path:
            raise ValueError("TrainerConfig.model.path: required (an HF checkpoint folder)")
        policy = {  # how the policy is prepared, whichever way it is loaded
            "dtype": param_dtype,
            "trust_remote_code": m.trust_remote_code,
            "freeze_vision": m.freeze_vision,
            "freeze_audio": m.freeze_audio,
            "freeze_projectors": m.freeze_projectors,
            "freeze_router": m.freeze_router,
            "gradient_checkpointing": m.gradient_checkpointing,
        }
        if model_and_processor is None and parallel == "fsdp" and m.sharded_load:
            model, processor = build_policy_on_meta(m.path, **policy)
            stream_from = (m.path, plan_for(model, m.path))
        elif model_and_processor is None:
            device = "cpu" if parallel == "fsdp" else self.device  # FSDP2 moves the shards
            model, processor = load_policy(
                m.path, device=device, attn_implementation=m.attn_implementation, **policy
            )
        else:
            model, processor = model_and_processor
            model.to(device="cpu" if parallel == "fsdp" else self.device, dtype=param_dtype)
        disable_dropout(model)  # the trainer's forward must match the sampler's (see load_policy)
        freeze_norm_statistics(model)
        self.has_routers = any(is_router(m) for m in model.modules())
        if cfg.moe_aux.freeze_routers and self.has_routers:
            freeze_routers(model)
        # the KL reference: the LoRA base itself (adapters off), else a frozen copy sharded like the policy
        wanted = cfg.hold_reference or cfg.policy_loss.kl_coef > 0
        reference = frozen_copy(model) if wanted and cfg.lora is None else None
        if cfg.lora is not None:
            model = apply_lora(model, cfg.lora)
            if stream_from is not None:
                stream_from = (stream_from[0], *renamed_plan(stream_from[1], model))
        layer_params = {id(p) for unit in dist_utils.fsdp_units(model) for p in unit.parameters()}
        self._root_params = {
            n for n, p in model.named_parameters() if p.requires_grad and id(p) not in layer_params
        }
        # transformers' weight renaming (save_pretrained, layout mapping) skips FSDP2's wrapper class:
        # an unsharded twin on the meta device stands in for it there
        self.hf_model = model
        if parallel == "fsdp":
            with torch.device("meta"):
                self.hf_model = type(model)(model.config)
            for module in (model, reference) if reference is not None else (model,):
                dist_utils.apply_fsdp2(
                    module,
                    self.device,
                    None if compute == param_dtype else compute,
                    offload=cfg.offload,
                    reduce_dtype=torch.float32 if cfg.reduce_dtype == "float32" else None,
                )
                if stream_from is not None:
                    module.to_empty(device=self.device)
                    init_buffers(module)
                    loaded = load_shards(module, *stream_from)
                    log.info("rank %d: read %s of %s", rank, loaded, stream_from[0])
            if stream_from is not None and cfg.lora is not None:
                init_adapter_shards(model, cfg.seed + rank)
        elif reference is not None:
            reference.to(self.device)
        self.reference = reference
        self.model, self.processor = model.train(), processor
        self.prompt_cache = PromptEncodeCache(processor)  # the processor once per prompt and step
        towers = [model] + ([reference] if reference is not None else [])  # same frozen towers
        self.tower_cache = TowerCache(towers, cfg.encoder_cache_mb * 2**20) if cfg.encoder_cache_mb else None
        self.pad_id = processor.tokenizer.pad_token_id
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.step = 0

    # forward passes ------------------------------------------------------------------------------

    def _encode(self, sample: MultimodalSample) -> EncodedSample:
        return self.prompt_cache.encode(sample)

    def _plan(self, rows_per_unit: list[list[EncodedSample]]) -> tuple[list[MicroBatch], int]:
        """Micro-batches of this rank, and how many dummy repeats keep FSDP2 ranks in step."""
        if not rows_per_unit:
            raise ValueError(f"rank {self.rank}: no items (give every rank at least one)")
        plan = plan_micro_batches(
            make_units(rows_per_unit), self.pad_id, self.cfg.micro_batch_tokens, self.cfg.micro_batch_size
        )
        dummies = 0
        if self.parallel == "fsdp" and dist_utils.is_distributed():
            dummies = int(dist_utils.all_reduce_scalar(len(plan), "max", self._reduce_device)) - len(plan)
        return plan, dummies

    @property
    def wants_entropy(self) -> bool:
        """Entropy is computed when logged or when the loss has an entropy bonus."""
        return self.cfg.log_entropy or self.cfg.policy_loss.entropy_coef > 0

    @property
    def _reduce_device(self) -> torch.device | None:
        return self.device if self.device.type == "cuda" else None

    def _replay(self, mb: MicroBatch, items: Sequence[Any] | None):
        """Router replay of the sampler's routes (``trainer.router_replay``; measured either way)."""
        routes = [getattr(it, "routed_experts", None) for it in items or ()]
        if not self.has_routers or not any(r is not None for r in routes):
            return nullcontext(ReplayStats())
        return replay_routes(self.model, mb.batch.attention_mask, routes, enforce=self.cfg.router_replay)

    def _scores(
        self,
        mb: MicroBatch,
        with_entropy: bool,
        items: Sequence[Any] | None = None,
        model: torch.nn.Module | None = None,
    ):
        """Forward of one micro-batch (``model``: another than the policy, e.g. the KL reference);
        ``items`` given: under router replay of their routes."""
        batch = mb.batch.to(self.device, dtype=self.compute_dtype)
        with nullcontext() if items is None or model is not None else self._replay(mb, items):
            return batch, completion_scores(
                self.model if model is None else model,
                batch,
                temperature=self.cfg.temperature or 1.0,
                with_entropy=with_entropy,
                chunk_size=self.cfg.logprob_chunk_size,
            )

    @torch.no_grad()
    def compute_logprobs(
        self, samples: Sequence[MultimodalSample | TrainItem], reference: bool = False
    ) -> list[torch.Tensor]:
        """Per-sample logprobs of the completion tokens under the current weights (float32, CPU), in
        input order: old logprobs (before an update); ``reference``: under the frozen initial policy."""
        items = [s if isinstance(s, TrainItem) else None for s in samples]
        samples = [s.sample if isinstance(s, TrainItem) else s for s in samples]
        self.prompt_cache.clear()
        return self.logprobs_of_rows([[self._encode(s)] for s in samples], items, reference=reference)

    @torch.no_grad()
    def logprobs_of_rows(
        self,
        rows: list[list[EncodedSample]],
        items: Sequence[TrainItem | None] | None = None,
        reference: bool = False,
    ) -> list[torch.Tensor]:
        """``compute_logprobs`` of samples already encoded (one row each); ``items`` (optional, same
        order) carry what a forward may need besides the row (routed experts for router replay)."""
        plan, dummies = self._plan(rows)
        out: list[torch.Tensor | None] = [None] * len(rows)
        with scoring_model(self, reference) as model:
            for i, mb in enumerate(plan + plan[-1:] * dummies):
                mb_items = None if items is None else [items[u.index] for u in mb.units]
                batch, scores = self._scores(
                    mb, with_entropy=False, items=mb_items, model=model if reference else None
                )
                if i >= len(plan):
                    continue
                for unit, values in zip(mb.units, batch.completions(scores.logprobs), strict=True):
                    out[unit.index] = values.float().cpu()
        return out  # type: ignore[return-value]

    def reference_logprobs(self, samples: Sequence[MultimodalSample | TrainItem]) -> list[torch.Tensor]:
        """``compute_logprobs`` under the KL reference (needs ``policy_loss.kl_coef > 0`` or LoRA)."""
        return self.compute_logprobs(samples, reference=True)

    def reference_logps(self, pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
        """``pairs`` with ``ref_chosen_logp``/``ref_rejected_logp`` from the current weights (call
        before the first DPO step, or on a frozen reference trainer)."""
        lps = self.compute_logprobs([s for p in pairs for s in (p.chosen, p.rejected)])

        def seq(t: torch.Tensor) -> float:
            return float(t.sum() / max(1, t.numel())) if self.cfg.dpo_length_average else float(t.sum())

        return [
            dataclasses.replace(p, ref_chosen_logp=seq(lps[2 * i]), ref_rejected_logp=seq(lps[2 * i + 1]))
            for i, p in enumerate(pairs)
        ]

    # the update ----------------------------------------------------------------------------------

    def train_step(
        self, items: Sequence[TrainItem] | Sequence[PreferencePair], loss: LossKind = "grpo"
    ) -> dict[str, float]:
        """One optimiser update on this rank's ``items`` (``accumulate`` then ``apply_gradients``;
        see the module doc). Returns step metrics, the same on every rank."""
        start = time.perf_counter()
        if not items:
            raise ValueError(f"rank {self.rank}: no items (give every rank at least one)")
        self.prompt_cache.clear()
        items, rows, dropped = self._encode_or_drop(items, loss)
        lost = dist_utils.all_reduce_scalar(float(not items), "max", self._reduce_device)
        if lost:  # a rank has nothing left to train on: every rank skips this update together
            log.warning(
                "step %d: no trainable items left after dropping bad samples; update skipped", self.step
            )
            metrics = {"tokens_total": 0.0, "micro_batches": 0.0, "skipped": 1.0, "step": float(self.step)}
        else:
            metrics = run_updates(self, items, loss, rows)  # epochs x mini-batches (ppo_update)
        metrics["dropped_items"] = dist_utils.all_reduce_scalar(dropped[0], "sum", self._reduce_device)
        metrics["dropped_groups"] = dist_utils.all_reduce_scalar(dropped[1], "sum", self._reduce_device)
        elapsed = dist_utils.all_reduce_scalar(time.perf_counter() - start, "max", self._reduce_device)
        metrics["step_time_s"] = elapsed
        if self.tower_cache is not None:  # encoder work since the previous update (this step's forwards)
            metrics.update(self.tower_cache.take_stats())
        metrics["tokens_per_s"] = metrics["tokens_total"] / max(elapsed, 1e-9)
        return metrics

    def _encode_or_drop(
        self, items: Sequence[TrainItem] | Sequence[PreferencePair], loss: LossKind
    ) -> tuple[list[Any], list[list[EncodedSample]], tuple[float, float]]:
        """Encode every item; one that cannot be encoded (bad media, processor error) drops every item
        of its group (``item.group``; no group: just itself), logged with the row it came from. Returns
        the kept items, their rows, and (dropped items, dropped groups)."""
        if loss not in ("grpo", "dpo"):
            raise ValueError(f"loss must be 'grpo' or 'dpo', got {loss!r}")
        encoded: list[list[EncodedSample] | None] = []
        bad_groups: set[str] = set()
        for i, item in enumerate(items):
            sides = [item.sample] if loss == "grpo" else [item.chosen, item.rejected]
            try:
                if item.media_error:
                    raise ValueError(item.media_error)
                encoded.append([self._encode(side) for side in sides])
            except Exception as exc:  # one bad sample never stops the step
                encoded.append(None)
                key = item.group or f"#{i}"
                if key not in bad_groups:
                    log.warning(
                        "bad media (train): %s: cannot encode the sample (%s: %s); its group is dropped",
                        item.origin or f"item {i}",
                        type(exc).__name__,
                        exc,
                    )
                bad_groups.add(key)
        keep = [i for i, it in enumerate(items) if (it.group or f"#{i}") not in bad_groups]
        rows = [encoded[i] for i in keep]
        return [items[i] for i in keep], rows, (float(len(items) - len(keep)), float(len(bad_groups)))  # type: ignore[return-value]

    def accumulate(
        self,
        items: Sequence[TrainItem] | Sequence[PreferencePair],
        loss: LossKind = "grpo",
        rows: list[list[EncodedSample]] | None = None,
    ) -> dict[str, float]:
        """Forward/backward of every micro-batch into fresh ``.grad`` (averaged across ranks when this
        returns; FSDP2: sharded). Returns the loss metrics merged over micro-batches and ranks.
        ``rows``: the items already encoded (``train_step`` encodes first to drop bad samples)."""
        if loss == "grpo":
            check_items(items)
            if rows is None:
                rows = [[self._encode(item.sample)] for item in items]
            pl = self.cfg.policy_loss
            local_norm = loss_normalizer(loss_masks(items), pl.aggregation, pl.constant_normalizer)
        elif loss == "dpo":
            items = [check_pair(p) for p in items]
            if rows is None:
                rows = [[self._encode(p.chosen), self._encode(p.rejected)] for p in items]
            local_norm = float(len(items))
        else:
            raise ValueError(f"loss must be 'grpo' or 'dpo', got {loss!r}")
        plan, dummies = self._plan(rows)
        norm = dist_utils.all_reduce_scalar(local_norm, "sum", self._reduce_device) or 1.0
        local_tokens = float(sum(mb.tokens for mb in plan))
        global_tokens = dist_utils.all_reduce_scalar(local_tokens, "sum", self._reduce_device)

        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums = MetricSums()
        aux = self.cfg.moe_aux
        want_routers = self.has_routers and (
            self.cfg.moe_load_stats or aux.load_balance_coef > 0 or aux.z_loss_coef > 0
        )
        schedule = plan + plan[-1:] * dummies
        for i, mb in enumerate(schedule):
            if self.parallel == "fsdp":
                self.model.set_requires_gradient_sync(i == len(schedule) - 1)
            mb_items = [items[u.index] for u in mb.units]
            # router replay stays on through backward (gradient checkpointing recomputes the layers)
            with self._replay(mb, mb_items if loss == "grpo" else None) as replay:
                with collect_router_logits(self.model) if want_routers else nullcontext([]) as captures:
                    batch, scores = self._scores(mb, with_entropy=self.wants_entropy)
                if loss == "grpo":
                    mb_loss, metrics, weight = self._grpo_loss(batch, scores, mb_items, norm)
                else:
                    mb_loss, metrics, weight = self._dpo_loss(batch, scores, mb_items, norm)
                real = i < len(plan)
                if captures:
                    share = mb.tokens / max(global_tokens, 1.0)
                    mb_loss = mb_loss + self._moe(captures, batch, share, sums if real else MetricSums())
                if self.parallel == "fsdp":
                    mb_loss = mb_loss + self._touch_root_params()
                replay_metrics = replay.metrics()
                (mb_loss * (self.world_size if real else 0.0)).backward()
            if real:
                sums.add(metrics, weight)
                sums.add(replay_metrics, replay.routed)
        if self.parallel == "replicate":
            dist_utils.all_reduce_gradients(self.params, self.world_size)

        if dist_utils.is_distributed():  # every rank reports the same merged metrics
            merged = MetricSums()
            for part in dist_utils.gather_objects(sums):
                merged.merge(part)
            sums = merged
        out = sums.result()
        out.update({"tokens_total": global_tokens, "micro_batches": float(len(plan))})
        return out

    def apply_gradients(self) -> dict[str, float]:
        """Clip, AdamW step, scheduler step, then drop the gradients. A non-finite gradient norm skips
        the update (``skip_nonfinite_grads``)."""
        grad_norm = clip_gradients(self.params, self.cfg.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        skipped = not np.isfinite(grad_norm) and self.cfg.skip_nonfinite_grads
        if skipped:
            log.warning("step %d: gradient norm %s; update skipped", self.step, grad_norm)
        else:
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
        self.optimizer.zero_grad(set_to_none=True)
        return {"grad_norm": grad_norm, "lr": lr, "step": float(self.step), "skipped": float(skipped)}

    def _touch_root_params(self) -> torch.Tensor:
        """A zero that depends on every trainable root-unit parameter. FSDP2 reduce-scatters only the
        gradients that exist, so a rank whose micro-batches had no image (or audio) would send fewer
        bytes than the others and the collective would abort; this gives every such parameter a
        (zero) gradient on every rank. Called after the forward, while the root is gathered."""
        parts = [p.reshape(-1)[:1].sum() for n, p in self.model.named_parameters() if n in self._root_params]
        return torch.stack(parts).sum() * 0.0 if parts else torch.zeros((), device=self.device)

    def _grpo_loss(self, batch, scores, items: list[TrainItem], norm: float):
        dev = self.device

        def column(name: str, default: float = 0.0) -> torch.Tensor | None:
            values = [getattr(item, name) for item in items]
            if all(v is None for v in values):
                return None
            return per_token(batch, values, name=name, default=default).to(dev)

        logprobs = scores.logprobs
        keep = column("loss_mask", default=1.0)
        mask = scores.mask if keep is None else scores.mask & keep.bool()
        old = column("old_logprobs")
        has_old = torch.tensor([it.old_logprobs is not None for it in items], device=dev)[:, None]
        old = logprobs.detach() if old is None else torch.where(has_old, old, logprobs.detach())
        ref, sampler = column("ref_logprobs"), column("sampler_logprobs")
        advantages = per_token(batch, [it.advantage for it in items], name="advantage").to(dev)
        loss, metrics = policy_loss(
            logprobs,
            old,
            advantages,
            mask,
            self.cfg.policy_loss,
            ref_logprobs=ref,
            sampler_logprobs=sampler,
            entropy=scores.entropy,
            normalizer=norm,
            mismatch=self.cfg.mismatch,
        )
        return loss, metrics, float(mask.sum().item())

    def _dpo_loss(self, batch, scores, pairs: list[PreferencePair], norm: float):
        seq = sequence_logps(scores.logprobs, scores.mask, average=self.cfg.dpo_length_average)
        ref = torch.tensor([[p.ref_chosen_logp, p.ref_rejected_logp] for p in pairs], device=self.device)
        loss, metrics = dpo_loss(seq[0::2], seq[1::2], ref[:, 0], ref[:, 1], self.cfg.dpo)
        scale = len(pairs) / norm
        metrics = {**metrics, "loss": metrics["loss"] * scale, "pairs": float(len(pairs))}
        return loss * scale, metrics, float(len(pairs))

    def _moe(self, captures, batch, share: float, sums: MetricSums) -> torch.Tensor:
        token_mask = batch.attention_mask.reshape(-1).bool()
        for cap in captures:
            if cap.topk_indices is not None:
                counts = torch.bincount(
                    cap.topk_indices[token_mask].reshape(-1), minlength=cap.logits.shape[-1]
                )
                sums.add_expert_counts(cap.name, counts.cpu())
        aux_cfg = self.cfg.moe_aux
        if aux_cfg.load_balance_coef == 0 and aux_cfg.z_loss_coef == 0:
            return torch.zeros((), device=self.device)
        aux, metrics = moe_aux_loss(captures, aux_cfg, token_mask=token_mask)
        sums.add({k: v for k, v in metrics.items() if k in ("moe/load_balance_loss", "moe/z_loss")}, share)
        return aux * share

    # weights and checkpoints ---------------------------------------------------------------------

    def _full_model_state(self) -> dict[str, torch.Tensor]:
        """Full (unsharded) CPU state dict: collective under FSDP2 (empty on ranks other than 0)."""
        if self.cfg.lora is not None:  # merged base + adapters under the base names
            merged = merged_named_weights(self.model)
            if self.rank != 0:
                for _ in merged:  # the gathers are collective
                    pass
                return {}
            return dict(merged)
        if self.parallel == "fsdp":
            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_model_state_dict(self.model, options=opts)
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def state_dict_for_sync(self, layout: str = "original") -> dict[str, torch.Tensor]:
        """Weights by parameter name for generation workers: ``original`` (NVIDIA/vLLM names, what
        ``reload_weights`` takes) or ``native`` (transformers' names). CPU copies in the parameter
        dtype; collective under FSDP2 (every rank must call; ranks other than 0 get ``{}``).

        On GPU clusters, weight sync should not round-trip through CPU: gather each FSDP unit's
        parameters on the GPU and stream them in buckets to the vLLM workers (NCCL broadcast or CUDA
        IPC handles), renaming with ``omni_rl.models.layout.to_original`` per bucket.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        state = self._full_model_state()
        if layout == "original" and state:
            state = to_original(self.hf_model, state)
        return state

    def named_weights_for_sync(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(native name, tensor) of every weight the engines hold, in a fixed order; under FSDP2 the
        tensors are this rank's ``DTensor`` shards. With LoRA: the merged weights (base + scaled B A)
        under the base model's names, each gathered whole on its own (``training.lora``)."""
        if self.cfg.lora is not None:
            yield from merged_named_weights(self.model)
            return
        yield from self.model.state_dict().items()

    def sync_buckets(
        self, layout: str = "original", dtype: Any = "auto", bucket_mb: float = 256, device: Any = "cpu"
    ):
        """The weights as buckets for the engines (``training.weight_sync``); collective under FSDP2."""
        return weight_sync.sync_buckets(self, layout, dtype, bucket_mb, device)

    def iter_sync_weights(self, layout: str = "original", dtype: Any = "auto"):
        """(engine name, full tensor in the serving dtype), one tensor gathered at a time; collective."""
        return weight_sync.iter_sync_weights(self, layout, dtype)

    def save_checkpoint(self, root: str | Path, data_state: dict | None = None) -> Path:
        """Write ``<root>/step_<step>/`` atomically (layout: ``omni_rl.training.checkpoint``); collective.
        ``data_state``: the caller's data position (JSON-able), returned by ``load_checkpoint``."""
        return save_trainer(self, root, data_state)

    def load_checkpoint(self, path: str | Path) -> dict:
        """Restore weights, optimiser, scheduler, step and this rank's RNG from a step folder (or the
        latest under a root); returns the saved ``data_state``. Every rank reads the files."""
        if self.tower_cache is not None:
            self.tower_cache.clear()  # features of the weights before the load
        return load_trainer(self, path)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _n_completion(sample: MultimodalSample) -> int:
    return len(sample.completion_ids)
