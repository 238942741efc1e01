"""Scoring throughput (answers/s) per scorer on the real datasets of the offline mirror.

Each scorer is timed in this process, through the public registry
(``pytest_nel.scoring.SCORERS``) and ``normalize_score`` exactly as the harness calls
them, on model-like responses built from real rows:

- numeric_match: openai/gsm8k test (1319): the reference solution as a chain of
  thought, ending in "The answer is N." (every third one wrong by one);
- multichoice_regex: cais/mmlu all test (14042): a short reasoning, then
  "Answer: X" (every fourth letter wrong);
- exact_match, fuzzy_match, f1, drop_f1: basicv8vc/SimpleQA test (4326): a
  sentence, then the answer in one of three forms ("Answer: X", "The answer is X.",
  a bold final line);
- math_equivalence: HuggingFaceH4/MATH-500 test (500): the reference solution, which
  ends in ``\\boxed{...}``. Timed only once it is registered in ``SCORERS``.

    NEL_DATASETS_DIR=../shared/datasets python perf/scoring_throughput.py
    python perf/scoring_throughput.py --datasets ../shared/datasets --min-seconds 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_nel.scoring import SCORERS, ScorerInput, gsm8k_target, normalize_score

Builder = Callable[[Path], list[ScorerInput]]
_CALCULATOR = re.compile(r"<<[^>]*>>")


def _rows(root: Path, relative: str) -> Iterator[dict[str, Any]]:
    with (root / relative).open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def gsm8k(root: Path) -> list[ScorerInput]:
    """Chains of thought from the reference solutions, one third wrong."""
    samples = []
    for i, row in enumerate(_rows(root, "openai/gsm8k/main/test.jsonl")):
        gold = gsm8k_target(row["answer"])
        said = gold if i % 3 else str(int(float(gold)) + 1)
        steps = _CALCULATOR.sub("", row["answer"].rsplit("####", 1)[0]).strip()
        response = f"{steps}\nThe answer is {said}."
        samples.append(ScorerInput(response=response, target=gold, metadata=row))
    return samples


def mmlu(root: Path) -> list[ScorerInput]:
    """Short reasonings ending in "Answer: X", one quarter wrong."""
    samples = []
    for i, row in enumerate(_rows(root, "cais/mmlu/all/test.jsonl")):
        gold = "ABCD"[int(row["answer"])]
        said = gold if i % 4 else "ABCD"[(int(row["answer"]) + 1) % 4]
        response = (
            f"Let's think step by step about {row['subject'].replace('_', ' ')}.\n"
            f"The question asks: {row['question'][:300]}\n"
            f"Option {said} fits best.\nAnswer: {said}"
        )
        samples.append(ScorerInput(response=response, target=gold, metadata=row))
    return samples


def simpleqa(root: Path) -> list[ScorerInput]:
    """Short factual answers in three forms."""
    forms = ("Answer: {}", "The answer is {}.", "**{}**")
    samples = []
    for i, row in enumerate(_rows(root, "basicv8vc/SimpleQA/default/test.jsonl")):
        answer = row["answer"]
        response = "I recall this from the sources I know.\n" + forms[i % 3].format(
            answer
        )
        samples.append(ScorerInput(response=response, target=answer, metadata=row))
    return samples


def math500(root: Path) -> list[ScorerInput]:
    """Reference solutions, each ending in a boxed answer."""
    return [
        ScorerInput(response=row["solution"], target=row["answer"], metadata=row)
        for row in _rows(root, "HuggingFaceH4/MATH-500/default/test.jsonl")
    ]


PLAN: list[tuple[str, str, Builder]] = [
    ("numeric_match", "gsm8k", gsm8k),
    ("multichoice_regex", "mmlu", mmlu),
    ("exact_match", "simpleqa", simpleqa),
    ("fuzzy_match", "simpleqa", simpleqa),
    ("f1", "simpleqa", simpleqa),
    ("drop_f1", "simpleqa", simpleqa),
    ("math_equivalence", "math500", math500),  # hook: timed once it is registered
]


def time_scorer(
    scorer: Callable[[ScorerInput], dict[str, Any]],
    samples: list[ScorerInput],
    min_seconds: float,
) -> tuple[float, float]:
    """Score every sample, in passes, for at least ``min_seconds``.

    One untimed pass first, so that lazy imports and caches are not counted.

    Returns:
        ``(answers per second, mean reward)``.
    """
    for sample in samples:
        normalize_score(scorer(sample))
    done, rewards, start = 0, 0.0, time.perf_counter()
    while True:
        for sample in samples:
            rewards += normalize_score(scorer(sample)).reward
        done += len(samples)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed, rewards / done


def main(argv: list[str] | None = None) -> None:
    """Print one line per scorer: dataset, answers/s, microseconds per answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NEL_DATASETS_DIR", "../shared/datasets")
    parser.add_argument("--datasets", type=Path, default=Path(default))
    parser.add_argument("--min-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    cache: dict[str, list[ScorerInput]] = {}
    print(f"{'scorer':<18} {'dataset':<9} {'answers':>7} {'answers/s':>11} "
          f"{'us/answer':>10} {'mean reward':>11}")  # fmt: skip
    for name, dataset, build in PLAN:
        scorer = SCORERS.get(name)
        if scorer is None:
            print(f"{name:<18} {dataset:<9} not registered in SCORERS yet; skipped")
            continue
        samples = cache.get(dataset) or cache.setdefault(dataset, build(args.datasets))
        rate, mean = time_scorer(scorer, samples, args.min_seconds)
        print(f"{name:<18} {dataset:<9} {len(samples):>7} {rate:>11,.0f} "
              f"{1e6 / rate:>10.1f} {mean:>11.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
