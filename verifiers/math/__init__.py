"""Math answers: read the final answer from a response and compare it with the gold answer.

    v = verifiers.get("math")
    v.verify("... so the answer is \\boxed{\\frac{1}{2}}", "0.5").correct   # True

Target: the gold answer, a string (LaTeX or plain, with or without $...$ or \\boxed{}) or a number,
or a list of acceptable answers. ``extracted`` is the answer string read from the response (None if
there is none: score 0); ``details`` holds ``gold`` (the gold answer read), ``source`` (where the
answer was found: boxed, final_answer, answer, whole, latex, number) and ``parsed`` (whether it parsed
as math; otherwise it was compared as text).

Equivalence (see equivalence.py): numbers exactly, or, when either side is written with a decimal
point, equal after rounding to ``float_rounding`` decimals or within ``rel_tol`` (relative); "1,000",
"1 000" and "1000" agree; fractions, radicals, pi, e and i; expressions with variables numerically at
fixed points (x^2+2x+1 = (x+1)^2), sympy as a last resort; sets and lists ignore order, tuples and
intervals do not, and open vs closed ends matter; "x = 3", "AB = 3" and "a:b = 2:3" match their value
side either way; a gold of k > 1 items matches the last k boxes; disjoint one-variable inequalities
("x<0 or x>2") are the union of their intervals; equations and inequalities
match when they say the same thing (y = 2x+1 vs 2x+1 = y, x < 1 vs -x > -1); matrices entry by entry;
units, currency signs and degree marks are ignored (5 cm, \\$5, 30^\\circ).

Percentages: "28%" equals 0.28; with ``percent_as_unit`` (default) it also equals 28, since a gold
answer "28" to a "what percent" question is common (Math-Verify does the same for whole numbers).

Safety: nothing is evaluated as code: our own tokenizer and parser build a small tree; sympy sees
only objects built with its constructors. Inputs are capped (``max_response_chars``, ``max_expr_chars``,
nesting depth, exponent and factorial sizes). With ``isolate=True`` (default) answers that exact
arithmetic decides (most: numbers, fractions, sets of them...) are scored in the calling process in
bounded time; everything that needs numeric or symbolic evaluation runs in a killable worker
process bounded by ``timeout_s``, in any thread or Ray actor.

Differences from Math-Verify are listed with reasons in tests/data/math_cases.py (``ours``/``why``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from verifiers.base import BaseOptions, OptionError, Verifier, VerifierError, VerifyResult, strip_thinking
from verifiers.math.equivalence import Tolerance, equivalent
from verifiers.math.extract import Candidate, candidates, last_boxes
from verifiers.math.lexer import ParseError
from verifiers.math.nodes import Node
from verifiers.math.parse import norm_text, parse_answer
from verifiers.registry import register

__all__ = ["MathOptions", "MathVerifier", "read_answer"]


@dataclass
class MathOptions(BaseOptions):
    isolate: bool = True
    # answers written with a decimal point: equal after rounding to this many decimals...
    float_rounding: int = 6
    # ...or within this relative difference
    rel_tol: float = 1e-9
    # "28%" also equals 28 (it always equals 0.28)
    percent_as_unit: bool = True
    # let sympy decide expressions numeric checks cannot (slower; bounded by timeout_s)
    use_sympy: bool = True
    # longest answer string that is parsed (longer ones are compared as text)
    max_expr_chars: int = 1_000

    def __post_init__(self) -> None:
        if not 0 <= self.float_rounding <= 30:
            raise OptionError(f"math: option float_rounding={self.float_rounding} must be in [0, 30]")
        if not 0 <= self.rel_tol < 1:
            raise OptionError(f"math: option rel_tol={self.rel_tol} must be in [0, 1)")
        if self.max_expr_chars < 1:
            raise OptionError(f"math: option max_expr_chars={self.max_expr_chars} must be >= 1")


def read_answer(text: str, max_chars: int = 1_000) -> tuple[Node | None, Candidate | None, bool]:
    """(tree, candidate it came from, parsed as math) for the answer in ``text``; (None, None, False)
    when there is none. A candidate that does not parse is compared as text if the response marked it
    as its answer (boxed, "final answer is"), else the next candidate is tried."""
    fallback: Candidate | None = None
    for cand in candidates(text, max_chars):
        if len(cand.text) > max_chars or not cand.text.strip():
            continue
        try:
            node = _parse_or_last_part(cand)
        except (ParseError, RecursionError):
            if cand.strong:
                return Node("text", (), norm_text(cand.text)), cand, False
            fallback = fallback or cand
            continue
        if cand.percent and node.op != "pct":
            node = Node("pct", (node,))
        return node, cand, True
    if fallback is not None:
        return Node("text", (), norm_text(fallback.text)), fallback, False
    return None, None, False


def _parse_or_last_part(cand: Candidate) -> Node:
    """Parse the candidate; if that fails, what follows its last '=' ("1 = \\zzz = x = 0" -> 0)."""
    try:
        return parse_answer(cand.text, cand.plain)
    except (ParseError, RecursionError):
        if "=" not in cand.text or "," in cand.text or ";" in cand.text:
            raise
        return parse_answer(cand.text.rsplit("=", 1)[1], cand.plain)


_GOLD_CACHE: OrderedDict[tuple[str, int], tuple[Node | None, Candidate | None, bool]] = OrderedDict()


_GOLD_LOCK = threading.Lock()


def _read_gold(gold: str, max_chars: int) -> tuple[Node | None, Candidate | None, bool]:
    """Gold answers repeat (G samples per prompt): parse each once."""
    key = (gold, max_chars)
    with _GOLD_LOCK:
        hit = _GOLD_CACHE.get(key)
    if hit is None:
        hit = read_answer(gold, max_chars)
        with _GOLD_LOCK:
            _GOLD_CACHE[key] = hit
            if len(_GOLD_CACHE) > 512:
                _GOLD_CACHE.popitem(last=False)
    return hit


@register("math")
class MathVerifier(Verifier):
    Options = MathOptions

    def check_target(self, target: Any) -> None:
        golds = target if isinstance(target, list) else [target]
        if not golds or not all(isinstance(g, (str, int, float)) and not isinstance(g, bool) for g in golds):
            raise VerifierError("math target must be a string or number (or a non-empty list of them)")

    def verify(self, response: Any, target: Any, **fields: Any) -> VerifyResult:
        """With ``isolate``, answers that exact arithmetic decides (most of them) are scored in this
        process, in bounded time (linear scans, capped parse depth and number sizes); the others go to
        the worker process, which alone runs numeric and symbolic evaluation."""
        if self.options.isolate:
            quick = self._quick(response, target)
            if quick is not None:
                return quick
        return super().verify(response, target, **fields)

    def _quick(self, response: Any, target: Any) -> VerifyResult | None:
        opts = self.options
        if not isinstance(response, str) or len(response) > opts.max_response_chars:
            return None  # the base class reports it
        started = time.perf_counter()
        try:
            self.check_target(target)
            text = strip_thinking(response) if opts.strip_thinking else response
            result = self._score(text, target, exact_only=True)
        except Exception:  # Undecided, or an error the worker will report
            return None
        result.details["elapsed_s"] = round(time.perf_counter() - started, 6)
        return result

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        return self._score(response, target, exact_only=False)

    def _separate_boxes(self, response: str, golds: list[Any], tol: Tolerance) -> VerifyResult | None:
        """A gold of k > 1 items against the last k boxes read together ("\\boxed{2}. Then ...
        \\boxed{3}" answers {2, 3}); boxes next to each other are joined by ``candidates`` already."""
        for gold in golds:
            gold_node, gold_cand, _ = _read_gold(str(gold), self.options.max_expr_chars)
            if gold_node is None or gold_node.op not in ("set", "list", "tuple") or len(gold_node.args) < 2:
                continue
            boxes = last_boxes(response, len(gold_node.args))
            if len(boxes) != len(gold_node.args):
                continue
            joined = ", ".join(boxes)
            try:
                pred = parse_answer(joined) if len(joined) <= self.options.max_expr_chars else None
            except (ParseError, RecursionError):
                pred = None
            if pred is not None and equivalent(gold_node, pred, tol):
                details = {
                    "gold": gold_cand.text if gold_cand else str(gold),
                    "source": "boxes",
                    "parsed": True,
                }
                return VerifyResult(1.0, True, joined, details)
        return None

    def _score(self, response: str, target: Any, exact_only: bool) -> VerifyResult:
        opts = self.options
        tol = Tolerance(opts.rel_tol, opts.float_rounding, opts.percent_as_unit, opts.use_sympy, exact_only)
        pred, cand, parsed = read_answer(response, opts.max_expr_chars)
        golds = target if isinstance(target, list) else [target]
        details: dict[str, Any] = {}
        for gold in golds:
            gold_node, gold_cand, _ = _read_gold(str(gold), opts.max_expr_chars)
            if gold_node is None:
                raise VerifierError(f"no answer found in target {str(gold)[:80]!r}")
            details = {"gold": gold_cand.text if gold_cand else str(gold)}
            if pred is not None and equivalent(gold_node, pred, tol):
                details.update(source=cand.source, parsed=parsed)  # type: ignore[union-attr]
                return VerifyResult(1.0, True, cand.text.strip(), details)  # type: ignore[union-attr]
        boxed = self._separate_boxes(response, golds, tol)
        if boxed is not None:
            return boxed
        if cand is None:
            return VerifyResult(0.0, False, None, {**details, "source": None})
        return VerifyResult(
            0.0, False, cand.text.strip(), {**details, "source": cand.source, "parsed": parsed}
        )
