"""One temperature: the trainer scores at the sampler's temperature, taken from the generation config."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_rl.algorithms.config import GRPOConfig
from omni_rl.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ENV = ["envs=[{name: mcq_image}]"]


def test_trainer_temperature_defaults_to_the_sampling_one() -> None:
    cfg = load_config(GRPOConfig, None, [*ENV, "generation.sampling.temperature=0.7"])
    assert cfg.trainer.temperature == 0.7


def test_equal_values_are_accepted() -> None:
    cfg = load_config(
        GRPOConfig, None, [*ENV, "generation.sampling.temperature=0.8", "trainer.temperature=0.8"]
    )
    assert cfg.trainer.temperature == 0.8


def test_two_different_temperatures_are_an_error_naming_both_fields() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            GRPOConfig, None, [*ENV, "generation.sampling.temperature=0.7", "trainer.temperature=1.0"]
        )
    message = str(err.value)
    assert "trainer.temperature=1.0" in message
    assert "generation.sampling.temperature=0.7" in message


def test_greedy_sampling_leaves_the_trainer_at_one() -> None:
    cfg = load_config(GRPOConfig, None, [*ENV, "generation.sampling.temperature=0"])
    assert cfg.trainer.temperature == 1.0


@pytest.mark.parametrize("name", ["tiny_grpo_cpu.yaml", "nemotron_omni_grpo.yaml"])
def test_shipped_configs_resolve_one_temperature(name: str) -> None:
    cfg = load_config(GRPOConfig, CONFIGS / name)
    assert cfg.trainer.temperature == cfg.generation.sampling.temperature
