"""Tests for reading answers out of responses (pytest_nel.extraction)."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import pytest

from pytest_nel.extraction import (
    clean_answer,
    extract_answer_text,
    extract_choice,
    extract_number,
    normalize_number,
    strip_reasoning,
)

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


# --------------------------------------------------------------------------- text


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
