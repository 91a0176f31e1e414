"""Streaming weight sync: the trainer's weights as buckets (both layouts, serving dtype, FSDP2 shards on
2 gloo ranks), every transport the CPU can run (Ray's object store; a gloo broadcast group standing in
for NCCL; the CUDA IPC handle logic), the engines loading each bucket in place, crash re-send, and the
torch backend's sleep / wake_up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omni_rl.generation.weight_buckets import bucket_tensors, plan_sync
from omni_rl.generation.weight_transports import Transport, open_ipc
from omni_rl.models.tiny import save_tiny_model
from omni_rl.training.distributed import launch_local
from omni_rl.training.trainer import PolicyTrainer
from omni_rl.training.trainer_config import PolicyModelConfig, TrainerConfig

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("sync") / "tiny", seed=3)


@pytest.fixture(scope="module")
def trainer(tiny) -> PolicyTrainer:
    t = PolicyTrainer(TrainerConfig(model=PolicyModelConfig(path=str(tiny))))
    with torch.no_grad():  # weights that differ from the checkpoint the engines start from
        for p in t.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return t


def collect(buckets) -> dict[str, torch.Tensor]:
    return {n: v.clone() for b in buckets for n, v in bucket_tensors(b.buffer, b.entries)}


@pytest.mark.parametrize("layout", ["native", "original"])
def test_buckets_carry_exactly_the_full_state_within_the_bucket_size(trainer, layout):
    full = trainer.state_dict_for_sync(layout)
    limit = 0.05  # MiB: many buckets on the tiny model
    buckets = list(trainer.sync_buckets(layout, "auto", bucket_mb=limit))
    got = collect(buckets)
    assert len(buckets) > 5 and buckets[-1].last and not buckets[0].last
    assert set(got) == set(full) and all(torch.equal(got[k], full[k]) for k in full)
    plans = trainer._sync_plans[(layout, None, int(limit * 2**20))]
    for plan in plans:  # over the limit only when one conversion unit alone is larger
        assert plan.nbytes <= limit * 2**20 or len(plan.units) == 1


def test_qkv_travels_as_one_unit_and_the_serving_dtype_is_bf16(trainer):
    full = trainer.state_dict_for_sync("original")
    got = collect(trainer.sync_buckets("original", "bfloat16", bucket_mb=0.05))
    qkv = next(k for k in got if k.endswith("attn.qkv.weight"))
    assert got[qkv].dtype == torch.bfloat16 and torch.equal(got[qkv], full[qkv].to(torch.bfloat16))
    plans = trainer._sync_plans[("original", torch.bfloat16, int(0.05 * 2**20))]
    units = [u for p in plans for u in p.units if any(e.name == qkv for e in u.entries)]
    sources = {n.rsplit(".", 2)[-2] for n in units[0].sources}
    assert len(units) == 1 and sources == {"q_proj", "k_proj", "v_proj"}  # gathered together
    streamed = dict(trainer.iter_sync_weights("original", "bfloat16"))
    assert set(streamed) == set(full) and torch.equal(streamed[qkv], got[qkv])


def test_plan_puts_tensors_at_aligned_offsets_and_a_big_tensor_alone():
    shapes = [("a", (3,), torch.float32), ("big", (100,), torch.float32), ("c", (2, 2), torch.int64)]
    plans = plan_sync(shapes, None, bucket_bytes=200, dtype=torch.bfloat16)
    assert [[e.name for e in p.entries] for p in plans] == [["a"], ["big"], ["c"]]
    # a: 3 bf16 = 6 bytes -> one 64-byte slot; big: 200 bytes; c keeps int64 (32 bytes)
    assert [p.nbytes for p in plans] == [64, 256, 64]
    assert plans[0].entries[0].dtype == "bfloat16" and plans[2].entries[0].dtype == "int64"
    two = plan_sync(shapes[:1] + shapes[2:], None, bucket_bytes=1000)
    assert [(e.name, e.offset) for e in two[0].entries] == [("a", 0), ("c", 64)]


def fsdp_worker(rank: int, world: int, init: str, folder: str, out: str) -> None:
    cfg = TrainerConfig(parallel="fsdp", model=PolicyModelConfig(path=folder, param_dtype="float32"))
    trainer = PolicyTrainer(cfg, rank, world, init)
    full = trainer.state_dict_for_sync("original")
    buckets = list(trainer.sync_buckets("original", "auto", bucket_mb=0.05))
    sizes = [b.nbytes for b in buckets]
    if rank == 0:
        torch.save({"full": full, "got": collect(buckets), "sizes": sizes}, Path(out, "sync.pt"))
    else:
        assert sizes and all(s == 0 for s in sizes)  # only rank 0 holds bucket data


def test_fsdp2_ranks_gather_one_unit_at_a_time_and_rank0_gets_the_full_weights(tiny, tmp_path):
    launch_local(fsdp_worker, 2, str(tiny), str(tmp_path))
    saved = torch.load(tmp_path / "sync.pt")
    full, got = saved["full"], saved["got"]
    assert set(got) == set(full) and all(torch.equal(got[k], full[k]) for k in full)


def test_cuda_ipc_handle_is_rebuilt_on_the_receivers_device_index():
    calls = []
    handle = (lambda *args: calls.append(args) or "tensor", tuple(range(8)))
    assert open_ipc(handle, 3) == "tensor" and calls[0][6] == 3 and calls[0][:6] == (0, 1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="not a GPU"):
        Transport("cuda_ipc").payload(type("B", (), {"buffer": torch.zeros(4, dtype=torch.uint8)})())
    with pytest.raises(ValueError, match="transport"):
        Transport("smoke-signals")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def engine_weights(engine) -> dict[str, torch.Tensor]:
    return ray.get(engine.state.remote())


class Engine:
    """GenerationWorker with a test-only view of its weights."""

    def __new__(cls, *args, **kwargs):  # built lazily: the class needs the worker module
        from omni_rl.generation.worker import GenerationWorker

        class Probe(GenerationWorker):
            def state(self) -> dict[str, torch.Tensor]:
                return {k: v.clone() for k, v in self.backend.model.state_dict().items()}

        return ray.remote(Probe).options(num_cpus=0.5, max_restarts=1).remote(*args, **kwargs)


@pytest.mark.parametrize("transport", ["ray", "broadcast"])
def test_every_engine_loads_each_bucket_in_place(tiny, trainer, ray_session, transport):
    from omni_rl.algorithms.workers import LocalTrainer, RayGeneration

    local = LocalTrainer.__new__(LocalTrainer)
    local.trainer, local.store, local._weight_group = trainer, None, None
    engines = [Engine(str(tiny), "torch", {"dtype": "float32"}) for _ in range(2)]
    gen = RayGeneration.__new__(RayGeneration)
    gen.actors, gen.layout, gen.max_retries, gen.retries = engines, "native", 1, 0
    gen.sync_options = {"bucket_mb": 0.05, "transport": transport, "group_backend": "gloo"}
    gen._version, gen._trainer, gen._group_ready = None, None, False
    try:
        gen.sync(local, version=4)
        want = trainer.state_dict_for_sync("native")
        for engine in engines:
            got = engine_weights(engine)
            assert all(torch.equal(got[k], want[k]) for k in want)
            assert ray.get(engine.ping.remote())["weight_version"] == 4
        if transport == "ray":  # a crashed engine comes back with the initial weights: re-sent
            ray.kill(engines[1], no_restart=False)
            gen.sync(local, version=5)
            got = engine_weights(engines[1])
            assert all(torch.equal(got[k], want[k]) for k in want)
            assert ray.get(engines[1].ping.remote())["weight_version"] == 5 and gen.retries >= 1
    finally:
        for engine in engines:
            ray.kill(engine, no_restart=True)


def test_torch_backend_sleeps_and_wakes_from_the_next_sync(tiny, trainer):
    from omni_rl.generation import GenerationRequest, SamplingParams
    from omni_rl.generation.torch_backend import TorchBackend

    backend = TorchBackend.from_pretrained(tiny, dtype="float32")
    request = [GenerationRequest("t", [{"role": "user", "content": "Hi"}], [], SamplingParams(max_tokens=2))]
    weight = backend.model.get_input_embeddings().weight
    backend.sleep(level=2)
    assert weight.numel() == 0  # freed
    with pytest.raises(RuntimeError, match="asleep"):
        backend.generate(request)
    backend.wake_up()
    with pytest.raises(RuntimeError, match="discarded"):
        backend.generate(request)
    buckets = list(trainer.sync_buckets("native", "auto", bucket_mb=0.05))
    backend.begin_sync()
    backend.load_bucket(bucket_tensors(buckets[0].buffer, buckets[0].entries))
    with pytest.raises(RuntimeError, match="not sent"):  # a partial sync cannot wake it
        backend.finish_sync(1)
    backend.begin_sync()
    for bucket in buckets:
        backend.load_bucket(bucket_tensors(bucket.buffer, bucket.entries))
    assert backend.finish_sync(2)["version"] == 2
    want = trainer.state_dict_for_sync("native")
    assert all(torch.equal(v, want[k]) for k, v in backend.model.state_dict().items())
    assert backend.generate(request)[0].ok
    backend.sleep(level=1)  # on a CPU device the weights stay where they are
    backend.wake_up()
    assert backend.generate(request)[0].weight_version == 2


@pytest.mark.slow
def test_bench_weight_sync_runs_small():
    """scripts/bench_weight_sync.py on the tiny model: 2 FSDP2 gloo ranks stream to a torch engine through
    both CPU transports; the engine's float32 log-probs then equal the trainer's."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_weight_sync.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT sync_peak_over_bucket=")
    values = dict(kv.split("=") for kv in last.split()[1:])
    assert float(values["sync_logprob_maxdiff"]) <= 1e-5 and float(values["sync_mb_per_s"]) > 0
    assert "ray:" in proc.stdout and "broadcast:" in proc.stdout and "differ" not in proc.stdout
    assert proc.stdout.count("engine weights == trainer's in float32: True") == 2


def test_a_local_engine_takes_the_buckets_streamed_from_ray_trainer_ranks(tiny, ray_session, tmp_path):
    """generation.mode=local with Ray trainer ranks: rank 0 streams the buckets into the driver (a Ray
    streaming generator); the driver's engine loads them one at a time."""
    from omni_rl.algorithms.workers import LocalGeneration, RayTrainer
    from omni_rl.generation.torch_backend import TorchBackend

    cfg = TrainerConfig(model=PolicyModelConfig(path=str(tiny)), lr=0.5)
    ranks = RayTrainer(cfg, None, [{"num_cpus": 0.5}])
    try:
        other = save_tiny_model(tmp_path / "other", seed=4)  # the engine starts from other weights
        backend = TorchBackend.from_pretrained(other, dtype="float32")
        before = {k: v.clone() for k, v in backend.model.state_dict().items()}
        local = LocalGeneration(backend, shared=False, sync={"bucket_mb": 0.05})
        local.sync(ranks, version=3)
        want = ray.get(ranks.actors[0].state_dict_for_sync.remote("native"))
        got = backend.model.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want) and backend.weight_version == 3
        assert any(not torch.equal(before[k], want[k]) for k in want)
    finally:
        ranks.close()
