"""Reading the final answer out of a model response.

A response is read the way a grader would: reasoning blocks are dropped, then the
last answer statement (``#### X``, ``The answer is X``, ``Answer: X``,
``\\boxed{X}``) near the end of the response gives the answer, else a final line
that is only an answer. :func:`clean_answer` strips markdown and LaTeX wrappers and
:func:`normalize_number` parses a number without ever changing its value. The
scorers in :mod:`pytest_nel.scoring` are built on these functions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import accumulate, compress
from typing import NamedTuple

# --------------------------------------------------------------------------- patterns

_SCAN_CHARS = 20_000  # answer statements are looked for in this tail only
_MAX_STATEMENTS = 8  # how many trailing statements may be tried, last first
_THINK_TAG = re.compile(r"<(/?)(?:think|thinking|reasoning)>", re.IGNORECASE)
_TAG_STEP = {"": 1, "/": -1}
_LATEX_WRAPPER = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textrm|textit|mathrm|mathbf|mbox)[ \t]{0,3}\{"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]{1,50})\}\{([^{}]{1,50})\}")
_LATEX_LITERALS = (
    ("\\%", "%"), ("\\$", "$"), ("{,}", ","), ("\\,", ""), ("\\!", ""),
    ("\\;", " "), ("\\ ", " "), ("\\left", ""), ("\\right", ""), ("\\(", ""),
    ("\\)", ""), ("\\[", ""), ("\\]", ""), ("$", ""), ("`", ""),
)  # fmt: skip
_MD_BOLD = re.compile(r"\*\*([^*\n]{0,500})\*\*|__([^_\n]{0,500})__")
_MD_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]{1,500})(?<!\s)\*(?![\w*])")
_WRAPPING_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "(": ")", "[": "]"}
_TRAILING_PUNCT = ".,;:!?。 \t\n"
_BRACE = re.compile(r"[{}]")

_HASH = re.compile(r"(?<!#)####(?!#)[ \t]{0,8}(?=[-+\u2212$€£¥₹(\\.*\d]|\n)")
_ANSWER_IS = re.compile(
    r"\b(?:answer|correct[ \t](?:option|choice))[ \t]{1,3}"
    r"(?:is|would[ \t]be|will[ \t]be)\b(?![ \t]{1,3}not\b)[ \t:*_]{0,8}",
    re.IGNORECASE,
)
_ANSWER_LINE = re.compile(
    r"\b(?:final[ \t]answer[ \t*_#]{0,6}$|answer[ \t*_]{0,6}:[ \t*_]{0,6})",
    re.IGNORECASE | re.MULTILINE,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]{0,3}\{")
_TRIGGERS = ((_HASH, "hash"), (_ANSWER_IS, "answer_is"), (_ANSWER_LINE, "answer_line"))
_Triggers = tuple[tuple[re.Pattern[str], str], ...]
_NON_BLANK = re.compile(r"\S")
_SENTENCE_END = re.compile(
    r"[.!?。](?=\s|$)|[,;]?\s(?:because|since)\b|[,;]\s(?:and|but|so|which|while)\b",
    re.IGNORECASE,
)
_TRAILING_REMARK = re.compile(r"\s\([^()]{0,200}\)$")

_NUMBER_FULL = re.compile(
    r"""(?P<sign>[-+])?(?:[$€£¥₹₩]|usd|eur|gbp)?[ ]?(?P<sign2>[-+])?
    (?: (?P<num>[0-9]+)[ ]?/[ ]?(?P<den>[0-9]+)
      | (?P<int>[0-9]{1,2}(?:,[0-9]{2})+,[0-9]{3}
               |[0-9]{1,3}(?:,[0-9]{3})+
               |[0-9]{1,3}(?:[ \u00a0\u202f\u2009][0-9]{3})+
               |[0-9]*)
        (?P<frac>\.[0-9]*)?(?P<exp>e[-+]?[0-9]{1,4})? )
    [ ]?(?:%|percent)?""",
    re.IGNORECASE | re.VERBOSE,
)
# A comma that does not group thousands ("12,5", "1,00") makes no number at all: its
# digits on either side are not read apart (12,5 is not 5).
_NUMBER_TOKEN_TEMPLATE = (
    r"(?<![\w.,^])[-+\u2212]?(?:[$€£¥₹₩][ ]?)?"
    r"(?:\d{1,2}(?:,\d{2})+,\d{3}|\d{1,3}(?:,\d{3})+"
    r"|\d{1,3}(?:[SPACES]\d{3})+|\d+)"
    r"(?!\d)(?!,\d)(?:\.\d+)?(?:/\d+(?![\d.]))?%?"
    r"|(?<![\w.^])\.\d+"
)
# Anywhere in a text, "5 100 ml" is two numbers; inside an answer statement,
# "$118 000" is one. Narrow no-break spaces group digits in both.
_NUMBER_TOKEN = re.compile(
    _NUMBER_TOKEN_TEMPLATE.replace("SPACES", "\u00a0\u202f\u2009")
)
_STATED_NUMBER_TOKEN = re.compile(
    _NUMBER_TOKEN_TEMPLATE.replace("SPACES", " \u00a0\u202f\u2009")
)
_CHAR_MAP = {
    "\u2212": "-", "\uff0d": "-", "\uff0b": "+", "\uff0c": ",", "\uff0e": ".",
    "\u066b": ".", "\u066c": ",", "\uff05": "%", "\uff04": "$",
}  # fmt: skip
_PRONOUN_I = re.compile(r"I\s+(?:think|believe|guess|would|will|am|can|do)\b")


class _Statement(NamedTuple):
    """An answer statement: where it starts and ends, its raw text, its rule."""

    start: int
    end: int
    text: str
    method: str


# --------------------------------------------------------------------------- cleaning


def strip_reasoning(text: str) -> str:
    """Remove ``<think>`` / ``<thinking>`` / ``<reasoning>`` blocks from a response.

    A block that is opened and never closed means the answer was never written, so
    the result is ``""``. A close tag without an open one (the chat template opened
    the block) drops everything before it.

    Args:
        text: The raw model response.

    Returns:
        The response without its reasoning.
    """
    parts = _THINK_TAG.split(text)  # [text, "" or "/", text, "" or "/", ..., text]
    if len(parts) == 1:
        return text
    # Depth before each text piece, +1 per open tag and -1 per close tag, unclamped
    # so that it is computed at C speed. A close tag that reaches a new low closes a
    # block the template opened: what precedes the last one is reasoning, and what
    # follows it is kept wherever the depth is back at that low.
    depths = [0, *accumulate(map(_TAG_STEP.__getitem__, parts[1::2]))]
    floor = min(depths)
    if depths[-1] != floor:
        return ""  # a block is still open: the answer was never written
    start = depths.index(floor)
    kept = compress(parts[2 * start :: 2], map(floor.__eq__, depths[start:]))
    return "".join(kept)


def _brace_pairs(text: str) -> dict[int, int]:
    """Map the index of every balanced ``{`` to the index of its ``}`` (one pass)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for brace in _BRACE.finditer(text):
        if brace.group() == "{":
            stack.append(brace.start())
        elif stack:
            pairs[stack.pop()] = brace.start()
    return pairs


def _unwrap_latex(text: str) -> str:
    """Replace ``\\boxed{x}``, ``\\text{x}``... by ``x`` (outermost level only)."""
    if "\\" not in text:
        return text
    pairs: dict[int, int] | None = None
    out: list[str] = []
    pos = 0
    for command in _LATEX_WRAPPER.finditer(text):
        if command.start() < pos:
            continue  # nested inside a wrapper already taken; the next pass gets it
        if pairs is None:
            pairs = _brace_pairs(text)
        out.append(text[pos : command.start()])
        close = pairs.get(command.end() - 1)
        if close is None:  # unbalanced: drop the command, keep what follows
            pos = command.end()
            continue
        out.append(text[command.end() : close])
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


def _unwrap_pair(text: str) -> str:
    """Drop quotes or brackets that wrap the whole of ``text``."""
    close = _WRAPPING_PAIRS.get(text[:1])
    if close is None or len(text) < 2 or text[-1] != close:
        return text
    depth = 1
    for char in text[1:-1]:
        if char == close:
            depth -= 1
            if depth == 0:
                return text  # "(1) and (2)": the first bracket closes early
        elif char == text[0]:
            depth += 1
    return text[1:-1].strip()


def clean_answer(text: str) -> str:
    """Strip markdown, LaTeX wrappers, wrapping quotes and trailing punctuation.

    Args:
        text: A candidate answer, e.g. ``"**\\boxed{18}**."``.

    Returns:
        The bare answer, e.g. ``"18"``.
    """
    for _ in range(4):  # nested wrappers (**$\\boxed{x}$**) peel one layer a pass
        before = text
        text = _LATEX_FRAC.sub(r"\1/\2", _unwrap_latex(text))
        for old, new in _LATEX_LITERALS:
            text = text.replace(old, new)
        text = _MD_BOLD.sub(lambda m: m.group(1) or m.group(2) or "", text)
        text = _MD_ITALIC.sub(r"\1", text)
        text = _unwrap_pair(text.strip().strip("*").strip())
        text = text.rstrip(_TRAILING_PUNCT)
        if text == before:
            break
    return text


# --------------------------------------------------------------------------- numbers


def _ascii_digits(text: str) -> str:
    """Map Unicode decimal digits and full-width signs to ASCII."""
    if text.isascii():
        return text
    chars = []
    for char in text:
        digit = unicodedata.decimal(char, None)
        chars.append(str(digit) if digit is not None else _CHAR_MAP.get(char, char))
    return "".join(chars)


def _parse_number(text: str) -> Decimal | None:
    """Parse an already cleaned number; see :func:`normalize_number`."""
    match = _NUMBER_FULL.fullmatch(_ascii_digits(text.strip()))
    if match is None or (match["sign"] and match["sign2"]):
        return None
    negative = "-" in ((match["sign"] or "") + (match["sign2"] or ""))
    if match["den"] is not None:
        if int(match["den"]) == 0:
            return None
        value = Decimal(match["num"]) / Decimal(match["den"])
    else:
        digits = re.sub(r"[, \u00a0\u202f\u2009]", "", match["int"])
        frac = match["frac"] or ""
        if not digits and len(frac) < 2:
            return None
        try:
            value = Decimal(f"{digits or '0'}{frac}{match['exp'] or ''}")
        except InvalidOperation:
            return None
    return -value if negative else value


def normalize_number(text: str) -> Decimal | None:
    """Parse a number as a model writes it, without ever changing its value.

    Accepts thousands separators (``1,234``, ``1 234``, ``1,00,000``), currency
    prefixes, a ``%`` suffix (the value is kept: ``50%`` is 50), ``18.``, ``.5``,
    signs, fractions (``3/4`` is 0.75), LaTeX/markdown wrapping and Unicode digits.
    ``1.000`` is one, and ``1,5`` is not a number.

    Args:
        text: The text to parse.

    Returns:
        The value, or None when ``text`` is not a single number.
    """
    return _parse_number(clean_answer(text))


def _last_number(text: str, pattern: re.Pattern[str] = _NUMBER_TOKEN) -> Decimal | None:
    """The last number written in ``text``, as ``pattern`` finds numbers."""
    tokens = [token.group() for token in pattern.finditer(text)]
    for token in reversed(tokens):
        value = _parse_number(token)
        if value is not None:
            return value
    return None


def _number_in(text: str) -> Decimal | None:
    """The number an answer statement gives: all of it, or its last number.

    A trailing remark is skipped when the rest holds a number: "18 (9 * 2)" is 18.
    """
    value = _parse_number(text)
    if value is None:
        bare = _TRAILING_REMARK.sub("", text)
        value = _last_number(bare, _STATED_NUMBER_TOKEN)
    if value is None:
        value = _last_number(text, _STATED_NUMBER_TOKEN)
    return value


# --------------------------------------------------------------------------- statements


def _trigger_spans(
    text: str, only: str | None, extra: _Triggers = ()
) -> list[tuple[int, int, int, str]]:
    """Every answer trigger in ``text`` as (start, text start, text end, method).

    A text end of -1 means "to the end of the line". ``extra`` adds triggers (the
    answer cues of another language).
    """
    spans = [
        (match.start(), match.end(), -1, method)
        for pattern, method in (*_TRIGGERS, *extra)
        if only in (None, method)
        for match in pattern.finditer(text)
    ]
    if only in (None, "boxed") and "\\" in text:
        pairs = _brace_pairs(text)
        for match in _BOXED.finditer(text):
            close = pairs.get(match.end() - 1)
            if close is not None:
                spans.append((match.start(), match.end(), close, "boxed"))
    spans.sort()
    return spans


def _rest_of_line(text: str, pos: int) -> tuple[int, int]:
    """The span from ``pos`` to the end of its line, or the next non-blank line."""
    newline = text.find("\n", pos)
    end = len(text) if newline < 0 else newline
    if text[pos:end].strip(" \t*_#:") or newline < 0:
        return pos, end
    first = _NON_BLANK.search(text, end)
    if first is None:
        return pos, end
    newline = text.find("\n", first.start())
    return first.start(), len(text) if newline < 0 else newline


def _is_short_answer(cleaned: str) -> bool:
    """Whether a cleaned line is only an answer: a number or at most three words."""
    if not cleaned:
        return False
    if _parse_number(cleaned) is not None:
        return True
    return len(cleaned) <= 40 and len(cleaned.split()) <= 3


def _statements(
    text: str, only: str | None = None, extra: _Triggers = ()
) -> Iterator[_Statement]:
    """Yield the last few answer statements in ``text``, last first."""
    for start, begin, end, method in reversed(
        _trigger_spans(text, only, extra)[-_MAX_STATEMENTS:]
    ):
        if end < 0:
            begin, end = _rest_of_line(text, begin)
        body = text[begin:end]
        if method == "answer_is":
            cut = _SENTENCE_END.search(body)
            body = body[: cut.start()] if cut else body
        if method == "hash" and not _is_short_answer(clean_answer(body)):
            continue  # "#### 1. Compute the cost" is a markdown heading
        yield _Statement(start, end, body, method)


def _final_line(text: str) -> str | None:
    """The cleaned last non-empty line, when that line is only an answer."""
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :].strip()
    if line.endswith((":", "?")):
        return None
    cleaned = clean_answer(line)
    return cleaned if _is_short_answer(cleaned) else None


def _tail(text: str) -> str:
    """The reasoning-free end of a response, where answer statements are read."""
    return strip_reasoning(text)[-_SCAN_CHARS:]


def extract_answer_text(text: str) -> tuple[str | None, str]:
    """Read the final answer a response states, as cleaned text.

    Rules, in order: the last of ``#### X``, ``The (final) answer is X``,
    ``Answer: X`` (also bold and ``Final Answer``) and ``\\boxed{X}``; else a last
    line that is only an answer (a number or at most three words).

    Args:
        text: The raw model response.

    Returns:
        ``(answer, method)``; ``(None, "none")`` when the response states nothing.
    """
    return _answer_text(strip_reasoning(text))


def _answer_text(answer: str) -> tuple[str | None, str]:
    """:func:`extract_answer_text` on a response already stripped of reasoning."""
    tail = answer[-_SCAN_CHARS:]
    for statement in _statements(tail):
        cleaned = clean_answer(statement.text)
        if cleaned:
            return cleaned, statement.method
    final = _final_line(tail)
    return (final, "final_line") if final else (None, "none")


def extract_number(
    text: str, *, cues: Sequence[str] = ()
) -> tuple[Decimal | None, str]:
    """Read the final numeric answer of a response.

    The number of the last answer statement that holds one (all of it, or its last
    number: ``The answer is 18 dollars`` is 18), else of a final answer-only line,
    else the last number anywhere in the reasoning-free text (``"last_number"``).

    Args:
        text: The raw model response.
        cues: Extra answer cues, each followed by a colon in the response
            (``"Antwort"`` reads ``Antwort: 18``; method ``"cue"``), e.g. the
            answer words of the response's language.

    Returns:
        ``(value, method)``; ``(None, "none")`` when there is no number at all.
    """
    tail = _tail(text)
    for statement in _statements(tail, extra=_cue_triggers(tuple(cues))):
        value = _number_in(clean_answer(statement.text))
        if value is not None:
            return value, statement.method
    final = _final_line(tail)
    value = _number_in(final) if final else None
    if value is not None:
        return value, "final_line"
    value = _last_number(tail)
    return (value, "last_number") if value is not None else (None, "none")


@lru_cache(maxsize=64)
def _cue_triggers(cues: tuple[str, ...]) -> _Triggers:
    """One trigger for a set of answer cues: ``Antwort:``, ``**答案**：``..."""
    if not cues:
        return ()
    words = "|".join(re.escape(cue) for cue in sorted(cues, key=len, reverse=True))
    # No word boundary: Chinese, Japanese and Thai do not separate words.
    cue = re.compile(rf"(?:{words})[ \t*_]{{0,6}}[:：][ \t*_]{{0,6}}", re.IGNORECASE)
    return ((cue, "cue"),)


# --------------------------------------------------------------------------- choices


@lru_cache(maxsize=64)
def _choice_patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    """Compile the letter patterns for one set of option letters."""
    if (
        not letters
        or not re.fullmatch(r"[A-Z]+", letters)
        or len(set(letters)) != len(letters)
    ):
        raise ValueError(
            f"option letters must be distinct capitals A-Z, got {letters!r}"
        )
    cls = f"[{letters}]"
    in_statement = re.compile(
        rf"(?:(?i:option|choice)[ \t]?)?\(?({cls})(?:[).:,;\]]|\s|$)"
    )
    bold = re.compile(rf"\*\*\(?({cls})(?:[.):]|\*\*)")
    final = re.compile(rf"\(?({cls})(?:[.):][ \t]{{0,3}}\S.*)?")
    at_end = re.compile(rf"(?<![\w'])(?<!not )\(?({cls})\)?$")
    return in_statement, bold, final, at_end


def _letter_in(cleaned: str, letters: str) -> str | None:
    """The option letter an answer statement names: first thing or last thing."""
    if len(cleaned) == 1 and cleaned.upper() in letters:
        return cleaned.upper()
    in_statement, _, _, at_end = _choice_patterns(letters)
    match = in_statement.match(cleaned)
    if match is None or _PRONOUN_I.match(cleaned):
        match = at_end.search(cleaned)  # "Answer: I think it's C"
    return match.group(1) if match else None


def extract_choice(text: str, letters: str = "ABCD") -> tuple[str | None, str]:
    """Read the option letter a multiple-choice response settles on.

    The last of: an answer statement naming a letter (``Answer: (B)``, ``The answer
    is B``, ``\\boxed{B}``) or a bold letter (``**B**``); else a final line that is
    only the letter, possibly with its option text (``B) Paris``). A letter in prose
    (the article in "A car travels...") is never read.

    Args:
        text: The raw model response.
        letters: The valid option letters, in order (``"ABCDEFGHIJ"`` for MMLU-Pro).

    Returns:
        ``(letter, method)``; ``(None, "none")`` when no letter is given.
    """
    _, bold, final, _ = _choice_patterns(letters)
    tail = _tail(text)
    last_bold = None
    for last_bold in bold.finditer(tail):  # noqa: B007 - keep the last match
        pass
    for statement in _statements(tail):
        if last_bold is not None and last_bold.start() >= statement.end:
            return last_bold.group(1), "bold"
        letter = _letter_in(clean_answer(statement.text), letters)
        if letter is not None:
            return letter, statement.method
    if last_bold is not None:
        return last_bold.group(1), "bold"
    stripped = tail.rstrip()
    line = clean_answer(stripped[stripped.rfind("\n") + 1 :])
    match = final.fullmatch(line)
    if match is None and len(line) == 1 and line.upper() in letters:
        return line.upper(), "final_line"
    return (match.group(1), "final_line") if match else (None, "none")


def __getattr__(name: str) -> object:
    # The math extraction moved to pytest_nel.math_extraction (which imports this
    # module, so it is re-exported lazily); old imports from here keep working.
    if name in ("clean_math_answer", "extract_math_answer"):
        from pytest_nel import math_extraction

        return getattr(math_extraction, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
