"""The real Nemotron 3 Nano Omni 30B-A3B configuration: sizes on the meta device, both layouts, offline
resolution of its hub id. Builds nothing in memory; runs in seconds."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from omni_rl.models.loading import load_model_config, resolve_model_source
from omni_rl.models.nemotron_omni import (
    REPO_ID,
    build_on_meta,
    count_parameters,
    real_config,
    real_original_config,
)
from omni_rl.models.original_config import native_config_from_original, write_original_config

# Megatron-Bridge's verification card for the public checkpoint (HF revision 24e67ea0) imports this many
CHECKPOINT_PARAMETERS = 33_015_546_816


@pytest.fixture(scope="module")
def model():
    return build_on_meta(real_config())


@pytest.fixture(scope="module")
def counts(model):
    return count_parameters(model)


def test_built_on_meta(model):
    assert all(p.is_meta for p in model.parameters())


def test_language_model_sizes(counts):
    assert 31e9 <= counts.llm_total <= 33e9  # "31.6B total"
    assert 3e9 <= counts.llm_active <= 4e9  # "3.6B with embeddings"
    assert 3.1e9 <= counts.llm_active - counts.input_embeddings <= 3.3e9  # "3.2B active"
    assert counts.active_groups["language"] < counts.groups["language"] / 8


def test_whole_model_matches_the_checkpoint(model, counts):
    # transformers' RADIO port adds identity LayerScale weights that C-RADIO (and the checkpoint) lack
    layer_scale = sum(p.numel() for name, p in model.named_parameters() if ".layer_scale" in name)
    assert layer_scale == 32 * 2 * 1280
    assert counts.total - layer_scale == CHECKPOINT_PARAMETERS
    assert 62e9 <= 2 * CHECKPOINT_PARAMETERS <= 67e9  # bf16 bytes: the card's "BF16 (62 GB)" is GiB
    assert counts.total == sum(counts.groups.values())
    for group in ("vision", "audio", "projectors", "embeddings"):  # dense: active in full
        assert counts.active_groups[group] == counts.groups[group]


def test_layers_and_experts(model):
    text = model.config.text_config
    kinds = Counter(text.layers_block_type)
    assert kinds == {"linear_attention": 23, "moe": 23, "full_attention": 6}
    assert len(model.language_model.model.layers) == 52
    assert (text.n_routed_experts, text.num_experts_per_tok, text.n_shared_experts) == (128, 6, 1)
    assert text.max_position_embeddings == 256 * 1024
    assert text.hidden_size == 2688 and text.vocab_size == 131072
    moe = model.language_model.model.layers[text.layers_block_type.index("moe")].mixer
    assert moe.experts.up_proj.shape[0] == 128
    assert model.vision_model.config.hidden_size == 1280
    assert model.audio_tower.config.hidden_size == 1024


def test_overrides_merge_into_sub_configs():
    config = real_config(text_config={"max_position_embeddings": 8192}, audio_config=None)
    assert config.text_config.max_position_embeddings == 8192
    assert config.text_config.hidden_size == 2688
    assert config.audio_config is None
    assert real_config().text_config.max_position_embeddings == 262144  # the module data is untouched


def test_original_layout_round_trips():
    native = real_config()
    original = real_original_config()
    assert real_config(native=False) == original
    assert original["llm_config"]["layers_block_type"].count("full_attention") == 6
    assert original["vision_config"]["args"]["model"] == "vit_huge_patch16_224"
    assert original["sound_config"]["hidden_size"] == 1024
    assert original["img_context_token_id"] == 18 and original["sound_context_token_id"] == 27
    back = native_config_from_original(original)
    assert back.to_dict() == native.to_dict()


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("network access while resolving a model offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)


def test_repo_id_resolves_offline(offline):
    resolved = resolve_model_source(REPO_ID)
    assert resolved.to_dict() == real_config().to_dict()
    assert load_model_config(REPO_ID).to_dict() == real_config().to_dict()
    with pytest.raises(FileNotFoundError, match="not in the local HF cache"):
        resolve_model_source("nvidia/no-such-model-for-omni-rl-tests")


def test_folder_paths_resolve_to_their_files(offline, tmp_path):
    write_original_config(real_config(), tmp_path)
    assert resolve_model_source(tmp_path) == tmp_path
    assert load_model_config(str(tmp_path)).to_dict() == real_config().to_dict()
