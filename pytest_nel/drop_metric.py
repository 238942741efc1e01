"""The official DROP metric (exact match and bag-of-tokens F1 over answer spans).

Same semantics as ``drop_eval.py`` from the DROP authors (allennlp-reading-
comprehension), written afresh; ``tests/test_drop_metric.py`` checks it against the
port in lm-evaluation-harness on fixed and random inputs:

- Each span is split on spaces and hyphens; every token is lowercased, stripped of
  punctuation (unless it is a number), written as ``str(float(token))`` when it is a
  number (``"1,000"`` -> ``"1000.0"``), and dropped when it is an article.
- Exact match: the predicted and gold normalised spans are the same set (and as many).
- F1: the predicted and gold spans are aligned one-to-one to maximise the total F1
  (Hungarian algorithm); a pair scores its token-set F1, or 0 when the gold has
  numbers and the prediction shares none of them; the mean over
  ``max(#gold, #predicted)`` slots, rounded to two decimals.
- Several gold answers: EM and F1 are each the maximum over them.

``ucinlp/drop`` flattens its answers (:func:`gold_answers` explains how they are
rebuilt), and a prediction is split into spans on ``;`` and ``|`` (the drop prompt
asks for that).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_nel.text_scoring import stated_answer

if TYPE_CHECKING:
    from pytest_nel.scoring import ScorerInput

__all__ = [
    "drop_em_f1",
    "drop_f1",
    "gold_answers",
    "normalize_span",
    "split_prediction",
]

_SPLIT = re.compile(" |-")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)
_PREDICTION_SEPARATORS = re.compile(r"[;|]")

Answer = Sequence[str]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(char for char in token if char not in _PUNCT)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_span(text: str) -> str:
    """Normalise one answer span as the official DROP evaluation does.

    Args:
        text: A span, e.g. ``"The 1,000-yard line"``.

    Returns:
        Its normalised form, e.g. ``"1000.0 yard line"``.
    """
    tokens = (_normalize_token(token) for token in _SPLIT.split(text))
    return " ".join(token for token in tokens if token.strip()).strip()


def _bags(spans: Answer) -> tuple[list[str], list[set[str]]]:
    normalized = [normalize_span(span) for span in spans]
    return normalized, [set(span.split()) for span in normalized]


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _numbers_agree(gold: set[str], predicted: set[str]) -> bool:
    """A gold bag with numbers needs at least one of them in the prediction."""
    gold_numbers = {word for word in gold if _is_number(word)}
    if not gold_numbers:
        return True
    return bool(gold_numbers & {word for word in predicted if _is_number(word)})


def _round2(value: float) -> float:
    """numpy's ``round(value, 2)`` (scale, round half to even, unscale)."""
    return round(value * 100) / 100


def _aligned_f1(predicted: list[set[str]], gold: list[set[str]]) -> float:
    if len(gold) == len(predicted) == 1:  # the common case, without numpy
        agree = _numbers_agree(gold[0], predicted[0])
        return _round2(_bag_f1(predicted[0], gold[0]) if agree else 0.0)
    import numpy as np  # lazily: ``pytest_nel.scoring`` (and so ``nel``) imports us
    from scipy.optimize import linear_sum_assignment

    scores = np.zeros((len(gold), len(predicted)))
    for g, gold_bag in enumerate(gold):
        for p, predicted_bag in enumerate(predicted):
            if _numbers_agree(gold_bag, predicted_bag):
                scores[g, p] = _bag_f1(predicted_bag, gold_bag)
    best = np.zeros(max(len(gold), len(predicted)))
    rows, cols = linear_sum_assignment(-scores)
    for row, col in zip(rows, cols, strict=True):
        best[row] = max(best[row], scores[row, col])
    return float(round(np.mean(best), 2))


def _as_spans(answer: Answer | str) -> Answer:
    return [answer] if isinstance(answer, str) else answer


def drop_em_f1(predicted: Answer | str, gold: Answer | str) -> tuple[float, float]:
    """Exact match and F1 of one predicted answer against one gold answer.

    Args:
        predicted: The predicted span, or spans for a multi-span answer.
        gold: The gold span or spans.

    Returns:
        ``(em, f1)``, each in [0, 1].
    """
    predicted_spans, predicted_bags = _bags(_as_spans(predicted))
    gold_spans, gold_bags = _bags(_as_spans(gold))
    same = set(predicted_spans) == set(gold_spans)
    em = 1.0 if same and len(predicted_spans) == len(gold_spans) else 0.0
    return em, _aligned_f1(predicted_bags, gold_bags)


def best_em_f1(
    predicted: Answer, golds: Sequence[Answer]
) -> tuple[float, float, Answer | None]:
    """EM and F1 against several gold answers: each the maximum over them.

    Gold answers whose first span is blank are skipped, as in the official script.

    Returns:
        ``(em, f1, gold)`` where ``gold`` is the answer with the best F1 (None when
        every F1 is 0).
    """
    best_em, best_f1, best_gold = 0.0, 0.0, None
    for gold in golds:
        if not gold or not gold[0].strip():
            continue
        em, f1 = drop_em_f1(predicted, gold)
        best_em = max(best_em, em)
        if f1 > best_f1:
            best_f1, best_gold = f1, gold
    return best_em, best_f1, best_gold


def _repeated_unit(entries: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The shortest sequence that ``entries`` repeats at least twice, if any."""
    n = len(entries)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and entries == entries[:size] * (n // size):
            return entries[:size]
    return None


def gold_answers(spans: Sequence[str], types: Sequence[str]) -> list[tuple[str, ...]]:
    """Rebuild the gold answers of a ``ucinlp/drop`` row from ``answers_spans``.

    The hub flattens every validated answer's spans into one list, so the original
    grouping is lost. Rebuilt as: when the list repeats one multi-span sequence
    (several annotators gave the same answer ``[A, B, A, B]``), that sequence is the
    one answer; otherwise every distinct span is an accepted answer on its own and,
    when there are several distinct ``span`` entries, all of them together is one
    more (a multi-span answer). A partial answer to a true multi-span question can
    therefore score full marks; the data does not say which case it is.

    Args:
        spans: ``answers_spans["spans"]``.
        types: ``answers_spans["types"]`` (``number``, ``date`` or ``span``).

    Returns:
        The accepted answers, each a tuple of spans.

    Raises:
        ValueError: No non-blank span.
    """
    entries = [(s, t) for s, t in zip(spans, types, strict=False) if s.strip()]
    if not entries:
        raise ValueError(f"a DROP row needs at least one answer span, got {spans!r}")
    unit = _repeated_unit(entries)
    if unit is not None and len(unit) > 1 and all(t == "span" for _, t in unit):
        return [tuple(span for span, _ in unit)]
    answers: list[tuple[str, ...]] = list(dict.fromkeys((s,) for s, _ in entries))
    parts = list(dict.fromkeys(span for span, kind in entries if kind == "span"))
    if len(parts) > 1:
        answers.append(tuple(parts))
    return answers


def split_prediction(answer: str) -> list[str]:
    """Split a stated answer into spans on ``;`` and ``|``."""
    return [
        part.strip() for part in _PREDICTION_SEPARATORS.split(answer) if part.strip()
    ]


def _golds_of(target: Any) -> list[tuple[str, ...]]:
    """Gold answers from a target: a span, or a list of answers (each a span or a
    list of spans)."""
    items = target if isinstance(target, list | tuple) else [target]
    golds = [
        (item,) if isinstance(item, str) else tuple(str(span) for span in item)
        for item in items
    ]
    golds = [gold for gold in golds if gold and gold[0].strip()]
    if not golds:
        raise ValueError(f"drop_f1 needs at least one gold answer, got {target!r}")
    return golds


def drop_f1(sample: ScorerInput) -> dict[str, Any]:
    """Score a reading-comprehension answer with the official DROP metric.

    The stated answer (last ``Answer:`` line, ...) is split into spans on ``;`` and
    ``|``. The reward is the DROP F1 (continuous: declare ``binary=False``); the
    exact match is reported as ``em``. An empty answer scores 0 and is unparsed.

    Args:
        sample: The sample; its target is one gold span, or a list of gold answers,
            each a span or a list of spans.

    Returns:
        ``reward`` (F1), ``em``, ``f1``, ``extracted``, ``unparsed``, ``method``,
        ``predicted_spans``, ``matched`` (the best gold answer) and ``expected``.

    Raises:
        ValueError: No gold answer.
    """
    golds = _golds_of(sample.target)
    answer, method = stated_answer(sample.response)
    predicted = split_prediction(answer or "")
    if not any(normalize_span(span) for span in predicted):
        predicted, answer, method = [], None, "none"
    em, f1, matched = best_em_f1(predicted, golds) if predicted else (0.0, 0.0, None)
    return {
        "reward": f1,
        "em": em,
        "f1": f1,
        "extracted": answer,
        "unparsed": answer is None,
        "method": method,
        "predicted_spans": predicted,
        "matched": None if matched is None else list(matched),
        "expected": [list(gold) for gold in golds],
    }
