"""The vLLM backend's pure parts, without vLLM: options -> engine arguments, our sampling parameters ->
vLLM's, vLLM outputs -> our samples, the checkpoint view vLLM loads, and the worker-side weight
routing (runs in the main environment too)."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from omni_rl.generation.base import SamplingParams
from omni_rl.generation.vllm_checkpoint import SOUND_KEYS_SET_BY_VLLM, prepare_model_dir
from omni_rl.generation.vllm_inputs import guard_llvmlite_for_vllm, video_input
from omni_rl.generation.vllm_options import VLLMBackendOptions, engine_kwargs, sample_output, sampling_kwargs
from omni_rl.generation.vllm_worker_ext import direct_target, refresh_conv_views, split_direct
from omni_rl.media.types import DecodedVideo
from omni_rl.models.checkpoint import save_checkpoint
from omni_rl.models.original_config import REMOTE_CONFIG_FILE, read_config_dict
from omni_rl.models.tiny import build_tiny_model

# ---- sampling parameters ------------------------------------------------------------------------


def test_sampling_kwargs_map_every_option():
    params = SamplingParams(
        n=4,
        max_tokens=7,
        min_tokens=2,
        temperature=0.7,
        top_p=0.9,
        top_k=-1,
        stop=["</s>", "\n\n"],
        stop_token_ids=[5],
        include_stop_str_in_output=True,
        ignore_eos=True,
        seed=3,
        skip_special_tokens=False,
    )
    kwargs = sampling_kwargs(params, seed=3, bad_words=["<image>"])
    assert kwargs == {
        "n": 4, "max_tokens": 7, "min_tokens": 2, "temperature": 0.7, "top_p": 0.9, "top_k": 0, "stop": ["</s>", "\n\n"],
        "stop_token_ids": [5], "include_stop_str_in_output": True, "ignore_eos": True, "seed": 3,
        "skip_special_tokens": False, "logprobs": 0, "bad_words": ["<image>"],
    }  # fmt: skip


def test_greedy_asks_vllm_for_one_sample():
    assert sampling_kwargs(SamplingParams(n=5, temperature=0.0), seed=None)["n"] == 1
    assert sampling_kwargs(SamplingParams(n=5, temperature=0.1), seed=None)["n"] == 5


@dataclass
class FakeLogprob:
    logprob: float


@dataclass
class FakeCompletion:
    token_ids: list[int]
    logprobs: list[dict[int, FakeLogprob]] | None
    text: str
    finish_reason: str
    stop_reason: str | int | None = None
    index: int = 0


def completion(tokens, finish, stop=None, text="x"):
    return FakeCompletion(
        tokens, [{t: FakeLogprob(-0.5 - i)} for i, t in enumerate(tokens)], text, finish, stop
    )


def test_sample_output_reports_eos_as_the_stop_token():
    out = sample_output(completion([7, 8, 2], "stop"), SamplingParams())
    assert out.token_ids == [7, 8, 2] and out.logprobs == [-0.5, -1.5, -2.5]
    assert out.finish_reason == "stop" and out.stop_reason == 2 and out.model_logprobs is None


def test_sample_output_keeps_stop_strings_and_lengths():
    stopped = sample_output(completion([7, 8], "stop", "\n\n", "ab"), SamplingParams(stop=("\n\n",)))
    assert stopped.stop_reason == "\n\n" and stopped.text == "ab"
    long = sample_output(completion([7, 8, 9], "length"), SamplingParams(max_tokens=3))
    assert long.finish_reason == "length" and long.stop_reason is None


def test_sample_output_greedy_logprobs_are_zero():
    assert sample_output(completion([4, 5], "length"), SamplingParams(temperature=0)).logprobs == [0.0, 0.0]


def test_sample_output_refuses_inconsistent_or_aborted_outputs():
    broken = completion([1, 2], "length")
    broken.logprobs = broken.logprobs[:1]
    with pytest.raises(RuntimeError, match="1 log-prob entries for 2 tokens"):
        sample_output(broken, SamplingParams())
    with pytest.raises(RuntimeError, match="'abort'"):
        sample_output(completion([1], "abort"), SamplingParams())


# ---- engine arguments ---------------------------------------------------------------------------


def test_engine_kwargs_on_cpu_use_safe_defaults():
    kwargs = engine_kwargs("/m", VLLMBackendOptions(max_model_len=512), on_cpu=True)
    assert kwargs["enforce_eager"] is True and kwargs["enable_prefix_caching"] is False
    assert kwargs["logprobs_mode"] == "processed_logprobs" and kwargs["max_model_len"] == 512
    assert kwargs["worker_extension_cls"] == "omni_rl.generation.vllm_worker_ext.OmniRLWorkerExtension"
    assert "gpu_memory_utilization" not in kwargs and "enable_sleep_mode" not in kwargs


def test_engine_kwargs_on_gpu_carry_the_real_model_settings():
    options = VLLMBackendOptions(
        tensor_parallel_size=2, gpu_memory_utilization=0.6, enable_sleep_mode=True, kv_cache_dtype="fp8",
        video_pruning_rate=0.7, media_io_kwargs={"video": {"num_frames": 32}},
        engine_args={"max_num_seqs": 8, "reasoning_parser": "nemotron_v3"},
    )  # fmt: skip
    kwargs = engine_kwargs("/m", options, on_cpu=False)
    assert kwargs["enforce_eager"] is False and kwargs["enable_prefix_caching"] is True
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["gpu_memory_utilization"] == 0.6
    assert kwargs["enable_sleep_mode"] is True and kwargs["kv_cache_dtype"] == "fp8"
    assert kwargs["hf_overrides"] == {"video_pruning_rate": 0.7}
    assert kwargs["media_io_kwargs"] == {"video": {"num_frames": 32}}
    assert kwargs["max_num_seqs"] == 8 and kwargs["reasoning_parser"] == "nemotron_v3"  # engine_args win


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_num_seqs", 0), ("gpu_memory_utilization", 1.5), ("video_pruning_rate", 1.0), ("num_threads", 0),
     ("limit_mm_per_prompt", {"images": 1})],
)  # fmt: skip
def test_options_name_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        VLLMBackendOptions(**{field: value})


# ---- media --------------------------------------------------------------------------------------


def test_video_input_carries_how_frames_were_sampled():
    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    video = DecodedVideo(
        frames=frames, timestamps_s=np.array([0.0, 0.5, 1.0, 1.5]), frame_indices=np.array([0, 15, 30, 45]),
        fps=2.0, source_fps=30.0, duration_s=2.0,
    )  # fmt: skip
    array, meta = video_input(video)
    assert array is frames  # no copy
    assert (
        meta["fps"] == 30.0 and meta["frames_indices"] == [0, 15, 30, 45] and meta["total_num_frames"] == 60
    )
    assert meta["do_sample_frames"] is False and meta["duration"] == 2.0


def test_llvmlite_guard_gives_vllm_a_plain_dict(monkeypatch):
    lib = types.SimpleNamespace(_fntab={"__dict__": object()})
    monkeypatch.setitem(sys.modules, "llvmlite.binding.ffi", types.SimpleNamespace(lib=lib))
    guard_llvmlite_for_vllm()
    assert lib._fntab["__dict__"] == {}


# ---- checkpoint view ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    model, processor = build_tiny_model(dense=True)
    original = save_checkpoint(model, processor, root / "original", layout="original")
    native = save_checkpoint(model, processor, root / "native", layout="hf")
    return original, native, root / "views"


def test_prepare_model_dir_fixes_what_vllm_reads(checkpoints):
    original, _, views = checkpoints
    view = prepare_model_dir(original, "bf16", views)
    assert view != original and view.parent == views
    config = read_config_dict(view / "config.json")
    assert config["llm_config"]["dtype"] == "bfloat16" == config["dtype"]
    assert not set(SOUND_KEYS_SET_BY_VLLM) & set(config["sound_config"])
    assert (view / "model.safetensors").is_symlink()
    assert (view / "model.safetensors").resolve() == (original / "model.safetensors").resolve()
    assert read_config_dict(original / "config.json")["llm_config"]["dtype"] == "float32"  # source untouched
    assert prepare_model_dir(original, "bfloat16", views) == view  # reused
    assert prepare_model_dir(view, "bfloat16", views) == view  # already fine: itself
    assert prepare_model_dir(original, "float32", views) not in (view, original)


def test_prepare_model_dir_converts_the_native_layout(checkpoints):
    from transformers import AutoConfig

    original, native, views = checkpoints
    view = prepare_model_dir(native, "float32", views)
    assert (view / REMOTE_CONFIG_FILE).is_file() and not (view / REMOTE_CONFIG_FILE).is_symlink()
    ours = read_config_dict(view / "config.json")
    expected = read_config_dict(prepare_model_dir(original, "float32", views) / "config.json")
    assert ours == expected
    config = AutoConfig.from_pretrained(view, trust_remote_code=True)
    assert config.llm_config.dtype == torch.float32 and config.architectures == [
        "NemotronH_Nano_Omni_Reasoning_V3"
    ]


def test_prepare_model_dir_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        prepare_model_dir(tmp_path, "bfloat16")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "NemotronH_Nano_VL_V2"}))
    with pytest.raises(ValueError, match="llm_config"):
        prepare_model_dir(tmp_path, "bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        prepare_model_dir(tmp_path, "int8")


# ---- worker-side weight routing -----------------------------------------------------------------


def test_split_direct_routes_what_reload_weights_misses():
    names = [
        "language_model.backbone.layers.0.mixer.in_proj.weight",
        "mlp1.1.weight",
        "vision_model.radio_model.model.blocks.3.layer_scale2.lambda1",
        "vision_model.radio_model.model.blocks.3.attn.qkv.weight",
        "sound_projection.linear1.weight",
    ]
    bulk, direct = split_direct((n, torch.zeros(1)) for n in names)
    assert [n for n, _ in direct] == [
        "mlp1.1.weight",
        "vision_model.radio_model.model.blocks.3.layer_scale2.lambda1",
    ]
    assert len(bulk) == 3


def test_direct_target_finds_vllm_parameters():
    model = torch.nn.Module()
    model.mlp1 = torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    model.vision_model = torch.nn.Module()
    model.vision_model.model = torch.nn.Module()
    model.vision_model.model.encoder = torch.nn.Module()
    layer = torch.nn.Module()
    layer.ls1, layer.ls2 = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
    model.vision_model.model.encoder.layers = torch.nn.ModuleList([layer])
    assert direct_target(model, "mlp1.1.weight") is model.mlp1[1].weight
    assert direct_target(model, "vision_model.radio_model.model.blocks.0.layer_scale2.lambda1") is layer.ls2
    with pytest.raises(KeyError):
        direct_target(model, "language_model.lm_head.weight")


class Mixer(torch.nn.Module):
    def __init__(self, packed: bool) -> None:
        super().__init__()
        self.conv1d = torch.nn.Module()
        weight = torch.arange(12.0).view(6, 1, 2)
        self.conv1d.weight = torch.nn.Parameter(weight)
        self.register_buffer("conv_weights", weight.view(6, 2), persistent=False)  # shares storage
        if packed:  # what vLLM does on AVX-512 BF16 CPUs: another layout, plain copy kept aside
            self.conv1d._cpu_unpacked_conv_weight = torch.full((6, 2), 7.0)
            self.conv1d.weight.data = torch.arange(12.0).flip(0).view(6, 1, 2)


def test_refresh_conv_views_copies_only_stale_buffers_from_the_plain_weight():
    shared, packed = Mixer(packed=False), Mixer(packed=True)
    model = torch.nn.ModuleList([shared, packed])
    assert refresh_conv_views(model) == 1
    assert torch.equal(shared.conv_weights, torch.arange(12.0).view(6, 2))
    assert torch.equal(packed.conv_weights, torch.full((6, 2), 7.0))  # never the packed layout


def test_vllm_prompt_renders_placeholders_and_passes_decoded_media():
    from omni_rl.generation.base import GenerationRequest
    from omni_rl.generation.vllm_inputs import vllm_prompt
    from omni_rl.media.types import DecodedAudio, DecodedImage
    from omni_rl.models.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    wave = np.zeros(1600, dtype=np.float32)
    parts = [{"type": "image"}, {"type": "image"}, {"type": "audio"}, {"type": "text", "text": "Which?"}]
    request = GenerationRequest(
        "r",
        [{"role": "user", "content": parts}],
        [DecodedImage(pixels, (32, 32))] * 2 + [DecodedAudio(wave, 16000, 8000)],
    )
    prompt = vllm_prompt(request, tokenizer, None)
    assert prompt["prompt"].count("<image>") == 2 and prompt["prompt"].count("<so_embedding>") == 1
    images, audio = prompt["multi_modal_data"]["image"], prompt["multi_modal_data"]["audio"]
    assert len(images) == 2 and images[0].size == (32, 32)
    assert audio[0] is wave and audio[1] == 16000.0
    assert "multi_modal_data" not in vllm_prompt(
        GenerationRequest("t", [{"role": "user", "content": "hi"}]), tokenizer, None
    )

    with pytest.raises(ValueError, match="2 media part"):
        vllm_prompt(GenerationRequest("r", [{"role": "user", "content": parts[:2]}]), tokenizer, None)
    swapped = GenerationRequest(
        "r", [{"role": "user", "content": parts[2:]}], [DecodedImage(pixels, (32, 32))]
    )
    with pytest.raises(ValueError, match=r"media\[0\].*audio.*DecodedImage"):
        vllm_prompt(swapped, tokenizer, None)
