"""Reading the final mathematical answer out of a model response, as LaTeX.

The math counterpart of :mod:`pytest_nel.extraction`: the same reasoning stripping
and answer statements, but the last ``\\boxed{...}`` wins and the answer keeps its
LaTeX (``\\frac``, ``\\text``...) for the equivalence checker in
:mod:`pytest_nel.math_scoring`. :func:`clean_math_answer` strips only what wraps it.
"""

from __future__ import annotations

from pytest_nel.extraction import (
    _BOXED,
    _BRACE,
    _MD_BOLD,
    _brace_pairs,
    _statements,
    _tail,
)

__all__ = ["clean_math_answer", "extract_math_answer"]

_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_MATH_MAX_WORDS = 3  # a final line longer than this is prose, not an answer
_MATH_MAX_LINE = 100


def _strip_delimiters(text: str) -> str:
    """Drop one pair of math delimiters (``$...$``, ``\\(...\\)``...) around it."""
    for left, right in _MATH_DELIMITERS:
        inner = text[len(left) : len(text) - len(right)]
        wrapped = len(text) > len(left) + len(right) and text.startswith(left)
        if wrapped and text.endswith(right) and left not in inner.replace("\\$", ""):
            return inner.strip()
    return text


def _strip_boxed(text: str) -> str:
    """The content of a ``\\boxed{...}`` that is the whole of ``text``."""
    boxed = _BOXED.match(text)
    if boxed is None or _brace_pairs(text).get(boxed.end() - 1) != len(text) - 1:
        return text
    return text[boxed.end() : -1].strip()


def clean_math_answer(text: str) -> str:
    """Strip what wraps a LaTeX answer without touching the mathematics.

    Markdown bold, math delimiters (``$``, ``\\(...\\)``...), one outer
    ``\\boxed{}`` and trailing punctuation go; ``\\frac``, ``\\text`` and every other
    command stay for the equivalence checker (unlike :func:`clean_answer`, which
    turns ``\\frac{a+b}{c}`` into text).

    Args:
        text: A candidate answer, e.g. ``"**$\\frac{1}{2}$**."``.

    Returns:
        The LaTeX answer, e.g. ``"\\frac{1}{2}"``.
    """
    for _ in range(4):  # peel nested wrappers one layer a pass
        before = text
        text = _MD_BOLD.sub(lambda m: m.group(1) or m.group(2) or "", text.strip())
        text = text.strip().rstrip(".,;:!。 \t\n").strip()
        text = _strip_boxed(_strip_delimiters(text))
        if text == before:
            break
    return text


def extract_math_answer(text: str) -> tuple[str | None, str]:
    """Read the final mathematical answer of a response, as LaTeX.

    The last ``\\boxed{...}`` (nested braces kept) gives the answer; without one,
    the last answer statement (``The final answer is $x$``, ``Answer: x``,
    ``#### x``); else a last line that is only an answer (at most three words).
    Reasoning blocks are dropped first, and only the last 20,000 characters are
    read.

    Args:
        text: The raw model response.

    Returns:
        ``(answer, method)`` with the answer cleaned by :func:`clean_math_answer`;
        ``(None, "none")`` when the response states nothing.
    """
    tail = _tail(text)
    # The last \boxed{} first: it is what math prompts ask for, and a check after it
    # ("so our answer is correct") is no answer statement.
    for only in ("boxed", None):
        for statement in _statements(tail, only=only):
            answer = clean_math_answer(statement.text)
            if answer and _balanced(answer):
                return answer, statement.method
    final = _math_final_line(tail)
    return (final, "final_line") if final else (None, "none")


def _balanced(latex: str) -> bool:
    """Whether every ``{`` of ``latex`` (``\\{`` aside) is closed, in order."""
    depth = 0
    for brace in _BRACE.finditer(latex.replace("\\{", "").replace("\\}", "")):
        depth += 1 if brace.group() == "{" else -1
        if depth < 0:
            return False
    return depth == 0


def _math_final_line(tail: str) -> str | None:
    """A last line that is only a mathematical answer (``$\\frac{1}{2}$``, ``x = 5``).

    It must be short and look like mathematics (a digit, a LaTeX command, ``$`` or
    ``=``) or be a single word; a ``\\boxed{`` there was never closed.
    """
    stripped = tail.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :].strip()
    if not line or line.endswith((":", "?")) or len(line) > _MATH_MAX_LINE:
        return None
    answer = clean_math_answer(line)
    if not answer or _BOXED.search(line) or not _balanced(answer):
        return None
    words = answer.split()
    mathy = any(mark in line for mark in "\\$=") or any(c.isdigit() for c in line)
    if len(words) == 1 or (mathy and len(words) <= _MATH_MAX_WORDS):
        return answer
    return None
