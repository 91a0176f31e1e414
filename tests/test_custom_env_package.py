"""The README's "Register a new environment": the plug-in package examples/custom_env installed for real
with pip (offline, into a temporary folder, never into the venv) and found through its entry points by
``omni-rl envs``, ``omni-rl verify`` and ``omni-rl train``; the decorator path in-process (the README's
example and the package's own classes imported from source)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import environments
import verifiers
from environments.registry import REGISTRY as ENV_REGISTRY
from omni_rl.data import load_prompts
from omni_rl.logging import read_metrics
from verifiers.registry import REGISTRY as VERIFIER_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/custom_env"
DIST = "omni-rl-example-env"
PACKAGE = "omni_rl_example_env"


def installed_in_venv() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


INSTALLED_BEFORE = installed_in_venv()  # by someone following the README in this venv


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example package pip-installed into a folder of its own (used through PYTHONPATH)."""
    tmp = tmp_path_factory.mktemp("custom_env")
    # an in-tree build writes build/ and *.egg-info beside the sources: build a copy, not the work tree
    src = shutil.copytree(
        EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = tmp / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # offline
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target), str(src)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (target / PACKAGE / "env.py").is_file()
    entry_points = next(target.glob("omni_rl_example_env-*.dist-info")) / "entry_points.txt"
    assert "[omni_rl.environments]" in entry_points.read_text()
    assert installed_in_venv() == INSTALLED_BEFORE  # nothing went into the venv
    return target


def omni_rl(site: Path | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "omni_rl.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_omni_rl_envs_and_verify_find_the_plugin_through_its_entry_points(site, tmp_path):
    if not INSTALLED_BEFORE:
        assert "stripes" not in omni_rl(None, "envs").stdout  # not installed: not there
    proc = omni_rl(site, "envs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines()[1:]}
    assert "mcq" in rows  # the built-ins are still listed
    _, kind, verifier, options, generator, description = rows["stripes"]
    assert (kind, verifier, options, generator) == (
        "single-turn",
        "orientation x1 (min_prefix=0)",
        "lenient=False",
        "yes",
    )
    assert description.startswith("Example plug-in")

    scored = tmp_path / "scored.jsonl"
    rows_in = tmp_path / "rows.jsonl"
    rows_in.write_text(
        "".join(
            json.dumps({"response": r, "target": t}) + "\n"
            for r, t in [("vertical", "vertical"), ("Horizontal.", "vertical"), ("vert", "vertical")]
        )
    )
    proc = omni_rl(site, "verify", "--verifier", "orientation", "--input", str(rows_in), "--output", str(scored),
                   "--option", "min_prefix=4")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [json.loads(line)["score"] for line in scored.read_text().splitlines()] == [1.0, 0.0, 1.0]


def test_omni_rl_train_runs_the_example_config_with_the_plugin(site, tmp_path):
    proc = omni_rl(
        site, "train", "--config", "examples/custom_env/train.yaml", f"output_dir={tmp_path}", "steps=2",
        "logging.console_mode=plain", "checkpoint.at_end=false", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "custom_env"
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert 0.0 <= row["reward/stripes"] <= 1.0 and "accuracy/stripes" in row
    # the package's generator wrote the data (images beside the rows) and its verifier scored the samples
    (data,) = (tmp_path / ".cache/data").glob("stripes-*/stripes.jsonl")
    assert len(load_prompts(data).prompts) == 16
    dumped = [json.loads(line) for line in (run_dir / "rollouts/step_000002.jsonl").read_text().splitlines()]
    assert len(dumped) == 2 * 4
    assert {d["env"] for d in dumped} == {"stripes"} and all(
        set(d["scores"]) == {"orientation"} for d in dumped
    )


@pytest.fixture
def scratch_registries():
    """Names a test registers are dropped after it (built-ins imported meanwhile stay registered)."""
    registries = (ENV_REGISTRY, VERIFIER_REGISTRY)
    before = [set(registry.classes) for registry in registries]
    yield
    for registry, names in zip(registries, before, strict=True):
        for name in set(registry.classes) - names - set(registry.builtins):
            del registry.classes[name]


def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"### {title}\n")
    end = re.compile(r"^#{1,3} ", flags=re.M).search(readme, start + 4)
    return readme[start : end.start() if end else None]


def test_readme_decorator_example_gives_the_values_it_states(scratch_registries):
    section = readme_section("Register a new environment")
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    lines = block.splitlines()
    checked = 0
    for i, line in enumerate(lines):
        code, sep, comment = line.partition("  # ")
        if sep and not line.startswith(" ") and "=" not in code.split("(")[0]:
            namespace: dict = {}
            exec("\n".join(lines[:i]), namespace)  # our own README text
            assert eval(code, namespace) == ast.literal_eval(comment.strip()), line
            checked += 1
    assert checked >= 2
    assert (
        "pip install ./examples/custom_env && omni-rl train --config examples/custom_env/train.yaml"
        in section
    )


def test_the_package_registers_by_decorator_when_imported(scratch_registries, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    try:
        from omni_rl_example_env import StripesEnvironment

        assert environments.get_class("stripes") is StripesEnvironment
        assert environments.get("stripes", lenient=True).specs[0].options == {"min_prefix": 1}
        with pytest.raises(environments.EnvOptionError, match="unknown option"):
            environments.get("stripes", strict=True)
        assert verifiers.get("orientation").verify("They are horizontal.", "horizontal").score == 1.0

        path = StripesEnvironment.generate(tmp_path, 4, seed=1)
        prompts = load_prompts(path).prompts
        assert sorted(p.target for p in prompts) == ["horizontal", "horizontal", "vertical", "vertical"]
        env = environments.get("stripes", lenient=True)
        prompt = env.make_prompt(prompts[0])
        assert prompt.messages[-1].text.endswith("Answer with one word: horizontal or vertical.")
        assert env.score(prompt, prompt.target[:1]).reward == 1.0
        assert env.score(prompt, "diagonal").reward == 0.0
    finally:
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[module]
