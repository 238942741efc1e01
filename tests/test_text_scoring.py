"""Golden tables for the free-text scorers fuzzy_match and f1 (text_scoring)."""

from __future__ import annotations

from typing import Any

import pytest

import pytest_nel
from pytest_nel.scoring import SCORERS, ScorerInput, normalize_score
from pytest_nel.text_scoring import f1, fuzzy_match, normalize_text, token_f1

BEATLES = ["The Beatles", "Beatles", "The Fab Four", "Fab Four"]


def _score(fn: Any, response: str, target: Any) -> dict[str, Any]:
    result = fn(ScorerInput(response=response, target=target))
    normalize_score(result)  # the harness must accept every result
    return dict(result)


# --------------------------------------------------------------------- fuzzy_match

FUZZY = [
    # (response, target, correct, extracted)
    ("Answer: The Beatles", BEATLES, True, "The Beatles"),
    ("Answer: Beatles", "The Beatles", True, "Beatles"),
    ("Answer: the beatles.", "The Beatles", True, "the beatles"),
    ("Answer: Beatles, The", "The Beatles", True, "Beatles, The"),
    ("Answer: **Paris**", "Paris", True, "Paris"),
    ("\\boxed{\\text{Jupiter}}", "Jupiter", True, "Jupiter"),
    ("ANSWER: PARIS!!!", "paris", True, "PARIS"),
    ("The answer is Mount Everest.", "Mount Everest", True, "Mount Everest"),
    ("#### 42", "42", True, "42"),
    ("Answer: St. Louis", "St Louis", True, "St. Louis"),
    ("Answer: O'Neill", "O Neill", True, "O'Neill"),
    ("Answer: New_York", "New York", True, "New_York"),
    ("Let me recall the novel.\nThe Eiffel Tower", "Eiffel Tower", True, None),
    # empty and unstated answers are unparsed, never a match
    ("", "Paris", False, None),
    ("  \n\t ", "Paris", False, None),
    ("Answer: ...", "Paris", False, None),
    ("The final answer:", "Paris", False, None),
    # numbers compare by value: 10 is not 100, -5 is not 5, 1,000 is 1000
    ("Answer: 10", "100", False, "10"),
    ("Answer: 100", "10", False, "100"),
    ("Answer: -5", "5", False, "-5"),
    ("Answer: 1,000", "1000", True, "1,000"),
    ("Answer: 3.140", "3.14", True, "3.140"),
    ("Answer: 1/2", "0.5", True, "1/2"),
    ("Answer: $100", "100", True, "100"),
    ("Answer: 7", ["Seven", "7"], True, "7"),
    ("Answer: 7", "Seven", False, "7"),
    ("Answer: ١٨", "18", True, "١٨"),  # Arabic-Indic digits
    ("Answer: 18.0", "18", True, "18.0"),
    # several answer lines: the last one wins
    ("Answer: Paris\nWait, that is wrong.\nAnswer: Lyon", "Paris", False, "Lyon"),
    ("Answer: Lyon\nWait, that is wrong.\nAnswer: Paris", "Paris", True, "Paris"),
    ("**Answer: Lyon**\n\nOn reflection:\n**Answer: Paris**", "Paris", True, "Paris"),
    # think blocks: an answer only inside the reasoning is no answer
    ("<think>Answer: Paris</think>", "Paris", False, None),
    ("<think>Maybe Lyon?</think>\nAnswer: Paris", "Paris", True, "Paris"),
    ("<think>Answer: Paris", "Paris", False, None),
    # equality, not containment (the reference product's substring rule)
    ("Answer: Paris, France", "Paris", False, "Paris, France"),
    ("Answer: Napoleon", "Napoleon Bonaparte", False, "Napoleon"),
    ("I believe it was Napoleon, in 1804, at the cathedral", "Napoleon", False, None),
    # no accent folding (TriviaQA's aliases list the variants)
    ("Answer: Zürich", "Zurich", False, "Zürich"),
]


@pytest.mark.parametrize(("response", "target", "correct", "extracted"), FUZZY)
def test_fuzzy_match_golden(
    response: str, target: Any, correct: bool, extracted: str | None
) -> None:
    result = _score(fuzzy_match, response, target)
    assert result["correct"] is correct
    if extracted is not None:
        assert result["extracted"] == extracted
    if result["unparsed"]:
        assert result["extracted"] is None and not correct
    if correct:
        assert result["matched"] is not None


def test_fuzzy_match_table_is_large_enough() -> None:
    assert len(FUZZY) >= 25


def test_fuzzy_match_reports_unparsed_for_empty_output() -> None:
    result = _score(fuzzy_match, "", ["Paris"])
    assert result["unparsed"] is True and result["method"] == "none"
    assert normalize_score(result).reward == 0.0


# --------------------------------------------------------------------------- f1

F1 = [
    # (response, target, reward)
    ("Answer: Napoleon Bonaparte", "Napoleon Bonaparte", 1.0),
    ("Answer: Napoleon", "Napoleon Bonaparte", 2 / 3),
    ("Answer: Napoleon Bonaparte", "Napoleon", 2 / 3),
    ("Answer: the cat sat", "a cat sat", 1.0),
    ("Answer: New York, USA", "New York", 0.8),
    ("Answer: very very good", "very good", 0.8),
    ("Answer: good good", "good", 2 / 3),
    ("Answer: Fab Four", BEATLES, 1.0),
    ("Answer: George Orwell", ["Orwell", "Eric Blair"], 2 / 3),
    ("**Answer:** *Paris*", "Paris", 1.0),
    ("\\boxed{Paris}", "Paris", 1.0),
    ("Paris", "Paris", 1.0),
    ("ANSWER: PARIS", "paris", 1.0),
    ("Answer: New_York", "New York", 1.0),
    ("Answer: Saint-Tropez", "Saint Tropez", 1.0),
    ("I think that the capital of France is Paris", "Paris", 2 / 9),
    ("", "Paris", 0.0),
    ("<think>Answer: Paris</think>", "Paris", 0.0),
    ("Answer: Lyon\nNo, wait.\nAnswer: Paris", "Paris", 1.0),
    ("Answer: Paris\nNo, wait.\nAnswer: Lyon", "Paris", 0.0),
    # numbers: by value when both sides are one number
    ("Answer: 10", "100", 0.0),
    ("Answer: 1,000", "1000", 1.0),
    ("Answer: -5", "5", 0.0),
    ("Answer: 3.5", "35", 0.0),
    ("Answer: 1/2", "0.5", 1.0),
    ("Answer: ١٨", "18", 1.0),
    ("Answer: 18.0", "18", 1.0),
    ("Answer: 1 000", "1000", 1.0),
    ("Answer: 42 km", "42", 2 / 3),
    ("The answer is 18 apples.", "18 apples", 1.0),
    ("Answer: Zürich", "Zurich", 0.0),
]


@pytest.mark.parametrize(("response", "target", "reward"), F1)
def test_f1_golden(response: str, target: Any, reward: float) -> None:
    result = _score(f1, response, target)
    assert result["reward"] == pytest.approx(reward)
    assert 0.0 <= result["reward"] <= 1.0
    if result["unparsed"]:
        assert result["reward"] == 0.0 and result["extracted"] is None


def test_f1_table_is_large_enough() -> None:
    assert len(F1) >= 25


def test_f1_names_the_best_matching_answer() -> None:
    result = _score(f1, "Answer: Eric Arthur Blair", ["Orwell", "Eric Blair"])
    assert result["matched"] == "Eric Blair"
    assert result["reward"] == pytest.approx(0.8)


# ----------------------------------------------------------------- shared rules


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Beatles!", "beatles"),
        ("Beatles, The", "beatles"),
        ("  A  tale of   two cities ", "tale of two cities"),
        ("rock_and_roll", "rock and roll"),
        ("‘Quoted’ `text´", "quoted text"),
        ("Theatre", "theatre"),  # an article only as a whole word
    ],
)
def test_normalize_text_is_triviaqas(text: str, normalized: str) -> None:
    assert normalize_text(text) == normalized


@pytest.mark.parametrize("fn", [fuzzy_match, f1])
@pytest.mark.parametrize("target", ["", [], ["", "  "], None])
def test_empty_targets_are_a_clear_error(fn: Any, target: Any) -> None:
    with pytest.raises(ValueError, match="non-empty answer"):
        fn(ScorerInput(response="Answer: x", target=target))


@pytest.mark.parametrize("fn", [fuzzy_match, f1])
def test_bad_input_is_scored_zero_quickly(fn: Any) -> None:
    for response in ("x" * 1_000_000, "\x00\xff\ufffd" * 10_000, "{" * 50_000):
        result = _score(fn, response, "Paris")
        assert result.get("correct", False) is False
        assert result.get("reward", 0.0) == 0.0


def test_token_f1_is_symmetric_for_text() -> None:
    assert token_f1("new york city", "york") == token_f1("york", "new york city")


def test_scorers_are_registered_and_public() -> None:
    assert SCORERS["fuzzy_match"] is fuzzy_match
    assert SCORERS["f1"] is f1
    assert pytest_nel.fuzzy_match is fuzzy_match and pytest_nel.f1 is f1
    assert {"fuzzy_match", "f1"} <= set(pytest_nel.__all__)
