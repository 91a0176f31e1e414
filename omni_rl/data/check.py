"""Check a dataset without training: every row validated, every media header probed, every row fitted
to its environment. ``omni-rl data check`` prints the result."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_rl.data.loading import LoadReport, RowIssue, load_prompts
from omni_rl.data.schema import Prompt
from omni_rl.media.params import MediaParams

_ORIGIN = re.compile(r"^(?P<file>.*?)(?::(?P<line>\d+)| row (?P<row>\d+))$")
_ERROR_NAME = re.compile(r"^([A-Z][A-Za-z]+Error):")


@dataclass
class CheckReport:
    path: str
    rows: int = 0
    ok: int = 0
    issues: list[RowIssue] = field(default_factory=list)

    def kinds(self) -> Counter[str]:
        """Bad rows by kind: the media error's class, or the field's first component."""
        out: Counter[str] = Counter()
        for issue in self.issues:
            named = _ERROR_NAME.match(issue.reason)
            out[named.group(1) if named else issue.field.split(".")[0].split("[")[0]] += 1
        return out

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds().items()))
        tail = f" ({kinds})" if kinds else ""
        return f"{self.path}: {self.rows} rows, {self.ok} ok, {len(self.issues)} bad{tail}"


def check_dataset(
    path: str | Path, *, env: str | None = None, params: MediaParams | None = None
) -> CheckReport:
    """Validate ``path`` as training would load it; ``env`` checks every row against that environment
    (default: each row's own ``env``). DatasetError when the file cannot be read at all."""
    loaded: LoadReport = load_prompts(path, params=params, log_issues=0)
    report = CheckReport(path=str(path), rows=loaded.rows, issues=list(loaded.issues))
    envs: dict[str, Any] = {}
    for prompt in loaded.prompts:
        issue = _env_issue(prompt, env or prompt.env, envs)
        if issue is None:
            report.ok += 1
        else:
            report.issues.append(issue)
    report.issues.sort(key=lambda i: i.index)
    return report


def _env_issue(prompt: Prompt, name: str, envs: dict[str, Any]) -> RowIssue | None:
    import environments
    from environments.base import EnvError, EnvRowError

    file, index, unit = _where(prompt)
    if name not in envs:
        try:
            envs[name] = environments.get(name)
        except EnvError as exc:
            envs[name] = exc
    found = envs[name]
    if isinstance(found, Exception):
        return RowIssue(file, index, "env", f"environment {name!r}: {found}", unit)
    try:
        found.make_prompt(prompt)
    except EnvRowError as exc:
        return RowIssue(file, index, exc.field, f"environment {name!r}: {exc.reason}", unit)
    return None


def _where(prompt: Prompt) -> tuple[str, int, Any]:
    match = _ORIGIN.match(prompt.origin)
    if match is None:
        return prompt.origin, 0, "line"
    if match.group("line") is not None:
        return match.group("file"), int(match.group("line")), "line"
    return match.group("file"), int(match.group("row")), "row"
