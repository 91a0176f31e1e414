"""Options of the vLLM backend and the pure mappings to vLLM's arguments (no vLLM import here).

``engine_kwargs`` builds the ``vllm.LLM(...)`` arguments; ``sampling_kwargs`` maps our
``SamplingParams`` to ``vllm.SamplingParams(...)`` arguments; ``sample_output`` maps one vLLM
``CompletionOutput`` back to our ``SampleOutput``. Kept apart from the backend so they are tested
without vLLM installed.

Log-probabilities: the engine runs with ``logprobs_mode="processed_logprobs"`` and each request asks
for ``logprobs=0`` (the sampled token only), so ``SampleOutput.logprobs`` is the log-prob under the
distribution the token was drawn from (banned media tokens removed, temperature, top-k, top-p): the
behaviour policy of importance weights, as ``omni_rl.generation.base`` defines it. vLLM's default,
``raw_logprobs``, would give the unprocessed model distribution instead. ``model_logprobs`` is None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omni_rl.generation.base import SampleOutput, SamplingParams

LOGPROBS_MODE = "processed_logprobs"


@dataclass(frozen=True)
class VLLMBackendOptions:
    """Engine settings. ``None`` means "the platform's default" (see ``engine_kwargs``).

    - ``dtype``: vLLM's CPU build runs the image/audio/video encoders in bfloat16 only; float32 serves
      text prompts (and gives trainer-exact log-probs on CPU).
    - ``kv_cache_space_gib``: CPU only (``VLLM_CPU_KVCACHE_SPACE``; None: the variable if set, else 1);
      unbounded, vLLM sizes the cache from free memory (22 GB seen on a 24 GiB machine).
    - ``gpu_memory_utilization``, ``tensor_parallel_size``, ``kv_cache_dtype`` ("fp8" halves the KV
      cache on Hopper), ``enable_sleep_mode`` (colocated with the trainer): GPU.
    - ``video_pruning_rate``: the model card's ``--video-pruning-rate`` (EVS), passed as an HF config
      override; ``media_io_kwargs`` (e.g. ``{"video": {"num_frames": 32, "fps": 2}}``) only matters when
      vLLM decodes media itself: this backend hands it frames decoded by ``omni_rl.media``.
    - ``ban_media_tokens``: forbid sampling the media placeholders (a sampled ``<image>`` breaks the
      trainer's forward); ``banned_token_ids`` adds more.
    - ``num_threads`` / ``cpu_threads_bind``: CPU only. ``num_threads``: torch's thread count for the
      engine (in-process). ``cpu_threads_bind`` sets ``VLLM_CPU_OMP_THREADS_BIND`` ("auto": pin to the
      cores of a NUMA node, best on a dedicated server; "0-3"; default here "nobind", see the backend).
    - ``prepared_dir``: where ``prepare_model_dir`` writes its config views.
    - ``return_routed_experts``: MoE router replay (R3): vLLM (``enable_return_routed_experts``) returns
      the experts it chose for every forwarded token in every MoE layer, ``[tokens, moe_layers, k]`` (the
      prompt, then the completion but its last token: our ``RouteRecorder`` layout); set by the loop
      when ``trainer.router_replay`` is on.
    - ``engine_args``: extra ``vllm.LLM`` keyword arguments (they win over the derived ones).
    """

    dtype: str = "bfloat16"
    max_model_len: int | None = None
    max_num_seqs: int = 64
    max_num_batched_tokens: int | None = None
    seed: int = 0
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    kv_cache_space_gib: float | None = None
    num_threads: int | None = None
    cpu_threads_bind: str | None = None
    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1
    kv_cache_dtype: str = "auto"
    enable_sleep_mode: bool = False
    limit_mm_per_prompt: Mapping[str, int] = field(
        default_factory=lambda: {"image": 1, "audio": 1, "video": 1}
    )
    video_pruning_rate: float | None = None
    media_io_kwargs: Mapping[str, Any] | None = None
    mm_processor_kwargs: Mapping[str, Any] | None = None
    ban_media_tokens: bool = True
    banned_token_ids: tuple[int, ...] = ()
    trust_remote_code: bool = True
    prepared_dir: str | None = None
    return_routed_experts: bool = False
    engine_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("max_num_seqs", self.max_num_seqs >= 1, "an integer >= 1"),
            ("tensor_parallel_size", self.tensor_parallel_size >= 1, "an integer >= 1"),
            ("gpu_memory_utilization", 0 < self.gpu_memory_utilization <= 1, "a number in (0, 1]"),
            ("num_threads", self.num_threads is None or self.num_threads >= 1, "an integer >= 1"),
            ("max_model_len", self.max_model_len is None or self.max_model_len >= 2, "an integer >= 2"),
            ("kv_cache_space_gib", self.kv_cache_space_gib is None or self.kv_cache_space_gib > 0, "> 0"),
            (
                "video_pruning_rate",
                self.video_pruning_rate is None or 0 <= self.video_pruning_rate < 1,
                "a number in [0, 1)",
            ),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"VLLMBackendOptions.{name}: must be {what}, got {getattr(self, name)!r}")
        for modality, limit in self.limit_mm_per_prompt.items():
            if modality not in ("image", "audio", "video") or not isinstance(limit, int) or limit < 0:
                raise ValueError(
                    "VLLMBackendOptions.limit_mm_per_prompt: expected {image|audio|video: count >= 0}, "
                    f"got {dict(self.limit_mm_per_prompt)!r}"
                )


def engine_kwargs(model_dir: str, options: VLLMBackendOptions, on_cpu: bool) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``. On CPU: eager mode and no prefix caching by default
    (vLLM 0.32's mamba prefix caching crashes on CPU); sleep mode and GPU memory settings are left out."""
    kwargs: dict[str, Any] = {
        "model": model_dir,
        "dtype": options.dtype,
        "seed": options.seed,
        "max_num_seqs": options.max_num_seqs,
        "trust_remote_code": options.trust_remote_code,
        "limit_mm_per_prompt": dict(options.limit_mm_per_prompt),
        "tensor_parallel_size": options.tensor_parallel_size,
        "logprobs_mode": LOGPROBS_MODE,
        "enforce_eager": on_cpu if options.enforce_eager is None else options.enforce_eager,
        "enable_prefix_caching": (not on_cpu)
        if options.enable_prefix_caching is None
        else options.enable_prefix_caching,
        "worker_extension_cls": "omni_rl.generation.vllm_worker_ext.OmniRLWorkerExtension",
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    if options.max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = options.max_num_batched_tokens
    if options.return_routed_experts:
        kwargs["enable_return_routed_experts"] = True
    if options.kv_cache_dtype != "auto":
        kwargs["kv_cache_dtype"] = options.kv_cache_dtype
    if not on_cpu:
        kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
        if options.enable_sleep_mode:
            kwargs["enable_sleep_mode"] = True
    if options.video_pruning_rate is not None:
        kwargs["hf_overrides"] = {"video_pruning_rate": options.video_pruning_rate}
    if options.media_io_kwargs:
        kwargs["media_io_kwargs"] = {k: dict(v) for k, v in options.media_io_kwargs.items()}
    if options.mm_processor_kwargs:
        kwargs["mm_processor_kwargs"] = dict(options.mm_processor_kwargs)
    kwargs.update(options.engine_args)
    return kwargs


def sampling_kwargs(
    params: SamplingParams, seed: int | None, bad_words: Sequence[str] = ()
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (``seed``: the request's, already resolved).

    vLLM gives sample j of a seeded request the seed ``seed + j``; ``top_k=0`` disables top-k in both;
    ``logprobs=0`` returns the sampled token's log-prob only. vLLM refuses ``n > 1`` when greedy: ask
    for one sample (the backend repeats it ``n`` times).
    """
    return {
        "n": 1 if params.greedy else params.n,
        "max_tokens": params.max_tokens,
        "min_tokens": params.min_tokens,
        "temperature": float(params.temperature),
        "top_p": float(params.top_p),
        "top_k": int(params.top_k),
        "stop": list(params.stop),
        "stop_token_ids": list(params.stop_token_ids),
        "include_stop_str_in_output": params.include_stop_str_in_output,
        "ignore_eos": params.ignore_eos,
        "seed": seed,
        "skip_special_tokens": params.skip_special_tokens,
        "logprobs": 0,
        "bad_words": list(bad_words),
    }


def sample_output(completion: Any, params: SamplingParams) -> SampleOutput:
    """Our ``SampleOutput`` from a vLLM ``CompletionOutput`` (token_ids, logprobs, text,
    finish_reason, stop_reason). An end by EOS or a stop token reports that token as
    ``stop_reason`` (vLLM reports None for EOS); greedy samples get log-prob 0.0."""
    token_ids = [int(t) for t in completion.token_ids]
    entries = completion.logprobs or []
    if len(entries) != len(token_ids):
        raise RuntimeError(f"vLLM returned {len(entries)} log-prob entries for {len(token_ids)} tokens")
    logprobs = [
        0.0 if params.greedy else float(entry[token].logprob)
        for token, entry in zip(token_ids, entries, strict=True)
    ]
    reason = completion.finish_reason
    stop_reason = completion.stop_reason
    if reason == "stop":
        finish = "stop"
        if stop_reason is None and token_ids:
            stop_reason = token_ids[-1]
    elif reason == "length":
        finish = "length"
    else:
        raise RuntimeError(f"vLLM finished a sample with reason {reason!r}")
    return SampleOutput(
        token_ids=token_ids,
        logprobs=logprobs,
        text=completion.text,
        finish_reason=finish,
        stop_reason=stop_reason,
        model_logprobs=None,
        routed_experts=routed_experts(completion, len(token_ids)),
    )


def routed_experts(completion: Any, completion_tokens: int) -> np.ndarray | None:
    """vLLM's ``routed_experts`` ([tokens, moe_layers, k], present with ``enable_return_routed_experts``)
    as integer expert ids; it covers every token vLLM forwarded, so at least the completion but its last."""
    routes = getattr(completion, "routed_experts", None)
    if routes is None:
        return None
    routes = np.asarray(routes)
    if routes.ndim != 3 or routes.shape[0] < completion_tokens - 1:
        raise RuntimeError(
            f"vLLM returned routed_experts of shape {routes.shape}; expected [tokens, moe_layers, k] with at "
            f"least the {completion_tokens - 1} forwarded completion tokens"
        )
    return routes.astype(np.int64, copy=False)
