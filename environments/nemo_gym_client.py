"""HTTP client for NeMo Gym resources servers (the 0.7.0 schema), shared by the ``nemo_gym`` environment and
``omni-rl verify --server-url``.

One rollout: ``POST /seed_session`` with the row (the body NeMo Gym's own agents send), ``POST /verify``
with the row plus ``response`` (an OpenAI Responses object holding the sampled text), ``POST
/close_session``; all three with one cookie jar of the rollout's own, since stateful servers key their
state by the session cookie. One pooled ``httpx.Client`` serves every rollout (its own cookie jar refuses
all cookies, so no session leaks from one rollout to the next); the caller runs rollouts concurrently.

Failures never raise out of ``verify``: a server that cannot be reached, times out or answers 5xx is
retried with exponential backoff; a 4xx is not retried; either way the verdict carries ``error`` (naming
the URL) and the caller masks the sample. After a connection failure has used up its retries the server
counts as down for ``down_cooldown_s``: rollouts fail at once instead of each waiting out the retries.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

log = logging.getLogger(__name__)

# answer keys that are the verdict itself, not extra outputs
VERDICT_KEYS = ("reward", "mask_sample", "failure_kind", "failure_reason", "reward_components")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_BODY_EXCERPT = 300


class GymServerError(Exception):
    """A request to a resources server failed (after its retries); the message names the URL."""

    def __init__(self, message: str, *, connect: bool = False) -> None:
        super().__init__(message)
        self.connect = connect


@dataclass
class GymVerdict:
    """What ``/verify`` said about one response (or why it could not say)."""

    reward: float = 0.0
    mask_sample: bool = False
    failure_kind: str | None = None
    failure_reason: str | None = None
    reward_components: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # the server's other answer fields (small ones)
    error: str | None = None  # our side: the server was not reached, failed, or answered nonsense

    @classmethod
    def failed(cls, error: str) -> GymVerdict:
        return cls(0.0, True, "omni_rl:server_error", error, error=error)


def response_object(text: str, *, model: str = "omni-rl", response_id: str | None = None) -> dict[str, Any]:
    """An OpenAI Responses API object with ``text`` as the one assistant message's ``output_text``."""
    rid = response_id or f"resp_{uuid.uuid4().hex}"
    return {
        "id": rid,
        "created_at": float(int(time.time())),
        "model": model,
        "object": "response",
        "output": [
            {
                "id": f"msg_{rid.removeprefix('resp_')}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def verify_body(
    row_fields: Mapping[str, Any], params: Mapping[str, Any], text: str, model: str
) -> dict[str, Any]:
    """The ``/verify`` request: the row's verifier fields, its create params and the response object."""
    return {
        **row_fields,
        "responses_create_params": without_nulls(params),
        "response": response_object(text, model=model),
    }


def without_nulls(params: Mapping[str, Any]) -> dict[str, Any]:
    """Create params with top-level nulls left out: null means absent in the OpenAI API, but NeMo Gym's
    server-side model rejects null for fields with defaults (``parallel_tool_calls``, ``tool_choice``,
    ``tools``), and rows read from parquet or dumped with ``model_dump()`` carry such nulls."""
    return {k: v for k, v in params.items() if v is not None}


class NemoGymClient:
    def __init__(
        self,
        server_url: str,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_connections: int = 32,
        sessions: bool = True,
        down_cooldown_s: float = 10.0,
    ) -> None:
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server_url {server_url!r}: must be an http:// or https:// URL")
        self.url = server_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sessions = sessions
        self.down_cooldown_s = down_cooldown_s
        self._down_until = 0.0
        self._down_reason = ""
        self._lock = threading.Lock()
        self.close_failures = 0
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # per-rollout jars only
        )

    def verify(self, request: Mapping[str, Any]) -> GymVerdict:
        """One rollout (seed, verify, close) for a ``/verify`` request body; never raises."""
        jar = httpx.Cookies()
        seed_body = {k: v for k, v in request.items() if k != "response"}
        seeded = False
        try:
            if self.sessions:
                self._post("/seed_session", seed_body, jar)
                seeded = True
            answer = self._post("/verify", dict(request), jar)
        except GymServerError as exc:
            return GymVerdict.failed(str(exc))
        finally:
            if seeded:
                self._close(jar)
        return parse_verdict(answer, request, f"{self.url}/verify")

    def health(self) -> bool:
        try:
            return self._http.get(f"{self.url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._http.close()

    def _close(self, jar: httpx.Cookies) -> None:
        rollout = f"omni-{uuid.uuid4().hex}"
        body = {"resources_session_id": rollout, "episode_id": {"rollout_id": rollout}}
        try:
            self._post("/close_session", body, jar, retries=1)
        except GymServerError as exc:  # the reward stands; the server may keep the session a while
            with self._lock:
                self.close_failures += 1
                first = self.close_failures == 1
            if first:
                log.warning("%s (later close_session failures are counted, not logged)", exc)

    def _post(self, path: str, body: Any, jar: httpx.Cookies, retries: int | None = None) -> Any:
        url = f"{self.url}{path}"
        with self._lock:
            left = self._down_until - time.monotonic()
            reason = self._down_reason
        if left > 0:
            raise GymServerError(
                f"nemo_gym server {url}: down ({reason}); not tried for another {left:.0f} s"
            )
        attempts = 1 + (self.max_retries if retries is None else retries)
        problem = ""
        connect = False
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
            request = self._http.build_request("POST", url, json=body)
            jar.set_cookie_header(request)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                connect = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            jar.extract_cookies(response)
            if response.status_code < 300:
                try:
                    return response.json()
                except ValueError:
                    raise GymServerError(
                        f"nemo_gym server {url}: answered {response.status_code} with non-JSON "
                        f"{_excerpt(response.text)!r}"
                    ) from None
            problem = f"answered {response.status_code} {response.reason_phrase}: {_excerpt(response.text)}"
            connect = False
            if response.status_code not in _RETRY_STATUS:
                raise GymServerError(f"nemo_gym server {url}: {problem}")
        if connect:
            with self._lock:
                self._down_until = time.monotonic() + self.down_cooldown_s
                self._down_reason = problem
        raise GymServerError(f"nemo_gym server {url}: {problem} (after {attempts} attempts)", connect=connect)


def parse_verdict(answer: Any, request: Mapping[str, Any], url: str) -> GymVerdict:
    if not isinstance(answer, Mapping):
        return GymVerdict.failed(f"nemo_gym server {url}: answer is not a JSON object")
    reward = answer.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
        return GymVerdict.failed(
            f"nemo_gym server {url}: answer has no finite number 'reward' (got {reward!r})"
        )
    components = answer.get("reward_components") or {}
    if not isinstance(components, Mapping):
        components = {}
    kind, reason = answer.get("failure_kind"), answer.get("failure_reason")
    return GymVerdict(
        reward=float(reward),
        mask_sample=bool(answer.get("mask_sample", False)),
        failure_kind=str(kind) if kind is not None else None,
        failure_reason=str(reason) if reason is not None else None,
        reward_components={
            str(k): float(v)
            for k, v in components.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        },
        outputs={k: v for k, v in answer.items() if k not in request and k not in VERDICT_KEYS and _small(v)},
    )


def _small(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and len(value) <= 500


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_EXCERPT else text[: _BODY_EXCERPT - 3] + "..."
