"""math_equivalence throughput (answers/s) on the 500 MATH-500 reference answers.

Four figures, each over every row of HuggingFaceH4/MATH-500 test:

- ``scorer, reference solutions``: ``math_equivalence`` on the row's reference
  solution (worked LaTeX ending in ``\\boxed{answer}``): extraction plus the checkers
  as a run uses them (``nel validate -b math500`` does exactly this);
- ``math-verify, gold vs gold``: every answer sent to the math-verify process
  (the string and numeric fast paths off), the cost of a pair that needs sympy;
- ``math-verify, gold vs wrong``: the gold against another row's gold, i.e. a wrong
  answer (the fast paths cannot say "equal", so every pair goes to math-verify);
- ``checker start``: starting the math-verify process (once per pytest process).

    NEL_DATASETS_DIR=../shared/datasets python perf/math_equivalence.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from pytest_nel.math_scoring import MathChecker, check_equivalence, math_equivalence
from pytest_nel.scoring import ScorerInput, normalize_score

MATH500 = Path("HuggingFaceH4") / "MATH-500" / "default" / "test.jsonl"


def _report(label: str, count: int, seconds: float, extra: str = "") -> None:
    rate = f"{count / seconds:9.1f}/s"
    print(f"{label:<28} {count:>5} answers {seconds:7.2f} s {rate}  {extra}")


def main() -> None:
    """Time the four figures and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", type=Path, default=Path(os.environ.get("NEL_DATASETS_DIR", "."))
    )
    ns = parser.parse_args()
    lines = (ns.datasets / MATH500).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    checker = MathChecker()
    start = time.perf_counter()
    checker.check("1", "1", 30.0)
    print(f"checker start: {time.perf_counter() - start:.2f} s")

    start, checkers = time.perf_counter(), Counter()
    for row in rows:
        result = math_equivalence(
            ScorerInput(response=row["solution"], target=row["answer"])
        )
        checkers[result["checker"]] += normalize_score(result).reward == 1.0
    _report(
        "scorer, reference solutions",
        len(rows),
        time.perf_counter() - start,
        f"correct by checker: {dict(checkers)}",
    )

    for label, pairs in (
        ("math-verify, gold vs gold", [(r["answer"], r["answer"]) for r in rows]),
        (
            "math-verify, gold vs wrong",
            [(r["answer"], rows[i - 1]["answer"]) for i, r in enumerate(rows)],
        ),
    ):
        start, verdicts = time.perf_counter(), Counter()
        for gold, answer in pairs:
            verdict = check_equivalence(gold, answer, checker=checker, fast_paths=False)
            verdicts["timeout" if verdict.timed_out else verdict.equal] += 1
            verdicts["pairs with equal strings"] += gold == answer
        _report(
            label,
            len(pairs),
            time.perf_counter() - start,
            f"verdicts: {dict(verdicts)}",
        )
    checker.close()


if __name__ == "__main__":
    main()
