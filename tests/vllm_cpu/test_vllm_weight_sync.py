"""Weight sync into a float32 vLLM engine (text; vLLM's CPU build runs its encoders in bf16 only): after
the trainer's update, vLLM's log-probs of a fixed sequence and of its own samples match the trainer's
to < 1e-3, whichever layout the weights come in, and several syncs in a row keep matching."""

from __future__ import annotations

import numpy as np
import pytest

from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.generation.worker import put_weights
from omni_rl.models.batching import EncodedSample, MultimodalSample, collate, encode_sample
from omni_rl.models.layout import export_state_dict
from omni_rl.models.logprobs import completion_scores
from omni_rl.models.tokenizer import media_token_ids
from tests.vllm_cpu.support import (
    model_buckets,
    reference_logprobs,
    requires_vllm,
    start_engine,
    stop_engine,
    tiny_checkpoint,
    trained_copy,
    user,
)

pytestmark = [requires_vllm, pytest.mark.slow]
ray = pytest.importorskip("ray")
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("vllm32") / "tiny")


@pytest.fixture(scope="module")
def engine(tiny, ray_session):
    handle = start_engine(tiny[0], dtype="float32")
    yield handle
    stop_engine(handle)


def fixed_sequence(processor) -> list[int]:
    sample = MultimodalSample(prompt=user(None, "What is said in the audio? Two plus two is four."))
    ids = encode_sample(processor, sample).input_ids
    return ids + processor.tokenizer.encode("The answer is B.", add_special_tokens=False)


def trainer_sequence_logprobs(model, processor, ids: list[int]) -> np.ndarray:
    """Teacher-forced log-probs of ids[1:] under the trainer (float32, full vocabulary)."""
    import torch

    batch = collate(
        [EncodedSample(input_ids=list(ids), prompt_length=1, media={})], processor.tokenizer.pad_token_id
    )
    with torch.no_grad():
        scores = completion_scores(model, batch, with_entropy=False)
    return batch.completions(scores.logprobs)[0].numpy()


def test_logprobs_match_the_trainer_after_each_sync(tiny, engine):
    _, model, processor = tiny
    ids = fixed_sequence(processor)
    banned = sorted(set(media_token_ids(processor.tokenizer)))
    (fresh,) = ray.get(engine.prompt_logprobs.remote([ids]))
    before = np.abs(np.array(fresh) - trainer_sequence_logprobs(model, processor, ids)).max()
    print(f"fresh engine, fixed sequence: max |vLLM - trainer| = {before:.2e}")
    assert before < TOLERANCE

    current = model
    for step, layout in enumerate(("original", "native", "original"), start=1):
        current = trained_copy(current, processor, steps=3, seed=step)
        state = export_state_dict(current, layout)
        info = ray.get(engine.update_weights.remote(put_weights(state), layout))
        assert info["version"] == step
        (synced,) = ray.get(engine.prompt_logprobs.remote([ids]))
        reference = trainer_sequence_logprobs(current, processor, ids)
        diff = np.abs(np.array(synced) - reference).max()
        stale = np.abs(np.array(fresh) - reference).max()

        request = GenerationRequest("s", user(None), (), SamplingParams(n=2, max_tokens=12, seed=step))
        (result,) = ray.get(engine.generate.remote([request]))
        sample_diff = max(
            np.abs(
                np.array(s.logprobs)
                - reference_logprobs(current, processor, user(None), [], s.token_ids, banned)[1]
            ).max()
            for s in result.samples
        )
        print(
            f"sync {step} ({layout}, {info['updated']} tensors, {info['sync_ms']:.1f} ms): fixed sequence "
            f"max |vLLM - trainer| = {diff:.2e} (before the sync {stale:.2e}); sampled tokens {sample_diff:.2e}"
        )
        assert diff < TOLERANCE < stale
        assert sample_diff < TOLERANCE and result.weight_version == step


@pytest.mark.parametrize("transport", ["ray", "broadcast"])
def test_bucketed_sync_loads_layers_split_across_buckets(tiny, engine, transport):
    """Small buckets (a layer's tensors arrive in several of them): vLLM's layer-wise reload stays
    open over the whole sync; afterwards the engine matches the trainer."""
    from omni_rl.generation.weight_transports import Transport, WeightGroup
    from omni_rl.training.distributed import free_port

    _, model, processor = tiny
    ids = fixed_sequence(processor)
    current = trained_copy(model, processor, steps=2, seed=11 if transport == "ray" else 12)
    group = None
    if transport == "broadcast":
        port = free_port("127.0.0.1")
        joined = engine.join_weight_group.remote("127.0.0.1", port, 1, 2, "gloo")
        group = WeightGroup("127.0.0.1", port, 0, 2, "gloo")
        ray.get(joined)
    sender = Transport(transport, group)
    ray.get(engine.begin_sync.remote())
    count = 0
    for bucket in model_buckets(current, bucket_mb=0.02):
        future = engine.receive_bucket.remote(transport, sender.payload(bucket), bucket.entries, "original")
        sender.after_submit(bucket)
        count += ray.get(future)
    info = ray.get(engine.finish_sync.remote(42))
    assert info["version"] == 42 and info["updated"] == count > 90
    (synced,) = ray.get(engine.prompt_logprobs.remote([ids]))
    diff = np.abs(np.array(synced) - trainer_sequence_logprobs(current, processor, ids)).max()
    print(f"bucketed sync ({transport}): max |vLLM - trainer| = {diff:.2e}")
    assert diff < TOLERANCE
