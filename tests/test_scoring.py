"""Tests for answer extraction and the built-in scorers (pytest_nel.scoring)."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pytest_nel.scoring import (
    SCORERS,
    Score,
    ScorerInput,
    answer_line,
    clean_answer,
    exact_match,
    extract_answer_text,
    extract_choice,
    extract_number,
    gsm8k_target,
    multichoice_regex,
    normalize_number,
    normalize_score,
    numeric_match,
    strip_reasoning,
)

DATASETS = Path(
    os.environ.get(
        "NEL_DATASETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)
ONE_MB = 1_000_000


def _rows(relative: str) -> list[dict[str, Any]]:
    """Read a jsonl split of the offline dataset mirror, or skip when it is absent."""
    path = DATASETS / relative
    if not path.is_file():
        pytest.skip(f"dataset mirror not found: {path}")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _sample(response: str, target: Any, **kwargs: Any) -> ScorerInput:
    return ScorerInput(response=response, target=target, **kwargs)


# --------------------------------------------------------------------------- reasoning


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>Answer: 5</think>Answer: 6", "Answer: 6"),
        ("<THINKING>x</THINKING>y", "y"),
        ("<reasoning>x</reasoning>\ny", "\ny"),
        ("a<think>b</think>c<think>d</think>e", "ace"),
        ("<think>a<think>b</think>c</think>d", "d"),
        ("<think>Answer: 5", ""),
        ("Answer: 4 <think>more thoughts", ""),
        ("template opened it</think>The answer is 7", "The answer is 7"),
        ("p</think>q</think>r", "r"),
        ("x</think>y<think>z", ""),
        ("no tags at all", "no tags at all"),
        ("", ""),
    ],
)
def test_strip_reasoning(response: str, expected: str) -> None:
    assert strip_reasoning(response) == expected


def test_strip_reasoning_matches_a_plain_stack_walk() -> None:
    def reference(text: str) -> str:
        depth, kept = 0, [""]
        for piece in re.split(r"(</?think>)", text):
            if piece == "<think>":
                depth += 1
            elif piece == "</think>":
                if depth:
                    depth -= 1
                else:
                    kept = [""]  # a lone close tag: everything before is reasoning
            elif depth == 0:
                kept.append(piece)
        return "" if depth else "".join(kept)

    rng = random.Random(7)
    for _ in range(3000):
        pieces = ["<think>", "</think>", "a", "b", "7"]
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert strip_reasoning(text) == reference(text), text


# --------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**18**", "18"),
        ("__18__", "18"),
        ("*18*", "18"),
        ("`18`", "18"),
        ("\\boxed{18}", "18"),
        ("$\\boxed{\\frac{3}{4}}$", "3/4"),
        ("\\boxed{\\text{Paris}}", "Paris"),
        ("\\(x = 2\\)", "x = 2"),
        ("$18$.", "18"),
        ('"Paris"', "Paris"),
        ("(B)", "B"),
        ("(1) and (2)", "(1) and (2)"),
        ("18.", "18"),
        ("3.5", "3.5"),
        ("**$\\boxed{42}$**.", "42"),
        ("\\boxed{18", "18"),
        ("50\\%", "50%"),
        ("1{,}000", "1,000"),
        ("3*4*5", "3*4*5"),
        ("5 * 3 * 2", "5 * 3 * 2"),
        ("*Paris*", "Paris"),
    ],
)
def test_clean_answer(text: str, expected: str) -> None:
    assert clean_answer(text) == expected


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", Decimal(18)),
        ("18.", Decimal(18)),
        ("18.0", Decimal(18)),
        ("18.50", Decimal("18.5")),
        ("-3", Decimal(-3)),
        ("+3", Decimal(3)),
        ("−3", Decimal(-3)),
        (".5", Decimal("0.5")),
        ("1,234", Decimal(1234)),
        ("1,234,567.89", Decimal("1234567.89")),
        ("1 234", Decimal(1234)),
        ("1\u202f234", Decimal(1234)),
        ("1,00,000", Decimal(100000)),
        ("1.000", Decimal(1)),
        ("$1,000.00", Decimal(1000)),
        ("-$3", Decimal(-3)),
        ("€5", Decimal(5)),
        ("50%", Decimal(50)),
        ("3/4", Decimal("0.75")),
        ("\\frac{1}{4}", Decimal("0.25")),
        ("1e3", Decimal(1000)),
        ("১৮", Decimal(18)),
        ("๑๘", Decimal(18)),
        ("१८", Decimal(18)),
        ("１８", Decimal(18)),
        ("٣٫٥", Decimal("3.5")),
        ("**18**", Decimal(18)),
        ("10", Decimal(10)),
        ("100", Decimal(100)),
        ("1,5", None),
        ("1 23", None),
        ("12,34", None),
        ("1/0", None),
        (".", None),
        ("", None),
        ("abc", None),
        ("18 dollars", None),
        ("5²", None),
        ("+-3", None),
    ],
)
def test_normalize_number(text: str, expected: Decimal | None) -> None:
    assert normalize_number(text) == expected


def test_normalize_number_never_confuses_10_and_100() -> None:
    assert normalize_number("10") != normalize_number("100")
    assert normalize_number("1,000") == 1000
    assert normalize_number("100") == Decimal("1E+2")


NUMERIC_CASES = [
    ("The answer is 18.", 18, "answer_is"),
    ("Reasoning...\n#### 18", 18, "hash"),
    ("#### 1,234", 1234, "hash"),
    ("Answer: **18**", 18, "answer_line"),
    ("**Answer:** 18", 18, "answer_line"),
    ("**Final Answer**: $18.00", 18, "answer_line"),
    ("Final Answer: The final answer is $\\boxed{18}$. I hope it is correct.", 18,
     "boxed"),
    ("so $x = \\boxed{\\frac{3}{4}}$", Decimal("0.75"), "boxed"),
    ("\\boxed{7} then \\boxed{8}", 8, "boxed"),
    ("\\boxed{7} then \\boxed{8", 7, "boxed"),
    ("The answer is 18 dollars", 18, "answer_is"),
    ("The answer is 3.5.", Decimal("3.5"), "answer_is"),
    ("The answer is 18.0", 18, "answer_is"),
    ("Answer: 18.", 18, "answer_line"),
    ("Answer: 10", 10, "answer_line"),
    ("Answer: 5\nWait, that is wrong.\nAnswer: 6", 6, "answer_line"),
    ("The answer is 5. Let me check... so the answer is 6.", 6, "answer_is"),
    ("Answer: 5\n\nThe answer is not 20.", 5, "answer_line"),
    ("The answer is $118 000 in total.", 118000, "answer_is"),
    ("Answer: -3", -3, "answer_line"),
    ("Answer: 50%", 50, "answer_line"),
    ("Final Answer:\n\n42", 42, "answer_line"),
    ("## Final Answer\n\\boxed{72}", 72, "boxed"),
    ("#### Step 1: add\n5 + 3 = 8\n#### Final Answer\n8", 8, "answer_line"),
    ("She makes 9 * 2 = $18 every day.", 18, "last_number"),
    ("**18**", 18, "final_line"),
    ("উত্তর: ১৮", 18, "final_line"),
    ("Answer: ১২৩", 123, "answer_line"),
    ("Answer: ๔๒", 42, "answer_line"),
    ("Answer: １２３", 123, "answer_line"),
    ("<think>The answer is 5</think>The answer is 6", 6, "answer_is"),
    ("all reasoning</think>\n\n#### 17", 17, "hash"),
    ("<think>The answer is 5", None, "none"),
    ("<think>Let me see, 12 apples", None, "none"),
    ("", None, "none"),
    ("I do not know.", None, "none"),
    ("The answer is: $1,000,000$.", 1000000, "answer_is"),
    ("x\u202f= 1\u202f234", 1234, "last_number"),
    ("Answer: 18 (9 * 2)", 18, "answer_line"),
    ("Answer: 9 * 2 = 18", 18, "answer_line"),
    ("The answer is 18, and the remainder is 2.", 18, "answer_is"),
    ("The answer is 18 because 9 * 2 = 18 and 3 > 2.", 18, "answer_is"),
    ("The answer is 18.5 m/s^2.", Decimal("18.5"), "answer_is"),
    ("The answer is Kim's total (18).", 18, "answer_is"),
]  # fmt: skip


@pytest.mark.parametrize(("response", "expected", "method"), NUMERIC_CASES)
def test_extract_number(response: str, expected: Any, method: str) -> None:
    value, how = extract_number(response)
    assert value == (None if expected is None else Decimal(expected))
    assert how == method


@pytest.mark.parametrize(
    ("response", "target", "correct"),
    [
        ("The answer is 10.", "100", False),
        ("The answer is 100.", "10", False),
        ("#### 18.0", "18", True),
        ("#### 18.", 18, True),
        ("Answer: $18.00", 18.0, True),
        ("", "0", False),
        ("   ", 0, False),
        ("Answer: 0", "0", True),
        ("The answer is 1,000.", "1000", True),
        ("The answer is 1.000.", "1000", False),
        ("**18**", "18", True),
        ("Answer: 0.5", "1/2", True),
    ],
)
def test_numeric_match(response: str, target: Any, correct: bool) -> None:
    result = numeric_match(_sample(response, target))
    assert result["correct"] is correct
    assert result["unparsed"] is (result["extracted"] is None)


def test_numeric_match_reports_what_it_read() -> None:
    result = numeric_match(_sample("The answer is **18.50** dollars.", "18.5"))
    assert result == {
        "correct": True,
        "extracted": "18.5",
        "unparsed": False,
        "method": "answer_is",
        "expected": "18.5",
    }
    assert numeric_match(_sample("It is 100.", 1e2))["extracted"] == "100"


@pytest.mark.parametrize("target", ["Paris", "", None, "1,5", True])
def test_numeric_match_rejects_a_target_that_is_not_a_number(target: Any) -> None:
    with pytest.raises(ValueError, match="numeric target"):
        numeric_match(_sample("The answer is 5.", target))


# --------------------------------------------------------------------------- choices

CHOICE_CASES = [
    ("Answer: (B)", "ABCD", "B", "answer_line"),
    ("Answer: B", "ABCD", "B", "answer_line"),
    ("The answer is B", "ABCD", "B", "answer_is"),
    ("The answer is (C).", "ABCD", "C", "answer_is"),
    ("The correct answer is: **D**", "ABCD", "D", "answer_is"),
    ("**B**", "ABCD", "B", "bold"),
    ("Looking at the options, **C)** fits.", "ABCD", "C", "bold"),
    ("$\\boxed{B}$", "ABCD", "B", "boxed"),
    ("\\boxed{\\text{C}}", "ABCD", "C", "boxed"),
    ("B) Paris", "ABCD", "B", "final_line"),
    ("So the capital is\nB. Paris", "ABCD", "B", "final_line"),
    ("(D)", "ABCD", "D", "final_line"),
    ("C", "ABCD", "C", "final_line"),
    ("Answer: J", "ABCDEFGHIJ", "J", "answer_line"),
    ("The answer is (I).", "ABCDEFGHIJ", "I", "answer_is"),
    ("Answer: I", "ABCDEFGHIJ", "I", "answer_line"),
    ("Answer: I think it's C", "ABCDEFGHIJ", "C", "answer_line"),
    ("Answer: J", "ABCD", None, "none"),
    ("A car travels 60 miles in one hour.", "ABCD", None, "none"),
    ("A train leaves at noon. A bus leaves later.", "ABCD", None, "none"),
    ("The answer is A because the car is faster.", "ABCD", "A", "answer_is"),
    ("The answer is A.", "ABCD", "A", "answer_is"),
    ("Answer: option C", "ABCD", "C", "answer_line"),
    ("Answer: (B)\nHmm, no.\nAnswer: (D)", "ABCD", "D", "answer_line"),
    ("**A)** wrong\n**C)** right\nAnswer: B", "ABCD", "B", "answer_line"),
    ("Answer: B\nReviewing once more, **D** is it.", "ABCD", "D", "bold"),
    ("<think>The answer is A</think>The answer is C", "ABCD", "C", "answer_is"),
    ("<think>The answer is A", "ABCD", None, "none"),
    ("done</think>\nAnswer: b", "ABCD", "B", "answer_line"),
    ("", "ABCD", None, "none"),
    ("The answer is Paris, not A.", "ABCD", None, "none"),
]


@pytest.mark.parametrize(("response", "letters", "expected", "method"), CHOICE_CASES)
def test_extract_choice(
    response: str, letters: str, expected: str | None, method: str
) -> None:
    assert extract_choice(response, letters) == (expected, method)


@pytest.mark.parametrize("letters", ["", "abcd", "AAB", "A-D"])
def test_extract_choice_rejects_bad_letters(letters: str) -> None:
    with pytest.raises(ValueError, match="option letters"):
        extract_choice("Answer: A", letters)


@pytest.mark.parametrize(
    ("response", "target", "extra", "correct"),
    [
        ("Answer: B", 1, {}, True),
        ("Answer: B", "B", {}, True),
        ("Answer: b", "(B)", {}, True),
        ("Answer: B", "1", {}, True),
        ("Answer: C", 1, {}, False),
        ("The answer is (J).", 9, {"metadata": {"options": list("0123456789")}}, True),
        ("The answer is (J).", "J", {"config": {"letters": "ABCDEFGHIJ"}}, True),
        ("Answer: E", "E", {"metadata": {"choices": list("abcde")}}, True),
        ("Answer: Paris", 2, {"metadata": {"choices": ["Rome", "Oslo", "Paris"]}},
         True),
        ("Answer: C", "C", {"metadata": {"choices": {"text": ["x", "y", "z"],
                                                      "label": ["A", "B", "C"]}}},
         True),
        ("", 0, {}, False),
    ],
)  # fmt: skip
def test_multichoice_regex(
    response: str, target: Any, extra: dict[str, Any], correct: bool
) -> None:
    assert multichoice_regex(_sample(response, target, **extra))["correct"] is correct


@pytest.mark.parametrize("target", [4, -1, "E", "Paris", None, True])
def test_multichoice_regex_rejects_a_target_that_names_no_option(target: Any) -> None:
    with pytest.raises(ValueError, match="multichoice target"):
        multichoice_regex(_sample("Answer: A", target))


# --------------------------------------------------------------------------- text

EXACT_CASES = [
    ("Paris", "Paris", True),
    ("paris", "Paris", True),
    ("The capital of France.\nParis", "Paris", True),
    ("Answer: **Paris**", "Paris", True),
    ("**Answer:** Paris.", "paris", True),
    ("The answer is \\boxed{\\text{Paris}}.", "Paris", True),
    ("Final Answer: New   York City", "new york city", True),
    ("Answer: Rome\nAnswer: Paris", "Paris", True),
    ("Answer: Paris\nAnswer: Rome", "Paris", False),
    ("Answer: 10", "100", False),
    ("Answer: 100", "10", False),
    ("The answer is 18.", 18, True),
    ("$18$", "18", True),
    ('"yes"', "Yes", True),
    ("Answer: (B)", "B", True),
    ("", "", False),
    ("", "0", False),
    ("   \n ", "", False),
    ("<think>Answer: Paris</think>", "Paris", False),
    ("<think>Answer: Paris", "Paris", False),
    ("thinking...</think>Paris", "Paris", True),
    ("Answer: Paris", ["Lyon", "Paris"], True),
    ("Answer: Pari", "Paris", False),
    ("\\boxed{x^2 + 1}", "x^2 + 1", True),
    ("\\boxed{Paris", "Paris", True),
    ("The answer is Paris. Paris is in France.", "Paris", True),
    ("It is certainly, without any doubt, Paris", "Paris", False),
    ("Answer: ১৮", "১৮", True),
]


@pytest.mark.parametrize(("response", "target", "correct"), EXACT_CASES)
def test_exact_match(response: str, target: Any, correct: bool) -> None:
    result = exact_match(_sample(response, target))
    assert result["correct"] is correct
    assert result["unparsed"] is (result["extracted"] is None)
    if result["unparsed"]:
        assert result["method"] == "none"


def test_exact_match_reports_what_it_read() -> None:
    result = exact_match(_sample("Reasoning.\n**Answer:** `Paris`.", "PARIS"))
    assert result == {
        "correct": True,
        "extracted": "Paris",
        "unparsed": False,
        "method": "answer_line",
        "expected": "paris",
    }


@pytest.mark.parametrize(
    ("response", "expected", "method"),
    [
        ("Reasoning\nAnswer: Paris", "Paris", "answer_line"),
        ("#### 42", "42", "hash"),
        ("The answer is B. Paris is nice.", "B", "answer_is"),
        ("Blue", "Blue", "final_line"),
        ("It is a long sentence that is not an answer", None, "none"),
        ("Which one is it?", None, "none"),
        ("Answer:", None, "none"),
    ],
)
def test_extract_answer_text(response: str, expected: str | None, method: str) -> None:
    assert extract_answer_text(response) == (expected, method)


@pytest.mark.parametrize(
    ("response", "correct", "extracted"),
    [
        ("Reasoning.\nAnswer: Paris", True, "Paris"),
        ("Answer: Rome\nmore\nAnswer: Paris", True, "Paris"),
        ("The answer is Paris", False, None),
        ("Answer:\n\nParis", True, "Paris"),
        ("Paris", False, None),
    ],
)
def test_answer_line(response: str, correct: bool, extracted: str | None) -> None:
    result = answer_line(_sample(response, "Paris"))
    assert (result["correct"], result["extracted"]) == (correct, extracted)


# ------------------------------------------------------------------------ adversarial

ADVERSARIAL: dict[str, str] = {
    "long reasoning": "Let me compute 3 + 4. " * (ONE_MB // 22) + "The answer is 18.",
    "think flood": "<think>" * (ONE_MB // 7),
    "close flood": "</think>" * (ONE_MB // 8),
    "boxed flood": "\\boxed{" * (ONE_MB // 7),
    "brace flood": "{" * ONE_MB,
    "star flood": "*" * ONE_MB,
    "answer flood": "Answer: " * (ONE_MB // 8),
    "answer is flood": "the answer is " * (ONE_MB // 14),
    "spaces": "answer" + " " * ONE_MB,
    "digits": "9" * ONE_MB,
    "commas": "1," * (ONE_MB // 2),
    "one line": "a" * ONE_MB,
    "lines": "step 1 = 2\n" * (ONE_MB // 11),
    "binary": bytes(random.Random(0).getrandbits(8) for _ in range(ONE_MB)).decode(
        "latin-1"
    ),
}
SCORER_CALLS: list[Callable[[str], object]] = [
    lambda text: numeric_match(_sample(text, 18)),
    lambda text: exact_match(_sample(text, "18")),
    lambda text: multichoice_regex(_sample(text, "B")),
    lambda text: answer_line(_sample(text, "18")),
]


def _best_of_three(call: Callable[[], object]) -> float:
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return min(timings)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_a_1mb_response_is_scored_well_under_50ms(name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) >= ONE_MB - 20
    for call in SCORER_CALLS:
        assert _best_of_three(partial(call, text)) < 0.05, name


def test_the_long_reasoning_answer_is_still_found() -> None:
    assert extract_number(ADVERSARIAL["long reasoning"]) == (Decimal(18), "answer_is")
    assert exact_match(_sample(ADVERSARIAL["one line"], "a"))["unparsed"] is True


@pytest.mark.parametrize(
    "junk",
    [
        "\x00\x01\x02\xff\ufffd",
        "\ud800 lone surrogate 12",
        "}}}{{{\\boxed{}}}}",
        "\\boxed{}",
        "\\boxed{\\boxed{",
        "####",
        "**",
        "()",
        "$$$",
        "\u202e 5 \u202d",
    ],
)
def test_junk_never_raises(junk: str) -> None:
    for scorer in SCORERS.values():
        result = scorer(_sample(junk, "0"))
        assert isinstance(result["correct"], bool)
    extract_choice(junk, "ABCDEFGHIJ")
    clean_answer(junk)
    normalize_number(junk)


# --------------------------------------------------------------------------- real data


def _gsm8k_responses(row: dict[str, Any], gold: str) -> Iterator[str]:
    """Typical model outputs for a GSM8K row that state its gold answer."""
    reasoning = row["answer"].rsplit("####", 1)[0]
    plain = re.sub(r"<<[^>]*>>", "", reasoning)  # models do not write calculator tags
    yield row["answer"]
    yield f"{plain}#### {gold}"
    yield f"{plain}The answer is {gold}."
    yield f"<think>{plain}Maybe 7.</think>\n{plain}**Answer:** ${gold}"
    yield f"{plain}The final answer is $\\boxed{{{gold}}}$."


def test_every_gsm8k_answer_scores_correct_against_its_own_gold() -> None:
    rows = _rows("openai/gsm8k/main/test.jsonl")
    assert len(rows) == 1319
    wrong = []
    for index, row in enumerate(rows):
        gold = gsm8k_target(row["answer"])
        for response in _gsm8k_responses(row, gold):
            if not numeric_match(_sample(response, gold))["correct"]:
                wrong.append((index, response[-80:]))
    assert wrong == []


def test_a_wrong_gsm8k_answer_never_scores_correct() -> None:
    rows = _rows("openai/gsm8k/main/test.jsonl")
    for row in rows:
        gold = gsm8k_target(row["answer"])
        value = Decimal(gold)
        for wrong in (f"{gold}0", str(value + 1), str(-value), str(value / 10)):
            if Decimal(wrong) != value:
                sample = _sample(f"The answer is {wrong}.", gold)
                assert not numeric_match(sample)["correct"], (wrong, gold)


@pytest.mark.parametrize(
    ("answer_field", "expected"),
    [
        ("so 9 * 2 = 18\n#### 18", "18"),
        ("#### 70,000", "70000"),
        ("#### -3", "-3"),
        ("#### 1,000.50", "1000.5"),
    ],
)
def test_gsm8k_target(answer_field: str, expected: str) -> None:
    assert gsm8k_target(answer_field) == expected


def test_gsm8k_target_needs_a_hash_line() -> None:
    with pytest.raises(ValueError, match="####"):
        gsm8k_target("no gold here")


def test_every_mmlu_letter_written_as_an_answer_scores_correct() -> None:
    rows = _rows("cais/mmlu/all/test.jsonl")
    assert len(rows) == 14042
    wrong = []
    for index, row in enumerate(rows):
        letter = "ABCD"[row["answer"]]
        for response in (
            f"Answer: {letter}",
            f"A quick look at each option.\nThe answer is ({letter}).",
        ):
            result = multichoice_regex(_sample(response, row["answer"], metadata=row))
            if not result["correct"]:
                wrong.append((index, response))
    assert wrong == []


def test_every_mmlu_pro_letter_scores_correct_with_its_own_options() -> None:
    rows = _rows("TIGER-Lab/MMLU-Pro/default/test.jsonl")
    wrong = [
        row["question_id"]
        for row in rows
        if not multichoice_regex(
            _sample(
                f"...\nThe answer is ({row['answer']}).", row["answer"], metadata=row
            )
        )["correct"]
    ]
    assert wrong == []


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"correct": True}, Score(1.0, None, False, {})),
        ({"correct": False, "extracted": None}, Score(0.0, None, True, {})),
        ({"reward": 0.25, "extracted": "x"}, Score(0.25, "x", False, {})),
        ({"reward": 1}, Score(1.0, None, False, {})),
        ({"f1": 0.5, "note": "n"}, Score(0.5, None, False, {"f1": 0.5, "note": "n"})),
        (
            {"correct": True, "extracted": "18", "value": Decimal("18.50")},
            Score(1.0, "18", False, {"value": "18.5"}),
        ),
        (
            {"reward": 0.0, "extracted": "x", "unparsed": True, "nested": {1: (2,)}},
            Score(0.0, "x", True, {"nested": {"1": [2]}}),
        ),
        ({"correct": True, "extracted": 18}, Score(1.0, "18", False, {})),
    ],
)
def test_normalize_score(result: dict[str, Any], expected: Score) -> None:
    score = normalize_score(result)
    assert score == expected
    json.dumps(score.details)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"reward": 1.5}, "in \\[0, 1\\]"),
        ({"reward": -0.1}, "in \\[0, 1\\]"),
        ({"reward": float("nan")}, "in \\[0, 1\\]"),
        ({"reward": "1"}, "in \\[0, 1\\]"),
        ({"correct": 1}, "must be a bool"),
        ({"a": 0.5, "b": 0.5}, "keys \\['a', 'b'\\]"),
        ({"extracted": "x"}, "keys \\['extracted'\\]"),
        ({"correct": True, "extracted": None}, "unparsed"),
        ({"correct": True, "unparsed": "no"}, "must be a bool"),
    ],
)
def test_normalize_score_rejects(result: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_score(result)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_every_builtin_scorer_result_normalises(name: str) -> None:
    target = {"multichoice_regex": "B"}.get(name, "18")
    for response in ("The answer is 18.", "Answer: B", "", "<think>18"):
        score = normalize_score(SCORERS[name](_sample(response, target)))
        assert score.reward in (0.0, 1.0)
        assert not (score.unparsed and score.reward)
        json.dumps(score.details)


def test_registry_holds_the_four_builtin_scorers() -> None:
    builtin = {
        "exact_match": exact_match,
        "numeric_match": numeric_match,
        "multichoice_regex": multichoice_regex,
        "answer_line": answer_line,
    }
    assert builtin == SCORERS
