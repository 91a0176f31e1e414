"""The ``nemo_gym`` environment's client against a small stdlib HTTP server of ours that speaks the /verify
schema and misbehaves on demand: verdicts, masks, failure kinds, reward components, one cookie jar per
rollout, concurrency, a server that is down, 4xx (not retried) and 5xx (retried); masked samples in
advantages, DPO pairs and step metrics; per-row sampling; ``omni-rl verify --server-url``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

import environments
from environments.base import EnvScore
from environments.nemo_gym_client import response_object
from omni_rl.algorithms.dynamic_sampling import assign_advantages
from omni_rl.algorithms.preferences import best_worst_pairs
from omni_rl.algorithms.rollouts import reward_metrics
from omni_rl.algorithms.row_sampling import apply_row_sampling
from omni_rl.algorithms.scoring import ScoreTask, score_tasks
from omni_rl.cli import main
from omni_rl.data.schema import validate_row
from omni_rl.generation.base import SamplingParams
from omni_rl.training.advantages import AdvantageConfig
from omni_rl.training.overlong import OverlongConfig

REQUIRED_RESPONSE_KEYS = {
    "id",
    "created_at",
    "model",
    "object",
    "output",
    "parallel_tool_calls",
    "tool_choice",
    "tools",
}


class GymStub:
    """What the server saw, and how it should answer (``mode``: ok, 422, 500, flaky, barrier)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[tuple[str, dict, str | None]] = []  # (path, body, Cookie header)
        self.lock = threading.Lock()
        self.sessions = 0
        self.failures_left = 0
        self.barrier: threading.Barrier | None = None

    def answer(self, path: str, body: dict, cookie: str | None) -> tuple[int, Any, str | None]:
        with self.lock:
            self.calls.append((path, body, cookie))
        if path == "/seed_session":
            with self.lock:
                self.sessions += 1
                return 200, {}, f"sess=s{self.sessions}"
        if path == "/close_session":
            return 200, {"resources_session_id": body["resources_session_id"]}, None
        if self.mode == "422":
            return 422, {"detail": [{"loc": ["body", "expected_answer"], "msg": "Field required"}]}, None
        if self.mode == "500":
            return 500, "boom", None
        if self.mode == "flaky":
            with self.lock:
                self.failures_left -= 1
                if self.failures_left >= 0:
                    return 503, "busy", None
        if self.mode == "barrier":
            assert self.barrier is not None
            self.barrier.wait(timeout=10)  # passes only with enough requests in flight at once
        text = body["response"]["output"][0]["content"][0]["text"]
        out = {**body, "reward": 1.0 if body["expected_answer"] in text else 0.0, "extracted": text[:5]}
        if "mask" in text:
            out.update(mask_sample=True, failure_kind="judge_unavailable", failure_reason="judge timed out")
        if "parts" in text:
            out["reward_components"] = {"format": 1.0, "accuracy": 0.25}
        return 200, out, None


@contextmanager
def stub_server() -> Iterator[tuple[str, GymStub]]:
    stub = GymStub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, payload, cookie = stub.answer(self.path, body, self.headers.get("Cookie"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if cookie:
                self.send_header("Set-Cookie", f"{cookie}; Path=/; HttpOnly")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stub
    finally:
        server.shutdown()
        server.server_close()


def gym_prompt(i: int, answer: str = "B"):
    row = {"responses_create_params": {"input": f"question {i}"}, "expected_answer": answer, "id": f"q{i}"}
    return validate_row(row)


def make_env(url: str, **options: Any):
    return environments.get("nemo_gym", server_url=url, backoff_s=0.01, **options)


def test_response_object_has_the_required_fields():
    obj = response_object("hello", model="m")
    assert set(obj) >= REQUIRED_RESPONSE_KEYS
    assert obj["object"] == "response" and obj["model"] == "m" and obj["tools"] == []
    (message,) = obj["output"]
    assert message["role"] == "assistant" and message["type"] == "message"
    assert message["content"] == [{"type": "output_text", "text": "hello", "annotations": []}]


def test_verdicts_masks_components_and_one_cookie_jar_per_rollout():
    with stub_server() as (url, stub):
        env = make_env(url)
        prompts = [env.make_prompt(gym_prompt(i)) for i in range(4)]
        texts = ["it is B", "it is C", "B but mask", "B parts"]
        right, wrong, masked, parts = env.score_batch(list(zip(prompts, texts, strict=True)))
        env.close()
    assert (right.reward, right.correct, right.masked, right.error) == (1.0, True, False, None)
    assert (wrong.reward, wrong.correct) == (0.0, False)
    assert masked.masked and masked.failure_kind == "judge_unavailable" and masked.error is None
    assert masked.details["nemo_gym"]["failure_reason"] == "judge timed out"
    assert parts.scores == {"nemo_gym": 1.0, "nemo_gym/format": 1.0, "nemo_gym/accuracy": 0.25}
    assert right.details["nemo_gym"]["extracted"] == "it is"
    verify = [body for path, body, _ in stub.calls if path == "/verify"]
    assert {b["id"] for b in verify} == {"q0", "q1", "q2", "q3"}  # the row's fields travel
    assert all(
        b["responses_create_params"] == {"input": b["responses_create_params"]["input"]} for b in verify
    )
    assert all(set(b["response"]) >= REQUIRED_RESPONSE_KEYS for b in verify)
    # each rollout: a seed with no cookie, then verify and close with the cookie its own seed set
    seeds = [c for path, _, c in stub.calls if path == "/seed_session"]
    assert seeds == [None] * 4
    cookies = [c for path, _, c in stub.calls if path == "/verify"]
    closes = [c for path, _, c in stub.calls if path == "/close_session"]
    assert sorted(cookies) == sorted(closes) == [f"sess=s{i}" for i in range(1, 5)]


def test_rollouts_run_concurrently():
    with stub_server() as (url, stub):
        stub.mode, stub.barrier = "barrier", threading.Barrier(4)
        env = make_env(url, max_concurrency=4, sessions=False)
        prompts = [env.make_prompt(gym_prompt(i)) for i in range(8)]
        scores = env.score_batch([(p, "B") for p in prompts])
        env.close()
    assert [s.reward for s in scores] == [1.0] * 8  # a sequential client would time out at the barrier


def test_server_down_scores_zero_masked_names_the_url_and_then_fails_fast():
    with stub_server() as (url, _):
        pass  # the port is closed again
    env = make_env(url, max_retries=2, down_cooldown_s=30)
    prompts = [env.make_prompt(gym_prompt(i)) for i in range(3)]
    scores = env.score_batch([(p, "B") for p in prompts])
    for s in scores:
        assert (s.reward, s.correct, s.masked) == (0.0, False, True)
        assert s.error and f"{url}/seed_session" in s.error
    started = time.monotonic()
    again = env.score_batch([(prompts[0], "B")])[0]
    assert "down" in again.error and time.monotonic() - started < 0.5  # no retries while it is down
    metrics = reward_metrics([SimpleNamespace(label="gym", scores=scores, samples=[])])
    assert metrics["score/gym/errors"] == 3.0 and metrics["score/gym/masked"] == 3.0
    assert metrics["score/gym/failure/omni_rl:server_error"] == 3.0
    assert metrics["score/errors"] == 3.0


def test_4xx_is_not_retried_and_5xx_is():
    with stub_server() as (url, stub):
        env = make_env(url, sessions=False, max_retries=2)
        prompt = env.make_prompt(gym_prompt(0))
        stub.mode = "422"
        bad = env.score(prompt, "B")
        assert bad.masked and f"{url}/verify: answered 422" in bad.error and "expected_answer" in bad.error
        assert len(stub.calls) == 1
        stub.mode, stub.failures_left = "flaky", 2
        ok = env.score(prompt, "B")
        assert (ok.reward, ok.error) == (1.0, None) and len(stub.calls) == 4
        stub.mode = "500"
        failed = env.score(prompt, "B")
        assert "answered 500" in failed.error and "after 3 attempts" in failed.error
        env.close()


def test_two_servers_in_one_mix_each_score_their_own_samples():
    with stub_server() as (url_a, stub_a), stub_server() as (url_b, stub_b):
        envs = {"a": make_env(url_a), "b": make_env(url_b)}
        tasks = [
            ScoreTask("a", gym_prompt(0), "B"),
            ScoreTask("b", gym_prompt(1), "C"),
            ScoreTask("a", gym_prompt(2), "x"),
        ]
        scores = score_tasks(envs, tasks)
    assert [s.reward for s in scores] == [1.0, 0.0, 0.0]
    assert sorted(b["id"] for p, b, _ in stub_a.calls if p == "/verify") == ["q0", "q2"]
    assert [b["id"] for p, b, _ in stub_b.calls if p == "/verify"] == ["q1"]


def test_no_server_url_is_a_clear_masked_error_and_bad_options_fail_early():
    env = environments.get("nemo_gym")
    score = env.score(env.make_prompt(gym_prompt(0)), "B")
    assert score.masked and "server_url is not set" in score.error
    with pytest.raises(environments.EnvOptionError, match="server_url"):
        environments.get("nemo_gym", server_url="localhost:8000")
    with pytest.raises(environments.EnvOptionError, match="verifiers"):
        environments.get("nemo_gym", server_url="http://x", verifiers=["mcq"])
    plain = validate_row(
        {"id": 1, "env": "nemo_gym", "messages": [{"role": "user", "content": "q"}], "target": {}}
    )
    with pytest.raises(environments.EnvRowError, match="responses_create_params"):
        env.make_prompt(plain)


def scores_of(rewards, masked):
    scores = [EnvScore(r, r == 1.0, masked=m) for r, m in zip(rewards, masked, strict=True)]
    samples = [SimpleNamespace(token_ids=[1], finish_reason="stop") for _ in rewards]
    return SimpleNamespace(scores=scores, rewards=list(rewards), samples=samples)


def test_masked_samples_take_no_part_in_advantages():
    groups = [
        scores_of([1.0, 0.0, 1.0, 0.0], [False, False, True, False]),
        scores_of([1.0, 0.0, 0.0, 0.0], [True, True, True, True]),
    ]
    stats = assign_advantages(groups, AdvantageConfig(), OverlongConfig(), max_tokens=8, limit=None)
    # group 0 without its masked sample: rewards 1, 0, 0 -> mean 1/3, std (n-1) = sqrt(1/3)
    std = (1 / 3) ** 0.5
    assert groups[0].advantages == pytest.approx(
        [(2 / 3) / std, -(1 / 3) / std, 0.0, -(1 / 3) / std], abs=1e-5
    )
    assert groups[1].advantages == [0.0] * 4
    assert groups[0].keep == [True, True, False, True] and groups[1].keep == [False] * 4
    assert stats["samples/masked_frac"] == pytest.approx(5 / 8)
    plain = [scores_of([1.0, 0.0], [False, False])]
    assign_advantages(plain, AdvantageConfig(), OverlongConfig(), max_tokens=8, limit=None)
    assert plain[0].advantages == pytest.approx([2**-0.5, -(2**-0.5)], abs=1e-5)


def test_online_dpo_never_pairs_a_masked_sample():
    group = scores_of([1.0, 0.5, 0.0], [True, False, False])
    group.rewards = [s.reward for s in group.scores]
    group.samples = [SimpleNamespace(token_ids=[1])] * 3
    assert [(b, w) for _, b, w in best_worst_pairs([group])] == [(1, 2)]


def test_row_sampling_caps_tokens_applies_top_p_and_keeps_the_run_temperature(caplog):
    base = SamplingParams(n=4, max_tokens=64, temperature=1.0, top_p=1.0)
    meta = {"sampling": {"max_tokens": 16, "top_p": 0.9, "temperature": 0.6}}
    out = apply_row_sampling(base, meta)
    assert (out.max_tokens, out.top_p, out.temperature, out.n) == (16, 0.9, 1.0, 4)
    assert "temperature 0.6 differs" in caplog.text
    assert apply_row_sampling(base, {"sampling": {"max_tokens": 4096}}).max_tokens == 64
    greedy = SamplingParams(max_tokens=64, temperature=0.0)
    assert apply_row_sampling(greedy, meta).temperature == 0.0
    assert apply_row_sampling(base, {}) is base


def test_verify_cli_rescores_gym_rollouts_our_dumps_and_rows_with_a_response(tmp_path, capsys):
    params = {"input": "q", "tool_choice": None}
    rows = [
        # a NeMo Gym rollout row: response object, recorded verdict
        {"responses_create_params": params, "response": response_object("B"), "expected_answer": "B",
         "reward": 1.0, "mask_sample": False, "extracted": "drop-me"},
        # our rollout dump from a nemo_gym environment
        {"id": "1/q/0", "step": 1, "env": "gym", "prompt_id": "q", "sample_index": 0, "response": "C",
         "target": {"expected_answer": "B"}, "reward": 1.0, "scores": {}, "responses_create_params": params},
        # a NeMo Gym dataset row with a response text
        {"responses_create_params": params, "response": "B", "expected_answer": "B"},
        {"response": "B"},
        {"responses_create_params": params, "response": 3},
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{oops\n")
    out = tmp_path / "out.jsonl"
    with stub_server() as (url, stub):
        args = [
            "verify",
            "--server-url",
            url,
            "--input",
            str(path),
            "--output",
            str(out),
            "--drop-field",
            "extracted",
        ]
        assert main(args) == 0
    captured = capsys.readouterr()
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in scored] == [1.0, 0.0, 1.0]
    assert [r.get("recorded_reward") for r in scored] == [1.0, 1.0, None]
    sent = [b for p, b, _ in stub.calls if p == "/verify"]
    assert all("extracted" not in b and "reward" not in b for b in sent)
    assert all(b["responses_create_params"] == {"input": "q"} for b in sent)  # nulls left out
    assert f"{path}:4 field 'responses_create_params'" in captured.err
    assert (
        f"{path}:5 field 'response'" in captured.err and f"{path}:6 field '-': invalid JSON" in captured.err
    )
    assert re.search(r"reward_changed\s*│\s*1\s*│", captured.out)
    assert main(["verify", "--input", str(path)]) == 2
    assert main(["verify", "--verifier", "mcq", "--server-url", url, "--input", str(path)]) == 2
