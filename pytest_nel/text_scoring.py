"""Scorers for free-text answers: ``fuzzy_match`` and ``f1`` (token F1).

Both read the answer the response states (the last answer statement or a final
answer-only line, reasoning blocks removed; else the whole reasoning-free response)
and compare it with one target or a list of accepted answers (aliases) after the
standard TriviaQA answer normalisation (:func:`normalize_text`): lowercase,
underscores and punctuation to spaces, articles dropped, whitespace collapsed.

- ``fuzzy_match``: correct when the normalised answer EQUALS a normalised target (the
  TriviaQA / SQuAD "exact match"). It is deliberately not substring containment:
  "10" does not match "100" and an empty response matches nothing.
- ``f1``: the reward is the best bag-of-tokens F1 (SQuAD's, tokens counted with
  multiplicity) between the answer and any target.

One deliberate departure from TriviaQA's rule: when the answer and a target are each
a single number they are compared by value (``1,000`` = ``1000.0``, but ``-5`` is not
``5``, which TriviaQA's punctuation stripping would accept).

The module imports nothing from :mod:`pytest_nel.scoring` at run time, so that
scoring's registry can import it.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pytest_nel.extraction import _SCAN_CHARS, _answer_text, normalize_number
from pytest_nel.extraction import strip_reasoning as _strip_reasoning

if TYPE_CHECKING:
    from pytest_nel.scoring import ScorerInput

__all__ = ["f1", "fuzzy_match", "normalize_text", "stated_answer", "token_f1"]

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
# TriviaQA's evaluation turns ASCII punctuation and these quote marks into spaces.
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys(string.punctuation + "‘’´`", " "))
_LABELS = frozenset({"answer", "final answer", "my answer"})
_MAX_TARGET_CHARS = 2_000  # a target longer than this is a data error, not an answer


def normalize_text(text: str) -> str:
    """Normalise an answer as TriviaQA's official evaluation does.

    Underscores and punctuation become spaces, the text is lowercased, the articles
    a/an/the are dropped and whitespace is collapsed.

    Args:
        text: An answer or an alias.

    Returns:
        The normalised answer, e.g. ``"beatles"`` for ``"The Beatles!"``.
    """
    text = text.replace("_", " ").lower().translate(_PUNCT_TO_SPACE)
    return " ".join(_ARTICLES.sub(" ", text).split())


def stated_answer(response: str) -> tuple[str | None, str]:
    """The answer a free-text response states, cleaned of markdown and LaTeX.

    The last answer statement (``Answer: X``, ``The answer is X``, ``\\boxed{X}``,
    ``#### X``) wins, else a final answer-only line, else the whole reasoning-free
    response when it is no longer than the scanned tail (20,000 characters).

    Args:
        response: The raw model response.

    Returns:
        ``(answer, method)``; ``(None, "none")`` when nothing is stated.
    """
    whole = _strip_reasoning(response)
    answer, method = _answer_text(whole)
    if answer is not None and normalize_text(answer) in _LABELS:
        return None, "none"  # "Answer: ..." with nothing after the label
    if answer is None and whole.strip() and len(whole) <= _SCAN_CHARS:
        answer, method = " ".join(whole.split()), "full_response"
    return answer, method


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 between two answers, after :func:`normalize_text`.

    Two answers that are each a single number compare by value instead: 1 when
    equal (``1,000`` and ``1000.0``), else 0 (``-5`` is not ``5``).

    Args:
        prediction: The model's answer.
        gold: One accepted answer.

    Returns:
        The F1 in [0, 1]; 0 when either side has no tokens.
    """
    same = _same_number(prediction, gold)
    if same is not None:
        return 1.0 if same else 0.0
    predicted = normalize_text(prediction).split()
    expected = normalize_text(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def _same_number(prediction: str, gold: str) -> bool | None:
    """Whether two numbers are equal; None unless both texts are one number."""
    if len(prediction) > 64 or len(gold) > 64:
        return None
    value = normalize_number(gold)
    said = normalize_number(prediction) if value is not None else None
    return None if said is None else said == value


def _matches(answer: str, said: str, gold: str) -> bool:
    """fuzzy_match's rule: numbers by value, anything else by normalised text."""
    same = _same_number(answer, gold)
    return same if same is not None else normalize_text(gold) == said


def _targets(target: Any) -> list[str]:
    """The accepted answers: one target or a list of them, as non-empty strings."""
    items: Iterable[Any] = target if isinstance(target, list | tuple) else [target]
    golds = [str(item) for item in items if item is not None and str(item).strip()]
    if not golds:
        raise ValueError(
            f"the target must be a non-empty answer or a list of them, got {target!r}"
        )
    too_long = [g for g in golds if len(g) > _MAX_TARGET_CHARS]
    if too_long:
        raise ValueError(
            f"a target answer is {len(too_long[0])} characters long (the limit is "
            f"{_MAX_TARGET_CHARS}); fuzzy_match and f1 compare short answers"
        )
    return golds


def _read(sample: ScorerInput) -> tuple[list[str], str | None, str]:
    """The accepted answers, the stated answer (None when it has no words) and how
    it was read."""
    golds = _targets(sample.target)
    answer, method = stated_answer(sample.response)
    if answer is not None and not normalize_text(answer):
        answer, method = None, "none"  # only punctuation or articles
    return golds, answer, method


def _unparsed(method: str, golds: list[str]) -> dict[str, Any]:
    return {
        "extracted": None,
        "unparsed": True,
        "method": method,
        "matched": None,
        "expected": golds[0],
    }


def fuzzy_match(sample: ScorerInput) -> dict[str, Any]:
    """Score a free-text answer by equality after TriviaQA's normalisation.

    The target is one answer or a list of accepted ones (aliases); equal numbers
    also match. An empty response or one that states nothing is unparsed.

    Args:
        sample: The sample to score.

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method``, ``matched`` (the
        accepted answer that matched, or None) and ``expected`` (the first one).

    Raises:
        ValueError: An empty target, or a target answer over 2,000 characters.
    """
    golds, answer, method = _read(sample)
    if answer is None:
        return {"correct": False, **_unparsed(method, golds)}
    said = normalize_text(answer)
    matched = next((g for g in golds if _matches(answer, said, g)), None)
    return {
        "correct": matched is not None,
        "extracted": answer,
        "unparsed": False,
        "method": method,
        "matched": matched,
        "expected": golds[0],
    }


def f1(sample: ScorerInput) -> dict[str, Any]:
    """Score a free-text answer by its best token F1 against the accepted answers.

    The reward is continuous (declare the benchmark with ``binary=False``).

    Args:
        sample: The sample to score.

    Returns:
        ``reward`` (the best F1), ``extracted``, ``unparsed``, ``method``,
        ``matched`` (the accepted answer with the best F1, None at 0) and
        ``expected``.

    Raises:
        ValueError: An empty target, or a target answer over 2,000 characters.
    """
    golds, answer, method = _read(sample)
    if answer is None:
        return {"reward": 0.0, **_unparsed(method, golds)}
    best, matched = 0.0, None
    for gold in golds:
        score = token_f1(answer, gold)
        if score > best:
            best, matched = score, gold
    return {
        "reward": best,
        "extracted": answer,
        "unparsed": False,
        "method": method,
        "matched": matched,
        "expected": golds[0],
    }
