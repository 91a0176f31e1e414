"""Find the answer in a response: the strings to parse, best first.

Order (the first candidate that parses wins; a boxed or anchored LaTeX answer that does not parse is
still the answer, compared as text):
1. the last ``\\boxed{}`` / ``\\fbox{}`` (boxes separated only by "and", commas, spaces join:
   "\\boxed{1} and \\boxed{2}" is one answer)
   or "final answer ... is X", whichever ends later;
2. "answer: X" / "the answer is X";
3. the whole response when it is a short bare expression ("x^2+1", "\\frac{1}{2}");
4. the last math span ($...$, $$...$$, \\(...\\), \\[...\\]) or plain number/expression ("2/3",
   "1,000.99", "28 %") outside math spans, rightmost first.
All scans are linear in the text length.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from verifiers.math.vocab import KEYWORDS


@dataclass(frozen=True)
class Candidate:
    text: str
    source: str  # boxed | final_answer | answer | whole | latex | number
    plain: bool = False  # running text: plain-number rules apply (decimal commas, mixed numbers)
    strong: bool = False  # the response marks it as its answer: used even if it does not parse
    percent: bool = False  # followed by "%" / "percent"


_BOX = re.compile(r"\\(?:boxed|fbox)\b")
# what may stand between boxes that form one answer: "\\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}"
_BOX_JOINER = re.compile(
    r"(?:\s|[$,;&]|\\(?:quad|qquad|[,;:! ()\[\]])|\\text\s*\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b){0,40}"
)
_FINAL = re.compile(r"final\s+answer\b[^\n.]{0,100}?\bis\b\s*:?", re.IGNORECASE)
_ANSWER = re.compile(r"\banswer\b\s*(?:is\b|:|=)?\s*:?", re.IGNORECASE)
_DELIM = re.compile(r"\$\$|\\\[|\\\]|\\\(|\\\)|(?<!\\)\$")
_JOIN = re.compile(r"\s*(?:,?\s*(?:and|or)|,)\s*$")
_PERCENT_AFTER = re.compile(r"\s*(?:\\?%|percent(?:age)?\b|pct\b)", re.IGNORECASE)
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+,\d{2}(?![\d,)])|0,\d+(?![\d,)])|\d+(?:\.\d+)?|\.\d+)"
_PLAIN = re.compile(
    rf"(?<![\w.\\^_])(?:[-+]?\d{{1,3}}(?: \d{{3}})*(?: \d+/\d+)(?![\d/])"
    rf"|\d{{1,3}}(?: \d{{3}})+(?![\d/])"
    rf"|-?{_NUM}(?:[ \t]*[-+*/×÷^][ \t]*\(?-?{_NUM}\)?)*)"
    r"(?P<pct>\s*(?:%|percent(?:age)?\b|pct\b))?",
    re.IGNORECASE,
)
_PLAIN_FRAC = re.compile(r"-?\\[dt]?frac\{-?\d+(?:\.\d+)?\}\{-?\d+(?:\.\d+)?\}")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n|\s+I hope\b|<\|")
_LEAD = re.compile(r"^[\s*\"'`:]+")


def boxes(text: str) -> tuple[str, int] | None:
    """Contents of the last box (joined with its neighbours) and where the last one ends."""
    found: list[tuple[int, int, str]] = []  # (start, end, content), right to left
    limit = len(text)
    boxed, fbox = text.rfind("\\boxed"), text.rfind("\\fbox")
    while len(found) < 10:
        start = max(boxed, fbox)
        if start < 0:
            break
        if start == boxed:  # each command is searched for once per occurrence: linear overall
            boxed = text.rfind("\\boxed", 0, start)
        else:
            fbox = text.rfind("\\fbox", 0, start)
        m = _BOX.match(text, start)
        if m is None:
            continue
        i = m.end()
        while i < limit and text[i].isspace():
            i += 1
        if i >= limit or text[i] != "{":
            continue
        depth, j = 0, i
        while j < limit:
            c = text[j]
            if c == "\\":
                j += 2
                continue
            depth += (c == "{") - (c == "}")
            if depth == 0:
                break
            j += 1
        end = min(j, limit)
        content = text[i + 1 : end].strip()
        if found:
            between = text[end + 1 : found[-1][0]]
            if end >= found[-1][0] or content == found[-1][2] or not _BOX_JOINER.fullmatch(between):
                break
        found.append((start, end, content))
        limit = start
    if not found:
        return None
    return ", ".join(c for _, _, c in reversed(found)), found[0][1]


def last_boxes(text: str, count: int) -> list[str]:
    """The contents of the last ``count`` boxes in ``text``, left to right (fewer if there are fewer).
    Each box is brace-matched within 1 000 characters, so the scan is linear in the text length."""
    found: list[str] = []
    end = len(text)
    while len(found) < count:
        start = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
        if start < 0:
            break
        end = start
        m = _BOX.match(text, start)
        brace = text.find("{", m.end(), m.end() + 4) if m else -1
        if brace < 0:
            continue
        depth, j = 0, brace
        limit = min(len(text), brace + 1_000)
        while j < limit:
            c = text[j]
            if c == "\\":
                j += 2
                continue
            depth += (c == "{") - (c == "}")
            if depth == 0:
                found.append(text[brace + 1 : j].strip())
                break
            j += 1
    return found[::-1]


def math_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of $..$, $$..$$, \\(..\\), \\[..\\] spans, paired left to right."""
    delims = [(m.start(), m.group()) for m in _DELIM.finditer(text)]
    newlines = [i for i, c in enumerate(text) if c == "\n"]
    closer = {"$$": "$$", "\\[": "\\]", "\\(": "\\)", "$": "$"}
    nxt: dict[str, list[int]] = {c: [] for c in closer.values()}
    for k, (_, d) in enumerate(delims):
        if d in nxt:
            nxt[d].append(k)
    spans = []
    k = 0
    while k < len(delims):
        pos, d = delims[k]
        want = closer.get(d)
        if want is None:
            k += 1
            continue
        idx = nxt[want]
        j = bisect.bisect_right(idx, k)
        if j == len(idx):
            k += 1
            continue
        close_pos = delims[idx[j]][0]
        inline = d in ("$", "\\(")
        if inline and bisect.bisect_left(newlines, pos) != bisect.bisect_left(newlines, close_pos):
            k += 1  # inline math does not cross lines
            continue
        spans.append((pos, close_pos + len(want), text[pos + len(d) : close_pos]))
        k = idx[j] + 1
    return spans


def _span_groups(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans joined by "and" / "," ("$12$ and $13$") become one candidate."""
    groups: list[tuple[int, int, str]] = []
    for start, end, content in spans:
        if groups and len(text[groups[-1][1] : start]) < 12 and _JOIN.match(text[groups[-1][1] : start]):
            s, _, c = groups[-1]
            groups[-1] = (s, end, f"{c}, {content}")
        else:
            groups.append((start, end, content))
    return groups


_TEXT_GROUP = re.compile(r"\\(?:text|mathrm|textbf|mbox|begin|end|operatorname)\{[^{}]*\}")


def _is_prose(text: str) -> bool:
    """Running words ("the", "answer", "Evelyn"), not just math: \\text{...} does not count."""
    return any(w.group().lower() not in KEYWORDS for w in _WORD.finditer(_TEXT_GROUP.sub(" ", text)))


def _plain_matches(text: str, start: int, end: int) -> Iterator[tuple[int, int, str, bool]]:
    for m in _PLAIN.finditer(text, start, end):
        yield (
            m.start(),
            m.end(),
            text[m.start() : m.start("pct") if m.group("pct") else m.end()],
            bool(m.group("pct")),
        )


def after_anchor(text: str, pos: int, source: str) -> Iterator[Candidate]:
    """What follows "final answer is" / "answer:": a math span, else the sentence, else its first number."""
    segment = text[pos : pos + 400]
    lead = _LEAD.match(segment)
    segment = segment[lead.end() :] if lead else segment
    spans = math_spans(segment)
    if spans and spans[0][0] < 60:
        group = _span_groups(segment, spans)[0]
        yield Candidate(group[2], source, strong=True, percent=bool(_PERCENT_AFTER.match(segment, group[1])))
        return
    end = _SENTENCE_END.search(segment)
    sentence = segment[: end.start()] if end else segment
    sentence = sentence.replace("**", "").strip()
    if sentence and not _is_prose(sentence):
        yield Candidate(sentence, source, plain=True)
    for _, _, number, pct in _plain_matches(sentence, 0, len(sentence)):
        yield Candidate(number, source, plain=True, percent=pct)
        break


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text):  # noqa: B007 - the loop finds the last match
        pass
    return last


def candidates(text: str, max_chars: int) -> Iterator[Candidate]:
    tier1: list[tuple[int, list[Candidate]]] = []
    box = boxes(text)
    if box is not None:
        tier1.append((box[1], [Candidate(box[0], "boxed", strong=True)]))
    final = _last_match(_FINAL, text)
    if final is not None:
        tier1.append((final.end(), list(after_anchor(text, final.end(), "final_answer"))))
    for _, group in sorted(tier1, key=lambda t: -t[0]):
        yield from group
    answer = _last_match(_ANSWER, text)
    if answer is not None:
        yield from after_anchor(text, answer.end(), "answer")
    stripped = text.strip()
    if (
        len(stripped) <= max_chars
        and not any(d in stripped for d in ("$", "\\(", "\\["))
        and not _is_prose(stripped)
    ):
        yield Candidate(stripped, "whole", plain=True)
    yield from _rightmost(text)


def _rightmost(text: str) -> Iterator[Candidate]:
    spans = math_spans(text)
    found: list[tuple[int, Candidate]] = []
    for _, end, content in _span_groups(text, spans):
        pct = bool(_PERCENT_AFTER.match(text, end))
        found.append((end, Candidate(content, "latex", percent=pct)))
    gaps, prev = [], 0
    for start, end, _ in spans:
        gaps.append((prev, start))
        prev = end
    gaps.append((prev, len(text)))
    for lo, hi in gaps:
        for _, end, number, pct in _plain_matches(text, lo, hi):
            found.append((end, Candidate(number, "number", plain=True, percent=pct)))
        for m in _PLAIN_FRAC.finditer(text, lo, hi):
            found.append((m.end(), Candidate(m.group(), "number")))
    found.sort(key=lambda t: -t[0])
    for _, cand in found:
        yield cand
