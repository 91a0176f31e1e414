"""Real NeMo Gym resources servers for the tests: each runs its own ``app.py`` from its folder in the gym
venv (``scripts/setup_nemo_gym.sh``; named by ``OMNI_RL_NEMO_GYM_VENV``, else the tests skip), bound
to 127.0.0.1, with its YAML in ``NEMO_GYM_CONFIG_DICT`` and its key in ``NEMO_GYM_CONFIG_PATH``; it is
stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_VAR = "OMNI_RL_NEMO_GYM_VENV"
# absolute: the servers run from their own folders, where a relative venv path would not resolve
VENV = Path(os.environ[VENV_VAR]).resolve() if os.environ.get(VENV_VAR) else None
PYTHON = VENV / "bin" / "python" if VENV else None


def _servers_dir() -> Path | None:
    found = sorted(VENV.glob("lib/python3*/site-packages/resources_servers")) if VENV else []
    return found[0] if found else None


SERVERS = _servers_dir()
requires_gym = pytest.mark.skipif(
    SERVERS is None,
    reason=f"set {VENV_VAR} to a NeMo Gym venv built by scripts/setup_nemo_gym.sh (now: {VENV})",
)

# each server's block beyond the common keys; math_with_judge runs without its LLM judge
EXTRA = {
    "mcqa": {"domain": "knowledge"},
    "math_with_judge": {
        "domain": "math",
        "should_use_judge": False,
        "judge_model_server": {"type": "responses_api_models", "name": "x"},
        "judge_responses_create_params": {"input": []},
    },
    "gui_coordinate": {"domain": "other"},
    "asr_with_pc": {"domain": "other", "task_type": "ASR-PC"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_rows(name: str) -> list[dict[str, Any]]:
    assert SERVERS is not None
    with open(SERVERS / name / "data" / "example.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def example_path(name: str) -> Path:
    assert SERVERS is not None
    return SERVERS / name / "data" / "example.jsonl"


@contextmanager
def gym_server(name: str, log_dir: Path, start_timeout_s: float = 300.0) -> Iterator[str]:
    """Start resources server ``name``; yields its URL; stops it (by PID) on exit."""
    assert SERVERS is not None and PYTHON is not None
    port = free_port()
    block = {"entrypoint": "app.py", "host": "127.0.0.1", "port": port, **EXTRA[name]}
    config = {
        "head_server": {"host": "127.0.0.1", "port": free_port()},
        "dry_run": False,
        name: {"resources_servers": {name: block}},
    }
    env = {**os.environ, "NEMO_GYM_CONFIG_DICT": json.dumps(config), "NEMO_GYM_CONFIG_PATH": name}
    env.pop("PYTHONPATH", None)  # our `environments` package must not shadow NeMo Gym's
    log_file = log_dir / f"{name}.log"
    with log_file.open("w") as out:
        proc = subprocess.Popen(
            [str(PYTHON), "app.py"], cwd=SERVERS / name, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} server exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} server not healthy in {start_timeout_s} s:\n{log_file.read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
