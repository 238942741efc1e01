"""MATH-500: 500 competition problems from the MATH test set (HuggingFaceH4/MATH-500).

Answers are LaTeX (``\\frac{14}{3}``, ``\\left( 3, \\frac{\\pi}{2} \\right)``,
``[2,5)``, a matrix...). The model's answer is its last ``\\boxed{}`` (or answer
statement) and is compared by mathematical equivalence
(:func:`pytest_nel.scoring.math_equivalence`: normalised strings, exact numbers, then
math-verify in a separate process with a per-answer time limit); the details name the
checker that decided. Two breakdowns: ``subject=...`` (7 subjects) and ``level=1..5``.
``nel validate -b math500`` feeds each row's reference solution (worked LaTeX ending in
``\\boxed{answer}``) through this scoring.
"""

from __future__ import annotations

from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput, math_equivalence

PROMPT = (
    "Solve the following math problem. Reason step by step, and put your final "
    "answer within \\boxed{{}}.\n\n{problem}"
)


def _oracle(row: dict[str, Any]) -> str:
    """The reference solution itself: worked LaTeX ending in ``\\boxed{answer}``."""
    return str(row["solution"])


@benchmark(
    name="math500",
    dataset="hf://HuggingFaceH4/MATH-500?split=test",
    prompt=PROMPT,
    target_field="answer",
    category_field=("subject", "level"),
    id_field="unique_id",
    oracle=_oracle,
    scorer_version="1",
    description="MATH-500, answers compared by mathematical equivalence (pass@1).",
)
@scorer
def math500(sample: ScorerInput) -> dict[str, Any]:
    """The last boxed answer against the reference, by mathematical equivalence."""
    return math_equivalence(sample)
