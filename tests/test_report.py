"""`omni-rl report`: hand-computed chart helpers, a report built from a hand-written run folder (media
converted, hostile text escaped, caps, bad lines named), no network references, the dumper's data: URL
media, and the README's main job (3 steps) rendered in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from environments.synthetic.video import moving_square, write_mp4
from omni_rl.cli import main
from omni_rl.logging import RolloutDumper
from omni_rl.report import MediaLimits, ReportOptions, RunFolderError, build_report
from omni_rl.report.charts import Series, line_chart, moving_mean, nice_ticks
from omni_rl.report.data import pick_steps

ROOT = Path(__file__).resolve().parents[1]
OMNI_RL = str(Path(sys.executable).parent / "omni-rl")
CHROMIUM = shutil.which("chromium")
# any src/href/poster/srcset/url() that leaves the machine: scheme-qualified or protocol-relative
NETWORK_REF = re.compile(
    r"""(?:\b(?:src|href|poster|srcset|action|data)\s*=\s*["']?|url\(\s*["']?)\s*(?:[a-z][a-z0-9+.-]*:)?//""",
    re.I,
)


def test_chart_helpers_hand_computed():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.0, 47.0) == [10.0, 20.0, 30.0, 40.0]
    assert moving_mean([(1, 1.0), (2, 3.0), (3, 5.0), (4, 7.0)], 2) == [
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (4, 6.0),
    ]
    assert pick_steps(list(range(1, 11)), 4) == [1, 4, 7, 10]
    assert pick_steps([5, 10], 20) == [5, 10] and pick_steps([1, 2, 3], 1) == [3]
    svg = line_chart("Reward", [Series("mcq", [(1, 0.0), (2, 0.5), (3, 1.0)])])
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and "mcq" in svg
    assert "no data" in line_chart("KL", [])


def _png(path: Path, size: int = 600) -> Path:
    Image.fromarray(np.full((size, size // 2, 3), (200, 30, 30), dtype=np.uint8)).save(path)
    return path


def _wav(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path


def _rows(step: int, env: str, prompt: str, media: list[dict], rewards: list[float]) -> list[dict]:
    return [
        {
            "id": f"{step}/{prompt}/{i}", "step": step, "env": env, "prompt_id": prompt, "sample_index": i,
            "response": f"<script>alert({i})</script> answer {i}", "target": "A", "reward": r,
            "scores": {"mcq": r}, "advantage": r - sum(rewards) / len(rewards), "correct": r == 1.0,
            "prompt": "What colour? <b>bold</b>", "media": media,
            "details": {"mcq": {"extracted": "A" if r else None, "correct": r == 1.0, "reason": "x"}},
            "error": None,
        }
        for i, r in enumerate(rewards)
    ]  # fmt: skip


@pytest.fixture
def handmade_run(tmp_path):
    run = tmp_path / "run"
    (run / "rollouts").mkdir(parents=True)
    media = tmp_path / "media"
    media.mkdir()
    image, audio, video = _png(media / "a.png"), _wav(media / "b.wav"), media / "c.mp4"
    write_mp4(video, moving_square("right", np.random.default_rng(0)))
    metrics = [
        {"step": s, "time": 0.0, "reward/mean": s / 10, "reward/img": s / 5, "accuracy/mean": s / 20,
         "train/kl": 0.01 * s, "train/entropy": 2.0 - s / 10, "response/length_mean": 3.0, "timing/step_s": 1.5}
        for s in range(1, 6)
    ]  # fmt: skip
    metrics[2]["train/kl"] = None
    metrics[2]["nonfinite"] = {"train/kl": "nan"}
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics) + "{broken\n")
    for step in (1, 3, 5):
        rows = (
            _rows(step, "img", "p1", [{"type": "image", "path": str(image)}], [1.0, 0.0, 0.0, 1.0])
            + _rows(step, "aud", "p2", [{"type": "audio", "path": str(audio)}], [0.0, 0.0, 1.0, 0.0])
            + _rows(step, "vid", "p3", [{"type": "video", "path": str(video)}], [0.5, 0.5, 0.0, 1.0])
            + _rows(step, "img", "p4", [{"type": "image", "path": str(media / "gone.png")}], [0.0] * 4)
        )
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if step == 3:
            text += "not json\n"
        (run / "rollouts" / f"step_{step:06d}.jsonl").write_text(text)
    (run / "config.yaml").write_text("run_name: handmade\nalgorithm: grpo\ngroup_size: 4\n")
    return run


def test_report_from_a_run_folder(handmade_run, tmp_path):
    out = tmp_path / "site" / "page.html"
    options = ReportOptions(max_steps=2, prompts_per_step=3, media=MediaLimits(image_px=64))
    result = build_report(handmade_run, out, options)
    html = out.read_text()
    assert result.path == out and result.steps_shown == [1, 5]  # first and last of 3 dumped steps
    assert "omni-rl report: handmade" in html
    # curves: reward per environment, accuracy, KL (the NaN step left out), entropy, length, timings
    titles = re.findall(r'class="chart-title">([^<]+)', html)
    assert titles[:6] == ["Reward", "Accuracy", "KL", "Entropy", "Response length (tokens)", "Timings (s)"]
    # model output and prompts are escaped, never live markup
    assert "<script>alert" not in html and "&lt;script&gt;alert(0)" in html and "&lt;b&gt;bold" in html
    # 3 prompts per step, one per environment first (img, aud, vid; the 2nd img prompt is capped)
    assert html.count('<article class="prompt"') == 6 and "3 of 4 prompts (--prompts-per-step)" in html
    media = out.parent / "page_media"
    files = sorted(p.suffix for p in media.iterdir())
    assert files == [".png", ".webm", ".webm"]  # one copy per source, shared by both steps
    thumb = next(media.glob("*.png"))
    assert max(Image.open(thumb).size) == 64
    assert (
        html.count('<img src="page_media/') == 2 and html.count("<audio") == 2 and html.count("<video") == 2
    )
    for clip in media.glob("*.webm"):  # both convert into streams Chromium plays: VP9 video, Opus audio
        with av.open(str(clip)) as container:
            codecs = {s.codec_context.name for s in container.streams}
            frames = sum(1 for _ in container.decode(container.streams[0]))
        assert codecs in ({"vp9"}, {"opus"}) and frames > 0
    # bad lines are named by file and line; the report still builds
    joined = "\n".join(result.warnings)
    assert "metrics.jsonl:6: invalid JSON" in joined and "step_000003.jsonl:17: invalid JSON" not in joined
    assert result.media_failed == 0  # gone.png belongs to the capped prompt: never converted


def test_missing_media_is_reported_not_fatal(handmade_run, tmp_path):
    result = build_report(handmade_run, tmp_path / "r.html", ReportOptions(max_steps=1, prompts_per_step=4))
    html = (tmp_path / "r.html").read_text()
    assert result.media_failed == 1 and "gone.png" in html and "No such file" in html


def test_report_references_nothing_over_the_network(handmade_run, tmp_path):
    build_report(handmade_run, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert not NETWORK_REF.search(html), NETWORK_REF.search(html)
    assert "http://" not in html and "https://" not in html
    refs = re.findall(r'\b(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("r_media/") and (tmp_path / r).is_file() for r in refs)
    # the pattern itself catches what it should
    for bad in ('<img src="https://x/y.png">', "<a href=//cdn.x/y>", "background:url('http://x')"):
        assert NETWORK_REF.search(bad), bad


def test_cli_report_and_errors(handmade_run, tmp_path, capsys):
    assert main(["report", str(handmade_run), "--max-steps", "1"]) == 0
    assert (handmade_run / "report.html").is_file() and "report: " in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2  # a folder that is not a run
    assert "metrics.jsonl" in capsys.readouterr().err
    assert main(["report", str(handmade_run), "--max-steps", "0"]) == 2
    assert "max_steps must be >= 1" in capsys.readouterr().err
    with pytest.raises(RunFolderError):
        build_report(tmp_path / "missing")


def test_dumper_writes_data_url_media_beside_the_dump(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    rows = [
        {"response": "A", "target": "A", "prompt_id": "p", "sample_index": i,
         "media": [{"type": "image", "url": url, "path": None}, {"type": "image", "url": "data:image/png;base64,!!"}]}
        for i in range(3)
    ]  # fmt: skip
    path = RolloutDumper(tmp_path / "rollouts").dump(1, rows)
    dumped = [json.loads(line) for line in path.read_text().splitlines()]
    written = list((tmp_path / "rollouts" / "media").iterdir())
    assert len(written) == 1 and written[0].suffix == ".png" and written[0].read_bytes() == buf.getvalue()
    assert all(d["media"][0]["path"] == str(written[0]) for d in dumped)
    assert dumped[0]["media"][0]["url"]["omitted"] == "data-uri"  # never inline in the JSONL
    assert dumped[0]["media"][1]["path"] is None  # a malformed payload is left without a file


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


PLAYBACK_PAGE = """<!DOCTYPE html><html><body><video id="v" muted preload="auto" src="{video}"></video>
<audio id="a" preload="auto" src="{audio}"></audio><div id="out"></div><script>
var out = {{}};
function note(key, value) {{ out[key] = value; document.getElementById('out').textContent = JSON.stringify(out); }}
['v', 'a'].forEach(function (id) {{
  var el = document.getElementById(id);
  el.addEventListener('loadeddata', function () {{ note(id, [el.videoWidth || 0, el.duration]); }});
  el.addEventListener('error', function () {{ note(id, 'error ' + (el.error && el.error.code)); }});
}});
</script></body></html>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_main_job_report_in_headless_chromium(tmp_path):
    """The README's main job, 3 steps, then its report loaded in Chromium: no console messages at all
    (the page logs nothing, so any is an error or a failed script), a screenshot, the plots and media."""
    train = subprocess.run(
        [OMNI_RL, "train", "--config", str(ROOT / "configs/tiny_grpo_cpu.yaml"), f"output_dir={tmp_path}",
         "run_name=main", "steps=3", "logging.rollouts_every=1", "eval.every=0", "checkpoint.every=0",
         "logging.tensorboard=false", "logging.console_mode=plain", "generation.mode=local",
         "scoring.mode=local", "trainer_run.mode=local", "media_store=local"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    out = tmp_path / "report" / "index.html"
    assert main(["report", str(tmp_path / "main"), "--out", str(out)]) == 0
    url = out.as_uri()

    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    html = dom.stdout
    assert html.count("<svg") >= 6 and "<polyline" in html  # the curves
    for tag in ("<img", "<audio", "<video"):
        assert tag in html, f"no {tag} element in the loaded page"
    assert "128 of 128 responses shown" in html  # the script ran (filters fill this in)

    shot = tmp_path / "shot.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", url)
    assert run.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, run.stderr[-2000:]
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert Image.open(shot).size == (1280, 1600)

    # filters and step from the address: step 1, image prompts, reward 0 only
    rows = [json.loads(x) for x in (tmp_path / "main/rollouts/step_000001.jsonl").read_text().splitlines()]
    env = "synthetic_image_color"
    want = sum(1 for r in rows if r["env"] == env and r["reward"] == 0)
    filtered = _chromium("--dump-dom", f"{url}#step=1&env={env}&reward=zero").stdout
    assert f"{want} of {len(rows)} responses shown" in filtered
    sections = dict(re.findall(r'<section class="step" data-step="(\d+)"([^>]*)>', filtered))
    assert "hidden" not in sections["1"] and "hidden" in sections["3"]
    step1 = filtered[filtered.index('data-step="1"') : filtered.index('data-step="2"')]
    cards = re.findall(r'<article class="prompt" data-env="([^"]+)"([^>]*)>', step1)
    shown_cards = [card_env for card_env, attrs in cards if "hidden" not in attrs]
    prompts_with_zero = {r["prompt_id"] for r in rows if r["env"] == env and r["reward"] == 0}
    assert len(cards) == 8 and shown_cards == [env] * len(prompts_with_zero), cards

    # the report's video and audio copies really decode in Chromium (not just elements in the DOM)
    video = re.search(r'<video [^>]*src="([^"]+)"', html).group(1)
    audio = re.search(r'<audio [^>]*src="([^"]+)"', html).group(1)
    probe = out.parent / "playback.html"
    probe.write_text(PLAYBACK_PAGE.format(video=video, audio=audio))
    played = _chromium("--dump-dom", probe.as_uri())
    result = json.loads(
        re.search(r'<div id="out">(.*?)</div>', played.stdout).group(1).replace("&quot;", '"')
    )
    assert result["v"][0] == 64 and result["v"][1] > 3.5, result  # 8 frames at 2 fps, 64 px wide
    assert 0.9 < result["a"][1] < 1.5, result  # the 1 s beep clip


def test_caps_keep_large_runs_small(handmade_run, tmp_path):
    options = ReportOptions(
        max_steps=1, prompts_per_step=3, responses_per_prompt=2, media=MediaLimits(max_files=1)
    )
    result = build_report(handmade_run, tmp_path / "r.html", options)
    html = (tmp_path / "r.html").read_text()
    assert result.steps_shown == [5] and html.count('<section class="step"') == 1
    assert html.count('<tr class="resp"') == 6 and html.count("2 more responses not shown") == 3
    assert result.media_files == 1 and len(list((tmp_path / "r_media").iterdir())) == 1
    assert html.count("media cap (1) is reached") == 2
