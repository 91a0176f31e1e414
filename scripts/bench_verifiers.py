"""Our verifiers against the reference libraries: throughput (rows/s) and agreement, in one run.

- math: ``verifiers.get("math")`` (default options: each call runs in its one killable worker process)
  vs Math-Verify (``parse`` of gold and prediction + ``verify``, default configuration, called in the
  main thread so its signal time-outs work). Rows: the Math-Verify public cases in
  tests/data/math_cases.py plus generated rows (answers in many formats, correct and wrong, after some
  reasoning text). Agreement: the fraction of rows where our ``correct`` equals Math-Verify's verdict.
- asr: ``verifiers.get("asr")`` (Whisper English normalisation + jiwer) vs plain ``jiwer.wer`` on the
  same (reference, hypothesis) pairs (generated sentences with substitutions, deletions, insertions,
  case and punctuation changes); |WER difference| shows what the normalisation changes.
Both sides score rows one at a time, sequentially, in a single thread (no batching, no parallelism).
- truth: generated rows are labelled correct/wrong when generated; the RESULT line's truth figures are
  the fraction of generated rows where each side's verdict equals that label (the printed all-rows
  figure also counts the public cases, labelled with our documented verdict where we differ).
- asr cache: GRPO groups (one reference, G hypotheses) scored with the cached normalised reference vs
  with the cache cleared before each row.
The last line is ``RESULT math_speed_ratio=.. math_agreement=.. math_truth_agreement=..
math_verify_truth_agreement=.. asr_speed_ratio=.. asr_vs_normalised_jiwer=.. asr_cache_speedup=..``
(speed ratios: the reference's time over ours).

    python scripts/bench_verifiers.py [--math-rows 600] [--asr-rows 400] [--seed 0] [--show 5]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.data is read from the checkout

import jiwer
from math_verify import parse as mv_parse
from math_verify import verify as mv_verify

import verifiers
from tests.data.math_cases import CASES, math_verify_verdict

_REASONING = [
    "Let's work through this step by step.",
    "First we note that $a + b = 7$ and $ab = 12$, so $a, b$ are the roots of $t^2 - 7t + 12 = 0$.",
    "Substituting $x = 2$ gives $f(2) = 4 + 6 = 10$, which we keep for later.",
    "We check the boundary cases: when $n = 1$ the sum is $1$, and when $n = 2$ it is $3$.",
    "Multiplying both sides by $3$ we get $3y = 21 - 6$, hence $y = 5$ for the auxiliary variable.",
    "There are 12 ways to choose the first element and 11 for the second.",
]
# (gold, correct forms, wrong forms)
_ANSWERS: list[tuple[str, list[str], list[str]]] = [
    ("{n}", ["{n}", "{n}.0", "\\boxed{{{n}}}"], ["{m}", "-{n}"]),
    (
        "\\frac{{{p}}}{{{q}}}",
        ["\\frac{{{p}}}{{{q}}}", "{p}/{q}", "\\dfrac{{{p2}}}{{{q2}}}", "{dec}"],
        ["\\frac{{{q}}}{{{p}}}", "{p}.{q}"],
    ),
    ("{big}", ["{big_commas}", "{big}", "\\${big_commas}"], ["{big_off}"]),
    (
        "{k}\\sqrt{{{s}}}",
        ["\\sqrt{{{ks}}}", "{k} \\sqrt {s}", "{k}\\sqrt{{{s}}}"],
        ["{s}\\sqrt{{{k}}}", "\\sqrt{{{k}{s}}}"],
    ),
    (
        "x^2 + {a2}x + {a}^2",
        ["(x+{a})^2", "x^2+{a2}x+{asq}", "(x + {a})(x + {a})"],
        ["(x-{a})^2", "x^2+{a}x+{asq}"],
    ),
    ("[{lo}, {hi})", ["[{lo},{hi})", "\\left[{lo}, {hi}\\right)"], ["({lo},{hi})", "[{lo},{hi}]"]),
    ("({lo}, {n})", ["({lo},{n})", "\\left( {lo}, {n} \\right)"], ["({n}, {lo})"]),
    ("\\{{{lo}, {n}, {hi}\\}}", ["\\{{{hi}, {lo}, {n}\\}}", "{n}, {hi}, {lo}"], ["\\{{{lo}, {n}\\}}"]),
    ("{pct}\\%", ["{pct}\\%", "{pct} percent", "{pct}"], ["{pct_off}\\%"]),
    ("\\frac{{\\pi}}{{{q}}}", ["\\pi/{q}", "\\frac{{\\pi}}{{{q}}}"], ["\\frac{{{q}}}{{\\pi}}"]),
    ("y = {a}x + {n}", ["{a}x + {n} = y", "y={a}x+{n}"], ["y = {n}x + {a}"]),
    ("x > {n}", ["x>{n}", "{n} < x", "({n}, \\infty)"], ["x \\ge {n}", "x < {n}"]),
]
_WRAPS = [
    "{r} So the answer is $\\boxed{{{x}}}$.",
    "{r}\n\nFinal Answer: The final answer is ${x}$. I hope it is correct.",
    "{r} Therefore the result is ${x}$.",
    "{r}\n**Answer:** ${x}$",
    "<think>{r} Maybe it is $0$? No.</think>\nThe answer is \\({x}\\).",
    "{x}",
]


def generated_math_rows(count: int, rng: random.Random) -> list[tuple[str, str, bool]]:
    """(gold, response, truth): truth is whether the form was drawn from the correct ones."""
    rows = []
    while len(rows) < count:
        gold_t, good, bad = rng.choice(_ANSWERS)
        p, q = rng.randint(1, 30), rng.randint(31, 60)
        n, k, s, a = rng.randint(2, 99), rng.randint(2, 9), rng.choice([2, 3, 5, 7]), rng.randint(1, 9)
        big = rng.randint(10_000, 9_999_999)
        lo = rng.randint(-20, 5)
        pct = rng.randint(1, 99)
        v = dict(
            n=n,
            m=n + 1,
            p=p,
            q=q,
            p2=2 * p,
            q2=2 * q,
            dec=f"{p / q:.6f}",
            big=big,
            big_commas=f"{big:,}",
            big_off=big + 10,
            k=k,
            s=s,
            ks=k * k * s,
            a=a,
            a2=2 * a,
            asq=a * a,
            lo=lo,
            hi=lo + rng.randint(1, 20),
            pct=pct,
            pct_off=pct + 1,
        )
        truth = rng.random() < 0.6
        form = rng.choice(good if truth else bad).format(**v)
        reasoning = " ".join(rng.sample(_REASONING, rng.randint(0, 4)))
        # golds in $...$, as Math-Verify documents them (ours reads them with or without)
        rows.append((f"${gold_t.format(**v)}$", rng.choice(_WRAPS).format(r=reasoning, x=form), truth))
    return rows


_WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "was",
    "with",
    "he",
    "as",
    "at",
    "by",
    "this",
    "had",
    "not",
    "are",
    "but",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "one",
    "you",
    "were",
    "all",
    "we",
    "her",
    "she",
    "there",
    "would",
    "their",
    "will",
    "when",
    "who",
    "him",
    "been",
    "has",
    "more",
    "if",
    "no",
    "out",
    "do",
    "so",
    "can",
    "what",
    "up",
    "said",
    "about",
    "other",
    "into",
    "than",
    "its",
    "time",
    "only",
    "could",
    "new",
    "them",
    "man",
    "some",
    "these",
    "then",
    "two",
    "first",
    "may",
    "any",
    "like",
    "now",
    "my",
    "such",
    "make",
    "over",
    "our",
    "even",
    "most",
    "me",
    "state",
    "after",
    "also",
    "made",
    "many",
    "did",
    "must",
    "before",
    "back",
    "see",
    "through",
    "way",
    "where",
    "get",
    "much",
    "go",
    "well",
    "your",
    "know",
    "should",
    "down",
    "work",
    "year",
    "because",
    "come",
    "people",
    "just",
    "say",
    "great",
    "music",
    "river",
    "house",
    "light",
    "stone",
    "table",
    "window",
    "garden",
    "morning",
    "evening",
    "quickly",
    "slowly",
]


def asr_rows(count: int, rng: random.Random) -> list[tuple[str, str]]:
    rows = []
    for _ in range(count):
        ref = [rng.choice(_WORDS) for _ in range(rng.randint(5, 30))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 3)):
            op = rng.choice(("sub", "del", "ins"))
            i = rng.randrange(len(hyp)) if hyp else 0
            if op == "sub" and hyp:
                hyp[i] = rng.choice(_WORDS)
            elif op == "del" and len(hyp) > 1:
                del hyp[i]
            else:
                hyp.insert(i, rng.choice(_WORDS))
        text = " ".join(hyp)
        if rng.random() < 0.3:
            text = text.capitalize() + rng.choice([".", "!", "?"])
        rows.append((" ".join(ref), text))
    return rows


def asr_group_timing(
    pairs: list[tuple[str, str]], rng: random.Random, group: int = 8
) -> tuple[float, float, int]:
    """Seconds to score GRPO-style groups (each reference with ``group`` hypotheses) with the cached
    normalised reference, and with the cache cleared before every row (the normaliser run G times)."""
    from verifiers.asr import normalized_reference

    refs = [ref for ref, _ in pairs[: max(1, len(pairs) // group)]]
    long_refs = [" ".join([ref] * 4) for ref in refs]  # utterance-length references (20-120 words)
    rows = [
        (ref, " ".join(rng.sample(ref.split(), len(ref.split())))) for ref in long_refs for _ in range(group)
    ]
    asr = verifiers.get("asr")

    def uncached(row: tuple[str, str]) -> object:
        normalized_reference.cache_clear()
        return asr.verify(row[1], row[0])

    normalized_reference.cache_clear()
    _, cached_s = timed(lambda r: asr.verify(r[1], r[0]), rows)
    _, uncached_s = timed(uncached, rows)
    return cached_s, uncached_s, group


def timed(fn: Callable[[tuple], object], rows: list[tuple]) -> tuple[list[object], float]:
    fn(rows[0])  # warm up (worker start, imports, caches of the first row are not what we measure)
    start = time.perf_counter()
    out = [fn(row) for row in rows]
    return out, time.perf_counter() - start


def public_case_rates() -> None:
    """Pass rates on Math-Verify's own cases: each side configured as for that case (its float_rounding;
    Math-Verify with the extraction its test uses)."""
    ours = {p: verifiers.get("math", float_rounding=p) for p in {c.precision for c in CASES}}
    verdicts = [ours[c.precision].verify(c.pred, c.gold).correct for c in CASES]
    theirs = sum(math_verify_verdict(c) is c.expected for c in CASES)
    ours_expected = sum(v is c.expected for v, c in zip(verdicts, CASES, strict=True))
    ours_own = sum(v is c.our_expected for v, c in zip(verdicts, CASES, strict=True))
    deliberate = sum(c.ours is not None for c in CASES)
    n = len(CASES)
    print(
        f"Math-Verify public cases ({n}): Math-Verify's expected verdict reached by ours {ours_expected} "
        f"({ours_expected / n:.1%}), by math_verify {theirs} ({theirs / n:.1%}); ours vs its documented "
        f"verdicts ({deliberate} deliberate differences): {ours_own}/{n}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--math-rows", type=int, default=600, help="total math rows (public cases + generated)")
    ap.add_argument("--asr-rows", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=5, help="math disagreements to print")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rng = random.Random(args.seed)

    # truth of a generated row: how it was generated (the RESULT line's truth figures are over these
    # only); of a public case: its verdict in Math-Verify's suite, or our documented verdict where we
    # deliberately differ (tests/data/math_cases.py), so the all-rows figure printed above flatters us
    rows = [(c.gold, c.pred, c.our_expected) for c in CASES][: args.math_rows]
    rows += generated_math_rows(max(0, args.math_rows - len(rows)), rng)
    ours = verifiers.get("math")
    ours_out, ours_s = timed(lambda r: ours.verify(r[1], r[0]).correct, rows)
    ref_out, ref_s = timed(lambda r: bool(mv_verify(mv_parse(r[0]), mv_parse(r[1]))), rows)
    agree = [a == b for a, b in zip(ours_out, ref_out, strict=True)]
    math_ratio = ref_s / ours_s
    math_agreement = sum(agree) / len(rows)
    ours_truth = sum(o == r[2] for o, r in zip(ours_out, rows, strict=True)) / len(rows)
    mv_truth = sum(m == r[2] for m, r in zip(ref_out, rows, strict=True)) / len(rows)
    generated = [(o, m, r[2]) for o, m, r in zip(ours_out, ref_out, rows, strict=True)][len(CASES) :]
    gen_ours = sum(o == t for o, _, t in generated) / max(len(generated), 1)
    gen_mv = sum(m == t for _, m, t in generated) / max(len(generated), 1)

    pairs = asr_rows(args.asr_rows, rng)
    asr = verifiers.get("asr")
    asr_out, asr_s = timed(lambda r: asr.verify(r[1], r[0]).details["wer"], pairs)
    wer_out, wer_s = timed(lambda r: jiwer.wer(r[0], r[1]), pairs)
    asr_ratio = wer_s / asr_s
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    _, norm_wer_s = timed(lambda r: jiwer.wer(normalise(r[0]) or "-", normalise(r[1])), pairs)
    cached_s, uncached_s, group = asr_group_timing(pairs, rng)
    mean_diff = sum(abs(a - b) for a, b in zip(asr_out, wer_out, strict=True)) / len(pairs)  # type: ignore[operator]

    print(
        f"{'verifier':10} {'rows':>5} {'ours rows/s':>12} {'ref rows/s':>11} {'speed ratio':>12}  agreement"
    )
    print(
        f"{'math':10} {len(rows):>5} {len(rows) / ours_s:>12.1f} {len(rows) / ref_s:>11.1f} {math_ratio:>12.2f}  "
        f"{math_agreement:.3f} (correct: ours {sum(ours_out)}, math_verify {sum(ref_out)})"
    )  # type: ignore[arg-type]
    print(
        f"{'asr':10} {len(pairs):>5} {len(pairs) / asr_s:>12.1f} {len(pairs) / wer_s:>11.1f} {asr_ratio:>12.2f}  "
        f"mean |WER ours - jiwer.wer| = {mean_diff:.3f} (normalisation)"
    )
    print(
        f"{'asr':10} {len(pairs):>5} {len(pairs) / asr_s:>12.1f} {len(pairs) / norm_wer_s:>11.1f} "
        f"{norm_wer_s / asr_s:>12.2f}  vs jiwer.wer after whisper-normalizer (same normalisation work)"
    )
    print(
        f"{'truth':10} {len(rows):>5} agreement with the truth labels: ours {ours_truth:.3f}, math_verify "
        f"{mv_truth:.3f} (generated rows only: ours {gen_ours:.3f}, math_verify {gen_mv:.3f})"
    )
    print(
        f"{'asr cache':10} groups of G={group}: {uncached_s * 1e3:.1f} ms without the reference cache, "
        f"{cached_s * 1e3:.1f} ms with it: speed-up {uncached_s / cached_s:.2f}x"
    )
    print("reference: math_verify parse+verify (main thread); jiwer.wer on raw text")
    public_case_rates()
    shown = [(r, o, m) for r, o, m, ok in zip(rows, ours_out, ref_out, agree, strict=True) if not ok]
    for (gold, pred, _), o, m in shown[: args.show]:
        print(f"  disagree: ours={o} math_verify={m} gold={gold[:50]!r} pred=...{pred[-70:]!r}")
    print(
        f"RESULT math_speed_ratio={math_ratio:.2f} math_agreement={math_agreement:.3f} "
        f"math_truth_agreement={gen_ours:.3f} math_verify_truth_agreement={gen_mv:.3f} "
        f"asr_speed_ratio={asr_ratio:.2f} asr_vs_normalised_jiwer={norm_wer_s / asr_s:.2f} "
        f"asr_cache_speedup={uncached_s / cached_s:.2f}"
    )


if __name__ == "__main__":
    main()
