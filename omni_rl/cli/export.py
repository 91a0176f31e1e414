"""``omni-rl export CHECKPOINT_DIR OUT [--layout original|hf] [--dtype bfloat16|float32]``: an HF folder
(transformers and vLLM load it) from a training checkpoint's sharded state, read and written a bucket of
tensors at a time, in one process, never the whole model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a step folder (or a checkpoints root: its latest)")
    parser.add_argument("out", type=Path, help="the HF folder to write")
    parser.add_argument("--layout", choices=("original", "hf"), default="original", help="config layout")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), help="cast floating tensors (default: as saved)"
    )
    parser.add_argument("--bucket-mib", type=int, default=1024, help="tensors per file and per read (MiB)")


def run(args: argparse.Namespace) -> int:
    import torch

    from omni_rl.models.hf_export import dcp_model_tensors, write_hf_folder
    from omni_rl.models.loading import _load_processor, load_model_config
    from omni_rl.models.nemotron_omni import build_on_meta
    from omni_rl.training import checkpoint as ckpt

    path = args.checkpoint
    if not ckpt.is_complete(path):
        path = ckpt.find_latest_checkpoint(path)
        if path is None:
            print(f"omni-rl export: {args.checkpoint}: no complete checkpoint", file=sys.stderr)
            return 2
    state = path / ckpt.DCP_DIR
    if not state.is_dir():
        print(f"omni-rl export: {path}: no {ckpt.DCP_DIR}/ (a format-1 checkpoint: use its model/ folder)",
              file=sys.stderr)  # fmt: skip
        return 2
    model_dir = path / ckpt.MODEL_DIR
    hf_model = build_on_meta(load_model_config(model_dir))
    processor = _load_processor(str(model_dir), hf_model.config, False)
    bucket = args.bucket_mib << 20
    dtype = getattr(torch, args.dtype) if args.dtype else None
    out = write_hf_folder(dcp_model_tensors(state, bucket), hf_model, processor, args.out,
                          layout=args.layout, bucket_bytes=bucket, dtype=dtype)  # fmt: skip
    print(f"wrote {out} from {path}")
    return 0
