"""``omni-rl data check FILE [--env NAME]`` and ``omni-rl data convert FORMAT SRC OUT``.

``check`` validates every row and probes every media header (sizes, durations) without training, prints
each bad row with its file, line and field, a summary, and exits 1 when any row is bad (2: unreadable).
``convert`` writes our row format from datasets users already have (see docs/data.md).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from omni_rl.cli import data_check
    from omni_rl.data import convert

    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help=data_check.HELP, description=data_check.HELP)
    data_check.add_arguments(check)
    check.set_defaults(_data_run=data_check.run)
    conv = sub.add_parser("convert", help=convert.HELP, description=convert.HELP)
    convert.add_arguments(conv)
    conv.set_defaults(_data_run=convert.run)


def run(args: argparse.Namespace) -> int:
    return int(args._data_run(args) or 0)
