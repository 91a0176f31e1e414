"""The GPU check of the scale path: FSDP2 on one rank, bf16, a real-width slice of Nemotron 3 Nano Omni
(real hidden size, Mamba / attention / MoE widths, all 128 experts; three decoder layers), forward,
backward and an AdamW step on an image + audio + text batch. Prints tokens/s and the peak GPU memory next
to what ``omni-rl plan``'s memory model predicts for the same settings; exits 1 when they differ by more
than ``--tolerance`` (10%).

On the GPU machine (torch CUDA, no registry; carry a transformers 5.19 wheel, see docs/scale.md):

    python scripts/gpu_check.py                       # < 8 min on one H200

On CPU (what the tests run): ``--device cpu --model tiny`` runs the same steps and compares the bytes of
parameters, gradients and AdamW state (CPU has no peak-memory counter to compare).

Then one bucketed weight sync (``trainer.sync_buckets``, bf16, ``--bucket-mb``) to a consumer process on
the same GPU that holds its own copy of the weights: each bucket goes over as a CUDA IPC handle
(``weight_transports.ipc_handle`` / ``open_ipc``; no vLLM), the consumer copies it in place and
acknowledges before the next is built. Reports GB/s; exits 1 if the consumer's weights differ from the
trainer's. On CPU the same consumer gets each bucket through torch's shared memory instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from omni_rl.models import MultimodalSample
from omni_rl.planning.measure import build_slice, measure_step, slice_config
from omni_rl.planning.memory import GiB, TrainerSettings, total, trainer_rows
from omni_rl.planning.shapes import model_shape
from omni_rl.training.items import TrainItem
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig


def batch(processor, rows: int, words: int, seed: int = 0) -> list[TrainItem]:
    """``rows`` samples: an image, an audio clip and text of ``words`` words each, in turn."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    tok = processor.tokenizer
    items = []
    for i in range(rows):
        kind = ("image", "audio", "text")[i % 3]
        text = " ".join(rng.choice(["red", "blue", "beep", "left", "answer", "seven"], size=words))
        content = ([{"type": kind}] if kind != "text" else []) + [{"type": "text", "text": text}]
        media: dict = {}
        if kind == "image":
            media["images"] = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))]
        elif kind == "audio":
            media["audio"] = [(rng.standard_normal(16000) * 0.1).astype(np.float32)]
        completion = [*tok("the answer is B")["input_ids"], tok.eos_token_id]
        sample = MultimodalSample([{"role": "user", "content": content}], completion, **media)
        items.append(TrainItem(sample, advantage=float(rng.normal())))
    return items


def consume(queue, acks, specs: dict, device: str) -> None:
    """The consumer process: its own weights, loaded bucket by bucket in place; sends back a checksum."""
    from omni_rl.generation.weight_buckets import bucket_tensors
    from omni_rl.generation.weight_transports import open_ipc

    weights = {
        n: torch.zeros(shape, dtype=getattr(torch, dtype), device=device)
        for n, (shape, dtype) in specs.items()
    }
    while (msg := queue.get()) is not None:
        entries, payload = msg
        buffer = open_ipc(payload, torch.device(device).index or 0) if device.startswith("cuda") else payload
        for name, tensor in bucket_tensors(buffer, entries):
            weights[name].copy_(tensor)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        del buffer, payload
        acks.put(len(entries))
    acks.put({n: float(t.double().sum()) for n, t in weights.items()})


def time_sync(trainer: PolicyTrainer, device: str, bucket_mb: float) -> tuple[float, bool]:
    """(GB/s, consumer weights == trainer weights) of one bucketed sync to a same-device process."""
    import torch.multiprocessing as mp

    from omni_rl.generation.weight_transports import ipc_handle

    cuda = device.startswith("cuda")
    buckets = trainer.sync_buckets("native", "bfloat16", bucket_mb, device=device)
    from omni_rl.training.weight_sync import sync_plan

    planned = sync_plan(trainer, "native", torch.bfloat16, int(bucket_mb * 2**20))
    specs = {e.name: (e.shape, e.dtype) for plan in planned for e in plan.entries}
    ctx = mp.get_context("spawn")
    queue, acks = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=consume, args=(queue, acks, specs, device), daemon=True)
    child.start()
    start, nbytes = time.perf_counter(), 0
    for bucket in buckets:
        queue.put((bucket.entries, ipc_handle(bucket.buffer) if cuda else bucket.buffer))
        acks.get(timeout=600)  # loaded: the next bucket may reuse the memory
        nbytes += bucket.nbytes
    seconds = time.perf_counter() - start
    queue.put(None)
    sums = acks.get(timeout=600)
    child.join(timeout=60)
    want = {
        n: float(t.to(torch.bfloat16).double().sum())
        for n, t in trainer.iter_sync_weights("native", "bfloat16")
    }
    same = set(sums) == set(want) and all(sums[n] == want[n] for n in want)
    return nbytes / seconds / 1e9, same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", choices=("slice", "tiny"), default="slice")
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--words", type=int, default=600, help="text words per row")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--bucket-mb", type=float, default=256, help="weight sync bucket size")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (use --device cpu --model tiny for the CPU path)", file=sys.stderr)
        return 2
    if args.model == "slice":
        model, processor = build_slice(torch.bfloat16)
        config = slice_config()[0]
    else:
        from omni_rl.models.tiny import build_tiny_model

        model, processor = build_tiny_model()
        config = model.config
    param = "bfloat16" if cuda else "float32"
    cfg = TrainerConfig(lr=1e-5, device=args.device, parallel="fsdp", compute_dtype="bfloat16" if cuda else "auto",
                        micro_batch_tokens=1 << 30, model=PolicyModelConfig(param_dtype=param))  # fmt: skip
    trainer = PolicyTrainer(cfg, model_and_processor=(model, processor))
    items = batch(processor, args.rows, args.words)
    encoded = [trainer._encode(it.sample) for it in items]
    padded = len(encoded) * max(len(e.input_ids) for e in encoded)  # one micro-batch: rows x longest
    fused = cuda and importlib.util.find_spec("mamba_ssm") is not None
    settings = TrainerSettings(ranks=1, param_dtype=param, optimizer_dtype="float32",
                               compute_dtype="bfloat16" if cuda else param, sharded=True,
                               micro_batch_tokens=padded, gradient_checkpointing=False,
                               logprob_chunk_size=cfg.logprob_chunk_size, fused_mamba=fused)  # fmt: skip
    resident, transient, _ = trainer_rows(model_shape(config), settings)
    if not cuda:  # CPU: bytes of parameters, gradients and AdamW state against the plan
        got = measure_step(trainer, items)
        want = {r.what.split(" (")[0]: r.bytes for r in resident + transient}
        want = {
            "parameters": want["parameters"],
            "gradients": want["gradients"],
            "optimizer": want["optimizer states"],
        }
        err = max(abs(got[k] - v) / v for k, v in want.items())
        start = time.perf_counter()
        metrics = trainer.train_step(items)
        rate = metrics["tokens_total"] / (time.perf_counter() - start)
        print(f"measured {got}, planned {want}")
        gbps, same = time_sync(
            trainer, "cpu", min(args.bucket_mb, 0.25) if args.model == "tiny" else args.bucket_mb
        )
        print(f"weight sync through shared memory: {gbps:.3f} GB/s, consumer weights equal: {same}")
        print(
            f"RESULT gpu_check device=cpu tokens_per_s={rate:.1f} sync_gb_per_s={gbps:.3f} state_rel_err={err:.4f}"
        )
        return 0 if err <= args.tolerance and same else 1
    trainer.train_step(items)  # warm-up: kernels, FSDP2 lazy init, AdamW state
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    tokens = 0.0
    for _ in range(args.steps):
        tokens += trainer.train_step(items)["tokens_total"]
    torch.cuda.synchronize()
    rate = tokens / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated()
    predicted = total(resident) + total(transient)
    err = abs(peak - predicted) / predicted
    print(f"tokens/micro-batch {padded} (padded), mamba kernels {'fused' if fused else 'torch fallback'}")
    for row in resident + transient:
        print(f"  planned {row.what:<50} {row.gib:8.3f} GiB")
    gbps, same = time_sync(trainer, f"cuda:{torch.cuda.current_device()}", args.bucket_mb)
    print(f"weight sync by CUDA IPC to a same-GPU process: {gbps:.2f} GB/s, consumer weights equal: {same}")
    print(f"RESULT gpu_check device={torch.cuda.get_device_name()} tokens_per_s={rate:.1f} "
          f"peak_gib={peak / GiB:.3f} predicted_gib={predicted / GiB:.3f} sync_gb_per_s={gbps:.2f} "
          f"rel_err={err:.4f}")  # fmt: skip
    return 0 if err <= args.tolerance and same else 1


if __name__ == "__main__":
    sys.exit(main())
