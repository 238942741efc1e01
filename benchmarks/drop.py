"""DROP: reading comprehension with discrete reasoning (ucinlp/drop, validation; 9,535).

Each prompt shows three fixed worked examples from the train split (one number, one
multi-span and one single-span answer, so the model sees every answer form), then
the passage and question. Scored with the official DROP metric (exact match and
bag-of-tokens F1, numbers normalised; :mod:`pytest_nel.drop_metric`): the reward is
the F1 (``mean_reward``) and each sample records ``em`` and ``f1`` in its
``scoring_details``. An empty answer scores 0 and is unparsed.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.datasets import load_dataset
from pytest_nel.drop_metric import drop_f1, gold_answers
from pytest_nel.exceptions import DatasetError
from pytest_nel.scoring import ScorerInput

DATASET = "hf://ucinlp/drop?split=validation"
FEWSHOT_DATASET = "hf://ucinlp/drop?split=train"
FEWSHOT_SEED = 1234

INSTRUCTIONS = (
    "You will be asked to read a passage and answer a question about it. Some "
    "examples of passages with questions and answers come first."
)
TASK = (
    'Think step by step, then write a final line of the form "Answer: X". Give '
    "numbers as digits. If the answer has several parts, separate them with "
    'semicolons, e.g. "Answer: Smith; Jones".'
)
EXAMPLE = "Passage: {passage}\nQuestion: {question}\nAnswer: {answer}"
QUESTION = "Passage: {passage}\nQuestion: {question}"


def _golds(row: dict[str, Any]) -> list[tuple[str, ...]]:
    spans = row["answers_spans"]
    return gold_answers(spans["spans"], spans["types"])


def _kind(row: dict[str, Any]) -> str:
    """``number``, ``date``, ``spans`` (several) or ``span`` for a train row."""
    types = row["answers_spans"]["types"]
    return "spans" if len(types) > 1 else (types[0] if types else "")


class FewShotPrompt:
    """The drop prompt: fixed train examples, then the passage and question.

    The examples are read from the train split the first time a prompt is built
    (through the same offline mirror, ``NEL_DATASETS_DIR``, as the test split), and
    are the same for every question, so a server can cache the shared prefix.
    """

    kinds = ("number", "spans", "span")

    def __init__(self) -> None:
        self._prefixes: dict[str | None, str] = {}

    def __repr__(self) -> str:
        """Stable text for the run fingerprint: the templates and example rule."""
        text = (
            "\n".join((INSTRUCTIONS, TASK, EXAMPLE, QUESTION, FEWSHOT_DATASET))
            + f"\nseed={FEWSHOT_SEED};kinds={','.join(self.kinds)}"
        )
        return "drop-prompt:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def prefix(self) -> str:
        """Instructions and the worked examples (loaded once per process and mirror)."""
        mirror = os.environ.get("NEL_DATASETS_DIR") or None
        if mirror not in self._prefixes:
            try:
                data = load_dataset(
                    FEWSHOT_DATASET, mirror_dir=Path(mirror) if mirror else None
                )
            except DatasetError as exc:
                raise DatasetError(f"drop's few-shot examples: {exc}") from None
            examples = [
                EXAMPLE.format(
                    passage=row["passage"].strip(),
                    question=row["question"].strip(),
                    answer="; ".join(dict.fromkeys(row["answers_spans"]["spans"])),
                )
                for row in self.pick(data.rows)
            ]
            self._prefixes[mirror] = "\n\n".join(
                [INSTRUCTIONS, "# Examples", *examples, "# Your task"]
            )
        return self._prefixes[mirror]

    def pick(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One example of each answer kind, from distinct passages, seeded."""
        order = list(range(len(rows)))
        random.Random(FEWSHOT_SEED).shuffle(order)
        chosen: list[dict[str, Any]] = []
        for kind in self.kinds:
            for idx in order:
                row = rows[idx]
                sections = {r["section_id"] for r in chosen}
                if _kind(row) == kind and row["section_id"] not in sections:
                    chosen.append(row)
                    break
        if len(chosen) < len(self.kinds):
            raise DatasetError(
                f"drop's few-shot split {FEWSHOT_DATASET} has no {self.kinds} "
                "answers on distinct passages; is it the real train split?"
            )
        return chosen

    def __call__(self, row: dict[str, Any]) -> str:
        """The prompt for one validation row."""
        question = QUESTION.format(
            passage=row["passage"].strip(), question=row["question"].strip()
        )
        return f"{self.prefix()}\n\n{question}\n\n{TASK}"


def _target(row: dict[str, Any]) -> str:
    """The first gold answer, its spans joined with semicolons (for display)."""
    return "; ".join(_golds(row)[0])


@benchmark(
    name="drop",
    dataset=DATASET,
    prompt=FewShotPrompt(),
    target=_target,
    id_field="query_id",
    binary=False,
    scorer_version="1",
    description="DROP reading comprehension, 3-shot; official EM/F1 (mean F1).",
)
@scorer
def drop(sample: ScorerInput) -> dict[str, Any]:
    """The DROP metric against every gold answer of the row."""
    return drop_f1(replace(sample, target=_golds(sample.metadata)))
