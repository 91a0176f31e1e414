"""End to end on a real `ray start --head` cluster (127.0.0.1, token auth): submit the smoke job with
`ray job submit` (scripts/submit.sh) and with `omni-rl submit`, wait for success, read its metrics.

The training loop's test reuses this: same fixture, entrypoint `--config configs/tiny_grpo_cpu.yaml ...`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ray_cluster import VENV_BIN, LocalRayCluster

from omni_rl.logging import METRICS_FILE, read_metrics

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
OMNI_RL = [str(VENV_BIN / "omni-rl")]
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def ray_cluster():
    with LocalRayCluster(num_cpus=2) as cluster:
        yield cluster
    assert cluster.leftover_pids() == [], "Ray processes left after stop()"


def smoke(out: Path, *extra: str) -> list[str]:
    return ["python", "-m", "omni_rl.cluster.smoke", "--out", str(out), *extra]


def check_smoke_metrics(out: Path, steps: int = 3) -> None:
    rows = read_metrics(out / METRICS_FILE)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    # 2 trainer ranks + 1 generation + 1 environment worker answer (index + 1) * step: 1+2+1+1 = 5 per step
    assert [r["smoke/sum"] for r in rows] == [5 * s for s in range(1, steps + 1)]
    assert all(r["smoke/workers"] == 4 and r["smoke/omp_threads_max"] == 1 for r in rows)
    assert all(r["cluster/nodes"] == 1 and r["cluster/cpus"] == 2 for r in rows)
    job = json.loads((out / "job.json").read_text())
    assert job["in_job"] and not job["started_local"] and job["address"].startswith("127.0.0.1:")
    # the job ran the uploaded copy of the working dir, not this checkout
    assert "working_dir_files" in job["omni_rl_file"] and not job["omni_rl_file"].startswith(str(REPO))
    assert len(job["worker_pids"]) == 4


def run(cmd: list[str], cluster: LocalRayCluster, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=env or cluster.client_env(),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S + 60,
    )


def test_ray_job_submit_runs_the_smoke_job(ray_cluster, tmp_path):
    out = tmp_path / "run"
    proc = run(
        ["bash", "scripts/submit.sh", "--address", ray_cluster.address, "--", *smoke(out)], ray_cluster
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    check_smoke_metrics(out)


def test_omni_rl_submit_runs_the_smoke_job(ray_cluster, tmp_path):
    out = tmp_path / "run"
    cmd = [*OMNI_RL, "submit", "--address", ray_cluster.address, "--timeout", str(JOB_TIMEOUT_S),
           "--", *smoke(out, "--steps", "2")]  # fmt: skip
    proc = run(cmd, ray_cluster)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step 2: sum 10" in proc.stdout  # the job's logs are followed
    assert proc.stdout.rstrip().endswith("SUCCEEDED")
    check_smoke_metrics(out, steps=2)


def test_omni_rl_submit_returns_the_job_exit_code(ray_cluster):
    cmd = [*OMNI_RL, "submit", "--address", ray_cluster.address, "--no-working-dir", "--timeout", "120",
           "--", sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"]  # fmt: skip
    proc = run(cmd, ray_cluster)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "bye" in proc.stdout and "FAILED" in proc.stdout


def test_missing_or_wrong_token_is_explained(ray_cluster, tmp_path):
    cmd = [*OMNI_RL, "submit", "--address", ray_cluster.address, "--no-working-dir", "--", "true"]
    env = ray_cluster.client_env()
    env.pop("RAY_AUTH_TOKEN")
    env.pop("RAY_AUTH_MODE")
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    proc = run(cmd, ray_cluster, env)
    assert proc.returncode == 2
    assert "authentication failed: the cluster uses token auth" in proc.stderr
    env["RAY_AUTH_TOKEN"] = "0" * 64
    proc = run(cmd, ray_cluster, env)
    assert proc.returncode == 2 and "the token from RAY_AUTH_TOKEN was refused" in proc.stderr


RAY_CLI = str(VENV_BIN / "ray")
RUN_FOLDER = re.compile(r"run folder (\S+)")


def run_folder(logs: str) -> Path:
    """The absolute run folder `omni-rl train` prints when it is done (inside the job's working dir)."""
    found = RUN_FOLDER.findall(logs)
    assert found, logs[-3000:]
    return Path(found[-1])


def test_ray_job_submit_runs_the_main_config_verbatim(ray_cluster):
    """The README's main job as a user submits it: plain `ray job submit --working-dir .`, the shipped
    config unchanged (only steps shortened). `cluster.address: local` must attach to the job's cluster."""
    train = ["omni-rl", "train", "--config", "configs/tiny_grpo_cpu.yaml", "steps=2"]
    cmd = [RAY_CLI, "job", "submit", "--address", ray_cluster.address, "--working-dir", ".", "--", *train]
    proc = run(cmd, ray_cluster)
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    assert "inside a Ray job: cluster.address='local' attaches to the job's cluster" in logs
    assert "Started a local Ray instance" not in logs
    folder = run_folder(logs)
    assert "working_dir_files" in str(folder) and folder.name == "tiny_grpo_cpu"
    rows = read_metrics(folder / METRICS_FILE)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(0.0 <= r["reward/mean"] <= 1.0 and r["timing/step_s"] > 0 for r in rows)


def test_ray_job_submit_runs_the_dpo_config_verbatim(ray_cluster):
    train = ["omni-rl", "train", "--config", "configs/tiny_dpo_cpu.yaml", "steps=3", "eval.every=0"]
    cmd = [RAY_CLI, "job", "submit", "--address", ray_cluster.address, "--working-dir", ".", "--", *train]
    proc = run(cmd, ray_cluster)
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    rows = [r for r in read_metrics(run_folder(logs) / METRICS_FILE) if r["step"] > 0]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["train/loss"] > 0 for r in rows)


def test_a_gpu_config_on_a_cpu_cluster_fails_fast_with_the_reason(ray_cluster):
    train = ["omni-rl", "train", "--config", "configs/nemotron_omni_grpo.yaml"]
    cmd = [RAY_CLI, "job", "submit", "--address", ray_cluster.address, "--working-dir", ".", "--", *train]
    proc = run(cmd, ray_cluster)
    logs = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "omni-rl train: placement.device is 'gpu' but the cluster has no GPUs" in logs, logs[-3000:]
    assert "Traceback" not in logs
