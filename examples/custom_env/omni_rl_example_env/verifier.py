"""The ``orientation`` verifier: which of a small vocabulary of answer words a response names.

Pure Python (no torch or Ray), like every verifier: ``omni-rl verify --verifier orientation`` runs it
offline on a JSONL file once the package is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import verifiers
from verifiers import BaseOptions, Verifier, VerifierError, VerifyResult

_WORD = re.compile(r"[a-z]+")


@dataclass
class OrientationOptions(BaseOptions):
    # the answer vocabulary; the target is one of these words
    words: list[str] = field(default_factory=lambda: ["horizontal", "vertical"])
    # also accept a word's first ``min_prefix`` letters or more ("horiz", "vert"); 0: whole words only
    min_prefix: int = 0


@verifiers.register("orientation")
class OrientationVerifier(Verifier):
    """The answer is the last vocabulary word the response names; score 1 when it is the target."""

    Options = OrientationOptions

    def check_target(self, target: Any) -> None:
        if not isinstance(target, str) or target.strip().lower() not in self.vocabulary:
            raise VerifierError(f"orientation target must be one of {self.vocabulary}, got {target!r}")

    @property
    def vocabulary(self) -> list[str]:
        return [w.strip().lower() for w in self.options.words]

    def read(self, token: str) -> str | None:
        for word in self.vocabulary:
            if token == word:
                return word
            if self.options.min_prefix and len(token) >= self.options.min_prefix and word.startswith(token):
                return word
        return None

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        named = [w for w in (self.read(t) for t in _WORD.findall(response.lower())) if w is not None]
        answer = named[-1] if named else None
        ok = answer == target.strip().lower()
        return VerifyResult(float(ok), ok, answer, {"named": named})
