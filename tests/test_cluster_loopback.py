"""A local Ray runtime started by omni-rl listens on loopback only: every TCP port that the driver and
the processes it started listen on (GCS, raylet, workers, dashboard and job server) is bound to
127.0.0.1. The second test shows the Ray behaviour the setting works around (Ray's default binds all
interfaces); if a Ray upgrade makes it bind loopback by itself, that test fails and the work-around in
``omni_rl.compat.keep_ray_on_loopback`` can go."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, os, sys
from omni_rl.cluster import connect
from omni_rl.cluster.config import ClusterConfig

loopback = sys.argv[1] == "1"
info = connect(ClusterConfig(address="local", num_cpus=1, include_dashboard=True, loopback=loopback))
import ray

@ray.remote
def ping():
    return os.getpid()

ray.get(ping.remote())  # a worker process is up too


def descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def socket_inodes(pids):
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def listening(inodes):
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            found.append(fields[1].split(":")[0])
    return found


def readable(hex_addr):
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    flat = b"".join(words)
    if flat[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:" + ".".join(str(b) for b in flat[12:])
    return flat.hex()


addresses = sorted({readable(a) for a in listening(socket_inodes(descendants(os.getpid())))})
print("RESULT " + json.dumps({"addresses": addresses, "gcs": info.address, "dashboard": info.dashboard_url}))
"""


def listening_addresses(loopback: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if loopback else "0"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_local_runtime_listens_on_loopback_only():
    found = listening_addresses(loopback=True)
    assert found["addresses"], found
    assert set(found["addresses"]) <= {"127.0.0.1", "::ffff:127.0.0.1"}, found
    assert found["gcs"].startswith("127.0.0.1:") and found["dashboard"].startswith("http://127.0.0.1:")


def test_ray_default_binds_all_interfaces():
    found = listening_addresses(loopback=False)
    assert not set(found["addresses"]) <= {"127.0.0.1", "::ffff:127.0.0.1"}, found
