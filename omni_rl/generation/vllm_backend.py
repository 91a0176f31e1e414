"""The ``vllm`` generation backend: one vLLM engine per backend object (one per Ray actor).

What one ``generate`` call does: each request's chat messages are rendered with the model's chat
template (media parts become the placeholders vLLM's Nemotron Omni processor expands), its media
items (MediaRefs resolved through the MediaStore, or decoded items) are handed to vLLM as
multimodal data, as the decoded arrays themselves: image pixels, ``(waveform, sample_rate)``,
``(frames, metadata)``. One vLLM request per prompt; its G samples come from ``n``. Requests that
vLLM refuses (a prompt over ``max_model_len`` once media are expanded, bad media, ...) become error
results; the others run batched.

Weight sync (``update_weights``): tensors by name in the original layout go to every worker through
``collective_rpc`` into ``OmniRLWorkerExtension`` (see ``vllm_worker_ext``), then the engine's
encoder and multimodal caches are reset. No restart. On CPU the engine runs in-process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so the tensors are handed over without a copy.

Colocated with the trainer on GPUs: ``enable_sleep_mode=True``, then ``sleep()`` before the training
step frees the GPU memory of weights and KV cache and ``wake_up()`` brings it back (GPU only).
See docs/vllm.md for real-model settings.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omni_rl.generation.base import (
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Layout,
    MediaResolver,
)
from omni_rl.generation.vllm_checkpoint import prepare_model_dir
from omni_rl.generation.vllm_inputs import guard_llvmlite_for_vllm, vllm_prompt
from omni_rl.generation.vllm_options import VLLMBackendOptions, engine_kwargs, sample_output, sampling_kwargs
from omni_rl.models.original_config import read_config_dict, tensor_shapes
from omni_rl.models.tokenizer import MEDIA_TOKENS

log = logging.getLogger(__name__)

LAYER_SCALE_MARK = ".layer_scale"


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


class VLLMBackend(GenerationBackend):
    """See the module docstring. ``model_path``: a Nemotron Omni checkpoint folder (either config
    layout; prepared for vLLM with ``prepare_model_dir``)."""

    def __init__(
        self,
        model_path: str | Path,
        options: VLLMBackendOptions | Mapping[str, Any] | None = None,
        media_resolver: MediaResolver | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(options, Mapping):
            options = VLLMBackendOptions(**options)
        self.options = replace(options or VLLMBackendOptions(), **overrides)
        self.media_resolver = media_resolver
        self.source_path = Path(model_path)
        self.model_dir = prepare_model_dir(model_path, self.options.dtype, self.options.prepared_dir)
        self.weight_version = 0
        self.last_sync: dict[str, Any] = {}
        self._skeleton: torch.nn.Module | None = None
        self._sync_start, self._sync_count = 0.0, 0
        self._rng = np.random.default_rng(self.options.seed)
        self.llm = self._start_engine()
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.llm_engine.vllm_config.model_config.max_model_len)
        self.bad_words = self._bad_words()
        self._load_dropped_weights()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        options: VLLMBackendOptions | Mapping[str, Any] | None = None,
        media_resolver: MediaResolver | None = None,
        **overrides: Any,
    ) -> VLLMBackend:
        return cls(path, options, media_resolver, **overrides)

    # ---- engine -----------------------------------------------------------------------------

    def _start_engine(self):
        on_cpu = _on_cpu()
        if on_cpu:
            # in-process engine: weight sync hands tensors over without serialising them
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            if self.options.kv_cache_space_gib is not None:
                os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{self.options.kv_cache_space_gib:g}"
            else:
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            # vLLM pins its OpenMP threads to cores by default ("auto"); on a machine shared with other
            # processes (CI, tests, a trainer on the same CPUs) pinned threads that spin-wait on busy
            # cores ran 5-15x slower here than unpinned ones, so the default here is "nobind"
            bind = self.options.cpu_threads_bind
            if bind is not None:
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = bind
            else:
                os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            if self.options.num_threads is not None:  # before vLLM's CPU worker disables set_num_threads
                torch.set_num_threads(self.options.num_threads)
        from vllm import LLM

        guard_llvmlite_for_vllm()
        kwargs = engine_kwargs(str(self.model_dir), self.options, on_cpu)
        start = time.perf_counter()
        llm = LLM(**kwargs)
        self.engine_start_s = time.perf_counter() - start
        log.info("vLLM engine for %s started in %.1f s", self.model_dir, self.engine_start_s)
        return llm

    def _bad_words(self) -> list[str]:
        """Token strings of the banned ids; each must encode back to exactly its id."""
        ids = set(self.options.banned_token_ids)
        if self.options.ban_media_tokens:
            config = read_config_dict(self.model_dir / "config.json")
            for key in ("img_context_token_id", "video_context_token_id", "sound_context_token_id"):
                if isinstance(config.get(key), int):
                    ids.add(config[key])
            vocab = self.tokenizer.get_vocab()
            ids |= {vocab[t] for t in MEDIA_TOKENS if t in vocab}
        words = []
        for token_id in sorted(ids):
            text = self.tokenizer.convert_ids_to_tokens(token_id)
            if self.tokenizer.encode(text, add_special_tokens=False) != [token_id]:
                raise ValueError(
                    f"banned token {token_id} ({text!r}) does not encode to itself; cannot ban it"
                )
            words.append(text)
        return words

    def _load_dropped_weights(self) -> None:
        """Weights that vLLM's loader ignores at start-up (RADIO layer scales), read from the checkpoint."""
        from safetensors import safe_open

        files = sorted(self.model_dir.glob("*.safetensors"))
        pairs = []
        for file in files:
            with safe_open(str(file), "pt") as handle:
                pairs += [(k, handle.get_tensor(k)) for k in handle.keys() if LAYER_SCALE_MARK in k]  # noqa: SIM118
        if pairs:
            self.llm.collective_rpc("omni_rl_update_weights", args=(pairs,))
            self._reset_caches()

    def _reset_caches(self) -> None:
        self.llm.llm_engine.reset_encoder_cache()
        self.llm.reset_mm_cache()

    # ---- generation -------------------------------------------------------------------------

    def _sampling_params(self, request: GenerationRequest):
        from vllm import SamplingParams as VllmSamplingParams

        params = request.sampling
        seed = params.seed if params.seed is not None else int(self._rng.integers(0, 2**31 - 1))
        return VllmSamplingParams(**sampling_kwargs(params, seed, self.bad_words))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        queued: list[tuple[int, str]] = []  # (request index, vLLM request id)
        for i, request in enumerate(requests):
            try:
                if not isinstance(request, GenerationRequest):
                    raise TypeError(
                        f"requests[{i}]: must be a GenerationRequest, got {type(request).__name__}"
                    )
                ids = self.llm.enqueue(
                    vllm_prompt(request, self.tokenizer, self.media_resolver),
                    self._sampling_params(request),
                    use_tqdm=False,
                    tokenization_kwargs={"add_special_tokens": False},
                )
                queued.append((i, ids[0]))
            except Exception as exc:  # one bad request must not fail the batch
                results[i] = self._error(request, exc)
        outputs = self.llm.wait_for_completion(use_tqdm=False) if queued else []
        by_id = {out.request_id: out for out in outputs}
        if len(outputs) != len(queued):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(queued)} requests")
        if not all(rid in by_id for _, rid in queued):  # ids rewritten by the engine: same order
            by_id = {rid: out for (_, rid), out in zip(queued, outputs, strict=True)}
        for i, rid in queued:
            request, out = requests[i], by_id[rid]
            try:
                samples = [
                    sample_output(c, request.sampling) for c in sorted(out.outputs, key=lambda c: c.index)
                ]
                if request.sampling.greedy:  # one greedy sample was asked for: the n are identical
                    samples = [copy.deepcopy(samples[0]) for _ in range(request.sampling.n)]
                results[i] = GenerationResult(
                    request_id=request.request_id,
                    samples=samples,
                    prompt_token_ids=[int(t) for t in out.prompt_token_ids or []],
                    weight_version=self.weight_version,
                )
            except Exception as exc:
                results[i] = self._error(request, exc)
        return [r for r in results if r is not None]

    def _error(self, request: Any, exc: BaseException) -> GenerationResult:
        return GenerationResult(
            request_id=str(getattr(request, "request_id", "")),
            error=f"{type(exc).__name__}: {exc}",
            weight_version=self.weight_version,
        )

    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Log-prob of every token after the first of each text-only token sequence under the current
        weights (vLLM's prompt log-probs: the raw model distribution). For checks against the trainer."""
        from vllm import SamplingParams as VllmSamplingParams

        params = VllmSamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0, seed=0)
        prompts = [{"prompt_token_ids": [int(t) for t in ids]} for ids in token_ids]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        out = []
        for ids, output in zip(token_ids, outputs, strict=True):
            entries = output.prompt_logprobs[1:]
            out.append([float(entry[int(t)].logprob) for t, entry in zip(ids[1:], entries, strict=True)])
        return out

    # ---- weights ------------------------------------------------------------------------------

    def _native_skeleton(self) -> torch.nn.Module:
        """The HF model on the meta device (no memory): what the native -> original name mapping needs."""
        if self._skeleton is None:
            from transformers import NemotronH_Omni_Reasoning_V3

            from omni_rl.models.original_config import CLS_TOKEN_KEY, native_config_from_original

            shapes = tensor_shapes(self.model_dir, [CLS_TOKEN_KEY])
            config = native_config_from_original(read_config_dict(self.model_dir / "config.json"), shapes)
            with torch.device("meta"):
                self._skeleton = NemotronH_Omni_Reasoning_V3(config)
        return self._skeleton

    def update_weights(
        self, state: Mapping[str, torch.Tensor], layout: Layout = "native", version: int | None = None
    ) -> dict[str, Any]:
        """``state``: tensors by name (``layout``), or what ``worker.put_weights`` stored (Ray resolves
        the ref: read-only arrays in shared memory, no copy). Send whole layers: vLLM rebuilds each
        layer from the tensors it gets. ``sync_ms`` in the result is the wall time of the update."""
        if layout not in ("native", "original"):
            raise ValueError(f"layout must be 'native' or 'original', got {layout!r}")
        start = time.perf_counter()
        if any(isinstance(v, tuple) for v in state.values()):  # packed by worker.put_weights
            from omni_rl.generation.worker import unpack_state

            state = unpack_state(state)
        state = dict(state)
        if layout == "native":
            from omni_rl.models.layout import to_original

            state = to_original(self._native_skeleton(), state)
        pairs = [(name, tensor.detach()) for name, tensor in state.items()]
        worker_results = self.llm.collective_rpc("omni_rl_update_weights", args=(pairs,))
        return self._after_update(worker_results, len(pairs), start, version)

    def _after_update(self, worker_results: list[dict[str, Any]], count: int, start: float, version) -> dict:
        self._reset_caches()
        self.weight_version = self.weight_version + 1 if version is None else int(version)
        self.last_sync = {
            "updated": count,
            "version": self.weight_version,
            "sync_ms": (time.perf_counter() - start) * 1000.0,
            "worker_ms": max(r["seconds"] for r in worker_results) * 1000.0,
        }
        return dict(self.last_sync)

    def begin_sync(self) -> None:
        """Start streaming a new set of weights: every worker prepares vLLM's layer-wise reload, which
        processes each layer as soon as all its tensors have arrived, in whichever bucket."""
        self._sync_start = time.perf_counter()
        self._sync_count = 0
        self.llm.collective_rpc("omni_rl_begin_sync")

    def load_bucket(self, weights: Sequence[tuple[str, torch.Tensor]], layout: Layout = "original") -> int:
        """One bucket, original layout, full tensors: every worker (each TP rank) hands them to vLLM's
        weight loaders, which keep only that rank's shard."""
        if layout != "original":
            raise ValueError("vllm load_bucket: buckets must be in the original layout (vLLM's names)")
        pairs = [(name, tensor.detach()) for name, tensor in weights]
        self.llm.collective_rpc("omni_rl_load_bucket", args=(pairs,))
        self._sync_count += len(pairs)
        return len(pairs)

    def finish_sync(self, version: int | None = None) -> dict[str, Any]:
        results = self.llm.collective_rpc("omni_rl_finish_sync")
        return self._after_update(results, self._sync_count, self._sync_start, version)

    def receive_bucket(
        self, kind: str, payload: Any, entries: Sequence[Any], layout: Layout = "original"
    ) -> int:
        """One bucket from any transport (``weight_transports``), opened by every vLLM worker itself:
        a CUDA IPC handle or a broadcast goes straight to each worker's GPU (no copy through this
        process); each TP rank's weight loaders keep their shard of the full tensors."""
        if layout != "original":
            raise ValueError("vllm receive_bucket: buckets must be in the original layout (vLLM's names)")
        self.llm.collective_rpc("omni_rl_receive_bucket", args=(kind, payload, list(entries)))
        self._sync_count += len(entries)
        return len(entries)

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int, backend: str) -> None:
        """Broadcast transport: every vLLM worker joins the trainer's group as rank ``rank`` + its own."""
        self.llm.collective_rpc("omni_rl_join_group", args=(host, port, rank, world_size, backend))

    # ---- placement ----------------------------------------------------------------------------

    def sleep(self, level: int = 1) -> None:
        """GPU, colocated mode (``enable_sleep_mode``): free weights (level 1: offloaded to CPU) and
        the KV cache until ``wake_up``. Level 2 also drops the weights: sync them after waking.
        vLLM's CPU worker has no sleep mode (it logs and ignores the call): refused here."""
        if not self.options.enable_sleep_mode:
            raise RuntimeError("sleep: start the backend with enable_sleep_mode=True (GPU only)")
        if _on_cpu():
            raise RuntimeError("sleep: vLLM has no sleep mode on CPU; use sleep_while_training=false")
        self.llm.sleep(level=level)

    def wake_up(self) -> None:
        self.llm.wake_up()

    def info(self) -> dict[str, Any]:
        return {
            "backend": "vllm",
            "model": str(self.source_path),
            "model_dir": str(self.model_dir),
            "device": "cpu" if _on_cpu() else "cuda",
            "dtype": self.options.dtype,
            "max_model_len": self.max_model_len,
            "weight_version": self.weight_version,
            "workers": int(self.options.tensor_parallel_size),
            "engine_start_s": round(self.engine_start_s, 2),
            "banned_tokens": list(self.bad_words),
            "last_sync": dict(self.last_sync),
            "options": asdict(self.options),
        }

    def close(self) -> None:
        """Shut the engine down and free its memory (the process can start another engine)."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # best effort: the engine may be half-started
            log.warning("vLLM engine shutdown: %s", exc)
        del llm
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except Exception as exc:
            log.warning("vLLM distributed teardown: %s", exc)
        gc.collect()
