"""Speech recognition: word error rate (WER) of a transcript against a reference, computed with jiwer
after the text normalisation the Open ASR Leaderboard uses for English (OpenAI Whisper's).

Target: the reference transcript (a string). Per row, after normalising both sides and splitting on
whitespace into N reference words::

    wer = (substitutions + deletions + insertions) / max(N, 1)
    score = max(0, 1 - wer);  correct = wer <= wer_threshold   (default 0: exact after normalisation)

Empty texts (before or after normalisation, e.g. a reference of only "uh, um"): an empty reference
with an empty hypothesis is a perfect match (wer 0, score 1); an empty reference with k hypothesis
words counts k insertions, wer = k (the denominator is max(N, 1); jiwer 4 does the same), score 0;
an empty hypothesis against N reference words is N deletions, wer 1, score 0.

``summarize`` reports the corpus WER the leaderboard reports, total errors / total reference words
over all scored rows (not the mean of the per-row WERs), beside count, mean_score, accuracy, errors.

Option ``normalize``:
- ``whisper_english`` (default): OpenAI Whisper's ``EnglishTextNormalizer`` (lower case, bracketed
  and parenthesised text and fillers such as "uh"/"um" dropped, contractions and titles expanded,
  spelled-out numbers and currencies to digits, British to American spelling, punctuation dropped),
  taken from the ``whisper-normalizer`` package with its four additions to OpenAI's rules removed
  ("kinda", "sorta", "dunno", and "cause" -> "because", which turns "the cause" into "the
  because"), so that it gives OpenAI's output. A text that makes the normaliser fail (for example a
  number of more than 4300 digits) is normalised with ``basic`` instead; ``details`` says so.
  The leaderboard's own copy (huggingface/open_asr_leaderboard ``normalizer/normalizer.py``) has
  since added rules that join dotted abbreviations ("U.S.A." -> "usa", here "u s a") and drop
  ellipses; those are not applied here. The leaderboard also drops rows whose reference normalises
  to nothing; here they are scored (above).
- ``basic``: Unicode NFKC, lower case, apostrophes dropped ("don't" -> "dont"), other punctuation and
  symbols turned into spaces.
- ``raw``: none (case and punctuation count); words are split on whitespace.

Bounds: responses are capped by ``max_response_chars``; after normalisation each side may hold at most
``max_words`` words, and before it at most ``8 * max_words`` characters after Unicode NFKD (a few
characters expand 18-fold), else the row is an error. The normaliser's regular expressions that take
quadratic time on hostile text (unclosed brackets, long whitespace runs, runs of fillers) are preceded
by a linear pass that gives the same words, so a hostile 20 000-character response normalises in tens
of milliseconds instead of seconds.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import jiwer

from verifiers.base import BaseOptions, OptionError, Verifier, VerifierError, VerifyResult
from verifiers.compat import openai_english_normalizer
from verifiers.registry import register

Normalize = Literal["whisper_english", "basic", "raw"]

_FILLERS = re.compile(r"\b(hmm|mm|mhm|mmm|uh|um)\b")  # the words OpenAI's normaliser drops
_SPACES = re.compile(r"\s+")
_BRACKET_OPEN = re.compile(r"[<\[]")
_BRACKET_CLOSE = re.compile(r"[>\]]")
_APOSTROPHES = str.maketrans("", "", "'’‘`")


def _drop_bracketed(s: str) -> str:
    """``re.sub(r"[<\\[][^>\\]]*[>\\]]", "", s)`` in linear time. An opener with no closer after it
    can never match; it becomes ``|``, a symbol the normaliser turns into a space like ``<`` or ``[``."""
    out, pos = [], 0
    while (opener := _BRACKET_OPEN.search(s, pos)) is not None:
        closer = _BRACKET_CLOSE.search(s, opener.start() + 1)
        out.append(s[pos : opener.start()])
        if closer is None:
            out.append(_BRACKET_OPEN.sub("|", s[opener.start() :]))
            return "".join(out)
        pos = closer.end()
    out.append(s[pos:])
    return "".join(out)


def _drop_parenthesised(s: str) -> str:
    """``re.sub(r"\\(([^)]+?)\\)", "", s)`` in linear time (``()`` is kept, as there); a ``(`` with no
    ``)`` after it becomes ``|``."""
    out, pos = [], 0
    start = s.find("(")
    while start != -1:
        if s.startswith(")", start + 1):  # "()" needs one character inside to match
            start = s.find("(", start + 1)
            continue
        end = s.find(")", start + 1)
        out.append(s[pos:start])
        if end == -1:
            out.append(s[start:].replace("(", "|"))
            return "".join(out)
        pos = end + 1
        start = s.find("(", pos)
    out.append(s[pos:])
    return "".join(out)


def whisper_english(text: str) -> str:
    """OpenAI Whisper's English normalisation (see the module docstring), in linear time."""
    # The steps OpenAI's normaliser starts with, done first in linear time; on the result its own
    # passes find nothing left to remove and no long whitespace runs to backtrack over.
    text = _drop_parenthesised(_drop_bracketed(text.lower()))
    text = _SPACES.sub(" ", _FILLERS.sub("", text))
    return openai_english_normalizer()(text).strip()


def basic(text: str) -> str:
    """NFKC, lower case, apostrophes dropped, other punctuation and symbols -> spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def raw(text: str) -> str:
    return " ".join(text.split())


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "whisper_english": whisper_english,
    "basic": basic,
    "raw": raw,
}


@functools.lru_cache(maxsize=1024)
def normalized_reference(text: str, mode: str) -> list[str]:
    """The normalised words of a reference, cached: GRPO scores G samples against one reference, so
    the normaliser runs once per group instead of G times (keyed by the text and the normaliser).
    Callers must not mutate the returned list."""
    return NORMALIZERS[mode](text).split()


@dataclass
class AsrOptions(BaseOptions):
    normalize: Normalize = "whisper_english"
    # correct = wer <= wer_threshold (0: the transcript matches exactly after normalisation)
    wer_threshold: float = 0.0
    # most words per side after normalisation (bounds the edit distance; 20 000 chars < 10 000 words)
    max_words: int = 10_000
    # reward: continuous 1 - WER (default), or binary 1/0 by WER < binary_below (details keep both)
    reward: Literal["continuous", "binary"] = "continuous"
    binary_below: float = 0.1

    def __post_init__(self) -> None:
        if self.wer_threshold < 0:
            raise OptionError(f"asr: option wer_threshold={self.wer_threshold} must be >= 0")
        if self.max_words < 1:
            raise OptionError(f"asr: option max_words={self.max_words} must be >= 1")
        if self.binary_below <= 0:
            raise OptionError(f"asr: option binary_below={self.binary_below} must be > 0")


@dataclass(frozen=True)
class WordErrors:
    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def ref_words(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def wer(self) -> float:
        return self.errors / max(self.ref_words, 1)


def word_errors(reference: list[str], hypothesis: list[str]) -> WordErrors:
    """Levenshtein alignment counts over words (jiwer; an empty reference is all insertions)."""
    if not reference:
        return WordErrors(0, 0, 0, len(hypothesis))
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return WordErrors(out.hits, out.substitutions, out.deletions, out.insertions)


@register("asr")
class AsrVerifier(Verifier):
    Options = AsrOptions
    options: AsrOptions

    def check_target(self, target: Any) -> None:
        if not isinstance(target, str):
            raise VerifierError(
                f"asr target must be the reference transcript (a string), got {type(target).__name__}"
            )

    def _normalize(self, text: str, field: str, mode: str) -> list[str]:
        limit = self.options.max_words
        if mode != "raw" and len(unicodedata.normalize("NFKD", text)) > 8 * limit:
            raise VerifierError(
                f"asr {field} expands to over {8 * limit} characters under Unicode normalisation "
                f"(8 x max_words={limit})"
            )
        words = normalized_reference(text, mode) if field == "target" else NORMALIZERS[mode](text).split()
        if len(words) > limit:
            raise VerifierError(
                f"asr {field} has {len(words)} words after normalisation, over max_words={limit}"
            )
        return words

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        mode = self.options.normalize
        details: dict[str, Any] = {"normalize": mode}
        try:
            ref = self._normalize(target, "target", mode)
            hyp = self._normalize(response, "response", mode)
        except VerifierError:
            raise
        except Exception as exc:  # the whisper normaliser failed on this text: use basic on both sides
            details["normalize"] = "basic"
            details["normalize_fallback"] = f"{mode} failed: {type(exc).__name__}: {exc}"[:200]
            ref = self._normalize(target, "target", "basic")
            hyp = self._normalize(response, "response", "basic")
        counts = word_errors(ref, hyp)
        wer = counts.wer
        details.update(
            wer=wer,
            substitutions=counts.substitutions,
            deletions=counts.deletions,
            insertions=counts.insertions,
            hits=counts.hits,
            ref_words=counts.ref_words,
            reference=" ".join(ref),
            hypothesis=" ".join(hyp),
        )
        continuous = max(0.0, 1.0 - wer)
        details["continuous_score"] = continuous
        score = continuous if self.options.reward == "continuous" else float(wer < self.options.binary_below)
        return VerifyResult(score, wer <= self.options.wer_threshold, " ".join(hyp), details)

    def summarize(self, results: Iterable[VerifyResult]) -> dict[str, float]:
        results = list(results)
        summary = super().summarize(results)
        scored = [r.details for r in results if r.error is None and "ref_words" in r.details]
        errors = sum(d["substitutions"] + d["deletions"] + d["insertions"] for d in scored)
        ref_words = sum(d["ref_words"] for d in scored)
        summary["wer"] = errors / max(ref_words, 1)
        summary["word_errors"] = errors
        summary["ref_words"] = ref_words
        return summary
