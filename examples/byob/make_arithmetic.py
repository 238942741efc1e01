"""Generate benchmarks/data/arithmetic.jsonl: 200 arithmetic word problems (seeded)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Juno"]
THINGS = [
    "apples",
    "books",
    "coins",
    "marbles",
    "pencils",
    "stickers",
    "cards",
    "shells",
]


def problem(rng: random.Random, i: int) -> dict[str, object]:
    """One problem with its answer and operation."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    op = ("addition", "subtraction", "multiplication", "division")[i % 4]
    a, b = rng.randint(2, 60), rng.randint(2, 12)
    if op == "addition":
        q, ans = (
            f"{name} has {a} {thing} and gets {b} more. How many {thing} now?",
            a + b,
        )
    elif op == "subtraction":
        a = a + b
        q, ans = (
            f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?",
            a - b,
        )
    elif op == "multiplication":
        q, ans = (
            f"{name} buys {b} bags with {a} {thing} each. How many {thing} in total?",
            a * b,
        )
    else:
        q, ans = (
            f"{name} shares {a * b} {thing} equally among {b} friends. How many each?",
            a,
        )
    return {"id": f"arith-{i:03d}", "question": q, "answer": ans, "operation": op}


def main(out: Path) -> None:
    """Write the file."""
    rng = random.Random(2026)
    with out.open("w", encoding="utf-8") as fh:
        for i in range(200):
            fh.write(json.dumps(problem(rng, i)) + "\n")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path("benchmarks/data/arithmetic.jsonl")
    )
