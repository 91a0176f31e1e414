"""Multiple choice: read the chosen option (a letter, or the option's text) from free text.

Before the rules, "Option 2" / "Statement 2" become "Option B" / "Statement B", and letters the
response rules out ("can't be A or C", "A is wrong") are noted: the loose rules never pick them.
Answer statements are read in English, French, Spanish, German, Italian, Portuguese, Chinese and
Japanese (the simple-evals and MMLU-ProX cues). A response that is one letter in any case ("b",
"(d)") is that letter, except a bare "a" / "i".

Rules run from the most to the least explicit; the first that yields an option wins and is named in
``details["rule"]``:

  boxed           ``\\boxed{B}``, ``\\boxed{\\text{b}}``, ``\\boxed{London}``
  statement       the LAST answer statement: "the answer is (B)", "Answer: b", "I'd go with C",
                  "C is correct", "<answer>B</answer>"; its span may name the option's text instead
                  ("the answer is London")
  letter_line     a line holding only a letter: "B", "**B**", "(B).", "Option C"
  conclusion      "So B.", "Therefore, C"
  leading_letter  lines opening with a letter marker, one letter only: "B. London", "(C) because ..."
  option_text     an option's text: equal to the response, else opening it before its reasons
                  ("London, because ..."), else alone in the last sentence, else alone
                  in the response
  bare_letter     lone capitals, one distinct letter only: "C fits best"

Lower-case letters count only in answer statements and boxes. "A"/"I" followed by a lower-case word are
the article and the pronoun ("A good answer is ...", "I think ..."), never an option; capitals inside
words ("Car") never count; a hedge ("the answer is B or C") gives no answer. Every rule is a linear scan
(regexes without nested repetition, or windows of bounded length), so hostile inputs cost milliseconds.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

from verifiers.base import BaseOptions, OptionError, Verifier, VerifierError, VerifyResult
from verifiers.registry import register
from verifiers.text import normalize_answer

DEFAULT_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro has ten options
_WINDOW = 120  # characters read after an answer cue
_MAX_STATEMENTS = 64  # answer statements read, from the last one back

# Words that may follow "A"/"I" when they are an option letter ("A because ..."), not an article/pronoun.
_CONNECTIVES = frozenset(
    {"because", "since", "as", "is", "was", "seems", "appears", "fits", "matches", "would", "should"}
    | {"must", "remains", "and", "or", "but", "which", "that", "for", "given", "due", "with"}
)
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mathtt|boxed|fbox)\s*\{")
# Wrappers before a letter: spaces, markdown, quotes, brackets, LaTeX text commands, "option"/"choice".
_LEAD = re.compile(
    r"(?:[\s*_`\"'“‘$(\[{:#>•-]|\\(?:text|textbf|textit|mathrm|mathbf|mathtt|boxed|fbox)\s*\{|\\\(|"
    r"(?:option|choice|letter|answer|statement)\b)+",
    re.IGNORECASE,
)
_CLOSE = re.compile(r"[)\]}*_`\"'”’$.:,!;]*")
_NEGATED = re.compile(r"[)\]}*_`\"'$.]*\s+(?:is|are)\s+(?:not|wrong|incorrect|false)\b", re.IGNORECASE)
_HEDGE = re.compile(
    r"[)\]}*_`\"'$]*\s*(?:,|/|&|\b(?:or|and|ou|et|o|y|oder|und)\b|或|还是|または)\s*(?:(?:option|choice)\s+)?[(\[]?([A-Z])(?![\w'’-])(?!\s+(?:is|are)\b)",
    re.IGNORECASE,
)
_NEG_BEFORE = re.compile(
    r"\b(?:not|nor|neither|except)(?:\s+(?:is|are|option|choice))?\s*[(\[]?$", re.IGNORECASE
)
_LOWER_WORD = re.compile(r"\s+([a-z]+)")

# Answer words that need a connector ("is", ":", "est", "ist", "は", ...): English, then the French,
# Spanish, German, Italian and Portuguese ones and the Chinese / Japanese ones simple-evals and
# MMLU-ProX prompt for ("La réponse est (X)", "Die Antwort ist (X)", "答案是 (X)", "答えは (X) です").
_CUE = re.compile(
    r"<answer>|(答案|答え|回答|解答|正解|答)|\b(?:(answer|r[ée]ponse|respuesta|antwort|risposta|resposta)|"
    r"(?:correct|right|best|final|appropriate|only\s+correct|most\s+likely)\s+"
    r"(option|choice)|(choose|chose|pick|picked|select|selected|go\s+with|going\s+with|opt\s+for|"
    r"I(?:'d|\s+would)\s+say))\b",
    re.IGNORECASE,
)
_CONNECT = re.compile(
    r"(?:\s+(?:choice|option|letter|correct[ae]?|correcto|exacte|juste|finale?|richtige))?[\s*_]{0,4}"
    r"(?:(?:is|was|would\s+be|should\s+be|must\s+be|will\s+be|est|es|ist|lautet|è|é|sería|wäre)\b"
    r"(?:\s*:)?|[:：=是为は]|-(?!\w))"
    r"(?:\s+(?:therefore|thus|clearly|indeed|definitely|probably|likely|actually|then|simply|"
    r"donc|la|el|le|die|also))?",
    re.IGNORECASE,
)
_LETTER_FIRST = re.compile(
    r"(?<![\w'’-])(?:(?:[Oo]ption|[Cc]hoice|[Ss]tatement)[ \t]+)?[(\[]?([A-Z])[)\]]?[ \t]+(?:is|seems|appears)[ \t]+"
    r"(?:to[ \t]+be[ \t]+)?(?:the[ \t]+)?(?:correct|right|best|most[ \t]+appropriate|answer)\b"
)
_CONCLUSION = re.compile(r"\b(?:so|thus|therefore|hence|consequently)\b[ \t]*,?", re.IGNORECASE)
# A lone capital; not an abbreviation's letter ("U.S.", "J.K."), not a variable ("A = ", "=A")
_BARE = r"(?<![\w\\'’/$^_=+-])(?<![^\W\d_]\.)([{}])(?![\w'’/+#-])(?!\.[^\W\d_])(?!\s*[=<>^/+])"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Options named by number: "Option 2", "Statement 3", "Choice #1" (rewritten to letters up front).
_NUMBERED = re.compile(r"\b(option|choice|statement)(\s*#?\s*)(\d{1,2})(?![\d.,]?\d)", re.IGNORECASE)
_PAREN_NUMBER = re.compile(r"\((\d{1,2})\)")  # "(4)" right after an answer cue
# Rejected options: "not A", "can't be A or B", "rule out A and C", "A and B are wrong". The letters
# listed after a negation (or before "is/are wrong") are never the answer read by the loose rules.
_LETTER_LIST = (  # at most ten letters, bounded gaps: linear scans on hostile text
    r"[(\[]?[A-J][)\]]?(?:[ \t]{0,3}(?:,|/|\bor\b|\band\b|\bnor\b)[ \t]{0,3}(?:option[ \t]{1,3})?"
    r"[(\[]?[A-J][)\]]?){0,9}"
)
_REJECT_BEFORE = re.compile(
    r"(?:\b(?:not|nor|neither|except|excluding|eliminates?|eliminating|eliminated|rules?\s+out|ruling\s+out)"
    r"|\b(?:can't|cannot|can\s+not|couldn't|isn't|aren't|won't)(?:\s+(?:be|possibly\s+be))?)"
    r"(?:\s+(?:options?|choices?|either))?\s*(?-i:(" + _LETTER_LIST + r"))(?![\w'’-])",
    re.IGNORECASE,
)
_REJECT_AFTER = re.compile(
    r"(?<![\w'’-])(?:(?:options?|choices?)\s+)?(?-i:(" + _LETTER_LIST + r"))[)\]]?\s+(?:is|are)\s+"
    r"(?:(?:definitely|clearly|also|both|all)\s+)?(?:not\b|wrong|incorrect|false|eliminated|ruled\s+out)",
    re.IGNORECASE,
)
_REJECT_WORD = re.compile(r"not|nor|neither|except|exclud|eliminat|rul|n't|n’t|wrong|incorrect|false", re.I)
# The response's opening clause, up to the first clause mark or "because"-like word.
_LEAD_CLAUSE = re.compile(
    r"[\s*_`\"']{0,4}([^\n.,;:!?()—–]{1,200}?)[ \t*_`\"']{0,4}(?:[\n.,;:!?()—–]|[ \t]-[ \t]|[ \t](?:because|since|as|as it|"
    r"which|due to|parce que|car|porque|ya que|weil|da|因为|因為|なぜなら)\b)"
)
_HEDGE_NEXT = re.compile(r"[ \t]{0,3}(?:not|or|and|nor|but|maybe|perhaps)\b", re.IGNORECASE)
_LONE = re.compile(r"[\s*_`\"'(\[]{0,8}([A-Za-z])[)\]*_`\"'.:]{0,8}\s*")


@functools.lru_cache(maxsize=256)
def _bare_among(letters: str) -> re.Pattern[str]:
    """A lone capital among ``letters``: not in a word, an abbreviation ("U.S.") or a formula ("A = ")."""
    return re.compile(_BARE.format(re.escape(letters)))


@dataclass
class Found:
    letter: str | None
    rule: str | None
    evidence: str = ""
    reason: str = ""


def extract_choice(
    text: str, letters: str = DEFAULT_LETTERS, choices: dict[str, str] | None = None, *, bare: bool = True
) -> Found:
    """The option chosen in ``text`` among ``letters`` (option texts in ``choices`` help when given)."""
    text = unicodedata.normalize("NFKC", text)
    ctx = _Context(letters, choices or {})
    text = _letters_for_numbers(text, ctx)
    _note_rejections(text, ctx)
    rules = [_from_lone, _from_boxed, _from_statements, _from_lines, _from_text]
    rules += [_from_bare] if bare else []
    for rule in rules:
        found = rule(text, ctx)
        if found is not None:  # a hedge or an invalid final letter ends the search with no answer
            return found
    reason = "; ".join(ctx.notes) or "no answer found"
    return Found(None, None, reason=reason)


class _Context:
    def __init__(self, letters: str, choices: dict[str, str]) -> None:
        self.letters = letters
        self.choices = {k: str(v) for k, v in choices.items()}
        self.norm = [(k, n) for k, v in self.choices.items() if (n := normalize_answer(v))]
        self.norm.sort(key=lambda kv: -len(kv[1]))  # longest first: "New London" claims before "London"
        self.lower = [(len(v), v.lower()) for v in self.choices.values() if len(v) > 1]
        self.notes: list[str] = []
        self.negated: set[str] = set()  # letters an answer statement ruled out ("the answer is not A")
        self.fallback_text: str | None = None  # the text for the loose rules (a restated option list removed)
        self._edges_of: str | None = None  # the text whose option-text edges are in _edges
        self._edges: set[int] | None = set()
        self._normalized: dict[str, str] = {}

    def normalized(self, span: str) -> str:
        """``normalize_answer(span)``, remembered: the loose rules read the same text more than once."""
        if span not in self._normalized:
            self._normalized[span] = normalize_answer(span)
        return self._normalized[span]

    def inside_option_text(self, text: str, pos: int) -> bool:
        """The capital at ``pos`` ends or starts an option's own text ("Vitamin C"), so it is no letter."""
        if self._edges_of is not text:  # one linear pass per text, then a set lookup per letter
            self._edges_of, self._edges = text, _option_edges(text, [opt for _, opt in self.lower])
        if self._edges is None:  # lower-casing changed the text's length: compare in place
            return any(
                text[max(0, pos + 1 - n) : pos + 1].lower() == opt or text[pos : pos + n].lower() == opt
                for n, opt in self.lower
            )
        return pos in self._edges


def _option_edges(text: str, options: list[str]) -> set[int] | None:
    """Positions where an option's text (lower case) starts or ends in ``text``; None when lower-casing
    changes the text's length (positions would not line up)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    edges: set[int] = set()
    for opt in options:
        k = lowered.find(opt)
        while k >= 0:
            edges.update((k, k + len(opt) - 1))
            k = lowered.find(opt, k + 1)
    return edges


def _letters_for_numbers(text: str, ctx: _Context) -> str:
    """ "Option 2" / "Statement 3" -> "Option B" / "Statement C" when the options are lettered (and no
    option's own text is written that way)."""
    if any(_NUMBERED.search(v) for v in ctx.choices.values()):
        return text

    def to_letter(m: re.Match[str]) -> str:
        n = int(m.group(3))
        if not 1 <= n <= len(ctx.letters):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{ctx.letters[n - 1]}"

    return _NUMBERED.sub(to_letter, text)


def _note_rejections(text: str, ctx: _Context) -> None:
    """Letters the response rules out ("it can't be A or B", "A and C are wrong")."""
    if not _REJECT_WORD.search(text):
        return  # both patterns need one of these words: skip their scans
    for pattern in (_REJECT_BEFORE, _REJECT_AFTER):
        for m in pattern.finditer(text):
            ctx.negated.update(c for c in re.findall(r"[A-J]", m.group(1)) if c in ctx.letters)


def _from_lone(text: str, ctx: _Context) -> Found | None:
    """The whole response is one letter, any case: "b", "(d)", "**a**", "c." (a bare "a" or "i" is the
    word, not the option)."""
    m = _LONE.fullmatch(text)
    if m is None or m.group(1).upper() not in ctx.letters or text.strip() in ("a", "i"):
        return None
    return Found(m.group(1).upper(), "letter_line", text.strip()[:80])


def _letter_at(span: str, ctx: _Context, *, lower_ok: bool) -> tuple[str | None, str, int]:
    """Read an option letter at the start of ``span`` (after wrappers): (letter, why-not, index)."""
    num = _PAREN_NUMBER.match(span.lstrip(" *_`\"'"))
    if num and not any(v.strip() in (num.group(0), num.group(1)) for v in ctx.choices.values()):
        n = int(num.group(1))  # "the answer is (4)": the fourth option
        return (ctx.letters[n - 1], "", 0) if 1 <= n <= len(ctx.letters) else (None, "", 0)
    lead = _LEAD.match(span)
    i = lead.end() if lead else 0
    if span[i : i + 4].lower() == "not ":
        ruled_out, _, _ = _letter_at(span[i + 4 :], ctx, lower_ok=lower_ok)
        if ruled_out:
            ctx.negated.add(ruled_out)
        return None, "negated", i
    if i >= len(span):
        return None, "", i
    c = span[i]
    if not ("A" <= c.upper() <= "Z" and c.isascii()) or (c.islower() and not lower_ok):
        return None, "", i
    rest = span[i + 1 :]
    nxt = rest[:1]
    if nxt.isalnum() or (nxt and nxt in "_'’-") or (nxt == "." and rest[1:2].isalpha()):
        return None, "", i  # inside a word, "I'm", "B-cell", "i.e."
    if c.upper() in "AI":
        word = _LOWER_WORD.match(rest)
        if word and word.group(1) not in _CONNECTIVES:
            return None, "", i  # article / pronoun: "the answer is a bit ...", "Answer: I think ..."
    if c.upper() not in ctx.letters:
        if _LOWER_WORD.match(rest):
            return None, "", i  # "Answer: P is the pressure, ..." names a variable, not an option
        return None, f"{c.upper()} is not one of the options {ctx.letters}", i
    if _NEGATED.match(rest):
        ctx.negated.add(c.upper())
        return None, "negated", i
    hedge = _HEDGE.match(rest)
    if hedge and hedge.group(1).upper() in ctx.letters and hedge.group(1).upper() != c.upper():
        other = hedge.group(1)
        if other.isupper() and not (other in "AI" and _LOWER_WORD.match(rest, hedge.end())):
            return None, f"hedged between {c.upper()} and {other}", i
    return c.upper(), "", i


def _match_text(span: str, ctx: _Context, *, exact_only: bool = False) -> tuple[str | None, list[str]]:
    """The one option whose text is ``span`` or occurs in it: (letter, hits) or (None, hits)."""
    got = ctx.normalized(span) if ctx.norm else ""
    if not got:
        return None, []
    for letter, opt in ctx.norm:
        if got == opt:
            return letter, [letter]
    if exact_only:
        return None, []
    hay = f" {got} "
    claimed = bytearray(len(hay))
    hits: list[str] = []
    for letter, opt in ctx.norm:  # longest first; a shorter option inside a longer one's match is no hit
        needle, start, hit = f" {opt} ", 0, False
        while (k := hay.find(needle, start)) >= 0:
            hit = hit or not claimed[k + 1]
            claimed[k + 1 : k + 1 + len(opt)] = b"\x01" * len(opt)
            start = k + 1
        if hit:
            hits.append(letter)
    return (hits[0] if len(hits) == 1 else None), hits


def _final(why: str) -> bool:
    """A hedge or an invalid letter in a final statement ends the search: that *was* the answer."""
    return bool(why) and why != "negated"


def _from_boxed(text: str, ctx: _Context) -> Found | None:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    brace = text.find("{", start, start + 12) if start >= 0 else -1
    if brace < 0:
        return None
    depth, end = 0, -1
    for j in range(brace, min(len(text), brace + 300)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            end = j
            break
    if end < 0:
        return None
    evidence = text[start : end + 1][:80]
    inner = _LATEX_WRAP.sub(" ", text[brace + 1 : end]).replace("{", " ").replace("}", " ")
    letter, why, _ = _letter_at(inner, ctx, lower_ok=True)
    if _final(why):
        return Found(None, None, evidence, reason=f"boxed: {why}")
    if letter is None:
        letter, _ = _match_text(inner, ctx)
    return Found(letter, "boxed", evidence) if letter else None


def _from_statements(text: str, ctx: _Context) -> Found | None:
    """The last answer statement that names an option (a later statement overrides an earlier one)."""
    events = [(m.start(), m) for m in _CUE.finditer(text)] + [
        (m.start(), m) for m in _LETTER_FIRST.finditer(text)
    ]
    events.sort(key=lambda e: e[0])
    for _, m in reversed(events[-_MAX_STATEMENTS:]):
        if m.re is _LETTER_FIRST:
            letter, why = m.group(1), ""
            if letter not in ctx.letters or ctx.inside_option_text(text, m.start(1)):
                continue
        else:
            letter, why = _read_statement(text, m, ctx)
        evidence = text[m.start() : m.end() + 40].strip()
        if letter:
            return Found(letter, "statement", evidence)
        if _final(why):
            return Found(None, None, evidence, reason=why)
    return None


def _read_statement(text: str, cue: re.Match[str], ctx: _Context) -> tuple[str | None, str]:
    window = text[cue.end() : cue.end() + _WINDOW]
    if cue.group(1) or cue.group(2) or cue.group(3):  # "answer", "答案", ... need "is", ":", ...
        conn = _CONNECT.match(window)
        if conn is None:
            return None, ""
        window = window[conn.end() :]
    letter, why, _ = _letter_at(window, ctx, lower_ok=True)
    if letter is None and not why:  # "the answer is London"
        letter, _ = _match_text(_SENTENCE_END.split(window.split("</answer>")[0], maxsplit=1)[0], ctx)
    return letter, why


def _from_lines(text: str, ctx: _Context) -> Found | None:
    bare_line: tuple[str, int] | None = None  # the last line holding only a letter marker, its index
    leading: dict[str, str] = {}
    kept: list[str] = []  # the lines that open with no letter marker
    offset = 0
    for line in text.split("\n"):
        pos, offset = offset, offset + len(line) + 1
        lead = _LEAD.match(line)
        i = lead.end() if lead else 0
        if i >= len(line) or line[i] not in ctx.letters or ctx.inside_option_text(text, pos + i):
            kept.append(line)
            continue
        rest = line[i + 1 :]
        if not rest[_CLOSE.match(rest).end() :].strip():
            bare_line = (line, i)
        elif rest[:1] in ".):]," and not (line[i] == "I" and rest[:1] == ",") and not rest[1:2].isalpha():
            said, _ = _match_text(rest[1:], ctx, exact_only=True)
            if line[i] == "A" and rest[:1] == ":" and said not in (None, "A"):
                kept.append(line)  # "A: London" with London = B: a Q/A-style "A:" prefix, not a pick
                continue
            leading.setdefault(line[i], line.strip()[:80])
        else:
            kept.append(line)
    if bare_line is not None:
        line, i = bare_line
        return Found(line[i], "letter_line", line.strip()[:80])
    for m in reversed(list(_CONCLUSION.finditer(text))[-_MAX_STATEMENTS:]):
        letter, _, i = _letter_at(text[m.end() : m.end() + _WINDOW], ctx, lower_ok=False)
        if letter and not ctx.inside_option_text(text, m.end() + i):
            return Found(letter, "conclusion", text[m.start() : m.end() + 20].strip())
    if len(leading) == 1:
        letter, evidence = next(iter(leading.items()))
        return Found(letter, "leading_letter", evidence)
    if leading:  # a restated option list: the loose rules read the other lines only
        ctx.notes.append(f"several lines open with a letter: {sorted(leading)}")
        ctx.fallback_text = "\n".join(kept)
    return None


def _from_text(text: str, ctx: _Context) -> Found | None:
    if not ctx.norm:
        return None
    text = text if ctx.fallback_text is None else ctx.fallback_text
    letter, _ = _match_text(text, ctx, exact_only=True)
    if letter is not None:
        return Found(letter, "option_text", text.strip()[:80])
    lead = _LEAD_CLAUSE.match(text.strip())
    if lead and _HEDGE_NEXT.match(text.strip(), lead.end()):
        lead = None  # "Zinc, not Vitamin C", "Paris or London": a contrast or a hedge, not prose
    letter, _ = _match_text(lead.group(1), ctx, exact_only=True) if lead else (None, [])
    if letter is not None:  # "London, because ...": the option's text, then the reasons
        return Found(letter, "option_text", lead.group(0)[:80])
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    for span in [sentences[-1], text] if sentences else []:
        letter, hits = _match_text(span, ctx)
        if letter is not None:
            return Found(letter, "option_text", span.strip()[-80:])
        if len(hits) > 1:
            ctx.notes.append(f"several option texts appear: {hits}")
            return None
    return None


def _from_bare(text: str, ctx: _Context) -> Found | None:
    text = text if ctx.fallback_text is None else ctx.fallback_text
    seen: dict[str, str] = {}
    wanted = "".join(c for c in ctx.letters if c not in ctx.negated)
    pos = 0
    while wanted and (m := _bare_among(wanted).search(text, pos)):  # letters seen once are not sought again
        c, i, pos = m.group(1), m.start(1), m.end()
        if _NEGATED.match(text, i + 1) or _NEG_BEFORE.search(text[max(0, i - 24) : i]):
            continue  # "A is wrong", "nor is B", "not (C)"
        if c in "AI" and (word := _LOWER_WORD.match(text, i + 1)) and word.group(1) not in _CONNECTIVES:
            continue  # article / pronoun
        if ctx.inside_option_text(text, i):
            continue
        seen[c] = text[max(0, i - 30) : i + 30].strip()
        wanted = wanted.replace(c, "")
        if len(seen) > 2:
            break  # ambiguous already; enough for the report
    if len(seen) == 1:
        letter, evidence = next(iter(seen.items()))
        return Found(letter, "bare_letter", evidence)
    if seen:
        ctx.notes.append(f"several letters mentioned: {sorted(seen)}")
    return None


# ---- the verifier --------------------------------------------------------------------------------


@dataclass
class MCQOptions(BaseOptions):
    # Option letters, e.g. "ABCD". Default: A, B, ... for the number of choices when known, else A-J.
    letters: str | None = None
    # Option texts: {"A": "Paris", ...} or ["Paris", ...] (lettered A, B, ...); a row's `choices` wins.
    choices: dict[str, Any] | list[Any] | None = None
    # Accept the option's text instead of its letter (needs choices).
    match_text: bool = True
    # Last resort: a lone capital letter anywhere (only when exactly one distinct letter appears).
    bare_letter: bool = True


@register("mcq")
class MCQVerifier(Verifier):
    Options = MCQOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        letters = self.options.letters
        if letters is not None and (
            not letters
            or len(set(letters)) != len(letters)
            or any(c not in string.ascii_uppercase for c in letters)
        ):
            raise OptionError(f"mcq: option letters={letters!r} must be distinct capitals, e.g. 'ABCD'")
        if self.options.choices is not None:
            _lettered(self.options.choices, letters, "option choices")

    def check_target(self, target: Any) -> None:
        golds = target if isinstance(target, list) else [target]
        if not golds or not all(isinstance(g, str) and _clean_letter(g) for g in golds):
            raise VerifierError(
                f"mcq target must be an option letter such as 'B' or '(B)', or a non-empty list of them; got {target!r}"
            )

    def score(self, response: str, target: Any, **fields: Any) -> VerifyResult:
        raw = fields.get("choices", self.options.choices)
        choices = _lettered(raw, self.options.letters, "field choices") if raw is not None else {}
        letters = self.options.letters or ("".join(choices) if choices else DEFAULT_LETTERS)
        golds = {_clean_letter(g) for g in (target if isinstance(target, list) else [target])}
        if not golds <= set(letters):
            raise VerifierError(f"mcq target {sorted(golds)} is not among the option letters {letters!r}")
        found = extract_choice(
            response, letters, choices if self.options.match_text else None, bare=self.options.bare_letter
        )
        details: dict[str, Any] = {"rule": found.rule, "letters": letters}
        if found.evidence:
            details["evidence"] = found.evidence
        if found.reason:
            details["reason"] = found.reason
        ok = found.letter in golds
        return VerifyResult(float(ok), ok, found.letter, details)


def _clean_letter(value: str) -> str:
    letter = value.strip().strip("()[].:").strip().upper()
    return letter if len(letter) == 1 and letter in string.ascii_uppercase else ""


def _lettered(choices: Any, letters: str | None, where: str) -> dict[str, str]:
    """Choices as {letter: text}; a list is lettered A, B, ... (or by the ``letters`` option)."""
    if isinstance(choices, dict):
        out = {}
        for key, text in choices.items():
            letter = _clean_letter(key) if isinstance(key, str) else ""
            if not letter or (letters and letter not in letters):
                raise VerifierError(f"mcq {where}: key {key!r} is not an option letter")
            out[letter] = str(text)
        return out
    if isinstance(choices, (list, tuple)):
        names = letters or string.ascii_uppercase
        if len(choices) > len(names):
            raise VerifierError(f"mcq {where}: {len(choices)} choices but only letters {names!r}")
        return {names[i]: str(text) for i, text in enumerate(choices)}
    raise VerifierError(
        f"mcq {where} must be a dict {{letter: text}} or a list of texts, got {type(choices).__name__}"
    )
