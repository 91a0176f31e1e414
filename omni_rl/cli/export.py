"""``omni-rl export CHECKPOINT_DIR OUT [--layout original|hf] [--dtype bfloat16|float32]``: an HF folder
(transformers and vLLM load it) from a training checkpoint's sharded state, read and written a bucket of
tensors at a time, in one process, never the whole model. A LoRA checkpoint (adapters only) is merged
into its base model's weights (``lora.json`` names the base folder)."""

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
    from omni_rl.training.lora_checkpoint import merged_tensors, read_manifest

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
    bucket = args.bucket_mib << 20
    dtype = getattr(torch, args.dtype) if args.dtype else None
    lora = read_manifest(path)
    if lora is None:
        model_dir = path / ckpt.MODEL_DIR
        tensors = dcp_model_tensors(state, bucket)
    else:  # adapters only: merged into the base weights, read a tensor at a time
        settings, model_dir = lora[0], Path(lora[1])
        if not model_dir.is_dir():
            print(f"omni-rl export: {path}: LoRA base model {lora[1]!r} is not a local folder",
                  file=sys.stderr)  # fmt: skip
            return 2
        adapters = dict(dcp_model_tensors(state, bucket))
        tensors = merged_tensors(load_model_config(model_dir), model_dir, settings, adapters)
    hf_model = build_on_meta(load_model_config(model_dir))
    processor = _load_processor(str(model_dir), hf_model.config, False)
    out = write_hf_folder(tensors, hf_model, processor, args.out,
                          layout=args.layout, bucket_bytes=bucket, dtype=dtype)  # fmt: skip
    print(f"wrote {out} from {path}")
    return 0
