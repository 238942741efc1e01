"""GPQA diamond: 198 graduate-level multiple-choice questions (Idavidrein/gpqa).

Config ``gpqa_diamond``, split ``train`` (the dataset's only split). The data is gated
on the Hugging Face hub (its authors ask that it not be published in plain text), so
it must be in the ``datasets`` cache or in an offline mirror (``NEL_DATASETS_DIR``).

A row holds the correct answer and three incorrect ones. The four are shuffled per
row with a fixed seed keyed on the row's ``Record ID``, so the gold letter is the same
on every run and machine (and independent of ``shuffle_seed``, which only orders the
problems). The breakdown is by ``High-level domain`` (Physics, Chemistry, Biology).
The model's letter is read from its LAST answer statement; a stated answer that is
exactly one option's text counts as that option.
"""

from __future__ import annotations

import random
from dataclasses import replace
from string import ascii_uppercase
from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput, multichoice_regex

SHUFFLE_SEED = "nel-gpqa-v1"
ANSWER_FIELDS = (
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
)
INSTRUCTION = (
    "Answer the following multiple choice question. Think step by step, then finish "
    'with a final line of the form "Answer: X", where X is one of A, B, C, D.'
)


def shuffled_choices(row: dict[str, Any]) -> tuple[list[str], str]:
    """The row's four answers in their shuffled order, and the gold letter."""
    answers = [str(row[name]).strip() for name in ANSWER_FIELDS]
    order = list(range(len(answers)))
    random.Random(f"{SHUFFLE_SEED}:{row['Record ID']}").shuffle(order)
    return [answers[i] for i in order], ascii_uppercase[order.index(0)]


def _prompt(row: dict[str, Any]) -> str:
    choices, _ = shuffled_choices(row)
    options = "\n".join(
        f"{letter}) {choice}" for letter, choice in zip("ABCD", choices, strict=True)
    )
    return f"{INSTRUCTION}\n\n{str(row['Question']).strip()}\n\n{options}"


def _target(row: dict[str, Any]) -> str:
    return shuffled_choices(row)[1]


@benchmark(
    name="gpqa",
    dataset="hf://Idavidrein/gpqa?config=gpqa_diamond&split=train",
    prompt=_prompt,
    target=_target,
    category_field="High-level domain",
    id_field="Record ID",
    scorer_version="1",
    description="GPQA diamond, graduate-level science, 4 shuffled options (pass@1).",
)
@scorer
def gpqa(sample: ScorerInput) -> dict[str, Any]:
    """The chosen letter against the gold letter of the shuffled options."""
    choices, _ = shuffled_choices(sample.metadata)
    return multichoice_regex(
        replace(sample, metadata={**sample.metadata, "choices": choices})
    )
