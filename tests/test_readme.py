"""The README's claims: its two commands, its Python examples (with the values their comments state),
and its CLI example."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from omni_rl.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_command():
    first = code_blocks("bash")[0]
    commands = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    setup_and_main, setup_and_tests = commands
    assert setup_and_main.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e")
    assert setup_and_tests.endswith("&& pytest -q")
    assert setup_and_tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_python_examples_run_and_give_the_values_they_state():
    checked = 0
    for block in code_blocks("python"):
        namespace: dict = {}
        lines = block.splitlines()
        for i, line in enumerate(lines):
            code, sep, comment = line.partition("  # ")
            if sep and not line.startswith(" ") and "=" not in code.split("(")[0]:
                exec("\n".join(lines[:i]), namespace)  # the block up to this line
                expected = ast.literal_eval(comment.strip())
                assert eval(code, namespace) == expected, line  # our own README text, not model output
                checked += 1
        exec(block, {})
    assert checked >= 2  # the stated values are really compared (a formatter once changed the spacing)


def test_readme_cli_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    line = next(
        line for block in code_blocks("bash")[1:] for line in block.splitlines() if "omni-rl verify" in line
    )
    args = shlex.split(line)[1:]
    args[args.index("--output") + 1] = str(tmp_path / "scored.jsonl")
    assert main(args) == 0
    assert (tmp_path / "scored.jsonl").read_text().count("\n") == 4
