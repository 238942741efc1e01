"""``nel validate`` on every benchmark with real data: pass rate and wall time each.

Runs ``nel validate -b NAME`` in a subprocess per benchmark (the oracle solver, no
model) on the offline mirror, and GPQA on the hand-written fixture in tests/fixtures
(its data is gated), then prints one line per benchmark. Every rate must be 100%.

    NEL_DATASETS_DIR=../shared/datasets python perf/validate_all.py [-n 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = ("gsm8k", "mmlu", "mmlu_pro", "math500", "mgsm")
_RESULT = re.compile(r"nel validate (\S+) \(oracle\): (\d+)/(\d+) = ([\d.]+%)")


def _validate(name: str, env: dict[str, str], workers: str | None) -> None:
    args = [sys.executable, "-m", "pytest_nel.cli", "validate", "-b", name]
    if workers:
        args += ["-n", workers]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    found = _RESULT.search(proc.stdout)
    shown = f"{found[2]}/{found[3]} = {found[4]}" if found else "no result"
    print(f"{name:<10} {shown:<24} {wall:6.1f} s  exit {proc.returncode}")
    if proc.returncode != 0:
        print(proc.stdout[-3000:] + proc.stderr[-2000:])


def main() -> None:
    """Validate each benchmark and print its pass rate and time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--workers", help="pytest-xdist workers per run")
    ns = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.setdefault("NEL_DATASETS_DIR", str(REPO.parent / "shared" / "datasets"))
    for name in REAL:
        _validate(name, env, ns.workers)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp, "Idavidrein", "gpqa", "gpqa_diamond")
        target.mkdir(parents=True)
        fixture = REPO / "tests" / "fixtures" / "gpqa" / "gpqa_diamond" / "train.jsonl"
        shutil.copy(fixture, target)
        _validate("gpqa", {**env, "NEL_DATASETS_DIR": tmp}, ns.workers)


if __name__ == "__main__":
    main()
