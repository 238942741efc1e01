"""Sandboxed verification speed: HumanEval's canonical solutions through the plugin.

Three measurements, each a real run (``pytest --nel-bench humaneval`` with the oracle
solver, so no model is involved and only verification is timed):

1. the 164 canonical solutions with the local (bubblewrap) backend, one process
   (wall clock of the whole pytest run, start-up included; target < 15 s);
2. 820 verifications (``--nel-repeats 5``) in one process and with ``-n 2`` (target:
   ``-n 2`` at least 1.5x faster);
3. per-sandbox overhead, timed in this process for each backend: ``start`` + ``stop``,
   an ``exec`` of ``true``, and an ``exec`` of ``python3 -I -c pass``;
4. the 164 canonical solutions with the docker backend and ``-n 4`` (target < 60 s).

A Docker engine (with the image, built on first use) and a one-node SLURM cluster
are started here when the machine has them installed and none is configured.

    NEL_DATASETS_DIR=../shared/datasets python perf/sandbox_humaneval.py
    python perf/sandbox_humaneval.py --skip-runs --samples 100   # overhead only
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_nel.sandboxes import SandboxSettings, make_sandbox


def timed_run(*args: str) -> float:
    """Wall seconds of one humaneval oracle run; fails loudly if any item failed."""
    with tempfile.TemporaryDirectory() as out:
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            out,
            "--nel-bench",
            "humaneval",
            "--nel-override",
            "__all_benchmarks__.solver.type=oracle",
            "--nel-output",
            str(Path(out) / "results"),
            *args,
        ]
        start = time.perf_counter()
        done = subprocess.run(
            argv, cwd=out, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}")
    return wall


def overhead(kind: str, samples: int) -> dict[str, float]:
    """Median milliseconds of start+stop, exec true, exec python3 for one backend."""
    settings = SandboxSettings(type=kind)
    make_sandbox(settings).check(settings)
    lifecycle, shell, python = [], [], []
    for _ in range(samples):
        box = make_sandbox(settings)
        start = time.perf_counter()
        box.start()
        box.stop()
        lifecycle.append(time.perf_counter() - start)
    with make_sandbox(settings) as box:
        for _ in range(samples):
            start = time.perf_counter()
            assert box.exec(["true"]).ok
            shell.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert box.exec(["python3", "-I", "-c", "pass"]).ok
            python.append(time.perf_counter() - start)
    return {
        "start+stop": statistics.median(lifecycle) * 1000,
        "exec true": statistics.median(shell) * 1000,
        "exec python3": statistics.median(python) * 1000,
    }


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50, help="overhead samples")
    parser.add_argument("--skip-runs", action="store_true", help="overhead only")
    parser.add_argument(
        "--backends",
        default="local,none,docker,slurm",
        help="backends whose overhead is timed (docker and slurm are started here)",
    )
    ns = parser.parse_args()
    if "NEL_DATASETS_DIR" not in os.environ:
        default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
        os.environ["NEL_DATASETS_DIR"] = str(default)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    backends = ns.backends.split(",")
    if "docker" in backends:
        from pytest_nel.testing.docker_engine import ensure_engine, ensure_image

        os.environ["DOCKER_HOST"] = ensure_engine()
        ensure_image(os.environ["DOCKER_HOST"])
    if "slurm" in backends and "SLURM_CONF" not in os.environ:
        from pytest_nel.testing.slurm_cluster import start_cluster

        os.environ["SLURM_CONF"] = str(start_cluster())
    for kind in backends:
        ms = overhead(kind, ns.samples)
        shown = ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
        print(f"overhead {kind:<6}: {shown} (median of {ns.samples})")
    if ns.skip_runs:
        return
    wall = timed_run()
    print(f"164 canonical solutions, local, 1 process: {wall:.2f} s")
    single = timed_run("--nel-repeats", "5")
    double = timed_run("--nel-repeats", "5", "-n", "2")
    print(f"820 verifications, 1 process: {single:.2f} s")
    print(f"820 verifications, -n 2:      {double:.2f} s ({single / double:.2f}x)")
    if "docker" in backends:
        docker = ("--nel-override", "__all_benchmarks__.sandbox.type=docker")
        wall = timed_run(*docker, "-n", "4")
        print(f"164 canonical solutions, docker, -n 4: {wall:.2f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
