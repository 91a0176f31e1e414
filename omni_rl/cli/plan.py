"""``omni-rl plan --config FILE [key=value ...]``: the memory plan per role and per GPU, before anything
starts. Exit 0 when the run fits, 1 when it does not (the output names the settings to change), 2 for a
config or plan error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="run config (YAML)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from omni_rl.cli.train import load_run_config
    from omni_rl.config import ConfigError
    from omni_rl.planning import PlanError, format_plan, make_plan

    try:
        cfg = load_run_config(args.config, list(args.overrides))
        plan = make_plan(cfg)
    except (ConfigError, PlanError, FileNotFoundError, ValueError) as exc:
        print(f"omni-rl plan: {exc}", file=sys.stderr)
        return 2
    print(format_plan(plan))
    return 0 if plan.fits else 1
