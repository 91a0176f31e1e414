"""scripts/gpu_check.py on its CPU path (the tiny model: the same trainer steps, and the bytes of
parameters, gradients and AdamW state against the plan); without CUDA the GPU path says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py")


def test_cpu_path_runs_the_steps_and_matches_the_plan():
    cmd = [sys.executable, SCRIPT, "--device", "cpu", "--model", "tiny", "--words", "20"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = proc.stdout.strip().splitlines()[-1]
    assert result.startswith("RESULT gpu_check device=cpu tokens_per_s=") and result.endswith(
        "state_rel_err=0.0000"
    )
    assert "sync_gb_per_s=" in result and "consumer weights equal: True" in proc.stdout


def test_the_gpu_path_needs_cuda():
    proc = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
