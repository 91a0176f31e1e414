"""Issue 14 (verifiers, round two): mcq multilingual anchors, rejected options, numbered options, lone
lower-case letters, option text then prose; math labelled answers, separate boxes, inequality unions;
the shaped-reward options of grounding, asr and abstention (hand-computed values).

Sources of the cases (read for behaviour, not copied):
  simple-evals   openai/simple-evals, common.py: MULTILINGUAL_ANSWER_REGEXES ("Réponse\\s*:",
                 "Respuesta\\s*:", "Antwort\\s*:", "答案\\s*：", "答え\\s*:", "解答\\s*:", ...)
  MMLU-ProX      EleutherAI/lm-evaluation-harness, lm_eval/tasks/mmlu_prox/{fr,es,de,zh,ja}/_*_template_yaml:
                 'La réponse est \\(?X\\)?', 'La respuesta es \\(?X\\)?', 'Die Antwort ist \\(?X\\)?',
                 '答案是 \\(?X\\)?', '答えは \\(?X\\)? です'
  lm-eval gpqa   EleutherAI/lm-evaluation-harness gpqa cot flexible-extract: "(A) is out ... The answer is (D)"
  Math-Verify    huggingface/Math-Verify, tests/test_all.py (test_math_extraction_additional_cases:
                 "$\\boxed{1}\\boxed{2}$" = "$\\boxed{1,2}$"; the relation cases "$11$" vs "$x=11$"; the
                 "\\cup" interval cases) and tests/test_open_thoughts.py ("$$A:B=1$$", a labelled ratio)
  NeMo Gym       NVIDIA-NeMo/Gym, resources_servers/gui_coordinate/app.py: reward (1 - d/max_dist)^2 for
                 d < max_dist (default 0.15, normalised coordinates), else 0
  brief          the behaviours issue 14 asks for
"""

from __future__ import annotations

import pytest

import verifiers
from verifiers.base import OptionError

CITIES = {"A": "Paris", "B": "London", "C": "Berlin", "D": "Madrid"}

MCQ_CASES: list[tuple[str, str | None, str]] = [
    # multilingual answer anchors
    ("La réponse est (B)", "B", "MMLU-ProX fr"),
    ("A est faux et D aussi. La réponse est (C).", "C", "MMLU-ProX fr"),
    ("La respuesta es (C)", "C", "MMLU-ProX es"),
    ("A es incorrecta y B también. La respuesta es (D).", "D", "MMLU-ProX es"),
    ("Die Antwort ist (D)", "D", "MMLU-ProX de"),
    ("A ist falsch, B auch. Die Antwort ist (C).", "C", "MMLU-ProX de"),
    ("答案是 (B)", "B", "MMLU-ProX zh"),
    ("选项A和D都不对。答案是 (C)", "C", "MMLU-ProX zh"),
    ("答えは (C) です", "C", "MMLU-ProX ja"),
    ("A と B は誤りです。答えは (D) です", "D", "MMLU-ProX ja"),
    ("Réponse : B", "B", "simple-evals Réponse\\s*:"),
    ("Respuesta: c", "C", "simple-evals Respuesta\\s*: (case-insensitive)"),
    ("Antwort: A", "A", "simple-evals Antwort\\s*:"),
    ("A oder B? Antwort: D", "D", "simple-evals Antwort\\s*:"),
    ("答え：D", "D", "simple-evals 答え\\s*："),
    ("解答：A", "A", "simple-evals 解答\\s*:"),
    ("La respuesta correcta es la B.", "B", "brief (es, article before the letter)"),
    ("La bonne réponse est C, pas A.", "C", "brief (fr)"),
    # rejected options
    ("It can't be A or B. The remaining option, C, fits.", "C", "brief (can't be A or B)"),
    ("It cannot be A, B or C, which leaves D", "D", "brief (cannot be A, B or C)"),
    ("A and B are wrong; D fits.", "D", "brief (A and B are wrong)"),
    ("We can rule out A and C. B fits.", "B", "brief (rule out)"),
    ("(A) is out and (B) is out. The answer is (D).", "D", "lm-eval gpqa flexible-extract"),
    ("The answer is not A or B.", None, "brief (only rejections: no answer)"),
    # options by number
    ("Option 2", "B", "brief (Option N)"),
    ("Statement 3 is correct.", "C", "brief (Statement N)"),
    ("The answer is (4).", "D", "brief ((N) after a cue)"),
    ("Answer: Option 1", "A", "brief"),
    ("Option 7", None, "brief (no seventh option)"),
    # lone lower-case letter
    ("b", "B", "brief (lone lower-case letter)"),
    ("c.", "C", "brief"),
    ("(d)", "D", "MMMU '(X)' in lower case"),
    ("**a**", "A", "brief (wrapped a is the letter)"),
    ("a", None, "brief (a bare 'a' stays the article)"),
    # option text followed by prose
    ("London. Paris is in France, Berlin in Germany and Madrid in Spain.", "B", "brief"),
    ("Berlin - it is the capital, unlike Paris or Madrid.", "C", "brief"),
    ("Madrid, because the other three cities are not in Spain (Paris, London, Berlin).", "D", "brief"),
    ("Paris or London, hard to say", None, "VLMEvalKit can_infer_text (two texts)"),
    # still refused
    ("The answer is B or C", None, "brief (hedge)"),
    ("La réponse est B ou C", None, "brief (hedge, French: two letters)"),
    ("Car", None, "brief (capital inside a word)"),
]


@pytest.mark.parametrize(
    ("response", "expected", "source"), MCQ_CASES, ids=[str(i) for i in range(len(MCQ_CASES))]
)
def test_mcq_round_two(response: str, expected: str | None, source: str) -> None:
    result = verifiers.get("mcq").verify(response, expected or "A", choices=CITIES)
    assert result.error is None
    assert result.extracted == expected, f"{source}: {response!r} -> {result.extracted} ({result.details})"


def test_numbered_options_stay_text_when_the_options_are_written_that_way() -> None:
    choices = {"A": "Statement 1 only", "B": "Statement 2 only", "C": "Both", "D": "Neither"}
    result = verifiers.get("mcq").verify("Statement 2 only", "B", choices=choices)
    assert result.extracted == "B" and result.details["rule"] == "option_text"
    numbers = {"A": "2", "B": "3", "C": "(4)", "D": "5"}
    assert verifiers.get("mcq").verify("The answer is (4)", "C", choices=numbers).extracted == "C"


MATH_CASES: list[tuple[str, str, bool, str]] = [
    # labelled equalities and ratios vs bare values, both ways
    ("$11$", "$x=11$", True, "Math-Verify test_all.py (bare number vs equation)"),
    ("$x = 5$", "$5$", True, "brief (gold labelled)"),
    ("$AB = 3$", "The length is $3$.", True, "brief"),
    ("$3$", "So $AB = 3$.", True, "brief"),
    ("$A:B=1$", "$1$", True, "Math-Verify test_open_thoughts.py ($$A:B=1$$)"),
    ("$a:b = 2:3$", "$2:3$", True, "brief (labelled ratio gold)"),
    ("$2:3$", "$a:b = 2:3$", True, "brief"),
    ("$a:b = 2:3$", "$\\frac{2}{3}$", True, "brief"),
    ("$a:b = 2:3$", "$3:2$", False, "brief"),
    ("$x = 5$", "$6$", False, "brief"),
    ("$x = 2$", "$k = 2$", False, "brief (another name)"),
    # several boxes read together when the gold has several items
    ("$\\boxed{1,2}$", "$\\boxed{1}\\boxed{2}$", True, "Math-Verify test_all.py"),
    ("$\\{2, 3\\}$", "First \\boxed{2}. Then the other root is \\boxed{3}.", True, "brief (separate boxes)"),
    ("$(1, 2)$", "So $x = \\boxed{1}$ and, after more work, $y = \\boxed{2}$.", True, "brief (tuple)"),
    ("$\\{2, 3\\}$", "First \\boxed{2}. Then \\boxed{4}.", False, "brief"),
    ("$5$", "First \\boxed{2}. Then \\boxed{5}.", True, "brief (one gold: the last box)"),
    # intervals vs inequality chains and unions
    ("$(1, 3]$", "$1 < x \\le 3$", True, "brief (chain)"),
    ("$1 < x \\le 3$", "$(1,3]$", True, "brief"),
    ("$(1, 3)$", "$1 < x \\le 3$", False, "brief (closed end)"),
    ("$[-2, 5)$", "$5 > x \\ge -2$", True, "brief (flipped chain)"),
    ("$(-\\infty,0)\\cup(2,\\infty)$", "$x<0 \\text{ or } x>2$", True, "brief (or-union)"),
    ("$x<0 \\text{ or } x>2$", "$(-\\infty,0)\\cup(2,\\infty)$", True, "brief"),
    ("$(-\\infty,0)\\cup(2,\\infty)$", "$x < 0$ or $x > 2$", True, "brief (two spans)"),
    ("$x<0 \\text{ or } x>2$", "$x \\in (-\\infty,0)\\cup(2,\\infty)$", True, "brief (x in S)"),
    ("$(-\\infty,0)\\cup(2,\\infty)$", "$x \\le 0 \\text{ or } x>2$", False, "brief (closed end)"),
    (
        "$(2, 12) \\cup (12, 102)$",
        "$2 < x < 12 \\text{ or } 12 < x < 102$",
        True,
        "Math-Verify test_all.py ((2, 12) \\cup (12, 102)) as a chain union",
    ),
    ("$(0, 5)$", "$x > 0, x < 5$", False, "brief (overlapping: not read as a union)"),
]


@pytest.mark.parametrize(
    ("gold", "response", "expected", "source"), MATH_CASES, ids=[str(i) for i in range(len(MATH_CASES))]
)
def test_math_round_two(gold: str, response: str, expected: bool, source: str) -> None:
    result = verifiers.get("math").verify(response, gold)
    assert result.error is None, result.error
    assert result.correct is expected, f"{source}: {gold!r} vs {response!r} ({result.details})"


# ---- shaped rewards --------------------------------------------------------------------------------

BOX = {"bbox": [100, 100, 200, 200], "image_size": [1000, 1000]}


def test_grounding_default_is_unchanged() -> None:
    assert verifiers.get("grounding").verify("(250, 150)", BOX).score == 0.0


@pytest.mark.parametrize(
    ("click", "shaping", "score"),
    [
        ("(150, 150)", "edge", 1.0),  # inside
        ("(250, 150)", "edge", (1 - 0.05 / 0.15) ** 2),  # 50 px right of the edge: d = 0.05 -> 4/9
        ("(230, 240)", "edge", (1 - 0.05 / 0.15) ** 2),  # 30 px right, 40 px below: d = 0.05
        ("(400, 150)", "edge", 0.0),  # d = 0.2 >= r
        ("(150, 150)", "center", 1.0),  # at the centre
        ("(180, 190)", "center", (1 - 0.05 / 0.15) ** 2),  # 30, 40 px from the centre, inside: 4/9
        ("(300, 150)", "center", 0.0),  # d = 0.15 = r
    ],
)
def test_grounding_distance_shaping(click: str, shaping: str, score: float) -> None:
    result = verifiers.get("grounding", shaping=shaping).verify(click, BOX)
    assert result.score == pytest.approx(score)
    assert result.correct is (100 <= click_x(click) <= 200 and 100 <= click_y(click) <= 200)


def click_x(click: str) -> float:
    return float(click.strip("()").split(",")[0])


def click_y(click: str) -> float:
    return float(click.strip("()").split(",")[1])


def test_grounding_shaping_radius_option() -> None:
    result = verifiers.get("grounding", shaping="edge", shaping_radius="0.1").verify("(250, 150)", BOX)
    assert result.score == pytest.approx(0.25)  # (1 - 0.05/0.1)^2
    assert result.details["distance"] == pytest.approx(0.05)
    with pytest.raises(OptionError):
        verifiers.get("grounding", shaping_radius=0)


def test_asr_binary_reward() -> None:
    ref = "the quick brown fox jumps over the lazy dog again"  # 10 words
    one_error = "the quick brown fox jumps over the lazy cat again"  # WER 0.1
    cont = verifiers.get("asr").verify(one_error, ref)
    assert cont.score == pytest.approx(0.9) and cont.details["continuous_score"] == pytest.approx(0.9)
    strict = verifiers.get("asr", reward="binary", binary_below=0.1).verify(one_error, ref)
    assert strict.score == 0.0 and strict.details["continuous_score"] == pytest.approx(
        0.9
    )  # 0.1 < 0.1 is false
    loose = verifiers.get("asr", reward="binary", binary_below=0.15).verify(one_error, ref)
    assert loose.score == 1.0 and loose.correct is False  # correct keeps wer <= wer_threshold (0)
    with pytest.raises(OptionError):
        verifiers.get("asr", binary_below=0)


def test_abstention_idk_score() -> None:
    target = {"answerable": True, "answer": "42"}
    default = verifiers.get("abstention")
    shaped = verifiers.get("abstention", idk_score=0.3, false_abstention_score=0.1)
    idk = "I don't know."
    claim = "The document does not mention the number."
    assert default.verify(idk, target).score == 0.0
    result = shaped.verify(idk, target)
    assert result.score == pytest.approx(0.3) and result.details["idk"] is True and result.correct is False
    assert shaped.verify("I'm not sure.", target).score == pytest.approx(0.3)
    assert shaped.verify(claim, target).score == pytest.approx(0.1)  # not an explicit "I don't know"
    assert shaped.verify("42", target).score == 1.0
    assert shaped.verify(idk, {"answerable": False}).score == 1.0
    with pytest.raises(OptionError):
        verifiers.get("abstention", idk_score=1.5)


def test_asr_reference_is_normalised_once_per_group() -> None:
    from verifiers.asr import normalized_reference

    normalized_reference.cache_clear()
    asr = verifiers.get("asr")
    ref = "Mr. Smith paid twenty dollars, uh, yesterday."
    scores = [asr.verify(hyp, ref).score for hyp in ("mister smith paid $20 yesterday", "smith paid", "")]
    info = normalized_reference.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    assert scores[0] == 1.0 and scores[2] == 0.0
    assert (
        verifiers.get("asr", normalize="basic")
        .verify("mr smith", ref)
        .details["reference"]
        .startswith("mr smith")
    )
