"""Questions that may be unanswerable from the evidence (MMLongBench-Doc style): abstaining is right
exactly when the question is unanswerable; an answer to an answerable question goes to an inner verifier.

MMLongBench-Doc (github.com/mayubo2333/MMLongBench-Doc, eval/prompt_for_answer_extraction.md) has an
LLM rewrite every response to a short answer, "Not answerable" when the analysis says the documents do
not answer the question, and scores that string (eval/eval_score.py). We read the abstention straight
from the response instead, with phrase rules:

1. The answer span is the content of the last ``\\boxed{}`` / ``<answer>`` tag or the text after the
   last "answer is" / "answer:" cue, whichever comes last; otherwise the whole response.
2. A span that starts with "Yes"/"No" answers (a yes/no question answered in the negative is no
   abstention: "No, the report does not mention layoffs").
3. A span that is only "unknown", "N/A", "not sure", ... abstains.
4. Otherwise the span abstains when it holds a statement of missing information ("not answerable",
   "cannot be determined", "the document does not mention", "there is no information about", "I don't
   know", "none of the pages mention", ...), unless, after the LAST such statement, a contrast ("but",
   "however", "based on", ...) brings a substantive answer ("... does not mention X explicitly, but the
   table shows 42"), or the statement sits in a concessive clause beside a main clause ("Although the
   report does not say so directly, the total is 42"; "It is 42, though the text does not state it").
   Bare negations ("the answer is not 5 but 6", "not only X but Y") are no abstention.

A response saying only that it cannot read the image is no abstention either (MMLongBench-Doc labels
it "Fail to answer", which scores 0 on unanswerable questions).
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from verifiers.base import BaseOptions, OptionError, Verifier, VerifierError, VerifyResult
from verifiers.registry import get, register

ABSTAINED = "Not answerable"  # MMLongBench-Doc's label, reported as ``extracted`` when the model abstains

_DOC = (
    r"(?:document|doc|text|page|slide|image|picture|photo|figure|chart|graph|diagram|table|context|passage|"
    r"report|article|source|material|evidence|file|pdf|paper|manual|brochure|screenshot|video|audio|"
    r"recording|transcript|data|dataset|information|content|excerpt|section|survey|study|website)s?"
)
_TELL_VERBS = (
    r"(?:say|mention|provide|specify|state|indicate|list|report|disclose|reveal|clarify|give|offer|"
    r"(?:contain|include|have|cover)(?: [\w'-]+){0,3}? (?:information|data|details|figures?|numbers|statistics|"
    r"mention|answer))"
)
_SHOW_VERBS = (
    r"(?:show|present|describe|discuss|cover|display|depict|address|detail|identify|reference|explain)"
)
_HEDGE_ADVERBS = r"(?:(?:explicitly|directly|specifically|clearly|actually|seem to|appear to|exactly) )*"
_PARTICIPLES = (
    r"(?:mentioned|provided|specified|stated|given|shown|available|included|listed|found|present|disclosed|"
    r"reported|indicated|visible|described|discussed|addressed|covered|detailed|known|identified|documented|"
    r"depicted|displayed|recorded|answerable|determinable)"
)
_INFO = r"(?:information|info|data|details?|evidence|context)"
_DOES_NOT = r"(?: [\w'-]+){0,4}? (?:does|do|did) not " + _HEDGE_ADVERBS
_PATTERNS = [
    r"\b(?:not|non)[ -]?answerable\b|\bunanswerable\b",
    # "cannot be determined", "unable to answer", "impossible to tell", "no way to know"
    r"\b(?:cannot|could not|unable to|not able to|impossible to|not possible to|no way to)(?: be)?"
    r"(?: (?:reliably|accurately|definitively|exactly|precisely|directly|fully|confidently|clearly))?"
    r" (?:answer(?:ed)?|determined?|infer(?:red)?|find|found|tell|know|known|say|ascertain(?:ed)?|"
    r"identif(?:y|ied)|calculated?|computed?|deduced?|located?|confirm(?:ed)?|verif(?:y|ied)|"
    r"establish(?:ed)?|concluded?|extract(?:ed)?|derived?|retrieved?)\b",
    r"\b(?:i|we) do not (?:know|have (?:enough |sufficient |the |any |access)?" + _INFO + r"?)\b",
    # "there is no information about", "no mention of"; not "no further information is needed"
    r"\bno(?: relevant| specific| explicit| such| direct| clear)? (?:information|info|data|details|mention|"
    r"indication|record|answer)\b(?! (?:is|was|are|were) (?:needed|required|necessary))",
    r"\b(?:not enough|insufficient|inadequate|lack of|lacks?(?: the)?|lacking(?: the)?|missing)"
    r"(?: relevant| sufficient| specific| necessary| enough| required| needed)? " + _INFO + r"\b",
    # "the document does not mention", "the provided pages do not specify", "it does not say"
    r"\b(?:" + _DOC + r"|it|they|this|these)" + _DOES_NOT + _TELL_VERBS + r"\b",
    r"\b" + _DOC + _DOES_NOT + _SHOW_VERBS + r"\b",
    # "the revenue is not mentioned", "not specified in the report"
    r"\b(?:(?:is|are|was|were|being) not|(?:has|have|had) not been) " + _HEDGE_ADVERBS + _PARTICIPLES + r"\b",
    r"\bnot " + _HEDGE_ADVERBS + _PARTICIPLES + r"(?= (?:in|on|within|anywhere|from|for)\b| ?[.,;!]| ?$)",
    r"\bnone of the (?:[\w-]+ ){0,2}?"
    + _DOC
    + r" (?:mentions?|says?|"
    + _TELL_VERBS
    + "|"
    + _SHOW_VERBS
    + ")",
    r"\bnothing in the (?:[\w-]+ ){0,2}?" + _DOC + r"\b",
    r"\b(?:outside|beyond) the scope of\b|\bis silent (?:on|about|regarding)\b|\b(?:unclear|not clear) from\b",
    r"\b(?:is|remains) (?:unclear|unknown|not clear)\b",
    r"\bn/a\b",
    r"\b(?:i|we) (?:am|are) not (?:sure|certain)\b|\b(?:i|we) have no idea\b",
]
_ABSTAIN = [re.compile(p) for p in _PATTERNS]
# The abstentions that are the model's own "I don't know" (not a claim about the evidence).
_IDK = re.compile(
    r"(?:i|we) (?:do not know|am not sure|are not sure|am not certain|are not certain|have no idea)\b|"
    r"(?:not sure|unsure|no idea|i am not sure)$"
)
# A span that is only one of these abstains (a longer text with "unknown" in it need not).
_EXACT = frozenset(
    {"unknown", "not sure", "i am not sure", "unsure", "unclear", "na", "no answer", "not applicable"}
    | {"not available", "unavailable", "no idea", "cannot answer", "not known", "not determinable"}
    | {"the answer is unknown", "it is unknown", "unknowable", "none of the above"}
)
_YES_NO = re.compile(r"(?:yes|no)(?:[.,;:!—–-]|$)")
_CONTRAST = re.compile(
    r"(?:^|[\s,;:(—–-])(?:but|however|yet|nevertheless|nonetheless|that said|instead|still|though|although|"
    r"according to|approximately|roughly|estimated?)\b"
)
_CONCESSIVE = re.compile(r"\b(?:although|though|even though|while|whilst|even if|despite)\b")
_CUE = re.compile(
    r"\banswer(?:[ \t]+(?:is|would[ \t]+be|should[ \t]+be|will[ \t]+be))?(?:[ \t]*[:：]|(?<=is|be)\b)",
    re.IGNORECASE,
)
_TAG, _TAG_END = re.compile(r"<answer>", re.IGNORECASE), re.compile(r"</answer>", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9%$]+")
_SPACES = re.compile(r"\s+")
_MARKUP = re.compile(r"\\(?:text|textbf|mathrm|boxed|fbox)\s*\{|[*_`#{}$]|\\[()\[\]]")


def detect_abstention(response: str) -> tuple[bool, dict[str, Any]]:
    """Whether ``response`` abstains, with the rule and phrase that decided it."""
    span, where = answer_span(response)
    text = _normalise(span)
    if not text.strip(" .!?\"'"):
        return False, {"rule": "empty", "span": where}
    if _YES_NO.match(text):
        return False, {"rule": "yes_no", "span": where}
    if text.strip(" .!?\"'") in _EXACT:
        return True, {"rule": "exact_phrase", "phrase": text.strip(" .!?\"'"), "span": where}
    last = None
    for pattern in _ABSTAIN:
        for m in pattern.finditer(text):
            if last is None or m.start() > last.start():
                last = m
    if last is None:
        return False, {"rule": "no_abstention_phrase", "span": where}
    info = {"phrase": last.group(0), "span": where}
    if _answers_after(text[last.end() :]):
        return False, {"rule": "answer_after_phrase", **info}
    if _concessive(text, last):
        return False, {"rule": "concessive_phrase", **info}
    return True, {"rule": "phrase", **info}


def is_idk(how: dict[str, Any]) -> bool:
    """The abstention was the model's own explicit "I don't know" (``how`` from detect_abstention)."""
    return bool(_IDK.search(how.get("phrase", "")))


def answer_span(response: str) -> tuple[str, str]:
    """The final answer's text and where it came from: ``boxed``, ``answer_tag``, ``cue`` or ``response``."""
    candidates: list[tuple[int, str, str]] = []
    box = max(response.rfind("\\boxed"), response.rfind("\\fbox"))
    brace = response.find("{", box, box + 12) if box >= 0 else -1
    if brace >= 0:
        depth = 0
        for j in range(brace, min(len(response), brace + 1000)):
            depth += {"{": 1, "}": -1}.get(response[j], 0)
            if depth == 0:
                candidates.append((box, response[brace + 1 : j], "boxed"))
                break
    tag = _last(_TAG.finditer(response))
    if tag is not None:
        close = _TAG_END.search(response, tag.end())
        candidates.append(
            (tag.start(), response[tag.end() : close.start() if close else len(response)], "answer_tag")
        )
    cue = _last(_CUE.finditer(response))
    if cue is not None:
        candidates.append((cue.start(), response[cue.end() :], "cue"))
    if not candidates:
        return response, "response"
    _, span, where = max(candidates, key=lambda c: c[0])
    return span, where


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    found = deque(matches, maxlen=1)
    return found[0] if found else None


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    text = _MARKUP.sub(" ", text)
    text = text.replace("can't", "cannot").replace("can not", "cannot").replace("won't", "will not")
    text = text.replace("n't", " not").replace("i'm ", "i am ").replace("'re ", " are ")
    return _SPACES.sub(" ", text).strip()


def _substantive(text: str) -> bool:
    words = _WORD.findall(text[:300])
    return len(words) >= 2 or any(c.isdigit() for c in text[:300])


def _answers_after(tail: str) -> bool:
    """A contrast after the last abstention phrase that brings an answer: "..., but the table shows 42"."""
    return any(_substantive(tail[m.end() :]) for m in _CONTRAST.finditer(tail[:2000]))


def _concessive(text: str, phrase: re.Match[str]) -> bool:
    """The phrase is in an "although ..." clause and a main clause beside it answers."""
    start = max(text.rfind(mark, 0, phrase.start()) for mark in (". ", "? ", "! ")) + 1
    end = min(
        (k for mark in (". ", "? ", "! ") if (k := text.find(mark, phrase.end())) >= 0), default=len(text)
    )
    marker = _last(_CONCESSIVE.finditer(text, start, phrase.start()))
    if marker is None or any(mark in text[marker.end() : phrase.start()] for mark in ",;"):
        return False  # "Although I looked, the document does not say": the phrase is the main clause
    comma = text.find(",", phrase.end(), end)
    after = text[comma + 1 : end] if comma >= 0 else ""
    return _substantive(after) or _substantive(text[start : marker.start()].strip(" ,"))


# ---- the verifier --------------------------------------------------------------------------------


@dataclass
class AbstentionOptions(BaseOptions):
    # Verifier for answers to answerable questions, and its options.
    inner: str = "exact_match"
    inner_options: dict[str, Any] = field(default_factory=dict)
    # Score for abstaining on an answerable question (0 = as bad as a wrong answer).
    false_abstention_score: float = 0.0
    # Score for an explicit "I don't know" / "I'm not sure" on an answerable question (None: as any
    # other abstention, false_abstention_score). Honest uncertainty may earn more than a wrong answer.
    idk_score: float | None = None
    # What the inner verifier reads: the whole response, or only the final answer span (the text after
    # the last "answer:" / "the answer is", or the last \boxed{} / <answer> content).
    inner_reads: Literal["response", "answer_span"] = "response"


@register("abstention")
class AbstentionVerifier(Verifier):
    Options = AbstentionOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        opts = self.options
        if not 0.0 <= opts.false_abstention_score <= 1.0:
            raise OptionError(
                f"abstention: false_abstention_score={opts.false_abstention_score} must be in [0, 1]"
            )
        if opts.idk_score is not None and not 0.0 <= opts.idk_score <= 1.0:
            raise OptionError(f"abstention: idk_score={opts.idk_score} must be in [0, 1]")
        if opts.inner == "abstention":
            raise OptionError("abstention: inner cannot be 'abstention'")
        # Thinking is stripped here already; the length bound is ours.
        inner_options = {
            "strip_thinking": False,
            "max_response_chars": opts.max_response_chars,
            **opts.inner_options,
        }
        self.inner = get(opts.inner, **inner_options)

    def check_target(self, target: Any) -> None:
        if not isinstance(target, dict):
            raise VerifierError(
                'abstention target must be a dict {"answerable": bool, "answer": ...}, '
                f"got {type(target).__name__}"
            )
        if not isinstance(target.get("answerable"), bool):
            raise VerifierError(
                f'abstention target["answerable"] must be true or false, got {target.get("answerable")!r}'
            )
        if target["answerable"]:
            if target.get("answer") is None:
                raise VerifierError('abstention target["answer"] is required when "answerable" is true')
            try:
                self.inner.check_target(target["answer"])
            except VerifierError as exc:
                raise VerifierError(f'abstention target["answer"]: {exc}') from None

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        abstained, how = detect_abstention(response)
        details: dict[str, Any] = {"abstained": abstained, **how}
        if abstained:
            details["idk"] = is_idk(how)
            value = 1.0 if not target["answerable"] else self.options.false_abstention_score
            if target["answerable"] and details["idk"] and self.options.idk_score is not None:
                value = self.options.idk_score
            return VerifyResult(value, not target["answerable"], ABSTAINED, details)
        if not target["answerable"]:
            span, _ = answer_span(response)
            return VerifyResult(0.0, False, span.strip()[:200] or None, details)
        text = response if self.options.inner_reads == "response" else answer_span(response)[0]
        inner = self.inner.verify(text, target["answer"], **fields)
        details["inner"] = inner.details
        return VerifyResult(inner.score, inner.correct, inner.extracted, details, inner.error)
