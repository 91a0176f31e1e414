"""The mcq verifier: table-driven extraction cases, each naming the public evaluation code whose
behaviour it follows (or deliberately departs from), plus scoring, options, errors and time bounds.

Sources (read for behaviour, not copied):
  simple-evals     openai/simple-evals common.py: ANSWER_PATTERN_MULTICHOICE "Answer: X" (case-insensitive),
                   normalize_response (markdown / LaTeX stripped), multilingual answer cues, full-width letters
  MMLU-Pro         TIGER-AI-Lab/MMLU-Pro compute_accuracy.py: "answer is \\(?X\\)?", then the last "Answer: X",
                   then the last capital A-J anywhere (we refuse that last step: "I think" is not option I)
  lm-eval          EleutherAI/lm-evaluation-harness: gpqa cot "The answer is (X)" strict match, and
                   MultiChoiceRegexFilter (last "(X)", option-text fallback, ": X")
  MMMU             MMMU-Benchmark/MMMU eval_utils.parse_multi_choice_response: "(X)", " X ", option text in
                   longer responses, the last candidate wins; mmmu-pro/evaluate.py reads after the last "Answer:"
  VLMEvalKit       open-compass/VLMEvalKit vlmeval/utils/matching_util.py: can_infer_option (one letter among
                   punctuation-split tokens; "A might be a quantifier"), can_infer_text (exactly one option text)
  R1 format        DeepSeek-R1 / open-r1 style "<think>...</think><answer>X</answer>" completions
  boxed            math-style prompts ending in \\boxed{} (Minerva, Qwen-Math), as in simple-evals' normaliser
  brief            the behaviours issue 2 asks for (last statement wins, article "A", pronoun "I", ...)
"""

from __future__ import annotations

import time

import pytest

import verifiers
from verifiers.base import OptionError
from verifiers.mcq import extract_choice

CITIES = {"A": "Paris", "B": "London", "C": "Berlin", "D": "Madrid"}

# (response, expected letter or None, source). Choices are CITIES unless a case says otherwise.
CASES: list[tuple[str, str | None, str]] = [
    # explicit answer statements
    ("Answer: B", "B", "simple-evals"),
    ("answer:b", "B", "simple-evals (case-insensitive)"),
    ("Answer: $C$", "C", "simple-evals ($X$)"),
    ("ANSWER: D", "D", "simple-evals"),
    ("**Answer:** B", "B", "simple-evals normalize_response (**)"),
    ("**Answer: C**", "C", "simple-evals normalize_response (**)"),
    ("Answer: \\textbf{D}", "D", "simple-evals normalize_response (\\textbf)"),
    ("Answer: \\mathrm{A}", "A", "simple-evals normalize_response (\\mathrm)"),
    ("Answer:Ｂ", "B", "simple-evals multilingual (full-width letter)"),
    ("答案：C", "C", "simple-evals multilingual (答案)"),
    ("The answer is (B)", "B", "MMLU-Pro"),
    ("the answer is C.", "C", "MMLU-Pro"),
    ("So the answer is (D).", "D", "MMLU-Pro"),
    ("Answer: A\nHmm, let me re-check.\nAnswer: D", "D", "MMLU-Pro extract_again (last Answer:)"),
    ("Answer: A. Wait, that is wrong. Answer: C", "C", "MMMU-Pro (rfind 'Answer:')"),
    ("The answer is (C).", "C", "lm-eval gpqa strict-match"),
    ("(A) is out and (B) is out. The answer is (D).", "D", "lm-eval gpqa flexible-extract (last (X))"),
    ("My pick: C", "C", "lm-eval MultiChoiceRegexFilter (': X')"),
    ("The correct answer is B, London.", "B", "VLMEvalKit can_infer_option"),
    ("The correct option is c", "C", "brief (lower case in a statement)"),
    ("The correct answer is option (c).", "C", "brief (Option C)"),
    ("The final answer is: D", "D", "brief"),
    ("I'd go with C.", "C", "brief"),
    ("I will select option D.", "D", "brief"),
    ("Between B and C, I'd say C.", "C", "brief (last statement)"),
    ("C is correct.", "C", "brief"),
    ("B is the correct answer.", "B", "brief"),
    ("Option B is correct.", "B", "brief"),
    ("(B) is right", "B", "brief"),
    ("Answer: A because Paris is on the Seine", "A", "brief (A + connective is a letter)"),
    ("A is wrong because it is in France, B is wrong too, so the answer is C", "C", "brief (last statement)"),
    ("I first thought A but the answer is B", "B", "brief (last statement)"),
    ("Let me think. The answer is A. Wait, actually the answer is (D).", "D", "brief (last statement)"),
    ("Answer: C\nExplanation: B and D are wrong.", "C", "brief (later mentions are no statement)"),
    ("The answer is not A, it is B.", "B", "brief (negated statement)"),
    ("The answer is \n\n**C**", "C", "brief (answer on the next line)"),
    # boxes
    ("\\boxed{B}", "B", "boxed"),
    ("\\boxed{\\text{B}}", "B", "boxed (\\text)"),
    ("$\\boxed{\\text{C}}$", "C", "simple-evals normalize_response ($\\boxed{\\text{...}}$)"),
    ("\\boxed{b}", "B", "boxed (lower case)"),
    ("$\\boxed{(C)}$", "C", "boxed"),
    ("\\fbox{D}", "D", "boxed (\\fbox)"),
    ("Final Answer: The final answer is $\\boxed{C}$. I hope it is correct.", "C", "Minerva format"),
    ("\\boxed{Berlin}", "C", "boxed option text"),
    # R1-style tags
    ("<think>A or B? Probably B.</think><answer>C</answer>", "C", "R1 format (thinking stripped)"),
    ("<answer>(D) Madrid</answer>", "D", "R1 format"),
    # a line holding only the letter / opening with it
    ("B", "B", "VLMEvalKit can_infer_option"),
    ("B.", "B", "brief"),
    ("B)", "B", "brief"),
    ("(B)", "B", "MMMU '(X)'"),
    ("**B**", "B", "brief (markdown)"),
    ("Option C", "C", "brief"),
    ("A", "A", "VLMEvalKit (a lone A is an answer)"),
    ("(C) Berlin", "C", "MMMU '(X)'"),
    ("B. London", "B", "VLMEvalKit can_infer_option ('X.')"),
    ("B: London", "B", "VLMEvalKit can_infer_option ('X:')"),
    ("(A) Paris\n(B) London\n(C) Berlin\n(D) Madrid\n\nThe answer is (B)", "B", "brief (restated options)"),
    ("(A) Paris\n(B) London\n(C) Berlin\n(D) Madrid\n\nLondon is the capital of the UK.", "B", "brief"),
    # conclusions
    ("So B.", "B", "brief"),
    ("Therefore, C", "C", "brief"),
    # option text instead of a letter
    ("London", "B", "lm-eval MultiChoiceRegexFilter (choice text)"),
    ("london.", "B", "VLMEvalKit can_infer_text"),
    ("The capital is London", "B", "brief"),
    ("The capital city of the United Kingdom is London.", "B", "MMMU (option text in a long response)"),
    ("Paris is in France. So the answer must be Berlin.", "C", "brief (statement names the text)"),
    ("The answer is London.", "B", "brief (statement names the text)"),
    ("A: London", "B", "brief ('A:' is a Q/A prefix when its text is another option)"),
    # a lone capital as the last resort
    ("C fits best.", "C", "MMMU (' X ')"),
    ("The best one is **C** here", "C", "MMMU"),
    ("To answer this, consider C.", "C", "MMMU"),
    # negatives: no answer
    ("Car", None, "brief (capital inside a word)"),
    ("CAR", None, "brief (capitals inside a word)"),
    ("I think", None, "brief (pronoun I; MMLU-Pro extract_final would say I)"),
    ("I am sure of it.", None, "brief (pronoun I)"),
    ("I'm confident.", None, "brief (I'm)"),
    ("A good answer is hard to find.", None, "VLMEvalKit ('A might be a quantifier')"),
    ("A cat sat on a mat.", None, "VLMEvalKit ('A might be a quantifier')"),
    ("a", None, "brief (a bare lower-case word)"),
    ("the answer is a bit tricky", None, "brief (article after a cue)"),
    ("Answer: I think so", None, "brief (pronoun after a cue)"),
    ("The answer is B or C", None, "brief (hedge)"),
    ("Answer: A/B", None, "brief (hedge)"),
    ("The answer is A and B.", None, "brief (hedge)"),
    ("The answer is E", None, "brief (not an option of four)"),
    ("The answer is B. Answer: P is the pressure, so B holds.", "B", "brief (a variable after a cue)"),
    ("The answer is not A.", None, "brief (negated)"),
    ("A is not correct, nor is B.", None, "brief (negated)"),
    ("Paris is the capital of France, not London.", None, "VLMEvalKit can_infer_text (two texts)"),
    ("Paris or London, hard to say", None, "VLMEvalKit can_infer_text (two texts)"),
    ("(A) Paris\n(B) London\n(C) Berlin\n(D) Madrid", None, "brief (options restated, none chosen)"),
    ("A B C D", None, "VLMEvalKit can_infer_option (several letters)"),
    ("Cannot determine the answer", None, "VLMEvalKit reject_to_answer"),
    ("U.S. cities are not among the options", None, "brief (abbreviation)"),
    ("C++ is faster than Python.", None, "brief (C++ is no option)"),
    ("A = pi r^2, so the area grows.", None, "brief (a variable)"),
    ("The B-cell count is high.", None, "brief (hyphenated word)"),
    ("", None, "brief"),
    ("   \n ", None, "brief"),
]


@pytest.mark.parametrize(("response", "expected", "source"), CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_extraction_table(response: str, expected: str | None, source: str) -> None:
    verifier = verifiers.get("mcq")
    result = verifier.verify(response, expected or "A", choices=CITIES)
    assert result.error is None
    assert result.extracted == expected, f"{source}: {response!r} -> {result.extracted} ({result.details})"
    assert result.score == (1.0 if expected else 0.0)
    if expected:
        other = "B" if expected != "B" else "C"
        assert verifier.verify(response, other, choices=CITIES).score == 0.0
        assert result.details["rule"] in {
            "boxed",
            "statement",
            "letter_line",
            "conclusion",
            "leading_letter",
            "option_text",
            "bare_letter",
        }
    else:
        assert result.details["rule"] is None and result.details["reason"]


def test_table_is_large_and_cited() -> None:
    assert len(CASES) >= 60
    assert sum(expected is None for _, expected, _ in CASES) >= 20
    assert all(source for _, _, source in CASES)


@pytest.mark.parametrize(
    ("response", "rule"),
    [
        ("\\boxed{B}", "boxed"),
        ("The answer is (B)", "statement"),
        ("**B**", "letter_line"),
        ("So B.", "conclusion"),
        ("B. London", "leading_letter"),
        ("London", "option_text"),
        ("B fits best", "bare_letter"),
    ],
)
def test_details_name_the_rule(response: str, rule: str) -> None:
    result = verifiers.get("mcq").verify(response, "B", choices=CITIES)
    assert result.details["rule"] == rule and result.details["evidence"]


def test_explicit_statement_beats_looser_rules() -> None:
    # A line with only "A" exists, but the explicit statement says B.
    assert extract_choice("A\nOn reflection, the answer is B.", "ABCD").letter == "B"
    # The box is the final answer even when a statement names another letter.
    assert extract_choice("The answer is A... no: \\boxed{C}", "ABCD").letter == "C"


def test_option_text_inside_a_longer_option() -> None:
    choices = {"A": "London", "B": "New London", "C": "Paris", "D": "Rome"}
    assert extract_choice("It is New London.", "ABCD", choices).letter == "B"
    assert extract_choice("It is London.", "ABCD", choices).letter == "A"


def test_letters_in_option_texts_are_not_picks() -> None:
    vitamins = {"A": "Vitamin A", "B": "Iron", "C": "Vitamin C", "D": "Zinc"}
    assert extract_choice("Vitamin C is the answer", "ABCD", vitamins).letter == "C"
    assert extract_choice("Vitamin A", "ABCD", vitamins).letter == "A"
    assert extract_choice("Zinc, not Vitamin C.", "ABCD", vitamins).letter is None  # two texts: refuse


def test_without_choices_letters_default_to_a_through_j() -> None:
    verifier = verifiers.get("mcq")
    assert verifier.verify("The answer is (J)", "J").score == 1.0
    assert verifier.verify("The answer is (K)", "J").extracted is None
    assert verifier.verify("London", "B").extracted is None  # no option texts to match
    assert verifier.verify("I.", "I").score == 1.0  # a line holding only "I." is option I


def test_choices_as_list_option_and_letters_option() -> None:
    listed = verifiers.get("mcq").verify("Berlin", "C", choices=["Paris", "London", "Berlin", "Madrid"])
    assert listed.score == 1.0 and listed.details["letters"] == "ABCD"
    as_option = verifiers.get("mcq", choices='["Paris", "London", "Berlin"]')  # CLI strings are JSON
    assert as_option.verify("The answer is London", "B").score == 1.0
    assert as_option.verify("The answer is D", "B").details["reason"].startswith("D is not one of")
    four = verifiers.get("mcq", letters="ABCD")
    assert four.verify("I.", "A").extracted is None  # I is no option of four
    assert verifiers.get("mcq", match_text=False).verify("London", "B", choices=CITIES).score == 0.0
    assert verifiers.get("mcq", bare_letter=False).verify("C fits best", "C").score == 0.0


def test_target_forms() -> None:
    verifier = verifiers.get("mcq")
    assert verifier.verify("Answer: C", ["B", "C"]).score == 1.0
    assert verifier.verify("Answer: C", "(C)").score == 1.0  # lm-eval gpqa targets read "(C)"
    assert verifier.verify("Answer: C", "c").score == 1.0


@pytest.mark.parametrize(
    ("target", "fields", "needle"),
    [
        (3, {}, "target"),
        ([], {}, "target"),
        ("BC", {}, "target"),
        ("E", {"choices": CITIES}, "not among the option letters"),
        ("A", {"choices": {"AA": "x"}}, "choices"),
        ("A", {"choices": "Paris, London"}, "choices"),
        ("A", {"choices": list("abcdefghijklmnopqrstuvwxyz!")}, "choices"),
    ],
)
def test_bad_targets_and_choices_are_clear_errors(target, fields, needle) -> None:
    result = verifiers.get("mcq").verify("Answer: A", target, **fields)
    assert result.score == 0.0 and result.error and needle in result.error


@pytest.mark.parametrize("letters", ["", "AAB", "abc", "A1"])
def test_bad_letters_option(letters: str) -> None:
    with pytest.raises(OptionError, match="letters"):
        verifiers.get("mcq", letters=letters)


ADVERSARIAL = [
    "A" * 20_000,
    "(" * 20_000,
    "the answer is " * 2_000,  # 28k characters: the verifier below allows 40k
    "Answer:" * 2_800,
    "answer" + " " * 19_000 + "is B",
    "A " * 10_000,
    "A." * 10_000,
    "A)\n" * 6_600,
    "(B) " * 5_000,
    "\\boxed{" * 2_800,
    "{" * 20_000,
    "London " * 2_800,
    "so " * 6_600,
    "not " * 5_000,
    "I think " * 2_500,
    "*" * 20_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[repr(t[:12]) for t in ADVERSARIAL])
def test_adversarial_inputs_are_fast(text: str) -> None:
    verifier = verifiers.get("mcq", max_response_chars=40_000)
    choices = {"A": "Paris", "B": "London", "C": "New London", "D": "the answer is " * 10}

    def best_of_three(response: str) -> float:  # best of three: the machine is shared
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            result = verifier.verify(response, "B", choices=choices)
            best = min(best, time.perf_counter() - start)
            assert result.error is None
        return best

    hostile = best_of_three(text)
    # A slow or busy machine may pass 100 ms; backtracking costs seconds, far beyond ordinary prose.
    prose = best_of_three(("It is a city on the Thames, so I pick London. " * 1_000)[: len(text)])
    assert hostile < max(0.1, 5 * prose), (
        f"{hostile * 1000:.1f} ms (prose of that length: {prose * 1000:.1f} ms)"
    )
