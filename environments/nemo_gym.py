"""NeMo Gym resources servers as an environment: each response is scored by ``POST /verify`` on the server at
``server_url`` (NeMo Gym 0.7.0 schema; ``environments.nemo_gym_client``), on NeMo Gym dataset rows as they
are (``omni_rl.data.nemo_gym`` maps them to prompts).

The reward is the server's ``reward``. A sample the server marks ``mask_sample`` - or that could not be
scored because the server was down or answered 4xx/5xx - is masked: it carries no training signal and is
counted (``score/<env>/masked``, ``score/<env>/errors``); ``failure_kind`` is counted per kind and logged
with its ``failure_reason``; ``reward_components`` become per-environment metrics. Mix several servers in
one run with one ``envs`` entry each (give each a ``label``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from environments.base import Environment, EnvOptionError, EnvOptions, EnvRowError, EnvScore, VerifierSpec
from environments.nemo_gym_client import GymVerdict, NemoGymClient, verify_body
from environments.registry import register
from omni_rl.data.nemo_gym import META_KEY, PARAMS_KEY, strip_inline_media
from omni_rl.data.schema import Prompt

log = logging.getLogger(__name__)
SCORE_KEY = "nemo_gym"
_LOG_FAILURES_PER_KIND = 3


@dataclass
class NemoGymEnvOptions(EnvOptions):
    # The resources server, e.g. http://127.0.0.1:8001 (required to score).
    server_url: str | None = None
    timeout_s: float = 60.0  # per request (read / write / pool)
    connect_timeout_s: float = 5.0
    max_retries: int = 3  # connection errors, time-outs and 408/429/5xx; then the sample is masked
    backoff_s: float = 0.5  # first retry delay; doubles each retry (at most 8 s)
    down_cooldown_s: float = 10.0  # after a failed connection: fail at once for this long
    max_concurrency: int = 16  # rollouts in flight per environment worker (and pooled connections)
    sessions: bool = True  # call /seed_session and /close_session around /verify (stateful servers)
    model: str = "omni-rl"  # the "model" named in the response object
    correct_threshold: float = 1.0  # a sample counts as correct (accuracy) when reward >= this


@register("nemo_gym")
class NemoGymEnvironment(Environment):
    """NeMo Gym resources server: the reward comes from POST /verify on options.server_url."""

    Options = NemoGymEnvOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._client: NemoGymClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._failures: Counter[str] = Counter()

    def validate_options(self) -> None:
        o = self.options
        where = "environment nemo_gym"
        if o.verifiers is not None or o.verifier_options:
            raise EnvOptionError(
                f"{where}: the resources server scores; options verifiers / verifier_options do not apply"
            )
        url = o.server_url
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise EnvOptionError(f"{where}: option server_url={url!r} must be an http:// or https:// URL")
        for name in ("timeout_s", "connect_timeout_s"):
            if not getattr(o, name) > 0:
                raise EnvOptionError(f"{where}: option {name} must be > 0")
        if o.max_retries < 0 or o.backoff_s < 0 or o.down_cooldown_s < 0:
            raise EnvOptionError(f"{where}: max_retries, backoff_s and down_cooldown_s must be >= 0")
        if o.max_concurrency < 1:
            raise EnvOptionError(f"{where}: option max_concurrency must be >= 1")

    def _resolve_specs(self, owner: str) -> list[VerifierSpec]:
        return []  # no local verifiers: the server scores

    # ---- prompts ---------------------------------------------------------------------------------

    def check(self, prompt: Prompt) -> None:
        params = self._params(prompt)
        if not isinstance(prompt.target, dict):
            raise EnvRowError(prompt, "target", "must be the row's verifier fields (an object)")
        if not isinstance(params, dict):
            raise EnvRowError(
                prompt,
                PARAMS_KEY,
                "missing: the nemo_gym environment takes NeMo Gym rows (responses_create_params)",
            )

    def fields_for(self, prompt: Prompt) -> dict[str, Any]:
        """What rollout dumps keep to re-score a response (``omni-rl verify --server-url``): the create
        params without inline media (the verifier fields are the target)."""
        params = self._params(prompt)
        return {PARAMS_KEY: strip_inline_media(params)} if isinstance(params, dict) else {}

    @staticmethod
    def _params(prompt: Prompt) -> Any:
        entry = prompt.meta.get(META_KEY)
        return entry.get(PARAMS_KEY) if isinstance(entry, dict) else None

    # ---- scoring ---------------------------------------------------------------------------------

    def score(self, prompt: Prompt, response: str) -> EnvScore:
        return self.score_batch([(prompt, response)])[0]

    def score_batch(self, items: Sequence[tuple[Prompt, str]]) -> list[EnvScore]:
        if not items:
            return []
        if not self.options.server_url:
            error = "environment nemo_gym: option server_url is not set (the resources server to score with)"
            return [self._to_score(GymVerdict.failed(error)) for _ in items]
        client, pool = self._connect()
        requests = []
        for prompt, response in items:
            try:
                self.check(prompt)
                requests.append(
                    verify_body(prompt.target, self._params(prompt), response, self.options.model)
                )
            except EnvRowError as exc:
                requests.append(exc)
        verdicts = list(
            pool.map(
                lambda r: GymVerdict.failed(str(r)) if isinstance(r, Exception) else client.verify(r),
                requests,
            )
        )
        return [self._to_score(v) for v in verdicts]

    def _connect(self) -> tuple[NemoGymClient, ThreadPoolExecutor]:
        with self._lock:
            if self._client is None:
                o = self.options
                self._client = NemoGymClient(
                    o.server_url or "",
                    timeout_s=o.timeout_s,
                    connect_timeout_s=o.connect_timeout_s,
                    max_retries=o.max_retries,
                    backoff_s=o.backoff_s,
                    max_connections=o.max_concurrency,
                    sessions=o.sessions,
                    down_cooldown_s=o.down_cooldown_s,
                )
                self._pool = ThreadPoolExecutor(o.max_concurrency, thread_name_prefix="nemo-gym")
            assert self._pool is not None
            return self._client, self._pool

    def _to_score(self, verdict: GymVerdict) -> EnvScore:
        if verdict.failure_kind is not None or verdict.error:
            self._log_failure(verdict)
        scores = {
            SCORE_KEY: verdict.reward,
            **{f"{SCORE_KEY}/{k}": v for k, v in verdict.reward_components.items()},
        }
        details = {
            SCORE_KEY: {
                "mask_sample": verdict.mask_sample,
                "failure_kind": verdict.failure_kind,
                "failure_reason": verdict.failure_reason,
                **verdict.outputs,
            }
        }
        return EnvScore(
            reward=verdict.reward,
            correct=verdict.error is None and verdict.reward >= self.options.correct_threshold,
            scores=scores,
            details=details,
            error=verdict.error,
            masked=verdict.mask_sample,
            failure_kind=verdict.failure_kind,
        )

    def _log_failure(self, verdict: GymVerdict) -> None:
        kind = verdict.failure_kind or "error"
        with self._lock:
            self._failures[kind] += 1
            seen = self._failures[kind]
        if seen <= _LOG_FAILURES_PER_KIND:
            more = (
                " (further ones of this kind are counted, not logged)"
                if seen == _LOG_FAILURES_PER_KIND
                else ""
            )
            log.warning(
                "nemo_gym %s: failure_kind=%s mask_sample=%s: %s%s",
                self.options.server_url, kind, verdict.mask_sample, verdict.failure_reason or verdict.error, more,
            )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            if self._client is not None:
                self._client.close()
            self._client, self._pool = None, None
