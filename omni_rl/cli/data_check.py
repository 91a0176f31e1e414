"""``omni-rl data check FILE [--env NAME] [--config RUN.yaml] [--probe MODE] [--allow-outside-paths]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "report every bad row of a dataset (schema, media headers, environment) without training"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="dataset: .jsonl, .parquet or a saved datasets folder")
    parser.add_argument("--env", help="check every row against this environment (default: each row's env)")
    parser.add_argument("--config", type=Path, help="take the media limits from this run config's media:")
    parser.add_argument("--probe", choices=("header", "exists", "none"), help="media check (default header)")
    parser.add_argument(
        "--allow-outside-paths", action="store_true", help="accept media paths outside the dataset's folder"
    )
    parser.add_argument("--split", help="split of a saved DatasetDict")
    parser.add_argument("--max-report", type=int, default=200, help="bad rows printed (default 200)")


def run(args: argparse.Namespace) -> int:
    from omni_rl.data.check import check_dataset
    from omni_rl.data.loading import DatasetError
    from omni_rl.media.params import MediaParams

    try:
        media = _media_section(args.config) if args.config else {}
        if args.probe:
            media["probe"] = args.probe
        if args.allow_outside_paths:
            media["allow_outside_paths"] = True
        params = MediaParams.from_dict(media)
        report = check_dataset(args.file, env=args.env, params=params)
    except (DatasetError, ValueError, OSError) as exc:
        print(f"omni-rl data check: {exc}", file=sys.stderr)
        return 2
    for issue in report.issues[: args.max_report]:
        print(issue)
    if len(report.issues) > args.max_report:
        print(f"... {len(report.issues) - args.max_report} more bad rows")
    print(report.summary())
    return 1 if report.issues else 0


def _media_section(path: Path) -> dict:
    from omni_rl.cli.train import load_run_config

    return dict(load_run_config(path, []).media)
