"""``omni-rl train --config FILE.yaml [key=value ...] [--resume]``: run a GRPO or DPO loop.

The config's top-level ``algorithm`` (``grpo`` or ``dpo``; a ``base:`` file or an ``algorithm=...``
override may set it) picks the loop and its config class; ``key=value`` overrides follow
``omni_rl.config``. The resolved config is written to ``<output_dir>/<run_name>/config.yaml``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="run config (YAML), e.g. configs/tiny_grpo_cpu.yaml"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. steps=50 trainer.lr=1e-4"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def algorithm_of(path: Path, overrides: list[str]) -> str:
    """``algorithm`` as the layers and overrides set it (default grpo)."""
    from omni_rl.config.loader import parse_override, read_layers

    algorithm = "grpo"
    for layer in read_layers(path):
        algorithm = layer.data.get("algorithm", algorithm)
    for item in overrides:
        key, value = parse_override(item)
        if key == ["algorithm"]:
            algorithm = value
    return algorithm


def load_run_config(path: Path, overrides: list[str]):
    from omni_rl.algorithms.config import CONFIG_CLASSES
    from omni_rl.config import ConfigError, load_config

    algorithm = algorithm_of(path, overrides)
    if algorithm not in CONFIG_CLASSES:
        raise ConfigError(
            str(path), "algorithm", f"must be one of {sorted(CONFIG_CLASSES)}, got {algorithm!r}"
        )
    return load_config(CONFIG_CLASSES[algorithm], path, overrides)


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that stop a run for a reason the user fixes (cluster, placement, environments, data)."""
    from environments.base import EnvError
    from omni_rl.cluster.connect import ClusterError
    from omni_rl.cluster.placement import PlacementError
    from omni_rl.data.loading import DatasetError
    from omni_rl.planning import PlanError

    return (ClusterError, PlacementError, EnvError, DatasetError, PlanError)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from omni_rl.config import ConfigError

    try:
        cfg = load_run_config(args.config, list(args.overrides))
    except ConfigError as exc:
        print(f"omni-rl train: {exc}", file=sys.stderr)
        return 2
    if cfg.algorithm == "grpo":
        from omni_rl.algorithms.grpo import run_grpo as loop
    else:
        from omni_rl.algorithms.dpo import run_dpo as loop
    try:
        summary = loop(cfg, resume=args.resume)
    except user_errors() as exc:  # the message says what to change; a traceback would hide it
        print(f"omni-rl train: {exc}", file=sys.stderr)
        return 2
    final = {
        k: v for k, v in summary["metrics"].items() if k.startswith(("reward/", "accuracy/", "eval/", "dpo/"))
    }
    print(
        f"done: {cfg.algorithm} step {summary['step']} in {summary['wall_s']:.1f} s, run folder {summary['run_dir']}"
    )
    print(json.dumps(final, sort_keys=True))
    return 0
