"""``omni-rl report RUN_DIR [--out FILE.html]``: a static HTML report of a run folder (curves, rollout
browser with media); media copies go to ``<FILE>_media/`` beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=Path, help="the run folder omni-rl train wrote (<output_dir>/<run_name>)"
    )
    parser.add_argument("--out", type=Path, help="HTML file to write (default: RUN_DIR/report.html)")
    parser.add_argument("--max-steps", type=int, default=20, help="rollout steps shown, evenly spread (20)")
    parser.add_argument("--prompts-per-step", type=int, default=8, help="prompts shown per step (8)")
    parser.add_argument(
        "--responses-per-prompt", type=int, default=16, help="responses shown per prompt (16)"
    )
    parser.add_argument("--max-media-files", type=int, default=500, help="media files copied in all (500)")
    parser.add_argument("--image-px", type=int, default=256, help="longest side of image thumbnails (256)")
    parser.add_argument("--max-media-seconds", type=float, default=30.0, help="audio/video cut here (30)")


def run(args: argparse.Namespace) -> int:
    from omni_rl.report import MediaLimits, ReportOptions, RunFolderError, build_report

    try:
        options = ReportOptions(
            max_steps=args.max_steps,
            prompts_per_step=args.prompts_per_step,
            responses_per_prompt=args.responses_per_prompt,
            media=MediaLimits(
                image_px=args.image_px, max_seconds=args.max_media_seconds, max_files=args.max_media_files
            ),
        )
        result = build_report(args.run_dir, args.out, options)
    except (RunFolderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in result.warnings[:20]:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"report: {result.path} ({len(result.steps_shown)} rollout steps, {result.media_files} media files"
        + (f", {result.media_failed} media not converted" if result.media_failed else "")
        + ")"
    )
    return 0
