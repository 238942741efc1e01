"""Answer extraction and the reusable scorers (exact_match, numeric_match, ...).

Scorers take a :class:`ScorerInput` and return a plain dict, as in NeMo Evaluator's
BYOB: ``{"correct": bool}`` or ``{"reward": float}``, plus optional ``extracted`` (the
answer the scorer read from the response), ``unparsed`` (True when no answer could be
extracted) and any other details. :func:`normalize_score` turns that dict into a
:class:`Score`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import accumulate, compress
from numbers import Integral, Real
from string import ascii_uppercase
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class ScorerInput:
    """What a scorer sees for one sample.

    Attributes:
        response: The model's output text (reasoning included, as received).
        target: The ground truth taken from the benchmark's target field.
        metadata: The full dataset row.
        finish_reason: Why generation stopped (``"stop"``, ``"length"``...), if known.
        problem_idx: The row's index in the original split.
        repeat: The repeat index of this sample.
        config: The benchmark's ``params`` from the config.
    """

    response: str
    target: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    problem_idx: int = 0
    repeat: int = 0
    config: dict[str, Any] = field(default_factory=dict)


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
_NUMBER_TOKEN_TEMPLATE = (
    r"(?<![\w.^])[-+\u2212]?(?:[$€£¥₹₩][ ]?)?"
    r"(?:\d{1,2}(?:,\d{2})+,\d{3}|\d{1,3}(?:,\d{3})+"
    r"|\d{1,3}(?:[SPACES]\d{3})+|\d+)"
    r"(?!\d)(?:\.\d+)?(?:/\d+(?![\d.]))?%?"
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
_GSM8K_GOLD = re.compile(r"####[ \t]*([^\n]+)")
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


def _format_decimal(value: Decimal) -> str:
    """Write ``value`` in plain notation, dropping zeros after the point only."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


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


def _trigger_spans(text: str, only: str | None) -> list[tuple[int, int, int, str]]:
    """Every answer trigger in ``text`` as (start, text start, text end, method).

    A text end of -1 means "to the end of the line".
    """
    spans = [
        (match.start(), match.end(), -1, method)
        for pattern, method in _TRIGGERS
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


def _statements(text: str, only: str | None = None) -> Iterator[_Statement]:
    """Yield the last few answer statements in ``text``, last first."""
    for start, begin, end, method in reversed(
        _trigger_spans(text, only)[-_MAX_STATEMENTS:]
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


def extract_number(text: str) -> tuple[Decimal | None, str]:
    """Read the final numeric answer of a response.

    The number of the last answer statement that holds one (all of it, or its last
    number: ``The answer is 18 dollars`` is 18), else of a final answer-only line,
    else the last number anywhere in the reasoning-free text (``"last_number"``).

    Args:
        text: The raw model response.

    Returns:
        ``(value, method)``; ``(None, "none")`` when there is no number at all.
    """
    tail = _tail(text)
    for statement in _statements(tail):
        value = _number_in(clean_answer(statement.text))
        if value is not None:
            return value, statement.method
    final = _final_line(tail)
    value = _number_in(final) if final else None
    if value is not None:
        return value, "final_line"
    value = _last_number(tail)
    return (value, "last_number") if value is not None else (None, "none")


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


# --------------------------------------------------------------------------- scorers


def _norm_text(text: str) -> str:
    """Cleaned, whitespace-collapsed, case-folded text for comparisons."""
    return " ".join(clean_answer(text).split()).casefold()


def _text_result(got: str, method: str, target: Any) -> dict[str, Any]:
    """Compare an extracted answer text with one target or a list of them."""
    targets = target if isinstance(target, list | tuple) else [target]
    expected = [_norm_text(str(item)) for item in targets]
    shown = " ".join(clean_answer(got).split())
    correct = bool(shown) and shown.casefold() in expected
    return {
        "correct": correct,
        "extracted": shown or None,
        "unparsed": not shown,
        "method": method if shown else "none",
        "expected": expected[0] if len(expected) == 1 else expected,
    }


def exact_match(sample: ScorerInput) -> dict[str, Any]:
    """Score the stated answer (or the whole response) by normalised equality.

    Case and whitespace are ignored, markdown and LaTeX wrappers are stripped. A
    ``list``/``tuple`` target lists accepted answers. An empty response never
    matches, even an empty target; neither does a response longer than the scanned
    tail (20,000 characters) that states no answer (it is unparsed).

    Args:
        sample: The sample to score.

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method`` and ``expected``.
    """
    whole = strip_reasoning(sample.response)
    got, method = _answer_text(whole)
    # Past the scanned tail a response is a ramble, not an answer to compare.
    if got is None and len(whole) <= _SCAN_CHARS:
        got, method = whole, "full_response"
    return _text_result(got or "", method, sample.target)


def answer_line(sample: ScorerInput) -> dict[str, Any]:
    """Score the text after the last ``Answer:`` line, compared as in exact_match.

    Args:
        sample: The sample to score.

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method`` and ``expected``.
    """
    for statement in _statements(_tail(sample.response), only="answer_line"):
        if clean_answer(statement.text):
            return _text_result(statement.text, "answer_line", sample.target)
    return _text_result("", "none", sample.target)


def numeric_match(sample: ScorerInput) -> dict[str, Any]:
    """Score the final number of the response by exact decimal equality.

    ``18``, ``18.0``, ``$18.00`` and ``**18**`` all equal 18; ``10`` never equals
    ``100``.

    Args:
        sample: The sample to score; its target must be a number.

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method`` and ``expected``.

    Raises:
        ValueError: The target is not a number.
    """
    gold = normalize_number(str(sample.target))
    if gold is None:
        raise ValueError(
            f"numeric_match needs a numeric target, got {sample.target!r}; "
            "use exact_match for text answers"
        )
    value, method = extract_number(sample.response)
    return {
        "correct": value is not None and value == gold,
        "extracted": None if value is None else _format_decimal(value),
        "unparsed": value is None,
        "method": method,
        "expected": _format_decimal(gold),
    }


def _options(metadata: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """The option texts and labels of a dataset row, when it lists them."""
    choices = metadata.get("choices", metadata.get("options"))
    if isinstance(choices, dict):  # ARC style: {"text": [...], "label": [...]}
        labels = "".join(str(label) for label in choices.get("label", []))
        texts = choices.get("text")
        return (list(texts) if texts else None), (labels if labels.isalpha() else None)
    if isinstance(choices, list | tuple) and choices:
        return [str(choice) for choice in choices], None
    return None, None


def _target_letter(target: Any, letters: str) -> str:
    """The gold letter from a letter or a 0-based option index."""
    if isinstance(target, str):
        text = clean_answer(target)
        if len(text) == 1 and text.upper() in letters:
            return text.upper()
        target = int(text) if text.isdigit() else target
    valid_index = isinstance(target, Integral) and not isinstance(target, bool)
    if valid_index and 0 <= int(target) < len(letters):
        return letters[int(target)]
    raise ValueError(
        f"multichoice target must be one of {letters!r} or an index below "
        f"{len(letters)}, got {target!r}"
    )


def multichoice_regex(sample: ScorerInput) -> dict[str, Any]:
    """Score a multiple-choice response by the option letter it settles on.

    Letters come from ``config["letters"]``, else from the number of options in
    ``metadata["choices"]`` / ``["options"]``, else ``"ABCD"``. When no letter is
    given but the stated answer is exactly one option's text, that option counts.

    Args:
        sample: The sample to score; its target is a letter or a 0-based index.

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method`` and ``expected``.

    Raises:
        ValueError: Bad letters, or a target that names no option.
    """
    options, labels = _options(sample.metadata)
    letters = sample.config.get("letters") or labels
    if not letters:
        letters = ascii_uppercase[: len(options)] if options else "ABCD"
    expected = _target_letter(sample.target, letters)
    letter, method = extract_choice(sample.response, letters)
    if letter is None and options:
        said, _ = extract_answer_text(sample.response)
        texts = [_norm_text(option) for option in options]
        if said and texts.count(_norm_text(said)) == 1:
            letter, method = letters[texts.index(_norm_text(said))], "choice_text"
    return {
        "correct": letter == expected,
        "extracted": letter,
        "unparsed": letter is None,
        "method": method,
        "expected": expected,
    }


def gsm8k_target(answer_field: str) -> str:
    """The gold number of an openai/gsm8k ``answer`` field (after ``####``).

    Args:
        answer_field: The row's full answer, reasoning and ``#### 70,000`` line.

    Returns:
        The number without separators, e.g. ``"70000"``.

    Raises:
        ValueError: The field has no ``####`` line.
    """
    golds = _GSM8K_GOLD.findall(answer_field)
    if not golds:
        raise ValueError(f"no '#### <number>' line in GSM8K answer {answer_field!r}")
    gold = golds[-1].strip().replace(",", "")
    value = _parse_number(gold)
    return gold if value is None else _format_decimal(value)


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True, slots=True)
class Score:
    """A scorer's result in the harness's terms.

    Attributes:
        reward: The reward in [0, 1].
        extracted: The answer read from the response, or None.
        unparsed: True when no answer could be read (then the reward is 0).
        details: Everything else the scorer reported, JSON-serialisable.
    """

    reward: float
    extracted: str | None
    unparsed: bool
    details: dict[str, Any]


def _jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of ``value`` (Decimals become strings)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return _format_decimal(value) if value.is_finite() else str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalars
    return _jsonable(item()) if callable(item) else str(value)


def _reward(result: dict[str, Any]) -> float:
    """The reward a scorer's dict gives, checked to lie in [0, 1]."""
    if "reward" in result:
        key, raw = "reward", result["reward"]
    elif "correct" in result:
        key, raw = "correct", result["correct"]
        if not isinstance(raw, bool) and type(raw).__name__ != "bool_":
            raise ValueError(f"scorer 'correct' must be a bool, got {raw!r}")
        return 1.0 if raw else 0.0
    else:
        numeric = [key for key, value in result.items() if _is_real(value)]
        if len(numeric) != 1:
            raise ValueError(
                "scorer result needs 'reward' (float) or 'correct' (bool), or exactly"
                f" one numeric value; it has keys {sorted(map(str, result))}"
            )
        key, raw = numeric[0], result[numeric[0]]
    if not _is_real(raw) or not 0.0 <= float(raw) <= 1.0:
        raise ValueError(f"scorer {key!r} must be a number in [0, 1], got {raw!r}")
    return float(raw)


def _is_real(value: Any) -> bool:
    """Whether ``value`` is a real number that is not a bool."""
    return isinstance(value, Real | Decimal) and not isinstance(value, bool)


def normalize_score(result: dict[str, Any]) -> Score:
    """Turn a scorer's plain dict into a :class:`Score`.

    The reward is ``reward`` (a float in [0, 1]), else ``correct`` (a bool), else
    the dict's only numeric value. ``unparsed`` defaults to "``extracted`` is None"
    when the scorer reports ``extracted``, else False; an unparsed sample must have
    reward 0.

    Args:
        result: What the scorer returned.

    Returns:
        The score, with every other key in ``details``.

    Raises:
        ValueError: No usable reward, a reward outside [0, 1], or a reward above 0
            for an unparsed sample.
    """
    if not isinstance(result, dict):
        raise ValueError(f"a scorer must return a dict, got {type(result).__name__}")
    reward = _reward(result)
    extracted = result.get("extracted")
    if extracted is not None and not isinstance(extracted, str):
        extracted = str(_jsonable(extracted))
    unparsed = result.get("unparsed", "extracted" in result and extracted is None)
    if not isinstance(unparsed, bool):
        raise ValueError(f"scorer 'unparsed' must be a bool, got {unparsed!r}")
    if unparsed and reward > 0:
        raise ValueError(f"an unparsed sample must have reward 0, got {reward}")
    reserved = {"reward", "correct", "extracted", "unparsed"}
    details = _jsonable({k: v for k, v in result.items() if k not in reserved})
    return Score(reward, extracted, unparsed, details)


SCORERS: dict[str, Callable[[ScorerInput], dict[str, Any]]] = {
    "exact_match": exact_match,
    "numeric_match": numeric_match,
    "multichoice_regex": multichoice_regex,
    "answer_line": answer_line,
}
"""The built-in scorers by the name a config uses."""
