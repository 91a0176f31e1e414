"""``omni-rl`` command line. Each sub-command imports its heavy dependencies only when it runs,
so ``omni-rl verify`` works without torch, Ray or a GPU."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module with ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS = {
    "verify": ("omni_rl.cli.verify", "score responses in a JSONL file with a verifier, offline"),
    "envs": ("omni_rl.cli.envs", "list the registered environments, their verifiers and options"),
    "make-data": ("omni_rl.cli.make_data", "write an environment's synthetic dataset (JSONL + media)"),
    "data": (
        "omni_rl.cli.data",
        "check a dataset (every row and media header) or convert one to omni-rl rows",
    ),
    "make-tiny-model": ("omni_rl.cli.make_tiny_model", "save a tiny random Nemotron Omni checkpoint"),
    "plan": ("omni_rl.cli.plan", "memory per role and per GPU for a run config, and whether it fits"),
    "train": ("omni_rl.cli.train", "run a GRPO or DPO loop from a config file (--resume continues a run)"),
    "export": (
        "omni_rl.cli.export",
        "write an HF folder from a training checkpoint, a bucket of tensors at a time",
    ),
    "report": (
        "omni_rl.cli.report",
        "write a static HTML report of a run: curves, rollouts with their media",
    ),
    "submit": ("omni_rl.cli.submit", "run omni-rl train (or any command) on a Ray cluster as a Ray job"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omni-rl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
