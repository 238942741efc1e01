"""The DROP metric (drop_metric): golden cases, and parity with lm-evaluation-harness.

lm-eval ships a port of the official ``drop_eval.py`` in ``lm_eval/tasks/drop/
utils.py``; it is loaded from its file so that the tasks package (which imports
``datasets``) is not imported.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_nel.drop_metric import (
    best_em_f1,
    drop_em_f1,
    drop_f1,
    gold_answers,
    normalize_span,
    split_prediction,
)
from pytest_nel.scoring import SCORERS, ScorerInput, normalize_score


def _lm_eval_drop() -> ModuleType:
    spec = importlib.util.find_spec("lm_eval")
    assert spec is not None and spec.submodule_search_locations, "pip install lm-eval"
    path = Path(spec.submodule_search_locations[0]) / "tasks" / "drop" / "utils.py"
    module_spec = importlib.util.spec_from_file_location("lm_eval_drop_utils", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


LM_EVAL_DROP = _lm_eval_drop()

Spans = str | list[str]

GOLDEN: list[tuple[Spans, Spans, float, float]] = [
    # (predicted, gold, em, f1)
    ("Chaz Schilens", "Chaz Schilens", 1.0, 1.0),
    ("chaz schilens.", "Chaz Schilens", 1.0, 1.0),
    ("Schilens", "Chaz Schilens", 0.0, 0.67),
    ("the Raiders", "Raiders", 1.0, 1.0),
    ("1,000", "1000", 1.0, 1.0),
    ("1000.0", "1000", 1.0, 1.0),
    ("5.", "5", 1.0, 1.0),
    ("10", "100", 0.0, 0.0),
    ("100", "10", 0.0, 0.0),
    ("3 yards", "3", 0.0, 0.67),
    ("4 touchdowns", "3 touchdowns", 0.0, 0.0),  # numbers must match
    ("3 touchdowns and 4 field goals", "3 touchdowns", 0.0, 0.5),
    ("", "Chaz Schilens", 0.0, 0.0),
    ("", "0", 0.0, 0.0),
    ("Raiders Texans", "Raiders", 0.0, 0.67),
    ("13 August 1521", "13 August 1521", 1.0, 1.0),
    ("August 13, 1521", "13 August 1521", 0.0, 1.0),  # same bag, other order
    ("1521", "13 August 1521", 0.0, 0.5),
    ("40-yard", "40", 0.0, 0.67),
    (["Jones", "Smith"], ["Smith", "Jones"], 1.0, 1.0),
    (["Jones"], ["Jones", "Smith"], 0.0, 0.5),
    (["Jones", "Smith", "Brown"], ["Jones", "Smith"], 0.0, 0.67),
    ("Jones and Smith", ["Jones", "Smith"], 0.0, 0.25),  # one span for two golds
    (["Tom Jones", "Smith"], ["Jones", "Will Smith"], 0.0, 0.67),
    ("-5", "5", 1.0, 1.0),  # the official tokenizer splits on hyphens
    ("75.5%", "75.5", 0.0, 0.0),  # "75.5%" is not a number: "755" != "75.5"
    ("twenty", "20", 0.0, 0.0),
]


@pytest.mark.parametrize(("predicted", "gold", "em", "f1"), GOLDEN)
def test_drop_metric_golden(
    predicted: Spans, gold: Spans, em: float, f1: float
) -> None:
    assert drop_em_f1(predicted, gold) == (em, f1)
    theirs = LM_EVAL_DROP.get_metrics(predicted, gold)
    assert (float(theirs[0]), float(theirs[1])) == (em, f1)


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 25


_WORDS = [
    "the", "a", "an", "Raiders", "raiders,", "Texans", "field", "goal", "yard",
    "40-yard", "touchdown", "3", "3.0", "1,000", "1000", "-7", "7", "12.5", "twelve",
    "O'Neil", "St.", "(QB)", "2nd", "1e3", "nan", "", "Smith-Jones", "$5", "50%",
]  # fmt: skip


def _random_answer(rng: random.Random) -> list[str]:
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 4)))
        for _ in range(rng.randint(1, 3))
    ]


def test_drop_metric_matches_lm_eval_on_random_answers() -> None:
    rng = random.Random(20240521)
    for _ in range(600):
        predicted, gold = _random_answer(rng), _random_answer(rng)
        ours = drop_em_f1(predicted, gold)
        em, f1 = LM_EVAL_DROP.get_metrics(predicted, gold)
        assert ours == (float(em), float(f1)), (predicted, gold)


def test_best_over_several_golds_matches_lm_evals_process_results() -> None:
    rng = random.Random(7)
    for _ in range(200):
        predicted = _random_answer(rng)
        golds = [tuple(_random_answer(rng)) for _ in range(rng.randint(1, 3))]
        em, f1, _ = best_em_f1(predicted, golds)
        theirs = LM_EVAL_DROP.process_results({"answers": golds}, predicted)
        assert (em, f1) == (float(theirs["em"]), float(theirs["f1"]))


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The 1,000-yard line", "1000.0 yard line"),
        ("St. Louis Rams", "st louis rams"),
        ("3", "3.0"),
        ("a", ""),
    ],
)
def test_normalize_span(text: str, normalized: str) -> None:
    assert normalize_span(text) == normalized


# ----------------------------------------------------------- ucinlp/drop answers


@pytest.mark.parametrize(
    ("spans", "types", "answers"),
    [
        (["Chaz Schilens"], ["span"], [("Chaz Schilens",)]),
        (["3", "3"], ["number", "number"], [("3",)]),
        (["200,000", "200000"], ["number"] * 2, [("200,000",), ("200000",)]),
        (["13 August 1521"] * 2, ["date"] * 2, [("13 August 1521",)]),
        (["A", "B", "A", "B"], ["span"] * 4, [("A", "B")]),
        (["A", "B"], ["span"] * 2, [("A",), ("B",), ("A", "B")]),
        (["Cortes", "Hernan Cortes"], ["span"] * 2, [("Cortes",), ("Hernan Cortes",),
                                                     ("Cortes", "Hernan Cortes")]),
        (["4", "four"], ["number", "span"], [("4",), ("four",)]),
        (["", "X"], ["span", "span"], [("X",)]),
    ],
)  # fmt: skip
def test_gold_answers_rebuilds_ucinlp_rows(
    spans: list[str], types: list[str], answers: list[tuple[str, ...]]
) -> None:
    assert gold_answers(spans, types) == answers


def test_gold_answers_needs_a_span() -> None:
    with pytest.raises(ValueError, match="at least one answer span"):
        gold_answers(["", " "], ["span", "span"])


def test_split_prediction() -> None:
    assert split_prediction("Smith; Jones | Brown;") == ["Smith", "Jones", "Brown"]
    assert split_prediction("1,000 yards, and 40") == ["1,000 yards, and 40"]


# ----------------------------------------------------------------- the scorer


def _drop(response: str, target: Any) -> dict[str, Any]:
    result = drop_f1(ScorerInput(response=response, target=target))
    normalize_score(result)
    return dict(result)


SCORER = [
    # (response, target, reward, em)
    ("Answer: Chaz Schilens", ["Chaz Schilens"], 1.0, 1.0),
    ("Answer: Schilens", ["Chaz Schilens"], 0.67, 0.0),
    ("Answer: Smith; Jones", [["Jones", "Smith"]], 1.0, 1.0),
    ("Answer: Smith", [["Jones", "Smith"]], 0.5, 0.0),
    ("Answer: 6", ["6"], 1.0, 1.0),
    ("Answer: 6 yards", ["6"], 0.67, 0.0),
    ("Answer: 60", ["6"], 0.0, 0.0),
    ("", ["0"], 0.0, 0.0),
    ("<think>Answer: 6</think>", ["6"], 0.0, 0.0),
    ("Answer: 5\nLet me recount.\nAnswer: 6", ["6"], 1.0, 1.0),
    ("Answer: 6\nLet me recount.\nAnswer: 5", ["6"], 0.0, 0.0),
    # no answer line: the whole response is the answer; the reference product counts
    # any response that contains the gold span as fully correct
    ("The passage mentions 6, 41 and 35 yards but I cannot tell.", ["6"], 0.17, 0.0),
    ("Answer: **13 August 1521**", ["13 August 1521"], 1.0, 1.0),
    ("Answer: Cortes", ["Hernan Cortes", "Cortes"], 1.0, 1.0),
]


@pytest.mark.parametrize(("response", "target", "reward", "em"), SCORER)
def test_drop_scorer(response: str, target: Any, reward: float, em: float) -> None:
    result = _drop(response, target)
    assert result["reward"] == reward and result["f1"] == reward
    assert result["em"] == em


def test_drop_scorer_flags_empty_answers_unparsed() -> None:
    for response in ("", "Answer: ;", "<think>6</think>", "Answer: the"):
        result = _drop(response, ["6"])
        assert result["unparsed"] is True and result["reward"] == 0.0, response


def test_drop_scorer_is_bounded_on_bad_input() -> None:
    junk = "Answer: " + ";".join(["x"] * 5_000)
    result = _drop(junk, [["x", "y"]])
    assert 0.0 <= result["reward"] < 0.01
    assert _drop("\x00\xff" * 500_000, ["6"])["reward"] == 0.0


def test_drop_scorer_is_registered() -> None:
    assert SCORERS["drop_f1"] is drop_f1
