"""GSM8K: grade-school math word problems (openai/gsm8k, main, test; 1319 problems).

The gold answer is the number after ``####``; the model's answer is the number in its
LAST answer statement ("The answer is N", "#### N", ``\\boxed{N}``...), compared by
value.
"""

from __future__ import annotations

from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput, gsm8k_target, numeric_match

PROMPT = (
    "Solve the following math problem step by step. "
    "End your response with a final line "
    'of the form "The answer is N", where N is the final number.\n\n'
    "Question: {question}"
)


def _target(row: dict[str, Any]) -> str:
    return gsm8k_target(row["answer"])


def _oracle(row: dict[str, Any]) -> str:
    """The reference solution itself: its reasoning, then ``#### 70,000``."""
    return str(row["answer"])


@benchmark(
    name="gsm8k",
    dataset="hf://openai/gsm8k?config=main&split=test",
    prompt=PROMPT,
    target=_target,
    oracle=_oracle,
    scorer_version="1",
    description="Grade-school math word problems, numeric answer (pass@1).",
)
@scorer
def gsm8k(sample: ScorerInput) -> dict[str, Any]:
    """Numeric match of the last answer statement against the gold number."""
    return numeric_match(sample)
