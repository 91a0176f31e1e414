"""Weight sync in buckets, measured on CPU: a trainer on 2 gloo ranks (FSDP2, Ray actors as in the
loop) with a real-width slice of Nemotron 3 Nano Omni (real hidden size, Mamba / attention / MoE widths,
16 experts: ~250M parameters, float32) streams its weights to a torch generation engine, once through
Ray's object store and once through a gloo broadcast group (the NCCL path's stand-in), after the
trainer's weights were perturbed (so a sync that loads nothing would show).

Measured per transport: peak extra private RSS (RssAnon) during the sync in trainer rank 0 and in the
engine, sampled every millisecond, over the bucket size (the object store's shared pages that each
process touched are printed apart: with the ``ray`` transport they hold the bucket's one shared copy); MB/s (the weights' bytes in the serving dtype over the sync's wall time); and the
largest |log-prob difference| between the engine and the trainer on the same tokens afterwards
(float32 end to end: must be <= 1e-5).

    python scripts/bench_weight_sync.py                  # ~4 min on 2 cores, ~8 GB peak
    python scripts/bench_weight_sync.py --quick          # the tiny model (tests run this)

Last line: RESULT sync_peak_over_bucket=X sync_mb_per_s=Y sync_logprob_maxdiff=Z (the worst over
transports and processes; the best MB/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import ray
import torch

from omni_rl.algorithms.workers import LoopTrainerActor, RayGeneration
from omni_rl.generation.worker import GenerationWorker
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

PAGE = os.sysconf("SC_PAGE_SIZE")


class RssProbe:
    """Peak resident memory of this process above where ``start`` found it: private pages (RssAnon)
    and shared ones (RssShmem: Ray's object store pages this process touched), sampled every ms."""

    def __init__(self) -> None:
        self.base = self.peak = (0, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> tuple[int, int]:
        fields = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    key, value, _ = line.split()
                    fields[key] = int(value) * 1024
        return fields["RssAnon:"], fields["RssShmem:"]

    def start(self) -> None:
        self.base = self.peak = self.rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.rss()
            self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))
            time.sleep(0.001)

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak[0] - self.base[0], self.peak[1] - self.base[1]


def token_logprobs(model: torch.nn.Module, ids: list[int]) -> list[float]:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits.float()
    logp = logits[0, :-1].log_softmax(-1)
    return logp.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()


class ProbedTrainer(LoopTrainerActor):
    def probe_start(self) -> None:
        self.probe = RssProbe()
        self.probe.start()

    def probe_stop(self) -> tuple[int, int]:
        return self.probe.stop()

    def perturb(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed + self._t().rank)
        with torch.no_grad():
            for p in self._t().model.parameters():
                local = getattr(p, "_local_tensor", p)
                local.add_(0.02 * torch.randn(local.shape, generator=gen, dtype=local.dtype))

    def logprobs(self, ids: list[int]) -> list[float]:
        return token_logprobs(self._t().model, ids)  # collective under FSDP2

    def checksums(self, dtype: str) -> dict[str, float]:
        """Sum of each weight in the serving dtype (collective; rank 0's answer counts)."""
        state = self._t().state_dict_for_sync("native")
        return {n: float(t.to(getattr(torch, dtype)).double().sum()) for n, t in state.items()}


class ProbedEngine(GenerationWorker):
    def probe_start(self) -> None:
        self.probe = RssProbe()
        self.probe.start()

    def probe_stop(self) -> tuple[int, int]:
        return self.probe.stop()

    def logprobs(self, ids: list[int]) -> list[float]:
        return token_logprobs(self.backend.model, ids)

    def checksums(self) -> dict[str, float]:
        return {n: float(t.double().sum()) for n, t in self.backend.model.state_dict().items()}


class Trainers:
    """The loop's ``RayTrainer`` with probes (same calls: ``sync_to``, the weight group)."""

    def __init__(self, cfg: TrainerConfig, world: int) -> None:
        remote = ray.remote(ProbedTrainer).options(num_cpus=0.5)
        self.actors = [remote.remote(None) for _ in range(world)]
        host, port = ray.get(self.actors[0].address.remote())
        init = f"tcp://{host}:{port}" if world > 1 else None
        ray.get([a.setup.remote(cfg, r, world, init) for r, a in enumerate(self.actors)])

    def all(self, method: str, *args):
        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def sync_to(self, engines, layout, sync):
        return self.all("sync_to", list(engines), layout, dict(sync))[0]

    def weight_group_address(self):
        return ray.get(self.actors[0].address.remote())

    def join_weight_group(self, host, port, world_size, backend):
        return self.actors[0].join_weight_group.remote(host, port, world_size, backend)


def save_model(folder: Path, quick: bool) -> int:
    if quick:
        from omni_rl.models.tiny import save_tiny_model

        save_tiny_model(folder, seed=0)
        from omni_rl.models.loading import load_policy

        model, _ = load_policy(folder, dtype="float32", device="cpu")
    else:
        from omni_rl.planning.measure import build_slice

        model, processor = build_slice(torch.float32, experts=16)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    count = sum(p.numel() for p in model.parameters())
    del model
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model")
    parser.add_argument("--bucket-mb", type=float, default=None, help="default: 512 (quick: 0.25)")
    parser.add_argument("--transports", default="ray,broadcast")
    parser.add_argument(
        "--dtype", default="float32", help="serving dtype (and the engine's): float32 or bfloat16"
    )
    args = parser.parse_args()
    bucket_mb = args.bucket_mb or (0.25 if args.quick else 512)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    tmp = Path(tempfile.mkdtemp(prefix="bench_sync_"))
    params = save_model(tmp / "model", args.quick)
    print(f"model: {params / 1e6:.0f}M parameters (float32), bucket {bucket_mb} MiB", flush=True)
    cfg = TrainerConfig(
        parallel="fsdp", model=PolicyModelConfig(path=str(tmp / "model"), param_dtype="float32")
    )
    trainers = Trainers(cfg, 2)
    trainers.all("perturb", 7)
    engine = (
        ray.remote(ProbedEngine)
        .options(num_cpus=0.5)
        .remote(str(tmp / "model"), "torch", {"dtype": args.dtype})
    )
    ids = list(range(3, 3 + 48))
    peaks, rates, diffs, exact_all = [], [], [], []
    for version, transport in enumerate(args.transports.split(","), start=1):
        gen = RayGeneration.__new__(RayGeneration)  # the loop's engine handle around our probed actor
        gen.actors, gen.layout, gen.max_retries, gen.retries = [engine], "native", 0, 0
        gen.sync_options = {
            "bucket_mb": bucket_mb,
            "dtype": args.dtype,
            "transport": transport,
            "group_backend": "gloo",
        }
        gen._version, gen._trainer, gen._group_ready = None, None, False
        if transport == "broadcast":
            gen._join_group(trainers)
        if version > 1:
            trainers.all("perturb", 7 + version)
        ray.get([engine.probe_start.remote(), trainers.actors[0].probe_start.remote()])
        start = time.perf_counter()
        gen.sync(trainers, version=version)
        seconds = time.perf_counter() - start
        (engine_peak, engine_shm), (trainer_peak, trainer_shm) = ray.get(
            [engine.probe_stop.remote(), trainers.actors[0].probe_stop.remote()]
        )
        want = trainers.all("logprobs", ids)[0]
        got = ray.get(engine.logprobs.remote(ids))
        diff = max(abs(a - b) for a, b in zip(want, got, strict=True))
        sums, engine_sums = trainers.all("checksums", args.dtype)[0], ray.get(engine.checksums.remote())
        exact = all(engine_sums[n] == v for n, v in sums.items())
        exact_all.append(exact)
        mb = params * torch.empty((), dtype=getattr(torch, args.dtype)).element_size() / 2**20
        bucket = bucket_mb * 2**20
        print(
            f"{transport:>9}: {mb:.0f} MiB in {seconds:.2f} s = {mb / seconds:.0f} MB/s; peak extra private RSS "
            f"trainer rank 0 {trainer_peak / 2**20:.0f} MiB ({trainer_peak / bucket:.2f} x bucket), engine "
            f"{engine_peak / 2**20:.0f} MiB ({engine_peak / bucket:.2f} x bucket); object-store pages touched "
            f"trainer {trainer_shm / 2**20:.0f} MiB, engine {engine_shm / 2**20:.0f} MiB; "
            f"log-prob max diff {diff:.2e}; engine weights == trainer's in {args.dtype}: {exact}",
            flush=True,
        )
        peaks += [trainer_peak / bucket, engine_peak / bucket]
        rates.append(mb / seconds)
        diffs.append(diff)
    ray.shutdown()
    if not all(exact_all):
        print("some engine weights differ from the trainer's after the sync", flush=True)
    print(
        f"RESULT sync_peak_over_bucket={max(peaks):.3f} sync_mb_per_s={max(rates):.1f} "
        f"sync_logprob_maxdiff={max(diffs):.3e}"
    )


if __name__ == "__main__":
    main()
