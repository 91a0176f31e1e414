"""Start a local Ray runtime or attach to a running cluster (see ``ClusterConfig.address``).

``connect`` is idempotent: when this process is already connected it returns the current cluster
(``reused=True``) and changes nothing. ``shutdown(info)`` disconnects, unless the connection was reused.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from omni_rl.cluster.config import ClusterConfig
from omni_rl.cluster.resources import ClusterResources
from omni_rl.compat import keep_ray_on_loopback

log = logging.getLogger("omni_rl.cluster")
# set by Ray's job supervisor in the environment of a job's entrypoint
JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


class ClusterError(RuntimeError):
    """Ray could not be started or reached; the message says what to change."""


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # GCS address (HOST:PORT), or the ray:// address of a client connection
    namespace: str
    started: bool  # this process started a local runtime
    reused: bool  # Ray was already initialised in this process: connect() changed nothing
    in_job: bool  # running as the driver of a Ray job (`ray job submit`)
    dashboard_url: str | None
    resources: ClusterResources

    def describe(self) -> str:
        how = "reused" if self.reused else ("started local runtime" if self.started else "attached")
        job = ", Ray job" if self.in_job else ""
        return f"ray {how} at {self.address}{job}; {self.resources.describe()}"


def _check_reachable(address: str, where: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init retries such an address for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"{where}: no Ray cluster reachable at {address} ({exc}); check the address and that the "
            "cluster is up (`ray status --address HOST:PORT` on a node)"
        ) from None


def _info(started: bool, reused: bool, address: str, dashboard: str | None = None) -> ClusterInfo:
    import ray

    ctx = ray.get_runtime_context()
    try:
        gcs = str(ctx.gcs_address)
    except Exception:  # Ray Client connections have no local GCS address
        gcs = address
    if dashboard and not dashboard.startswith("http"):
        dashboard = f"http://{dashboard}"
    return ClusterInfo(
        address=gcs,
        namespace=str(ctx.namespace),
        started=started,
        reused=reused,
        in_job=JOB_ENV in os.environ,
        dashboard_url=dashboard,
        resources=ClusterResources.from_ray(),
    )


def connect(cfg: ClusterConfig | None = None) -> ClusterInfo:
    """Connect this process to Ray as ``cfg.address`` says; ClusterError with a hint when it cannot."""
    import ray

    cfg = cfg or ClusterConfig()
    if ray.is_initialized():
        if cfg.address not in (None, "auto"):
            log.info(
                "ray is already initialised in this process; cluster.address=%r is not used", cfg.address
            )
        return _info(started=False, reused=True, address=cfg.address or "")

    env_address = os.environ.get("RAY_ADDRESS", "")
    address = cfg.address
    if address is None:
        address = "auto" if env_address or JOB_ENV in os.environ else "local"
    elif address == "local" and JOB_ENV in os.environ:
        # A job's driver that starts its own runtime gets actors that cannot fetch the job's working_dir
        # package (RuntimeEnvSetupError): inside `ray job submit`, "local" means the job's own cluster.
        log.info("running inside a Ray job: cluster.address='local' attaches to the job's cluster")
        address = "auto"
    start = address == "local"
    if address == "auto" and env_address.startswith(("http://", "https://")):
        raise ClusterError(
            f"RAY_ADDRESS={env_address!r} is a job-submission (dashboard) address; a driver connects to the "
            "GCS (HOST:6379) or ray://HOST:10001. Submit jobs with `omni-rl submit --address "
            f"{env_address}` (or RAY_API_SERVER_ADDRESS), and unset RAY_ADDRESS for a local run"
        )

    if address == "auto" and env_address:
        _check_reachable(env_address, f"RAY_ADDRESS={env_address!r}")
    elif not start and address != "auto":
        _check_reachable(address, f"cluster.address={address!r}")

    kwargs: dict = {"address": address, "log_to_driver": cfg.log_to_driver}
    if cfg.namespace is not None:
        kwargs["namespace"] = cfg.namespace
    if cfg.runtime_env:
        kwargs["runtime_env"] = dict(cfg.runtime_env)
    if start:
        kwargs.update(include_dashboard=cfg.include_dashboard)
        if cfg.include_dashboard:
            kwargs["dashboard_host"] = "127.0.0.1"
        if cfg.loopback:
            kwargs.update(keep_ray_on_loopback())
        for name in ("num_cpus", "num_gpus", "object_store_memory"):
            if getattr(cfg, name) is not None:
                kwargs[name] = getattr(cfg, name)
        if cfg.resources:
            kwargs["resources"] = dict(cfg.resources)
    elif cfg.sizes_runtime:
        log.warning(
            "attaching to a running Ray cluster (%s): cluster.num_cpus / num_gpus / resources / "
            "object_store_memory size a local runtime only and are ignored",
            env_address or address,
        )

    from ray.exceptions import AuthenticationError

    try:
        context = ray.init(**kwargs)
    except AuthenticationError as exc:
        raise ClusterError(
            f"the Ray cluster at {env_address or address} uses token authentication: set RAY_AUTH_MODE=token "
            f"and provide its token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); {exc}"
        ) from exc
    except ConnectionError as exc:
        where = (
            f"RAY_ADDRESS={env_address!r}"
            if address == "auto" and env_address
            else f"cluster.address={address!r}"
        )
        hint = (
            "start one with `ray start --head`, or set cluster.address=null to start a local runtime"
            if address == "auto"
            else "check the address and that the cluster is up (`ray status --address ...`)"
        )
        raise ClusterError(f"{where}: no Ray cluster reachable: {hint} ({exc})") from exc
    url = getattr(context, "dashboard_url", None)  # "HOST:PORT", or "" without a dashboard
    info = _info(started=start, reused=False, address=address, dashboard=str(url) if url else None)
    log.info("%s", info.describe())
    return info


def shutdown(info: ClusterInfo) -> None:
    """Disconnect (and stop a runtime this process started), unless ``connect`` reused a connection."""
    import ray

    if not info.reused and ray.is_initialized():
        ray.shutdown()


@contextmanager
def cluster(cfg: ClusterConfig | None = None) -> Iterator[ClusterInfo]:
    info = connect(cfg)
    try:
        yield info
    finally:
        shutdown(info)
