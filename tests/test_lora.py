"""LoRA (peft) on the tiny policy: which modules get adapters, merged weights under the base names equal
the adapted model (also peft's own delta), a checkpoint keeps only the adapters and resumes, and
`omni-rl export` writes merged HF weights that load as an ordinary policy."""

from __future__ import annotations

import pytest
import torch
from test_trainer import make_items

from omni_rl.cli import main
from omni_rl.models import build_tiny_model
from omni_rl.models.tiny import save_tiny_model
from omni_rl.training.lora import LoraSettings, _delta, lora_layers, merged_named_weights
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

ALL = ["attention", "mamba", "shared_experts", "experts"]


def lora_trainer(targets=ALL, seed: int = 3, **overrides) -> PolicyTrainer:
    cfg = TrainerConfig(
        lr=1e-2, max_grad_norm=None, lora=LoraSettings(rank=4, alpha=8, targets=targets), **overrides
    )
    return PolicyTrainer(cfg, model_and_processor=build_tiny_model(seed=seed))


def max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def trained():
    t = lora_trainer()
    items = make_items(t.processor)
    t.train_step(items)
    return t, items


def test_adapters_sit_on_the_named_decoder_projections_only():
    t = lora_trainer(["attention", "mamba"])
    adapted = sorted(lora_layers(t.model))
    assert adapted and all(n.startswith("language_model.model.layers.") for n in adapted)
    leaves = {n.rsplit(".", 1)[1] for n in adapted}
    assert leaves == {"q_proj", "k_proj", "v_proj", "o_proj", "in_proj", "out_proj"}
    assert all(".lora_" in n for n, p in t.model.named_parameters() if p.requires_grad)
    every = lora_layers(lora_trainer(ALL).model)
    assert any(n.endswith("shared_experts.up_proj") for n in every)
    assert any(n.endswith("mixer.experts") for n in every)  # fused 3-D experts via target_parameters
    with pytest.raises(ValueError, match=r"lora\.targets"):
        LoraSettings(targets=["mlp"])


def test_merged_weights_carry_base_names_and_equal_the_adapted_model(trained):
    t, items = trained
    merged = t.state_dict_for_sync("native")
    streamed = dict(t.iter_sync_weights("native"))  # what the bucketed sync sends the engines
    assert streamed.keys() == merged.keys()
    assert all(torch.equal(streamed[n], merged[n]) for n in merged)
    fresh, processor = build_tiny_model(seed=3)
    assert set(merged) == set(fresh.state_dict())  # the base model's names, no adapter entries
    fresh.load_state_dict(merged, strict=True)
    plain = PolicyTrainer(TrainerConfig(lr=1e-2), model_and_processor=(fresh, processor))
    assert max_diff(plain.compute_logprobs(items), t.compute_logprobs(items)) < 1e-5
    changed = [
        n for n, w in build_tiny_model(seed=3)[0].state_dict().items() if not torch.equal(w, merged[n])
    ]
    assert changed and all("language_model.model.layers." in n for n in changed)
    # the delta is peft's own, for nn.Linear and for the fused experts
    for layer in lora_layers(t.model).values():
        a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
        assert torch.allclose(_delta(layer, a, b), layer.get_delta_weight("default").float(), atol=1e-6)
    assert dict(merged_named_weights(t.model)).keys() == merged.keys()


def test_a_lora_checkpoint_holds_the_adapters_resumes_and_exports_merged_weights(tmp_path):
    import torch.distributed.checkpoint as dcp

    from omni_rl.models.loading import load_policy

    base = save_tiny_model(tmp_path / "base", seed=3)
    cfg = TrainerConfig(lr=1e-2, max_grad_norm=None, model=PolicyModelConfig(path=str(base)),
                        lora=LoraSettings(rank=4, alpha=8, targets=ALL))  # fmt: skip
    t = PolicyTrainer(cfg)
    items = make_items(t.processor)
    t.train_step(items)
    step = t.save_checkpoint(tmp_path / "ckpt")
    assert not (step / "model").exists() and (step / "lora.json").is_file()
    saved = dcp.FileSystemReader(str(step / "state")).read_metadata().state_dict_metadata
    model_keys = [k for k in saved if k.startswith("model.")]
    assert model_keys and all(".lora_" in k for k in model_keys)
    want = t.compute_logprobs(items)

    resumed = PolicyTrainer(cfg)
    resumed.load_checkpoint(step)
    assert resumed.step == 1 and max_diff(resumed.compute_logprobs(items), want) < 1e-6

    assert main(["export", str(step), str(tmp_path / "hf"), "--layout", "hf"]) == 0
    model, processor = load_policy(tmp_path / "hf", dtype="float32", device="cpu")
    plain = PolicyTrainer(TrainerConfig(lr=1e-2), model_and_processor=(model, processor))
    assert max_diff(plain.compute_logprobs(items), want) < 1e-5


def fsdp_worker(rank: int, world_size: int, init_method: str, out: str) -> None:
    """FSDP2 on 2 gloo ranks: a LoRA trainer (merged weights gathered shard by shard, base as reference)
    and a full-weight trainer with kl_coef > 0 (the reference a frozen FSDP2-sharded copy)."""
    from omni_rl.training.policy_loss import PolicyLossConfig

    torch.set_num_threads(1)
    lora = LoraSettings(rank=4, alpha=8, targets=["attention", "mamba", "shared_experts"])
    cfg = TrainerConfig(lr=1e-2, max_grad_norm=None, parallel="fsdp", lora=lora)
    t = PolicyTrainer(cfg, rank, world_size, init_method, model_and_processor=build_tiny_model(seed=3))
    items = make_items(t.processor, n=4)[rank::world_size]
    start = t.compute_logprobs(items)
    t.train_step(items)
    result = {
        "merged": t.state_dict_for_sync("native"),
        "moved": max_diff(t.compute_logprobs(items), start),
        "reference": max_diff(t.reference_logprobs(items), start),
    }
    kl = TrainerConfig(lr=1e-2, parallel="fsdp", policy_loss=PolicyLossConfig(kl_coef=0.1))
    full = PolicyTrainer(kl, rank, world_size, init_method, model_and_processor=build_tiny_model(seed=3))
    ref = full.reference
    result["ref_frozen"] = not any(p.requires_grad for p in ref.parameters())
    result["ref_local"] = sum(p.to_local().numel() for p in ref.parameters())
    result["ref_total"] = sum(p.numel() for p in ref.parameters())
    result["ref_equal"] = max_diff(full.reference_logprobs(items), full.compute_logprobs(items))
    if rank == 0:
        torch.save(result, out)


@pytest.mark.slow
def test_fsdp2_gathers_merged_weights_and_shards_the_reference(tmp_path):
    from omni_rl.training.distributed import launch_local

    out = tmp_path / "rank0.pt"
    launch_local(fsdp_worker, 2, str(out))
    got = torch.load(out, weights_only=False)
    assert got["moved"] > 1e-3 and got["reference"] < 1e-5
    fresh = build_tiny_model(seed=3)[0].state_dict()
    assert got["merged"].keys() == fresh.keys()
    changed = [n for n in fresh if not torch.equal(fresh[n], got["merged"][n])]
    assert changed and all(".mixer." in n for n in changed)  # only the adapted projections moved
    assert got["ref_frozen"] and got["ref_local"] <= 0.55 * got["ref_total"]  # half per rank (+ padding)
    assert got["ref_equal"] < 1e-6
