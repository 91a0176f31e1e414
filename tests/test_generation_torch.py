"""The torch generation backend on a tiny random Nemotron Omni: sampling log-probs against teacher
forcing, temperature/top-k/top-p, left padding, seeds, stop strings, EOS, the media-token ban,
prefill reuse, weight updates and per-request errors."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
from PIL import Image

from omni_rl.data.schema import MediaPart
from omni_rl.generation import GenerationRequest, SamplingParams
from omni_rl.generation import torch_backend as torch_backend_module
from omni_rl.generation.prompts import to_sample
from omni_rl.generation.torch_backend import TorchBackend
from omni_rl.media import MediaStore
from omni_rl.media.types import DecodedAudio, DecodedImage, DecodedVideo
from omni_rl.models.batching import collate, encode_sample, group_for_batching
from omni_rl.models.layout import export_state_dict
from omni_rl.models.loading import freeze_norm_statistics
from omni_rl.models.logprobs import completion_scores
from omni_rl.models.tiny import build_tiny_model
from omni_rl.models.tokenizer import media_token_ids

RNG = np.random.default_rng(0)
IMAGE = DecodedImage(RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8), (64, 48))
IMAGE_B = DecodedImage(RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8), (64, 64))
AUDIO = DecodedAudio(np.sin(np.arange(12_000) / 5).astype(np.float32), 16_000, 16_000)
VIDEO = DecodedVideo(
    RNG.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8), np.arange(4) / 2, np.arange(4), 2.0, 2.0, 2.0
)


def user(*kinds, text="Answer."):
    return [{"role": "user", "content": [*({"type": k} for k in kinds), {"type": "text", "text": text}]}]


def request(rid, kinds=(), media=(), text="Answer.", **sampling):
    sampling.setdefault("seed", 0)
    return GenerationRequest(rid, user(*kinds, text=text), list(media), SamplingParams(**sampling))


MIXED = [
    ("text", (), ()),
    ("image", ("image",), (IMAGE,)),
    ("audio", ("audio",), (AUDIO,)),
    ("image+audio", ("image", "audio", "image"), (IMAGE_B, AUDIO, IMAGE)),
    ("video", ("video",), (VIDEO,)),
]


@pytest.fixture(scope="module")
def tiny():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead (and a backend below sets 1)
    model, processor = build_tiny_model(seed=2)
    freeze_norm_statistics(model)
    yield model.eval(), processor
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend(tiny):
    return TorchBackend(*tiny)


@contextlib.contextmanager
def logit_bias(model, token_ids, value):
    """Add ``value`` to the logits of ``token_ids`` (a hook on the LM head)."""
    bias = torch.zeros(model.config.text_config.vocab_size)
    bias[list(token_ids)] = value
    handle = model.language_model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    try:
        yield
    finally:
        handle.remove()


def teacher_forced(model, processor, req, token_lists, temperature=1.0):
    """Per-token (model log-prob at temperature, full logits / temperature) of each completion."""
    sample = to_sample(req, None, processor.audio_sampling_rate)
    encoded = [encode_sample(processor, _with(sample, ids)) for ids in token_lists]
    assert len(group_for_batching(encoded)) == 1
    batch = collate(encoded, processor.tokenizer.pad_token_id)
    with torch.inference_mode():
        scores = completion_scores(model, batch, temperature=temperature, with_entropy=False)
        logits = model(**batch.model_inputs()).logits.float() / temperature
    out = []
    for row, lp in enumerate(batch.completions(scores.logprobs)):
        positions = batch.completion_mask[row].nonzero().squeeze(-1)
        out.append((lp, logits[row, positions - 1]))
    return out


def _with(sample, completion_ids):
    clone = copy.copy(sample)
    clone.completion_ids = completion_ids
    return clone


def test_logprobs_equal_teacher_forced_at_temperature_one(tiny, backend):
    model, processor = tiny
    reqs = [request(name, kinds, media, n=3, max_tokens=8) for name, kinds, media in MIXED]
    results = backend.generate(reqs)
    banned = torch.tensor(backend.banned)
    worst_model, worst_sampling = 0.0, 0.0
    for req, result in zip(reqs, results, strict=True):
        assert result.ok, result.error
        assert len(result.samples) == 3
        reference = teacher_forced(model, processor, req, [s.token_ids for s in result.samples])
        for sample, (lp, logits) in zip(result.samples, reference, strict=True):
            worst_model = max(worst_model, (torch.tensor(sample.model_logprobs) - lp).abs().max().item())
            # the sampling distribution excludes the media tokens: log p - log(1 - banned mass)
            renorm = torch.log_softmax(logits.index_fill(-1, banned, float("-inf")), -1)
            expected = renorm.gather(-1, torch.tensor(sample.token_ids)[:, None]).squeeze(-1)
            worst_sampling = max(
                worst_sampling, (torch.tensor(sample.logprobs) - expected).abs().max().item()
            )
    print(
        f"max |model_logprobs - completion_scores| = {worst_model:.2e}; sampling logprobs {worst_sampling:.2e}"
    )
    assert worst_model < 1e-4
    assert worst_sampling < 1e-4


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(0.7, 0, 1.0), (1.3, 4, 1.0), (0.8, 0, 0.6), (1.0, 6, 0.8)]
)
def test_temperature_top_k_top_p_logprobs(tiny, backend, temperature, top_k, top_p):
    model, processor = tiny
    req = request(
        "r", ("image",), (IMAGE,), n=2, max_tokens=6, temperature=temperature, top_k=top_k, top_p=top_p
    )
    (result,) = backend.generate([req])
    banned = torch.tensor(backend.banned)
    reference = teacher_forced(model, processor, req, [s.token_ids for s in result.samples], temperature)
    for sample, (lp, logits) in zip(result.samples, reference, strict=True):
        # model_logprobs: log_softmax(logits / T), what the trainer recomputes at the same temperature
        assert torch.allclose(torch.tensor(sample.model_logprobs), lp, atol=1e-4)
        masked = logits.index_fill(-1, banned, float("-inf"))
        if top_k:
            masked = masked.masked_fill(masked < masked.topk(top_k, -1).values[:, -1:], float("-inf"))
        if top_p < 1:
            probs = torch.softmax(masked, -1)
            ordered = probs.sort(-1, descending=True).values
            before = ordered.cumsum(-1) - ordered
            threshold = ordered.masked_fill(before >= top_p, 2.0).min(-1, keepdim=True).values
            masked = masked.masked_fill(probs < threshold, float("-inf"))
        expected = (
            torch.log_softmax(masked, -1).gather(-1, torch.tensor(sample.token_ids)[:, None]).squeeze(-1)
        )
        assert torch.isfinite(expected).all()  # every sampled token was inside the truncated support
        assert torch.allclose(torch.tensor(sample.logprobs), expected, atol=1e-4)


def test_greedy_takes_the_argmax(tiny, backend):
    model, processor = tiny
    req = request("g", ("audio",), (AUDIO,), n=2, max_tokens=5, temperature=0)
    (result,) = backend.generate([req])
    a, b = result.samples
    assert a.token_ids == b.token_ids and a.logprobs == [0.0] * len(a.token_ids)
    ((_, logits),) = teacher_forced(model, processor, req, [a.token_ids])
    allowed = logits.index_fill(-1, torch.tensor(backend.banned), float("-inf"))
    assert allowed.argmax(-1).tolist() == a.token_ids


def test_batched_generation_equals_one_by_one(backend):
    """Left padding is exact: prompts of different lengths give the same samples together or alone."""
    reqs = [
        request("short", text="Hi", n=2, max_tokens=6, seed=1),
        request(
            "long", text="Think step by step, then give the final answer. " * 3, n=2, max_tokens=6, seed=2
        ),
        request("image", ("image",), (IMAGE,), n=2, max_tokens=6, seed=3),
        request(
            "audio", ("audio",), (AUDIO,), text="Describe it in detail please.", n=1, max_tokens=6, seed=4
        ),
    ]
    together = backend.generate(reqs)
    for req, batched in zip(reqs, together, strict=True):
        (alone,) = backend.generate([req])
        assert len({len(r) for r in (batched.prompt_token_ids, alone.prompt_token_ids)}) == 1
        for x, y in zip(batched.samples, alone.samples, strict=True):
            assert x.token_ids == y.token_ids
            assert np.allclose(x.logprobs, y.logprobs, atol=1e-5)


def test_mamba_projection_bias_batches_equal_lengths_only():
    """With a bias in the mamba input projection left padding is not exact: the backend notices and
    batches only prompts of equal length, so batched still equals one by one."""
    model, processor = build_tiny_model(seed=4, extra={"use_bias": True})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("in_proj.bias"):
                param.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    reqs = [request("short", text="Hi", n=2, max_tokens=5), request("long", text="Answer the question. " * 4)]

    def short_alone_vs_batched(backend):
        batched = backend.generate(reqs)[0]
        alone = backend.generate(reqs[:1])[0]
        return max(
            abs(a - b)
            for x, y in zip(batched.samples, alone.samples, strict=True)
            for a, b in zip(x.model_logprobs, y.model_logprobs, strict=False)
        )

    backend = TorchBackend(model.eval(), processor)
    assert not backend.exact_left_padding
    assert short_alone_vs_batched(backend) < 1e-5
    backend.exact_left_padding = True  # force mixed lengths: the padded prompt drifts
    assert short_alone_vs_batched(backend) > 1e-3


def test_seeds_reproduce_and_samples_differ(backend):
    req = request("s", ("image",), (IMAGE,), n=4, max_tokens=8, seed=123)
    first, second = backend.generate([req])[0], backend.generate([req])[0]
    assert [s.token_ids for s in first.samples] == [s.token_ids for s in second.samples]
    assert len({tuple(s.token_ids) for s in first.samples}) == 4
    other = backend.generate([request("s", ("image",), (IMAGE,), n=4, max_tokens=8, seed=124)])[0]
    assert [s.token_ids for s in other.samples] != [s.token_ids for s in first.samples]
    unseeded = request("u", n=2, max_tokens=8, seed=None)
    a, b = backend.generate([unseeded])[0], backend.generate([unseeded])[0]
    assert [s.token_ids for s in a.samples] != [s.token_ids for s in b.samples]


def _ascii_stop(text: str, length: int = 5) -> str | None:
    """A printable ASCII substring of ``text`` (after its first 3 characters): several tokens long."""
    for i in range(3, len(text) - length + 1):
        piece = text[i : i + length]
        if piece.isascii() and piece.isprintable():
            return piece
    return None


@pytest.mark.parametrize("include", [False, True])
def test_stop_strings_cut_text_and_tokens_consistently(tiny, backend, include):
    tokenizer = tiny[1].tokenizer
    base = backend.generate([request("x", n=4, max_tokens=16, seed=7, ignore_eos=True)])[0]
    checked = 0
    for j, full in enumerate(base.samples):
        stop = _ascii_stop(full.text)
        if stop is None:
            continue
        req = request(
            "x", n=4, max_tokens=16, seed=7, ignore_eos=True, stop=[stop], include_stop_str_in_output=include
        )
        cut = backend.generate([req])[0].samples[j]
        cut_at = full.text.index(stop)
        assert cut.finish_reason == "stop" and cut.stop_reason == stop
        assert cut.text == full.text[: cut_at + (len(stop) if include else 0)]
        # tokens: everything sampled up to the token that completed the stop string, no more
        assert cut.token_ids == full.token_ids[: len(cut.token_ids)]
        assert cut.logprobs == pytest.approx(full.logprobs[: len(cut.token_ids)], abs=1e-6)
        assert len(cut.token_ids) > 1
        decoded = tokenizer.decode(cut.token_ids, skip_special_tokens=True)
        assert decoded.startswith(full.text[:cut_at] + stop)
        assert stop not in tokenizer.decode(cut.token_ids[:-1], skip_special_tokens=True)
        checked += 1
    assert checked >= 2


def test_eos_ends_a_sample_and_max_tokens_gives_length(tiny, backend):
    model, processor = tiny
    eos = processor.tokenizer.eos_token_id
    with logit_bias(model, [eos], 30.0):
        (ended,) = backend.generate([request("e", n=2, max_tokens=5)])
        (ignored,) = backend.generate([request("e", n=1, max_tokens=5, ignore_eos=True)])
    for sample in ended.samples:
        assert sample.token_ids == [eos] and sample.finish_reason == "stop" and sample.stop_reason == eos
        assert sample.text == "" and len(sample.logprobs) == 1
    assert ignored.samples[0].finish_reason == "length" and len(ignored.samples[0].token_ids) == 5
    (long,) = backend.generate([request("l", n=2, max_tokens=7, ignore_eos=True)])
    assert [(s.finish_reason, len(s.token_ids), s.stop_reason) for s in long.samples] == [
        ("length", 7, None)
    ] * 2
    # stop_token_ids end a sample like EOS
    first = long.samples[0].token_ids[2]
    (stopped,) = backend.generate([request("l", n=2, max_tokens=7, ignore_eos=True, stop_token_ids=[first])])
    assert stopped.samples[0].token_ids == long.samples[0].token_ids[:3]
    assert stopped.samples[0].stop_reason == first


def test_media_placeholder_tokens_are_never_sampled(tiny, backend):
    model, processor = tiny
    media = media_token_ids(processor.tokenizer)
    with logit_bias(model, media, 12.0):
        (banned,) = backend.generate(
            [request("m", ("image",), (IMAGE,), n=4, max_tokens=12, ignore_eos=True)]
        )
        unbanned = TorchBackend(model, processor, ban_media_tokens=False)
        (free,) = unbanned.generate([request("m", ("image",), (IMAGE,), n=4, max_tokens=12, ignore_eos=True)])
    assert not {t for s in banned.samples for t in s.token_ids} & set(media)
    # the bias works: without the ban almost every token is a placeholder
    free_tokens = [t for s in free.samples for t in s.token_ids]
    assert sum(t in media for t in free_tokens) > 0.9 * len(free_tokens)
    # and the model's own probability of what was sampled under the ban is tiny
    assert max(lp for s in banned.samples for lp in s.model_logprobs) < -5


def test_prefill_and_encoders_run_once_per_prompt(tiny, backend, monkeypatch):
    model, _ = tiny
    counts = {"image": 0, "prefill_tokens": 0}
    original = type(model).get_image_features

    def counting(self, *args, **kwargs):
        counts["image"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "get_image_features", counting)

    def count_tokens(_module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is not None:  # the multimodal forward (prefill) passes embeddings
            counts["prefill_tokens"] += embeds.shape[0] * embeds.shape[1]

    handle = model.language_model.register_forward_pre_hook(count_tokens, with_kwargs=True)
    try:
        (result,) = backend.generate([request("p", ("image",), (IMAGE,), n=8, max_tokens=3)])
    finally:
        handle.remove()
    assert len(result.samples) == 8
    assert counts == {"image": 1, "prefill_tokens": len(result.prompt_token_ids)}


def test_update_weights_matches_a_fresh_backend(tiny):
    model, processor = tiny
    own = copy.deepcopy(model)
    backend = TorchBackend(own, processor)
    reqs = [request("w", ("image",), (IMAGE,), n=3, max_tokens=6), request("t", n=2, max_tokens=6)]
    before = backend.generate(reqs)
    modified = copy.deepcopy(model)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(5)
        for name, param in modified.named_parameters():
            if name.startswith("language_model") or name.startswith("multi_modal_projector"):
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    info = backend.update_weights(modified.state_dict())
    assert info["version"] == 1 and info["updated"] == len(modified.state_dict())
    after = backend.generate(reqs)
    fresh = TorchBackend(modified, processor).generate(reqs)
    tokens = [[s.token_ids for s in r.samples] for r in (*after,)]
    assert tokens == [[s.token_ids for s in r.samples] for r in fresh]
    assert tokens != [[s.token_ids for s in r.samples] for r in before]
    for x, y in zip(after, fresh, strict=True):
        assert x.weight_version == 1
        for a, b in zip(x.samples, y.samples, strict=True):
            assert np.allclose(a.logprobs, b.logprobs, atol=1e-6)
    # back to the original weights in NVIDIA's layout (what the vLLM backend also takes); partial is fine
    original = export_state_dict(model, "original")
    assert backend.update_weights(original, layout="original", version=7)["version"] == 7
    again = backend.generate(reqs)
    assert [[s.token_ids for s in r.samples] for r in again] == [
        [s.token_ids for s in r.samples] for r in before
    ]
    head = {"language_model.lm_head.weight": modified.language_model.lm_head.weight}
    assert backend.update_weights(head)["updated"] == 1
    with pytest.raises(KeyError, match="unknown weight name"):
        backend.update_weights({"nope.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"lm_head\.weight has shape"):
        backend.update_weights({"language_model.lm_head.weight": torch.zeros(2, 2)})


def test_failing_requests_return_errors_and_spare_the_others(tiny, monkeypatch):
    model, processor = tiny
    backend = TorchBackend(model, processor, max_model_len=40)
    reqs = [
        request("ok", text="Hi", n=2, max_tokens=50, ignore_eos=True),
        request("too-long", text="Think step by step, then give the final answer. " * 4, n=2),
        request("bad-media", ("image",), (AUDIO,)),
        request("missing-media", ("audio",), ()),
    ]
    results = backend.generate(reqs)
    assert [r.request_id for r in results] == ["ok", "too-long", "bad-media", "missing-media"]
    ok, too_long, bad, missing = results
    assert ok.ok and len(ok.samples) == 2
    # capped by the context: prompt + completion = max_model_len, finish_reason "length"
    assert [(len(ok.prompt_token_ids) + len(s.token_ids), s.finish_reason) for s in ok.samples] == [
        (40, "length")
    ] * 2
    assert "max_model_len is 40" in too_long.error and too_long.samples == []
    assert "media[0]" in bad.error and "media: messages have 1" in missing.error

    # a forward that fails in a batch is retried prompt by prompt; only the culprit gets an error
    real_decode = torch_backend_module.decode
    poison = processor.tokenizer.convert_tokens_to_ids("<so_start>")

    def flaky(model_, encoded, rows, pad_id, banned):
        if any(poison in e.input_ids for e in encoded):
            raise RuntimeError("boom")
        return real_decode(model_, encoded, rows, pad_id, banned)

    monkeypatch.setattr(torch_backend_module, "decode", flaky)
    results = TorchBackend(model, processor).generate(
        [
            request("a", n=1, max_tokens=3),
            request("b", ("audio",), (AUDIO,), max_tokens=3),
            request("c", max_tokens=3),
        ]
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == "RuntimeError: boom"


def test_media_refs_resolve_through_a_media_store(tiny, tmp_path):
    model, processor = tiny
    path = tmp_path / "img.png"
    Image.fromarray(IMAGE_B.pixels).save(path)
    store = MediaStore(budget_bytes=1 << 24)
    ref = store.put(MediaPart("image", str(path)), count=2)
    backend = TorchBackend(model, processor, media_resolver=store)
    by_ref, direct = backend.generate(
        [
            request("ref", ("image",), (ref,), n=2, max_tokens=5),
            request("ref", ("image",), (store.get(ref),), n=2, max_tokens=5),
        ]
    )
    assert by_ref.ok and [s.token_ids for s in by_ref.samples] == [s.token_ids for s in direct.samples]
    assert store.stats()["image"]["decodes"] == 1


def test_model_mode_is_restored_and_info(tiny):
    model, processor = tiny
    backend = TorchBackend(model, processor, max_num_seqs=2, num_threads=1)
    assert backend.exact_left_padding
    model.train()
    try:
        results = backend.generate([request(str(i), n=2, max_tokens=2) for i in range(3)])  # 3 chunks
        assert model.training and all(r.ok and len(r.samples) == 2 for r in results)
    finally:
        model.eval()
    info = backend.info()
    assert info["backend"] == "torch" and info["max_model_len"] == 4096 and info["num_threads"] == 1
    assert set(media_token_ids(processor.tokenizer)) <= set(info["banned_token_ids"])


def test_min_tokens_masks_eos_and_stop_ids_until_reached(tiny, backend):
    """With EOS made overwhelmingly likely, samples end at once; with ``min_tokens=4`` EOS (and a stop
    token id) cannot be sampled for the first 4 tokens, every sample has >= 4 tokens and then ends on EOS,
    and the reported log-probs are those of the masked distribution (as vLLM's ``min_tokens``)."""
    model, processor = tiny
    eos = processor.tokenizer.eos_token_id
    stop = 7
    with logit_bias(model, [eos], 30.0):
        (plain,) = backend.generate([request("a", n=4, max_tokens=8)])
        (held,) = backend.generate([request("b", n=4, max_tokens=8, min_tokens=4, stop_token_ids=[stop])])
    assert all(s.token_ids == [eos] for s in plain.samples)
    for s in held.samples:
        assert len(s.token_ids) == 5 and s.token_ids[-1] == eos and s.finish_reason == "stop", s.token_ids
        assert eos not in s.token_ids[:4] and stop not in s.token_ids[:4]
        assert s.logprobs[-1] > -1e-3  # after the minimum, EOS takes (nearly) all the mass again
    with pytest.raises(ValueError, match="min_tokens"):
        SamplingParams(min_tokens=-1)
