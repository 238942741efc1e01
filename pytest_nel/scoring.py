"""The reusable scorers (exact_match, numeric_match, ...) and their scores.

Scorers take a :class:`ScorerInput` and return a plain dict, as in NeMo Evaluator's
BYOB: ``{"correct": bool}`` or ``{"reward": float}``, plus optional ``extracted`` (the
answer the scorer read from the response), ``unparsed`` (True when no answer could be
extracted) and any other details. :func:`normalize_score` turns that dict into a
:class:`Score`.

The answer extraction the scorers use lives in :mod:`pytest_nel.extraction`; its
public functions are re-exported here so that custom scorers need one import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from numbers import Integral, Real
from string import ascii_uppercase
from typing import TYPE_CHECKING, Any

from pytest_nel.drop_metric import drop_f1
from pytest_nel.exceptions import ConfigError, SandboxError
from pytest_nel.extraction import (
    _SCAN_CHARS,
    _answer_text,
    _parse_number,
    _statements,
    _tail,
    clean_answer,
    extract_answer_text,
    extract_choice,
    extract_number,
    normalize_number,
    strip_reasoning,
)
from pytest_nel.math_scoring import math_equivalence
from pytest_nel.text_scoring import f1, fuzzy_match

if TYPE_CHECKING:
    from pytest_nel.sandboxes.protocol import Sandbox

__all__ = [
    "SCORERS",
    "Score",
    "ScorerInput",
    "answer_line",
    "clean_answer",
    "drop_f1",
    "exact_match",
    "extract_answer_text",
    "extract_choice",
    "extract_number",
    "f1",
    "fuzzy_match",
    "get_scorer",
    "gsm8k_target",
    "math_equivalence",
    "multichoice_regex",
    "normalize_number",
    "normalize_score",
    "numeric_match",
    "strip_reasoning",
]


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
        sandbox: This item's fresh sandbox, for benchmarks that run model-written
            code (``needs_sandbox``); None otherwise.
        verifier_sandbox: Set by the sampler in stateless mode: opens the verifier
            sandbox (use :meth:`verifier`).
    """

    response: str
    target: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    problem_idx: int = 0
    repeat: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    sandbox: Sandbox | None = None
    verifier_sandbox: Callable[[], Sandbox] | None = field(default=None, repr=False)

    def verifier(self) -> Sandbox:
        """Where to run the checks: the item's sandbox when the benchmark's sandbox
        is stateful (the default), or, when it is stateless, a fresh verifier sandbox
        that sees only the files left in the item's sandbox's workdir (started on the
        first call, stopped after the scorer returns).

        Raises:
            SandboxError: The benchmark has no sandbox, or the verifier cannot start.
        """
        if self.verifier_sandbox is not None:
            return self.verifier_sandbox()
        if self.sandbox is None:
            raise SandboxError("this benchmark has no sandbox (needs_sandbox=True)")
        return self.sandbox


_GSM8K_GOLD = re.compile(r"####[ \t]*([^\n]+)")


# --------------------------------------------------------------------------- scorers


def _format_decimal(value: Decimal) -> str:
    """Write ``value`` in plain notation, dropping zeros after the point only."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


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
    "fuzzy_match": fuzzy_match,
    "f1": f1,
    "drop_f1": drop_f1,
    "math_equivalence": math_equivalence,
}
"""The built-in scorers by the name a config uses."""

SCORER_ENTRY_POINT_GROUP = "pytest_nel.scorers"


def get_scorer(name: str) -> Callable[[ScorerInput], dict[str, Any]]:
    """A named scorer: built in, or from the ``pytest_nel.scorers`` entry points.

    Args:
        name: The scorer's name, as a config's ``scoring.metrics[].name`` gives it.

    Returns:
        The scorer function.

    Raises:
        ConfigError: No scorer has that name (the known names are listed).
    """
    if name in SCORERS:
        return SCORERS[name]
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=SCORER_ENTRY_POINT_GROUP)}
    if name in found:
        loaded: Callable[[ScorerInput], dict[str, Any]] = found[name].load()
        return loaded
    known = ", ".join(sorted({*SCORERS, *found}))
    raise ConfigError(f"unknown scorer {name!r}; known scorers: {known}")
