"""MMLU: 57-subject multiple choice (cais/mmlu, all, test; 14042 questions, A-D).

The breakdown is by subject. The answer letter is read from the LAST answer statement.
"""

from __future__ import annotations

from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput, multichoice_regex

LETTERS = "ABCD"


def _prompt(row: dict[str, Any]) -> str:
    subject = str(row["subject"]).replace("_", " ")
    options = "\n".join(
        f"{LETTERS[i]}) {choice}" for i, choice in enumerate(row["choices"])
    )
    return (
        f"The following is a multiple choice question about {subject}. "
        "Think step by step, "
        'then finish with a final line of the form "Answer: X", where X is one of '
        f"{', '.join(LETTERS[: len(row['choices'])])}.\n\n{row['question']}\n{options}"
    )


def _target(row: dict[str, Any]) -> str:
    return LETTERS[int(row["answer"])]


@benchmark(
    name="mmlu",
    dataset="hf://cais/mmlu?config=all&split=test",
    prompt=_prompt,
    target=_target,
    category_field="subject",
    scorer_version="1",
    description="Massive multitask language understanding, 57 subjects (pass@1).",
)
@scorer
def mmlu(sample: ScorerInput) -> dict[str, Any]:
    """The chosen letter against the gold letter."""
    return multichoice_regex(sample)
