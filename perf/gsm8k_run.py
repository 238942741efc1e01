"""Time a whole gsm8k evaluation through ``nel eval run`` against a fake model.

Starts the fake OpenAI-compatible model (``pytest_nel.testing.fake_model``) with a fixed
latency, runs ``nel eval run --bench gsm8k`` (real data: all 1319 problems unless
``--problems``) in a subprocess and prints wall time, samples/s, the server's maximum
requests in flight and the run's peak RSS. Uses only public tools.

    NEL_DATASETS_DIR=../shared/datasets python perf/gsm8k_run.py --latency-ms 200
    NEL_DATASETS_DIR=../shared/datasets python perf/gsm8k_run.py --latency-ms 0 --runs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_nel.testing.fake_model import FakeModel


def one_run(fm: FakeModel, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Run the evaluation once.

    Returns wall seconds, samples/s, peak RSS and in-flight.
    """
    fm.reset()
    fm.control(record=False)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest_nel.cli",
        "eval",
        "run",
        "--bench",
        "gsm8k",
        "--model-url",
        fm.base_url,
        "--model-id",
        "fake",
        "--max-concurrent",
        str(args.concurrency),
        "--repeats",
        str(args.repeats),
        "-o",
        str(out),
    ]
    if args.problems:
        cmd += ["--max-problems", str(args.problems)]
    cmd += ["--", "-q", "-p", "no:cacheprovider", *args.pytest_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    # Run from an empty folder so no project conftest.py or ini file is picked up, and
    # with Python's defaults: this machine sets PYTHONDONTWRITEBYTECODE (every run would
    # compile every module again) and PYTHONUNBUFFERED (one write syscall per progress
    # dot).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
    }
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=out.parent, env=env
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(
            f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    samples = (args.problems or 1319) * args.repeats
    return {
        "wall_s": wall,
        "samples_per_s": samples / wall,
        "peak_rss_mb": max(rss_kb, before) / 1024,
        "max_in_flight": fm.stats()["max_in_flight"],
    }


def main() -> None:
    """Parse options, run, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--problems", type=int, default=0, help="0 = all 1319")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "pytest_args", nargs="*", help="extra pytest arguments (after --)"
    )
    args = parser.parse_args()
    datasets = os.environ.get("NEL_DATASETS_DIR")
    if not datasets:
        sys.exit("set NEL_DATASETS_DIR to the offline mirror (../shared/datasets)")
    answers = Path(datasets) / "openai" / "gsm8k" / "main" / "test.jsonl"
    with (
        FakeModel(
            latency_ms=args.latency_ms, gsm8k_answers=str(answers), accuracy=0.8
        ) as fm,
        tempfile.TemporaryDirectory() as tmp,
    ):
        results = [one_run(fm, args, Path(tmp) / "out") for _ in range(args.runs)]
    print(
        f"gsm8k problems={args.problems or 1319} repeats={args.repeats} "
        f"latency={args.latency_ms:g}ms concurrency={args.concurrency} runs={args.runs}"
    )
    for key in ("wall_s", "samples_per_s", "peak_rss_mb", "max_in_flight"):
        values = [r[key] for r in results]
        print(
            f"  {key:<14} median {statistics.median(values):9.2f}   "
            f"min {min(values):9.2f}   max {max(values):9.2f}"
        )


if __name__ == "__main__":
    main()
