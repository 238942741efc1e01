"""Time ``nel compare`` and ``nel gate`` on two runs of 100,000 samples each.

Writes a baseline and a candidate results folder (pytest-nel layout, realistic
records with a ``model_response`` of ``--response-chars`` characters), then runs
both commands as a user would (a fresh ``nel`` process each, so interpreter start
and imports count) and prints the wall time of each, plus where the time goes
in-process (reading vs statistics).

Usage::

    python perf/compare_gate_100k.py [--samples 100000] [--repeats 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pytest_nel.testing.fake_runs import write_benchmark


def make_runs(root: Path, samples: int, repeats: int, chars: int) -> tuple[Path, Path]:
    """Write baseline and candidate folders; the candidate is 1 point worse."""
    rng = np.random.default_rng(0)
    problems = samples // repeats
    rates = rng.beta(1.0, 1.0, size=problems)
    response = ("The answer is 42. " * (chars // 18 + 1))[:chars]
    for name, shift in (("base", 0.0), ("cand", 0.01)):
        rewards = rng.random((problems, repeats)) < (rates - shift)[:, None]
        errors = rng.random((problems, repeats)) < 0.002
        write_benchmark(root / name, "big", rewards, errors=errors, response=response)
    policy = root / "policy.yaml"
    policy.write_text(
        "version: 1\nbenchmarks:\n  big: {tier: critical, max_drop: 0.02}\n"
    )
    return root / "base", root / "cand"


def time_command(args: list[str], runs: int) -> tuple[float, int]:
    """Best wall time of ``runs`` runs of a ``nel`` command, and its exit code."""
    best, code = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest_nel.cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        best = min(best, time.perf_counter() - start)
        code = done.returncode
        if code == 4:
            raise SystemExit(done.stderr)
    return best, code


def phases(base: Path, cand: Path, policy: Path) -> dict[str, float]:
    """In-process time of reading and of the statistics."""
    from pytest_nel.compare import compare_runs
    from pytest_nel.gate import evaluate_gate, load_policy
    from pytest_nel.runs import load_pair

    out = {}
    start = time.perf_counter()
    b, c = load_pair(base, cand)
    out["read both runs"] = time.perf_counter() - start
    start = time.perf_counter()
    compare_runs(b, c, max_drop=0.02)
    out["compare (statistics)"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_gate(b, c, load_policy(policy))
    out["gate (statistics)"] = time.perf_counter() - start
    return out


def main() -> None:
    """Generate the runs, time both commands, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--response-chars", type=int, default=800)
    parser.add_argument("--runs", type=int, default=3, help="best of N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        base, cand = make_runs(root, args.samples, args.repeats, args.response_chars)
        size = (base / "big" / "results.jsonl").stat().st_size / 1e6
        print(
            f"wrote 2 x {args.samples} samples ({args.repeats} repeats, "
            f"{size:.0f} MB each) in {time.perf_counter() - start:.1f} s"
        )
        policy = root / "policy.yaml"
        seconds, code = time_command(["compare", str(base), str(cand)], args.runs)
        print(f"nel compare: {seconds:.2f} s (exit {code})")
        seconds, code = time_command(
            ["gate", str(base), str(cand), "--policy", str(policy)], args.runs
        )
        print(f"nel gate:    {seconds:.2f} s (exit {code})")
        for name, value in phases(base, cand, policy).items():
            print(f"  in-process {name}: {value:.2f} s")


if __name__ == "__main__":
    main()
