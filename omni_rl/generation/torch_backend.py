"""The ``torch`` generation backend: samples from the policy model itself with its KV/SSM cache.

Meant for CPU runs, tests and small models; on GPU clusters the vLLM backend is faster. What it does
per ``generate`` call: each request is resolved and encoded once (bad ones become error results),
requests are grouped so that one forward can hold them (``group_for_batching``: images and videos
apart; prompts of equal length only if left padding is not exact, see ``decoding``) and chunked to at most ``max_num_seqs`` samples, and each chunk runs ``decoding.decode``
(prefill once per prompt, G cache copies, batched decode). If a batched chunk fails, its prompts are
retried one by one so the failure stays with the request that caused it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from omni_rl.generation.base import (
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Layout,
    MediaResolver,
    SampleOutput,
)
from omni_rl.generation.decoding import Row, decode
from omni_rl.generation.prompts import to_sample
from omni_rl.generation.sampling import RowSpec, StopWatcher, final_text, row_seed
from omni_rl.models.batching import EncodedSample, encode_sample, group_for_batching
from omni_rl.models.layout import to_native
from omni_rl.models.tokenizer import MEDIA_TOKENS
from omni_rl.training.router_replay import RouteRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchBackendOptions:
    """dtype/device as ``load_policy`` takes them; ``max_model_len`` (prompt + completion) defaults to
    the decoder's ``max_position_embeddings``; ``max_num_seqs`` samples decode together (one request's
    n samples always stay in one chunk); ``num_threads`` sets ``torch.set_num_threads``; ``seed``
    seeds requests that carry no seed of their own (None: fresh OS entropy, so that workers started
    with the same options do not draw the same samples)."""

    dtype: str = "auto"
    device: str | None = None
    max_model_len: int | None = None
    max_num_seqs: int = 64
    num_threads: int | None = None
    seed: int | None = None
    ban_media_tokens: bool = True
    banned_token_ids: tuple[int, ...] = ()
    trust_remote_code: bool = False
    record_routes: bool = (
        False  # MoE router replay: SampleOutput.routed_experts (omni_rl.training.router_replay)
    )

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1:
            raise ValueError(f"TorchBackendOptions.max_num_seqs: must be >= 1, got {self.max_num_seqs}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"TorchBackendOptions.num_threads: must be >= 1, got {self.num_threads}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ValueError(f"TorchBackendOptions.max_model_len: must be >= 2, got {self.max_model_len}")


@dataclass
class _Prepared:
    index: int  # position in the request list
    request: GenerationRequest
    encoded: EncodedSample
    seeds: list[int] = field(default_factory=list)


class TorchBackend(GenerationBackend):
    """See the module docstring. ``model`` is used as is (its mode is restored after each call)."""

    def __init__(
        self,
        model: nn.Module,
        processor,
        options: TorchBackendOptions | None = None,
        media_resolver: MediaResolver | None = None,
        **overrides: Any,
    ) -> None:
        self.options = replace(options or TorchBackendOptions(), **overrides)
        if self.options.num_threads is not None:
            torch.set_num_threads(self.options.num_threads)
        self.model, self.processor = model, processor
        self.tokenizer = processor.tokenizer
        self.media_resolver = media_resolver
        text_config = model.config.get_text_config()
        self.max_model_len = self.options.max_model_len or int(text_config.max_position_embeddings)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        banned = set(self.options.banned_token_ids)
        if self.options.ban_media_tokens:
            vocab = self.tokenizer.get_vocab()  # (media_token_ids would map a missing token to unk)
            banned |= {vocab[token] for token in MEDIA_TOKENS if token in vocab}
            banned |= {
                int(getattr(model.config, k)) for k in ("image_token_id", "video_token_id", "audio_token_id")
            }
        self.banned = sorted(t for t in banned if t < int(text_config.vocab_size))
        self.eos_ids = self._eos_ids()
        # mamba layers whose input projection has a bias feed that bias from left-padding positions
        # into their convolution: then only prompts of equal length may share a batch
        self.exact_left_padding = not any(
            getattr(getattr(m, "in_proj", None), "bias", None) is not None
            for m in model.modules()
            if type(m).__name__.endswith("Mamba2Mixer")
        )
        self.weight_version = 0
        self.asleep_level = 0  # 0 awake, else the level of sleep()
        self._missing: set[str] = set()  # parameters discarded by sleep(level=2), not synced since
        self._sync_loaded: set[str] = set()
        self._param_specs: dict[str, tuple[torch.Size, torch.dtype, torch.device]] = {}
        self.name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        self._rng = np.random.default_rng(self.options.seed)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        options: TorchBackendOptions | None = None,
        media_resolver: MediaResolver | None = None,
        **overrides: Any,
    ) -> TorchBackend:
        from omni_rl.models.loading import load_policy

        options = replace(options or TorchBackendOptions(), **overrides)
        if options.num_threads is not None:
            torch.set_num_threads(options.num_threads)
        model, processor = load_policy(
            path, dtype=options.dtype, device=options.device, trust_remote_code=options.trust_remote_code
        )
        model.requires_grad_(False)
        return cls(model.eval(), processor, options, media_resolver)

    def _eos_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list | tuple) else [configured])
        return frozenset(int(t) for t in ids if t is not None)

    # ---- generation -------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self._check_awake()
        results: list[GenerationResult | None] = [None] * len(requests)
        prepared: list[_Prepared] = []
        for i, request in enumerate(requests):
            try:
                prepared.append(self._prepare(i, request))
            except Exception as exc:  # one bad request must not fail the batch
                results[i] = self._error(request, exc)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for chunk in self._chunks(prepared):
                    for item, outcome in self._run(chunk):
                        results[item.index] = outcome
        finally:
            self.model.train(was_training)
        return [r for r in results if r is not None]

    def _prepare(self, index: int, request: GenerationRequest) -> _Prepared:
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"requests[{index}]: must be a GenerationRequest, got {type(request).__name__}")
        sample = to_sample(request, self.media_resolver, self.processor.audio_sampling_rate)
        encoded = encode_sample(self.processor, sample)
        prompt_len = len(encoded.input_ids)
        if prompt_len >= self.max_model_len:
            raise ValueError(
                f"prompt: {prompt_len} tokens (media expanded), max_model_len is {self.max_model_len}: "
                "no room for a completion"
            )
        params = request.sampling
        if params.seed is not None:
            seeds = [row_seed(params.seed, j) for j in range(params.n)]
        else:
            seeds = [int(s) for s in self._rng.integers(0, 2**63 - 1, size=params.n)]
        return _Prepared(index, request, encoded, seeds)

    def _chunks(self, prepared: list[_Prepared]) -> Iterator[list[_Prepared]]:
        one_video_per_chunk = float(getattr(self.model.config, "video_pruning_rate", 0.0) or 0.0) > 0
        groups = group_for_batching([p.encoded for p in prepared])
        if not self.exact_left_padding:
            groups = [
                [i for i in group if len(prepared[i].encoded.input_ids) == length]
                for group in groups
                for length in dict.fromkeys(len(prepared[i].encoded.input_ids) for i in group)
            ]
        for group in groups:
            chunk: list[_Prepared] = []
            rows = 0
            for i in group:
                item = prepared[i]
                alone = one_video_per_chunk and "video" in item.encoded.modalities
                if chunk and (alone or rows + item.request.sampling.n > self.options.max_num_seqs):
                    yield chunk
                    chunk, rows = [], 0
                chunk.append(item)
                rows += item.request.sampling.n
                if alone:
                    yield chunk
                    chunk, rows = [], 0
            if chunk:
                yield chunk

    def _run(self, chunk: list[_Prepared]) -> list[tuple[_Prepared, GenerationResult]]:
        rows = [
            Row(
                prompt=p,
                spec=RowSpec(item.request.sampling, seed, self._stop_ids(item.request)),
                max_new=min(
                    item.request.sampling.max_tokens, self.max_model_len - len(item.encoded.input_ids)
                ),
                stop_ids=self._stop_ids(item.request),
                watcher=StopWatcher(
                    self.tokenizer, item.request.sampling.stop, item.request.sampling.skip_special_tokens
                ),
            )
            for p, item in enumerate(chunk)
            for seed in item.seeds
        ]
        try:
            encoded = [item.encoded for item in chunk]
            if self.options.record_routes:
                with RouteRecorder(self.model) as recorder:
                    decode(self.model, encoded, rows, self.pad_id, self.banned, recorder)
            else:
                decode(self.model, encoded, rows, self.pad_id, self.banned)
        except Exception as exc:
            if len(chunk) == 1:
                log.warning("generation failed for request %s: %s", chunk[0].request.request_id, exc)
                return [(chunk[0], self._error(chunk[0].request, exc))]
            log.warning("batched generation failed (%s); retrying %d prompts one by one", exc, len(chunk))
            return [pair for item in chunk for pair in self._run([item])]
        out = []
        for p, item in enumerate(chunk):
            params = item.request.sampling
            samples = [
                SampleOutput(
                    token_ids=row.token_ids,
                    logprobs=row.logprobs,
                    text=final_text(
                        self.tokenizer,
                        row.token_ids,
                        params.stop
                        if row.finish_reason == "stop" and isinstance(row.stop_reason, str)
                        else (),
                        params.include_stop_str_in_output,
                        params.skip_special_tokens,
                    ),
                    finish_reason=row.finish_reason or "length",
                    stop_reason=row.stop_reason,
                    model_logprobs=row.model_logprobs,
                    routed_experts=torch.cat(row.routes).numpy() if row.routes else None,
                )
                for row in rows
                if row.prompt == p
            ]
            result = GenerationResult(
                request_id=item.request.request_id,
                samples=samples,
                prompt_token_ids=list(item.encoded.input_ids),
                weight_version=self.weight_version,
            )
            out.append((item, result))
        return out

    def _stop_ids(self, request: GenerationRequest) -> frozenset[int]:
        ids = set(request.sampling.stop_token_ids)
        if not request.sampling.ignore_eos:
            ids |= self.eos_ids
        return frozenset(ids)

    def _error(self, request: Any, exc: BaseException) -> GenerationResult:
        request_id = getattr(request, "request_id", "")
        return GenerationResult(
            request_id=str(request_id),
            error=f"{type(exc).__name__}: {exc}",
            weight_version=self.weight_version,
        )

    # ---- weights ------------------------------------------------------------------------------

    def update_weights(
        self, state: Mapping[str, torch.Tensor], layout: Layout = "native", version: int | None = None
    ) -> dict[str, Any]:
        """All or some weights at once (a sync of one bucket)."""
        self.begin_sync()
        count = self.load_bucket(list(state.items()), layout)
        info = self.finish_sync(version)
        return {**info, "updated": count}

    def _copy_in(self, state: dict[str, torch.Tensor], layout: Layout) -> set[str]:
        if layout not in ("native", "original"):
            raise ValueError(f"layout must be 'native' or 'original', got {layout!r}")
        if layout == "original":
            state = to_native(self.model, dict(state), strict=True)
        targets = self.model.state_dict()  # shares storage with the parameters and buffers
        unknown = sorted(set(state) - set(targets))
        if unknown:
            raise KeyError(f"update_weights: {len(unknown)} unknown weight name(s) ({layout}): {unknown[:5]}")
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(targets[name].shape):
                raise ValueError(
                    f"update_weights: {name} has shape {tuple(tensor.shape)}, "
                    f"the model's is {tuple(targets[name].shape)}"
                )
        with torch.no_grad():
            for name, tensor in state.items():
                targets[name].copy_(tensor)
        return set(state)

    def begin_sync(self) -> None:
        if self.asleep_level:
            raise RuntimeError("weight sync: the torch backend is asleep; call wake_up() first")
        self._sync_loaded = set()

    def load_bucket(self, weights: Sequence[tuple[str, torch.Tensor]], layout: Layout = "native") -> int:
        """Copy one bucket in place (a bucket holds whole conversion units, so the original layout
        maps back on its own: experts fused, q/k/v split)."""
        self._sync_loaded |= self._copy_in(dict(weights), layout)
        return len(weights)

    def finish_sync(self, version: int | None = None) -> dict[str, Any]:
        if self._missing:
            missing = sorted(self._missing - self._sync_loaded)
            if missing:
                raise RuntimeError(
                    f"weight sync after sleep(level=2): {len(missing)} weight(s) were not sent: {missing[:5]}"
                )
            self._missing = set()
        self.weight_version = self.weight_version + 1 if version is None else int(version)
        return {"updated": len(self._sync_loaded), "version": self.weight_version}

    # ---- colocated sleep ------------------------------------------------------------------------

    def sleep(self, level: int = 1) -> None:
        """Level 1: parameters to host memory (on a CPU device they already are: nothing moves).
        Level 2: parameters discarded (their storage freed); ``wake_up`` reallocates them and the next
        complete sync restores them; until then ``generate`` refuses to run."""
        if level not in (1, 2):
            raise ValueError(f"sleep: level must be 1 or 2, got {level}")
        if self.asleep_level:
            return
        params = dict(self.model.named_parameters(remove_duplicate=False))
        self._param_specs = {n: (p.shape, p.dtype, p.device) for n, p in params.items()}
        with torch.no_grad():
            for p in {id(p): p for p in params.values()}.values():
                if level == 2:
                    p.data = torch.empty(0, dtype=p.dtype, device=p.device)
                elif p.device.type != "cpu":
                    p.data = p.data.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.asleep_level = level

    def wake_up(self) -> None:
        level, self.asleep_level = self.asleep_level, 0
        if not level:
            return
        params = dict(self.model.named_parameters(remove_duplicate=False))
        with torch.no_grad():
            for name, p in params.items():
                shape, dtype, device = self._param_specs[name]
                if level == 2 and p.numel() == 0 and math.prod(shape) > 0:
                    p.data = torch.empty(shape, dtype=dtype, device=device)
                elif p.device != device:
                    p.data = p.data.to(device)
        if level == 2:  # the values are gone: the next sync must bring every parameter back
            self._missing = set(params)

    def _check_awake(self) -> None:
        if self.asleep_level:
            raise RuntimeError("generate: the torch backend is asleep; call wake_up() first")
        if self._missing:
            raise RuntimeError(
                f"generate: {len(self._missing)} weight(s) were discarded by sleep(level=2) and not synced since"
            )

    def info(self) -> dict[str, Any]:
        param = next(self.model.parameters())
        return {
            "backend": "torch",
            "model": self.name,
            "device": str(param.device),
            "dtype": str(param.dtype).removeprefix("torch."),
            "max_model_len": self.max_model_len,
            "weight_version": self.weight_version,
            "num_threads": torch.get_num_threads(),
            "banned_token_ids": list(self.banned),
            "options": asdict(self.options),
        }
