"""The math verifier: Math-Verify's public cases, extraction, equivalence, options, safety and limits."""

from __future__ import annotations

import builtins
import threading
import time

import pytest

import verifiers
from tests.data.math_cases import CASES, MVCase, math_verify_verdict
from verifiers.math import read_answer

_VERIFIERS: dict[int, verifiers.Verifier] = {}


def inproc(float_rounding: int = 6) -> verifiers.Verifier:
    if float_rounding not in _VERIFIERS:
        _VERIFIERS[float_rounding] = verifiers.get("math", isolate=False, float_rounding=float_rounding)
    return _VERIFIERS[float_rounding]


# ---- Math-Verify's public test cases ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}-{i}" for i, c in enumerate(CASES)])
def test_math_verify_public_cases(case: MVCase):
    result = inproc(case.precision).verify(case.pred, case.gold)
    assert result.error is None
    assert result.correct is case.our_expected, (result.extracted, result.details)


def test_deliberate_disagreements_are_few_and_explained():
    differing = [c for c in CASES if c.ours is not None and c.ours != c.expected]
    assert len(CASES) >= 150
    assert len(differing) <= 12 and all(c.why for c in differing)


def test_we_pass_more_of_math_verify_cases_than_math_verify():
    pytest.importorskip("math_verify")
    ours = sum(inproc(c.precision).verify(c.pred, c.gold).correct is c.expected for c in CASES)
    theirs = sum(math_verify_verdict(c) is c.expected for c in CASES)
    assert ours >= theirs, (ours, theirs)


# ---- extraction -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response, extracted",
    [
        (r"so $\boxed{\frac{1}{\sqrt{2}}}$.", r"\frac{1}{\sqrt{2}}"),  # nested braces
        (r"first \boxed{3}, after checking again \boxed{5}", "5"),  # the last box wins
        (r"\fbox{x+1}", "x+1"),
        (r"the roots are \boxed{-2} \quad \text{and} \quad \boxed{1}.", "-2, 1"),  # boxes joined
        ("We found 4. The final answer is $7$. I hope it is correct.", "7"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("Some work... Answer: 12", "12"),
        ("we get 3, then 4", "4"),  # the last number
        (r"we get $x = 3$ and then 2/3", "2/3"),
        (r"\frac{3}{4}", r"\frac{3}{4}"),  # a bare answer
        (r"<think>so \boxed{1}</think> The answer is $2$.", "2"),  # reasoning is skipped
        ("the total is 1,000,000 dollars", "1,000,000"),
    ],
)
def test_extraction(response: str, extracted: str):
    node, _, parsed = read_answer(response)
    result = inproc().verify(response, "0")
    assert node is not None and parsed
    assert result.extracted == extracted


@pytest.mark.parametrize("response", ["no idea", "", "I think it is seven", "<think>still thinking"])
def test_no_answer_scores_zero_with_nothing_extracted(response: str):
    result = inproc().verify(response, "7")
    assert result.score == 0.0 and result.extracted is None and result.error is None


# ---- equivalence ------------------------------------------------------------------------------------

EQUIVALENCE = [
    # numbers, thousands, percentages
    ("1000", "1,000", True),
    ("1000", "1 000", True),
    ("12345.5", r"$12,345.5$", True),
    ("1000", "1,001", False),
    ("0.5", "50%", True),
    (r"50\%", "0.5", True),
    (r"50\%", "50", True),
    (r"50\%", "0.05", False),
    ("1500", r"$1.5 \times 10^{3}$", True),
    ("1500", "1.5e3", True),
    ("-5", "-5.0", True),
    # fractions and radicals
    ("0.5", r"\frac{1}{2}", True),
    (r"\frac{1}{2}", r"\dfrac{1}{2}", True),
    (r"\frac{1}{2}", "1/2", True),
    (r"\frac{1}{2}", r"\frac12", True),
    (r"\frac{1}{3}", "0.333333", True),
    (r"\frac{1}{3}", "0.33", False),
    (r"2\sqrt{3}", r"\sqrt{12}", True),
    (r"2\sqrt{3}", r"3\sqrt{2}", False),
    ("3", r"\sqrt[3]{27}", True),
    ("-2", r"\sqrt[3]{-8}", True),
    (r"\frac{\sqrt{3}}{2}", r"\frac{\sqrt 3}{2}", True),
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}", False),
    (r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}", False),
    # LaTeX wrappers and delimiters
    (r"\frac{1}{2}", r"$\left( \frac{1}{2} \right)$", True),
    ("6", r"$2 \cdot 3$", True),
    ("6", r"$2 \times 3$", True),
    (r"2\pi", r"\(2 \pi\)", True),
    (r"2\pi", "6.283185", True),
    (r"2\pi", "6.28", False),
    ("8", r"\[2^{3}\]", True),
    ("B", r"\boxed{\text{(B)}}", True),
    ("B", r"\boxed{\text{(C)}}", False),
    ("e", r"$\mathrm{e}$", True),
    (r"e^{i\pi}", "-1", True),
    (r"\log_2 8", "3", True),
    (r"\ln 8", r"3\ln 2", True),
    (r"\binom{5}{2}", "10", True),
    ("5!", "120", True),
    ("3+4i", r"$4i+3$", True),
    ("3+4i", r"$3-4i$", False),
    # symbolic
    ("x^2+2x+1", "$(x+1)^2$", True),
    ("x^2+2x+1", "$(x-1)^2$", False),
    (r"\sin^2 x + \cos^2 x", "1", True),
    (r"\frac{x+2}{7}", r"\frac{x}{7}+\frac{2}{7}", True),
    ("|x-1|", "|1-x|", True),
    (r"\sqrt{x^2}", "x", False),
    ("x+1", "y+1", False),
    (r"\sum_{k=1}^{n} k", r"\frac{n(n+1)}{2}", True),
    (r"\sum_{k=1}^{n} k", r"\frac{n^2}{2}", False),
    # sets, tuples, intervals
    (r"\{1,2\}", r"\boxed{\{2,1\}}", True),
    ("{1,2}", "{2,1}", True),
    ("2, 3", r"\boxed{3, 2}", True),
    ("(1,2]", "[1,2]", False),
    ("(1,2]", r"\boxed{(1, 2]}", True),
    (r"(-\infty, 3]", r"(-\infty,3)", False),
    ("(1, 2)", "(2, 1)", False),
    (r"(\frac{1}{2}, 3)", r"$\left( 0.5, 3 \right)$", True),
    (r"[0,1) \cup (2, \infty)", r"(2,\infty) \cup [0, 1)", True),
    ("x > 5", r"(5, \infty)", True),
    # equations and inequalities
    ("x=3", "3", True),
    ("3", "x = 3", True),
    ("y=2x+1", "2x+1=y", True),
    ("y=2x+1", "y=2x-1", False),
    ("2x+4y-3=0", r"y=-\frac{1}{2}x+\frac{3}{4}", True),
    ("x < 1", "-x > -1", True),
    ("x < 1", "x > -1", False),
    ("x = 3", "y = 3", False),
    # matrices
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"$\begin{bmatrix}1&2\\3&4\end{bmatrix}$", True),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"$\begin{pmatrix} 2 \\ 1 \end{pmatrix}$", False),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", "(1, 2)", True),
    # units, currency, degrees
    ("5", "5 cm", True),
    ("5", r"$\$5$", True),
    ("5", r"The cost is $5\text{ dollars}$.", True),
    ("30", r"$30^\circ$", True),
    ("30", "30°", True),
    ("1000", r"\$1,000", True),
    ("10", r"$10$ cm$^2$", True),
    ("12", "12 apples", True),
    # several answers
    ("2, 3", r"The solutions are $x = 2$ and $x = 3$.", True),
    ("2, 3", "$x = 2$ or $x = 3$", True),
    ("2, 3", r"\boxed{2}", False),
    (r"1 \pm \sqrt{2}", r"\boxed{1+\sqrt{2}, 1-\sqrt{2}}", True),
]


@pytest.mark.parametrize("gold, response, expected", EQUIVALENCE)
def test_equivalence(gold: str, response: str, expected: bool):
    result = inproc().verify(response, gold)
    assert result.error is None
    assert result.correct is expected, (result.extracted, result.details)
    assert result.score == (1.0 if expected else 0.0)


def test_numeric_tolerance_options():
    assert not inproc().verify("3.1416", "3.14159").correct
    assert verifiers.get("math", isolate=False, rel_tol=1e-4).verify("3.1416", "3.14159").correct
    assert verifiers.get("math", isolate=False, float_rounding=3).verify("3.1416", "3.14159").correct
    assert verifiers.get("math", isolate=False, float_rounding=2).verify("0.33", r"\frac{1}{3}").correct


def test_bad_options_name_the_field():
    for bad in ({"float_rounding": -1}, {"rel_tol": 2.0}, {"max_expr_chars": 0}, {"rel_tol": "lots"}):
        with pytest.raises(verifiers.OptionError, match=next(iter(bad))):
            verifiers.get("math", **bad)


def test_percent_as_unit_option():
    strict = verifiers.get("math", isolate=False, percent_as_unit=False)
    assert strict.verify("50%", "0.5").correct and not strict.verify("50%", "50").correct
    assert inproc().verify("50%", "50").correct


def test_targets_numbers_lists_and_bad_targets():
    v = inproc()
    assert v.verify(r"\boxed{42}", 42).correct and v.verify(r"\boxed{1/2}", 0.5).correct
    assert v.verify(r"\boxed{0.25}", [r"\frac{1}{2}", "1/4"]).correct
    for bad in (True, None, {"a": 1}, [], [1, None]):
        result = v.verify("1", bad)
        assert result.score == 0.0 and "target" in (result.error or "")
    assert "target" in (v.verify("1", "   ").error or "")


# ---- safety and limits ------------------------------------------------------------------------------


GOLD = r"\frac{22}{7}"


def test_injection_strings_create_nothing_and_are_never_evaluated(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.chdir(tmp_path)
    code = f"__import__('os').system('touch {marker}')"
    payloads = [
        code,
        f"\\boxed{{{code}}}",
        f"The answer is ${code}$",
        "__import__('os').system('touch pwned_relative')",
        f"exec(\"open('{marker}', 'w')\")",
        f"\\boxed{{eval(\"__import__('os').system('touch {marker}')\")}}",
    ]
    evaluated: list[str] = []
    for name in ("eval", "exec"):
        real = getattr(builtins, name)

        def spy(src, *args, _real=real, **kwargs):
            if isinstance(src, str):
                evaluated.append(src)
            return _real(src, *args, **kwargs)

        monkeypatch.setattr(builtins, name, spy)
    for v in (inproc(), verifiers.get("math")):  # in this process and in the worker
        for payload in payloads:
            # a gold no payload can equal: the tmp path in them holds digits ("pytest-1")
            for response, gold in ((payload, GOLD), (GOLD, payload), (payload, payload)):
                result = v.verify(response, gold)
                assert result.score in (0.0, 1.0) and isinstance(result.correct, bool)
                if response == payload and gold == GOLD:
                    assert result.score == 0.0
    assert not marker.exists() and not (tmp_path / "pwned_relative").exists()
    assert not [src for src in evaluated if "import" in src or "pwned" in src or "open(" in src]


def test_pathological_input_from_a_thread_is_cut_at_the_time_limit():
    v = verifiers.get("math", timeout_s=1.0)
    assert v.verify(r"\boxed{2}", "2").correct  # worker started
    # symbolic sums whose bounds are not integers: numbers cannot decide, sympy runs for minutes
    gold = r"\sum_{k=1}^{\pi n} k^{9} \sin(k x)"
    response = r"\boxed{\sum_{k=1}^{\pi n} k^{8} \cos(k x)^{3}}"
    out: dict = {}

    def run() -> None:
        start = time.perf_counter()
        out["result"] = v.verify(response, gold)
        out["elapsed"] = time.perf_counter() - start

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert out["elapsed"] < 1.0 + 1.0
    assert out["result"].score == 0.0 and "timed out" in out["result"].error
    assert v.verify(r"\boxed{2}", "2").correct  # a fresh worker serves the next call


def test_huge_input_is_rejected_fast():
    v = verifiers.get("math")
    start = time.perf_counter()
    result = v.verify("\\boxed{" * 200_000, "1")
    assert time.perf_counter() - start < 0.05
    assert result.score == 0.0 and "max_response_chars" in result.error


@pytest.mark.parametrize(
    "response",
    [
        r"\boxed{10^{10^{10}}}",
        "9**9**9**9",
        r"\boxed{(10^{10})!}",
        r"\boxed{e^{e^{e^{e^{10}}}}}",
        r"\boxed{2^{2^{2^{2^{2^{2^{2}}}}}} - x^{10^{9}}}",
        "(" * 500 + "1" + ")" * 500,
        r"\boxed{" + "-" * 3000 + "1}",
        r"\boxed{" + "+".join(["x^{99}"] * 150) + "}",
        r"\boxed{\sin(10^{9999})}",
        "1," * 5000,
    ],
)
def test_blow_ups_are_refused_quickly(response: str):
    start = time.perf_counter()
    result = inproc().verify(response, "x + 1")
    assert time.perf_counter() - start < 2.0
    assert result.score == 0.0


def test_default_options_isolate_and_decide_common_answers_in_process():
    v = verifiers.get("math")
    assert v.options.isolate is True and v.options.timeout_s == 5.0
    result = v.verify(r"The answer is $\boxed{\frac{3}{4}}$.", "0.75")
    assert result.correct and result.details["source"] == "boxed"
    assert v.verify(r"\boxed{(x+1)^2}", "x^2+2x+1").correct  # decided in the worker
