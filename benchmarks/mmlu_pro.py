"""MMLU-Pro: harder 14-category multiple choice with up to ten options, A-J.

TIGER-Lab/MMLU-Pro, test split, 12,032 questions (3 to 10 options each); the breakdown
is by ``category``. The gold is the dataset's ``answer`` letter, as in the official
evaluation (one row, question_id 3983, has an ``answer_index`` that disagrees with its
letter; the letter is used). The model's letter is read from its LAST answer
statement, so letters beyond D (``Answer: J``) count, and a prose article ("A car...")
never does.
"""

from __future__ import annotations

from string import ascii_uppercase
from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput, multichoice_regex

INSTRUCTION = (
    "The following is a multiple choice question about {category}. Think step by "
    'step, then finish with a final line of the form "Answer: X", where X is one of '
    "{letters}."
)


def _prompt(row: dict[str, Any]) -> str:
    letters = ascii_uppercase[: len(row["options"])]
    options = "\n".join(
        f"{letter}) {option}"
        for letter, option in zip(letters, row["options"], strict=True)
    )
    instruction = INSTRUCTION.format(
        category=row["category"], letters=", ".join(letters)
    )
    return f"{instruction}\n\n{row['question']}\n{options}"


@benchmark(
    name="mmlu_pro",
    dataset="hf://TIGER-Lab/MMLU-Pro?split=test",
    prompt=_prompt,
    target_field="answer",
    category_field="category",
    id_field="question_id",
    scorer_version="1",
    description="MMLU-Pro, 14 categories, up to 10 options A-J (pass@1).",
)
@scorer
def mmlu_pro(sample: ScorerInput) -> dict[str, Any]:
    """The chosen letter (A-J, as many as the row has options) against the gold."""
    return multichoice_regex(sample)
