"""PolicyTrainer in one process: config, schedule, micro-batch invariance, GRPO/DPO gradients against
straightforward references, MoE auxiliary loss, masks, weight export, error messages.

``tiny`` and ``make_items`` are also used by the data-parallel and checkpoint tests (and their child
processes), so they are module-level and deterministic."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from omni_rl.config import ConfigError, load_config
from omni_rl.models import MultimodalSample, build_tiny_model, to_original
from omni_rl.training.items import PreferencePair, TrainItem
from omni_rl.training.optim import LRSchedule
from omni_rl.training.policy_loss import PolicyLossConfig
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import TrainerConfig


def user(*parts: str, text: str = "Answer.") -> list[dict]:
    return [{"role": "user", "content": [*({"type": t} for t in parts), {"type": "text", "text": text}]}]


def tiny(seed: int = 3):
    return build_tiny_model(seed=seed)


def make_items(processor, seed: int = 0, n: int = 6, video: bool = True) -> list[TrainItem]:
    """Mixed text / image / audio (/ video) items with varied completion lengths and advantages."""
    rng = np.random.default_rng(seed)
    tok = processor.tokenizer
    words = ["red", "blue", "four", "three beeps", "left", "the answer is B", "up and down", "seven"]
    items = []
    for i in range(n):
        kind = ["text", "image", "audio", "video"][i % (4 if video else 3)]
        text = words[int(rng.integers(len(words)))] + " " + words[i % len(words)]
        ids = [*tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        media: dict = {}
        if kind == "image":
            hw = (48, 64) if i % 2 else (64, 64)
            media["images"] = [Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8))]
        elif kind == "audio":
            media["audio"] = [(rng.standard_normal(8000 + 1000 * i) * 0.1).astype(np.float32)]
        elif kind == "video":
            media["videos"] = [rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)]
        parts = () if kind == "text" else ({"audio": "audio"}.get(kind, kind),)
        sample = MultimodalSample(user(*parts, text=f"Question {i}?"), ids, **media)
        items.append(TrainItem(sample, advantage=float(rng.normal())))
    return items


def trainer(cfg: TrainerConfig | None = None, seed: int = 3, **overrides) -> PolicyTrainer:
    cfg = replace(cfg or TrainerConfig(lr=1e-3, max_grad_norm=None), **overrides)
    return PolicyTrainer(cfg, model_and_processor=tiny(seed))


def grads(t: PolicyTrainer) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in t.model.named_parameters() if p.grad is not None}


def rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp(min=1.0)).item() for k in b)


@pytest.fixture(scope="module")
def processor():
    return tiny()[1]


@pytest.fixture(scope="module")
def items(processor):
    return make_items(processor)


def test_config_loads_with_overrides_and_names_bad_fields():
    cfg = load_config(TrainerConfig, None, ["lr=1e-4", "policy_loss.clip_high=0.28", "betas=[0.8,0.95]"])
    assert cfg.lr == 1e-4 and cfg.policy_loss.clip_high == 0.28 and tuple(cfg.betas) == (0.8, 0.95)
    assert isinstance(cfg.policy_loss, PolicyLossConfig)
    with pytest.raises(ConfigError, match="warmup_steps"):
        load_config(TrainerConfig, None, ["warmup_steps=-1"])
    with pytest.raises(ConfigError, match="total_steps"):
        load_config(TrainerConfig, None, ["schedule=cosine", "warmup_steps=5"])
    with pytest.raises(ConfigError, match="schedule"):
        load_config(TrainerConfig, None, ["schedule=exponential"])
    with pytest.raises(ValueError, match=r"model\.path"):
        PolicyTrainer(TrainerConfig())


def test_lr_schedule_shapes():
    warm = LRSchedule(warmup_steps=4)
    assert [warm(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = LRSchedule(warmup_steps=2, schedule="cosine", total_steps=12, min_lr_ratio=0.1)
    assert cos(1) == 1.0 and cos(2) == 1.0
    assert cos(7) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay
    assert cos(12) == pytest.approx(0.1) and cos(50) == pytest.approx(0.1)
    lin = LRSchedule(schedule="linear", total_steps=10)
    assert lin(5) == pytest.approx(0.5) and lin(10) == 0.0


def test_trainer_reports_scheduled_lr_and_steps(items):
    t = trainer(warmup_steps=2, schedule="linear", total_steps=4)
    lrs = [t.train_step(items[:2])["lr"] for _ in range(5)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4, 0.0]) and t.step == 5


def test_micro_batching_does_not_change_the_update(items):
    results = []
    for budget, rows in ((100_000, None), (60, None), (100_000, 1)):
        t = trainer(micro_batch_tokens=budget, micro_batch_size=rows)
        metrics = t.accumulate(items)
        results.append((metrics, grads(t)))
        t.apply_gradients()
        results[-1] += ({n: p.detach().clone() for n, p in t.model.named_parameters()},)
    (m_big, g_big, p_big), (m_small, g_small, _), (m_one, g_one, p_one) = results
    assert m_big["micro_batches"] == 2  # images/audio/text together, videos apart
    assert m_small["micro_batches"] > 2 and m_one["micro_batches"] == len(items)
    assert any(n.startswith("vision_model.") for n in g_big) and any(
        n.startswith("audio_tower.") for n in g_big
    )
    assert rel_diff(g_small, g_big) < 1e-5 and rel_diff(g_one, g_big) < 1e-5
    assert m_small["loss"] == pytest.approx(m_big["loss"], abs=1e-6)
    assert m_one["tokens"] == m_big["tokens"] == sum(len(i.sample.completion_ids) for i in items)
    # Adam divides by |g| + eps: where a gradient is near eps (1e-8) a 1e-9 difference in summation order
    # moves the update by ~lr * 2%, so the updates are compared where the gradient is well above eps
    # (the gradients themselves agree to 1e-5 above)
    steady = {n: g_big[n].abs() > 1e-6 for n in g_big}
    assert max((p_one[n] - p_big[n])[steady[n]].abs().max().item() for n in steady if steady[n].any()) < 1e-5


def test_gradient_checkpointing_gives_the_same_gradients(items):
    plain = trainer()
    m_plain = plain.accumulate(items[:4])
    model, processor = tiny()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.language_model.model.layers[0].gradient_checkpointing
    ckpt = PolicyTrainer(TrainerConfig(lr=1e-3, max_grad_norm=None), model_and_processor=(model, processor))
    m_ckpt = ckpt.accumulate(items[:4])
    assert rel_diff(grads(ckpt), grads(plain)) < 1e-5
    assert m_ckpt["moe/max_load"] == m_plain["moe/max_load"]  # routers counted once, not again in recompute


def naive_token_logprobs(model, processor, sample: MultimodalSample) -> torch.Tensor:
    """One unpadded sample through the full forward, log_softmax over the whole vocabulary."""
    text = processor.apply_chat_template(sample.prompt, tokenize=False, add_generation_prompt=True)
    media = {
        k: list(v)
        for k, v in (("images", sample.images), ("audio", sample.audio), ("videos", sample.videos))
        if v
    }
    inputs = processor(text=[text], return_tensors="pt", add_special_tokens=False, **media)
    n = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([list(sample.completion_ids)])], dim=1)
    inputs["input_ids"], inputs["attention_mask"] = ids, torch.ones_like(ids)
    logp = torch.log_softmax(model(**inputs).logits[0].float(), dim=-1)
    pos = torch.arange(n, ids.shape[1])
    return logp[pos - 1, ids[0, pos]]


def test_grpo_gradient_matches_naive_per_sample_reference(items):
    """On-policy (ratio 1, nothing clipped), token_mean: loss = -sum_i A_i sum_t logp_it / #tokens."""
    t = trainer()
    metrics = t.accumulate(items)
    got = grads(t)
    t.model.zero_grad(set_to_none=True)
    total = sum(len(i.sample.completion_ids) for i in items)
    for item in items:
        lp = naive_token_logprobs(t.model, t.processor, item.sample)
        (-(item.advantage * lp).sum() / total).backward()
    want = grads(t)
    assert rel_diff(got, want) < 1e-4
    assert metrics["policy/ratio_mean"] == pytest.approx(1.0) and metrics["entropy"] > 0


def test_masked_tokens_and_per_token_advantages(items):
    base = trainer()
    base.accumulate(items[:3])
    g_base = grads(base)
    # a fourth item whose tokens are all masked out adds nothing; per-token advantages equal to the
    # sequence advantage change nothing
    extra = replace(items[3], loss_mask=[0] * len(items[3].sample.completion_ids))
    per_tok = [replace(it, advantage=[it.advantage] * len(it.sample.completion_ids)) for it in items[:3]]
    t = trainer()
    t.accumulate([*per_tok, extra])
    got = grads(t)
    assert set(got) - set(g_base) == {"vision_model.embeddings.video_patch_projection.weight"}  # the video
    assert not got.pop("vision_model.embeddings.video_patch_projection.weight").any()
    assert rel_diff(got, g_base) < 1e-5


def test_dpo_step_starts_at_log2_and_improves(processor):
    tok = processor.tokenizer

    def ids(text: str) -> list[int]:
        return [*tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]

    img = Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8))
    pairs = [
        PreferencePair(
            MultimodalSample(user("image", text=f"Colour {i}?"), ids("red"), images=[img]),
            MultimodalSample(user("image", text=f"Colour {i}?"), ids("blue sky"), images=[img]),
        )
        for i in range(3)
    ] + [PreferencePair(MultimodalSample(user(), ids("four")), MultimodalSample(user(), ids("five")))]
    t = trainer(lr=3e-3)
    with pytest.raises(ValueError, match="ref_chosen_logp"):
        t.train_step(pairs, loss="dpo")
    pairs = t.reference_logps(pairs)
    first = t.train_step(pairs, loss="dpo")
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6) and first["pairs"] == 4
    later = [t.train_step(pairs, loss="dpo") for _ in range(4)][-1]
    assert later["loss"] < first["loss"] - 0.05 and later["rewards/margin"] > 0
    # micro-batching (one pair per micro-batch) gives the same gradient
    a, b = trainer(micro_batch_size=2), trainer(micro_batch_size=8)
    a.accumulate(pairs, loss="dpo")
    b.accumulate(pairs, loss="dpo")
    assert rel_diff(grads(a), grads(b)) < 1e-5


def test_moe_aux_loss_changes_router_gradients_and_load_metrics(items):
    plain, aux = (
        trainer(),
        trainer(moe_aux=replace(TrainerConfig().moe_aux, load_balance_coef=1.0, z_loss_coef=0.1)),
    )
    m_plain, m_aux = plain.accumulate(items[:4]), aux.accumulate(items[:4])
    g_plain, g_aux = grads(plain), grads(aux)
    routers = [n for n in g_plain if n.endswith("mixer.gate.weight")]
    assert len(routers) == 2
    assert all(not torch.allclose(g_aux[n], g_plain[n]) for n in routers)
    others = [n for n in g_plain if n.startswith("vision_model.")]
    assert (
        rel_diff({n: g_aux[n] for n in others}, {n: g_plain[n] for n in others}) > 0
    )  # flows through hidden
    assert "moe/load_balance_loss" in m_aux and "moe/load_balance_loss" not in m_plain
    assert 0 < m_aux["moe/load_balance_loss"] < 4 and m_aux["moe/z_loss"] > 0
    layer_keys = [k for k in m_plain if k.startswith("moe/language_model.") and k.endswith("/max_load")]
    assert len(layer_keys) == 2 and 1.0 <= m_plain["moe/max_load"] <= 4.0
    frozen = trainer(moe_aux=replace(TrainerConfig().moe_aux, freeze_routers=True))
    frozen.accumulate(items[:2])
    assert not any(n.endswith("mixer.gate.weight") for n in grads(frozen))


def test_state_dict_for_sync_layouts_are_copies(items):
    t = trainer()
    native = t.state_dict_for_sync("native")
    original = t.state_dict_for_sync("original")
    assert native.keys() == t.model.state_dict().keys()
    assert any(k.startswith("language_model.backbone.") for k in original)
    assert any(".experts.0.up_proj.weight" in k for k in original)
    want = to_original(t.model)
    assert original.keys() == want.keys() and all(torch.equal(original[k], want[k]) for k in want)
    before = {k: v.clone() for k, v in native.items()}
    t.train_step(items[:2])
    changed = [k for k, v in t.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(torch.equal(native[k], before[k]) for k in native)  # not views of live weights
    with pytest.raises(ValueError, match="layout"):
        t.state_dict_for_sync("vllm")


def test_bad_inputs_name_the_field(items):
    t = trainer()
    bad = replace(items[0], old_logprobs=[0.0])
    with pytest.raises(ValueError, match=r"items\[1\]\.old_logprobs"):
        t.train_step([items[1], bad])
    with pytest.raises(ValueError, match="no items"):
        t.train_step([])
    with pytest.raises(ValueError, match="loss must be"):
        t.train_step(items[:1], loss="ppo")
    half = [replace(items[0], ref_logprobs=[0.0] * len(items[0].sample.completion_ids)), items[2]]
    with pytest.raises(ValueError, match="ref_logprobs"):
        t.train_step(half)


def test_nonfinite_gradient_skips_the_update(items):
    t = trainer()
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    metrics = t.train_step([replace(items[0], advantage=float("nan")), items[1]])
    assert metrics["skipped"] == 1.0 and t.step == 0 and not math.isfinite(metrics["grad_norm"])
    assert all(torch.equal(p, before[n]) for n, p in t.model.named_parameters())
    assert t.train_step(items[:2])["skipped"] == 0.0 and t.step == 1


def test_old_logprobs_from_compute_logprobs_give_ratio_one_and_clipping(items):
    t = trainer(policy_loss=PolicyLossConfig(clip_low=0.1, clip_high=0.1))
    old = t.compute_logprobs(items)
    assert [len(x) for x in old] == [len(i.sample.completion_ids) for i in items]
    assert all((x < 0).all() for x in old)
    with_old = [replace(it, old_logprobs=o) for it, o in zip(items, old, strict=True)]
    first = t.train_step(with_old)
    assert first["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    second = t.train_step(with_old)  # same old logprobs, moved weights: ratios move off 1
    assert abs(second["policy/ratio_mean"] - 1.0) > 1e-4 or second["policy/ratio_max"] > 1.0 + 1e-3
