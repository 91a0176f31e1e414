"""Weight updates inside vLLM's workers, by parameter name, without restarting the engine.

``OmniRLWorkerExtension`` is mixed into every vLLM worker (``worker_extension_cls``); the backend
calls its methods with ``LLM.collective_rpc``. Weights arrive in NVIDIA's original layout (the
checkpoint names vLLM reads) and go through vLLM's in-place ``reload_weights`` (which re-runs the
per-layer post-processing, e.g. the oneDNN repacking of linear weights on CPU), plus fixes for what
that path misses in vLLM 0.32's Nemotron Omni code (each found by comparing against the trainer):

1. the image projector ``mlp1`` is loaded with a plain weight loader that bypasses the reload
   machinery (it kept its old values): copied directly;
2. RADIO's ``layer_scale{1,2}.lambda1`` are dropped by vLLM's loader (the encoder layers keep
   ``ls1``/``ls2`` at their initial value): copied directly into ``ls1``/``ls2``;
3. the mamba mixers convolve with ``conv_weights``, a buffer that viewed ``conv1d.weight`` before
   the weights were post-processed (in bf16 on CPU vLLM then packs ``conv1d.weight`` into another
   layout); a reload refreshes ``conv1d.weight`` and its unpacked copy only: copied from the latter;
4. encoder outputs cached from the old weights must not be reused: the backend resets the engine's
   encoder and multimodal caches after each update (the worker side is reset by ``reload_weights``).

Streaming (the loop's path): ``omni_rl_begin_sync`` prepares vLLM's layer-wise reload once, each
``omni_rl_receive_bucket`` opens one bucket in this worker (Ray object store, CUDA IPC handle, or a
broadcast from the trainer's rank 0: ``weight_transports``) and loads it (a layer is processed when
its last tensor arrives, whichever bucket brings it), ``omni_rl_finish_sync`` finalises. With TP > 1
every worker gets the full tensors and vLLM's weight loaders keep the worker's shard.
``omni_rl_update_weights`` (whole state in one call) remains for tests and tools: send whole layers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch

_LAYER_SCALE = re.compile(r"^vision_model\.radio_model\.model\.blocks\.(\d+)\.layer_scale([12])\.lambda1$")


def split_direct(
    weights: Iterable[tuple[str, torch.Tensor]],
) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[str, torch.Tensor]]]:
    """(tensors for ``reload_weights``, tensors copied directly: mlp1 and RADIO layer scales)."""
    bulk, direct = [], []
    for name, tensor in weights:
        (direct if name.startswith("mlp1.") or _LAYER_SCALE.match(name) else bulk).append((name, tensor))
    return bulk, direct


def direct_target(model: torch.nn.Module, name: str) -> torch.Tensor:
    """The vLLM parameter that the original-layout weight ``name`` (mlp1 / layer scale) lands in."""
    if name.startswith("mlp1."):
        return model.get_parameter(name)
    match = _LAYER_SCALE.match(name)
    if match is None:
        raise KeyError(f"{name}: not a directly copied weight")
    layer, which = match.groups()
    return model.get_parameter(f"vision_model.model.encoder.layers.{layer}.ls{which}")


@torch.no_grad()
def load_into(model_runner: Any, weights: Sequence[tuple[str, torch.Tensor]]) -> dict[str, Any]:
    """Load original-layout ``weights`` into the runner's model in place; returns counts and time."""
    start = time.perf_counter()
    model = model_runner.get_model()
    bulk, direct = split_direct(weights)
    if bulk:
        model_runner.reload_weights(weights_iterator=iter(bulk), is_checkpoint_format=True)
    copy_direct(model, direct)
    refreshed = refresh_conv_views(model)
    return {
        "tensors": len(weights),
        "direct": len(direct),
        "conv_views": refreshed,
        "seconds": time.perf_counter() - start,
    }


@torch.no_grad()
def refresh_conv_views(model: torch.nn.Module) -> int:
    """Copy each mamba mixer's current convolution weight into its ``conv_weights`` buffer when the
    two no longer share storage; returns how many were copied.

    On CPUs with AVX-512 BF16 (and aarch64 bf16), vLLM packs ``conv1d.weight`` for its kernel (same
    size, another layout) and keeps the plain ``(dim, width)`` copy in ``_cpu_unpacked_conv_weight``:
    that copy is the source then, never the packed tensor."""
    count = 0
    for module in model.modules():
        view = getattr(module, "conv_weights", None)
        conv = getattr(module, "conv1d", None)
        if not isinstance(view, torch.Tensor) or conv is None:
            continue
        source = getattr(conv, "_cpu_unpacked_conv_weight", None)
        if source is None:
            source = conv.weight
        if source.numel() != view.numel() or source.data_ptr() == view.data_ptr():
            continue
        view.copy_(source.reshape(view.shape))
        count += 1
    return count


def begin_streaming(model_runner: Any) -> None:
    """Prepare vLLM's layer-wise in-place reload for a sync that arrives in several buckets: every
    layer is processed (repacked, ...) once all its tensors are loaded, whichever bucket brings them,
    and ``finish_streaming`` restores the layers that got nothing."""
    from vllm.model_executor.model_loader.reload.layerwise import initialize_layerwise_reload

    initialize_layerwise_reload(model_runner.get_model())


@torch.no_grad()
def load_streaming(
    model_runner: Any, weights: Sequence[tuple[str, torch.Tensor]], deferred: list[tuple[str, torch.Tensor]]
) -> dict[str, Any]:
    """One bucket of original-layout full tensors (each TP rank's weight loaders keep their shard).
    The directly copied weights (mlp1, RADIO layer scales) are kept in ``deferred`` (copies: the
    bucket's memory goes back to the sender) for ``finish_streaming``: until the reload is finalised
    their layers sit on the meta device."""
    bulk, direct = split_direct(weights)
    if bulk:
        model_runner.get_model().load_weights(iter(bulk))
    deferred.extend((name, tensor.detach().clone()) for name, tensor in direct)
    return {"tensors": len(weights), "direct": len(direct)}


@torch.no_grad()
def finish_streaming(
    model_runner: Any, deferred: Sequence[tuple[str, torch.Tensor]], start: float
) -> dict[str, Any]:
    """Process what is left (attention layers), then copy the direct weights, refresh the mamba views
    and drop derived caches (what ``reload_weights`` does after a one-shot reload)."""
    from vllm.model_executor.model_loader.reload.layerwise import finalize_layerwise_reload

    model = model_runner.get_model()
    finalize_layerwise_reload(model, model_runner.vllm_config.model_config)
    copy_direct(model, deferred)
    refreshed = refresh_conv_views(model)
    for reset in ("reset_lora_state", "reset_encoder_cache", "reset_mm_cache"):
        if hasattr(model_runner, reset):
            getattr(model_runner, reset)()
    return {"direct": len(deferred), "conv_views": refreshed, "seconds": time.perf_counter() - start}


def copy_direct(model: torch.nn.Module, weights: Sequence[tuple[str, torch.Tensor]]) -> None:
    for name, tensor in weights:
        target = direct_target(model, name)
        if tuple(target.shape) != tuple(tensor.shape):
            raise ValueError(f"{name}: shape {tuple(tensor.shape)}, vLLM's is {tuple(target.shape)}")
        target.data.copy_(tensor.to(target.device))


class OmniRLWorkerExtension:
    """Methods added to vLLM's worker class; ``self`` is the worker (``self.model_runner``, ``self.device``)."""

    def omni_rl_begin_sync(self) -> None:
        self._omni_rl_sync_start = time.perf_counter()
        self._omni_rl_deferred: list[tuple[str, torch.Tensor]] = []
        begin_streaming(self.model_runner)

    def omni_rl_load_bucket(self, weights: Sequence[tuple[str, torch.Tensor]]) -> dict[str, Any]:
        return load_streaming(self.model_runner, list(weights), self._omni_rl_deferred)

    def omni_rl_finish_sync(self) -> dict[str, Any]:
        deferred, self._omni_rl_deferred = self._omni_rl_deferred, []
        return finish_streaming(self.model_runner, deferred, self._omni_rl_sync_start)

    def omni_rl_update_weights(self, weights: Sequence[tuple[str, torch.Tensor]]) -> dict[str, Any]:
        """Tensors passed by value (CPU engines)."""
        return load_into(self.model_runner, list(weights))

    def omni_rl_receive_bucket(self, kind: str, payload: Any, entries: Sequence[Any]) -> dict[str, Any]:
        """One bucket of any transport, opened in this worker (on its own device) and loaded."""
        from omni_rl.generation.weight_buckets import bucket_tensors
        from omni_rl.generation.weight_transports import open_payload

        device = self.device if getattr(self.device, "type", "cpu") == "cuda" else None
        buffer = open_payload(kind, payload, getattr(self, "_omni_rl_group", None), device)
        result = load_streaming(self.model_runner, bucket_tensors(buffer, entries), self._omni_rl_deferred)
        if buffer.is_cuda:
            torch.cuda.synchronize(self.device)
        return result

    def omni_rl_join_group(
        self, host: str, port: int, rank_offset: int, world_size: int, backend: str
    ) -> None:
        """Join the trainer's broadcast group (its rank 0 is the source) as ``rank_offset`` + this
        worker's rank in the engine."""
        from vllm.distributed.parallel_state import get_world_group

        from omni_rl.generation.weight_transports import WeightGroup

        rank = rank_offset + get_world_group().rank
        self._omni_rl_group = WeightGroup(host, port, rank, world_size, backend)

    def omni_rl_parameter_checksums(self, names: Sequence[str]) -> dict[str, float]:
        """Sum of |values| of vLLM parameters or buffers by vLLM name (tests and debugging)."""
        model = self.model_runner.get_model()
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        return {n: float(tensors[n].float().abs().sum()) for n in names if n in tensors}
