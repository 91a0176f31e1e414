"""The vLLM backend on CPU (bfloat16, what vLLM's CPU build runs image and audio encoders in): image
and audio rollouts from MediaStore references, the prompt tokens vLLM builds vs the trainer's
processor, sampling options, the context limit, and a weight sync checked against a fresh engine."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from omni_rl.data.schema import MediaPart
from omni_rl.generation.base import GenerationRequest, SamplingParams
from omni_rl.models.checkpoint import save_checkpoint
from omni_rl.models.tokenizer import media_token_ids
from tests.media_fixtures import write_mp4
from tests.vllm_cpu.support import (
    audio_item,
    image_item,
    reference_logprobs,
    requires_vllm,
    start_engine,
    stop_engine,
    stream_weights,
    tiny_checkpoint,
    trained_copy,
    user,
)

pytestmark = [requires_vllm, pytest.mark.slow]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("vllm") / "tiny")


@pytest.fixture(scope="module")
def media(tiny, ray_session, tmp_path_factory):
    """MediaRefs in a Ray MediaStore (decoded once) and the decoded items the engine will see."""
    import soundfile as sf

    from omni_rl.media import MediaParams, MediaStore
    from omni_rl.media.params import VideoParams

    folder = tmp_path_factory.mktemp("media")
    Image.fromarray(image_item().pixels).save(folder / "img.png")
    sf.write(folder / "sweep.wav", audio_item().samples, 16000)
    video = VideoParams(fps=5.0, num_frames=4, target_patches=16)  # the tiny encoder's patch budget
    store = MediaStore(budget_bytes=1 << 26, backend="ray", params=MediaParams(video=video), name="vllm-test")
    refs = {
        "image": store.put(MediaPart("image", str(folder / "img.png")), count=2),
        "audio": store.put(MediaPart("audio", str(folder / "sweep.wav")), count=2),
        "video": store.put(
            MediaPart("video", str(write_mp4(folder / "clip.mp4", 1.2, size=(64, 64)))), count=2
        ),
    }
    yield store, refs
    store.shutdown()


@pytest.fixture(scope="module")
def engine(tiny, media):
    handle = start_engine(tiny[0], media_store=media[0], dtype="bfloat16")
    yield handle
    stop_engine(handle)


def test_image_and_audio_rollouts_from_media_store_refs(tiny, media, engine):
    _, model, processor = tiny
    store, refs = media
    banned = set(media_token_ids(processor.tokenizer))
    params = SamplingParams(n=4, max_tokens=10, seed=3)
    requests = [
        GenerationRequest("img", user("image"), [refs["image"]], params),
        GenerationRequest("aud", user("audio"), [refs["audio"]], params),
    ]
    results = ray.get(engine.generate.remote(requests))
    assert [r.request_id for r in results] == ["img", "aud"] and all(r.ok for r in results)
    diffs = {}
    for result, modality in zip(results, ("image", "audio"), strict=True):
        assert len(result.samples) == 4
        assert len({tuple(s.token_ids) for s in result.samples}) > 1  # n samples, not one repeated
        decoded = store.get(refs[modality])
        for sample in result.samples:
            assert len(sample.token_ids) == len(sample.logprobs) > 0
            assert not banned.intersection(sample.token_ids)
            assert all(lp <= 0 for lp in sample.logprobs) and sample.model_logprobs is None
            # the prompt vLLM built (media placeholders expanded) is the one the trainer builds
            prompt_ids, ref = reference_logprobs(
                model, processor, user(modality), [decoded], sample.token_ids, sorted(banned)
            )
            assert result.prompt_token_ids == prompt_ids
            diffs[modality] = max(
                diffs.get(modality, 0.0), float(np.abs(np.array(sample.logprobs) - ref).max())
            )
    print(f"bf16 vLLM vs float32 trainer, max |logprob diff|: {diffs}")
    assert max(diffs.values()) < 0.05  # bf16 noise; a wrong weight or prompt gives O(1)


def test_sampling_options_are_honoured(tiny, engine):
    text = user(None)
    greedy = SamplingParams(n=3, max_tokens=6, temperature=0.0)
    seeded = SamplingParams(n=2, max_tokens=6, seed=11)
    results = ray.get(
        engine.generate.remote(
            [
                GenerationRequest("greedy", text, (), greedy),
                GenerationRequest("top1", text, (), SamplingParams(n=2, max_tokens=6, top_k=1, seed=5)),
                GenerationRequest("seed-a", text, (), seeded),
                GenerationRequest("seed-b", text, (), seeded),
                GenerationRequest("seed-c", text, (), SamplingParams(n=2, max_tokens=6, seed=12)),
                GenerationRequest("len", text, (), SamplingParams(max_tokens=3, ignore_eos=True, seed=1)),
            ]
        )
    )
    by_id = {r.request_id: r for r in results}
    g = by_id["greedy"].samples
    assert len(g) == 3 and len({tuple(s.token_ids) for s in g}) == 1
    assert all(lp == 0.0 for s in g for lp in s.logprobs)
    # top-k 1 samples the argmax: the greedy tokens, with log-prob 0 under the truncated distribution
    assert [s.token_ids for s in by_id["top1"].samples] == [g[0].token_ids] * 2
    assert np.allclose([lp for s in by_id["top1"].samples for lp in s.logprobs], 0.0, atol=1e-6)
    tokens = {k: [s.token_ids for s in by_id[k].samples] for k in ("seed-a", "seed-b", "seed-c")}
    assert tokens["seed-a"] == tokens["seed-b"] != tokens["seed-c"]
    (short,) = by_id["len"].samples
    assert len(short.token_ids) == 3 and short.finish_reason == "length"

    # a stop string: the text is cut before it, the tokens keep the one that completed it
    free = by_id["seed-c"].samples[0]
    stop = free.text[2:4]
    assert stop
    (res,) = ray.get(
        engine.generate.remote(
            [GenerationRequest("stop", text, (), SamplingParams(max_tokens=6, seed=12, stop=(stop,)))]
        )
    )
    (sample,) = res.samples
    assert sample.finish_reason == "stop" and sample.stop_reason == stop
    assert sample.text == free.text[: free.text.index(stop)]
    assert sample.token_ids == free.token_ids[: len(sample.token_ids)]


def test_prompt_over_the_context_limit_is_an_error_result(engine):
    params = SamplingParams(max_tokens=4, seed=0)
    long = user(None, "two plus two is four. " * 400)
    results = ray.get(
        engine.generate.remote(
            [
                GenerationRequest("ok1", user(None), (), params),
                GenerationRequest("long", long, (), params),
                GenerationRequest("ok2", user(None), (), params),
            ]
        )
    )
    assert [r.request_id for r in results] == ["ok1", "long", "ok2"]
    assert results[0].ok and results[2].ok and results[1].samples == []
    assert "maximum context length" in results[1].error or "maximum model length" in results[1].error


def test_weight_sync_matches_a_fresh_engine_on_the_same_weights(tiny, media, engine, tmp_path):
    """After the loop's in-place sync (buckets small enough that layers span several), image, audio,
    video and text log-probs equal those of an engine started from a checkpoint of the synced weights
    (so no weight is missed: mlp1, RADIO layer scales, mamba conv views), and they follow the trainer's
    new weights. The engine has served the same image, audio and video before the sync: its
    encoder/multimodal caches (keyed by media hash) must not serve features of the old weights: with the
    resets in ``vllm_worker_ext.finish_streaming`` / ``VllmBackend._after_update`` removed, the image's
    log-probs stayed 0.18 from the trainer's new weights (4.8e-3 with them) and this test failed."""
    _, model, processor = tiny
    store, refs = media
    params = SamplingParams(n=2, max_tokens=8, seed=21)
    cases = [
        (GenerationRequest(kind[:3], user(kind), [refs[kind]], params), [store.get(refs[kind])])
        for kind in ("image", "audio", "video")
    ] + [(GenerationRequest("txt", user(None), (), params), [])]
    requests = [request for request, _ in cases]
    before = ray.get(engine.generate.remote(requests))  # fills the engine's caches on the old weights
    assert all(r.ok for r in before), [r.error for r in before]

    trained = trained_copy(model, processor)
    info = stream_weights(engine, trained, bucket_mb=0.02, version=1)
    assert info["version"] == 1 and info["updated"] > 90
    print(f"weight sync (bf16 engine, {info['updated']} tensors in buckets): {info['sync_ms']:.1f} ms")
    synced = ray.get(engine.generate.remote(requests))
    assert all(r.ok and r.weight_version == 1 for r in synced)
    banned = sorted(set(media_token_ids(processor.tokenizer)))
    for result, (request, items) in zip(synced, cases, strict=True):
        tokens, logprobs = result.samples[0].token_ids, np.array(result.samples[0].logprobs)
        new_diff = np.abs(
            logprobs - reference_logprobs(trained, processor, request.messages, items, tokens, banned)[1]
        )
        old_diff = np.abs(
            logprobs - reference_logprobs(model, processor, request.messages, items, tokens, banned)[1]
        )
        print(
            f"{request.request_id}: |vLLM - trainer(new)| {new_diff.max():.2e}, |vLLM - trainer(old)| {old_diff.max():.2e}"
        )
        assert new_diff.max() < 0.1 < old_diff.max()

    fresh_dir = save_checkpoint(trained, processor, tmp_path / "trained", layout="original")
    stop_engine(engine)  # one engine at a time on small machines
    fresh = start_engine(fresh_dir, media_store=store, dtype="bfloat16")
    try:
        again = ray.get(fresh.generate.remote(requests))
    finally:
        stop_engine(fresh)
    for a, b in zip(synced, again, strict=True):
        assert [s.token_ids for s in a.samples] == [s.token_ids for s in b.samples], a.request_id
        pairs = zip(a.samples, b.samples, strict=True)
        diff = max(np.abs(np.array(x.logprobs) - np.array(y.logprobs)).max() for x, y in pairs)
        print(f"{a.request_id}: |synced - fresh engine| {diff:.2e}")
        assert diff < 1e-5, a.request_id
