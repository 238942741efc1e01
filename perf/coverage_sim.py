"""Empirical coverage of the 95% intervals that ``pytest_nel.stats`` reports.

Simulates many evaluation runs per cell (number of problems x true rate x repeats),
computes the metrics with :func:`pytest_nel.stats.compute_metrics` exactly as the
harness does, and prints how often each interval covers the true value.

Each problem gets a true pass rate drawn from ``Beta(p * kappa, (1 - p) * kappa)``
(mean ``p``); its repeats are Bernoulli draws at that rate, so repeats are
correlated within a problem (intra-class correlation ``1 / (kappa + 1)``). The
target of ``pass@1`` is the population mean ``p``; the target of ``pass@k`` is the
population ``1 - E[(1 - rate)^k]``. With one repeat the rewards are Bernoulli(p)
and the interval is Wilson's; pass@k (``k = repeats``) is 0 or 1 per problem, a
Bernoulli trial at the target, and its interval is Wilson's on the problems. For
both the exact coverage of the Wilson interval is printed alongside (column
``wilson``); column ``W`` is the share of runs whose interval was a Wilson one
(``pass@1`` with repeats falls back to it when every problem's mean is 0 or 1).

Usage::

    PYTHONPATH=. python perf/coverage_sim.py --runs 1000
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from pytest_nel.stats import compute_metrics, wilson_interval


@dataclass(frozen=True, slots=True)
class Cell:
    """One simulated setting."""

    n: int
    p: float
    repeats: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the intervals of one metric did over all runs of a cell."""

    metric: str
    target: float
    covered: float
    below: float  # share of runs whose whole interval lies below the target
    above: float
    width: float
    zero_width: float
    wilson_share: float  # share of runs whose interval method was a Wilson one
    runs: int


def pass_k_target(p: float, kappa: float, k: int) -> float:
    """Return the population pass@k, ``1 - E[(1 - rate)^k]`` for a Beta rate."""
    a, b = p * kappa, (1.0 - p) * kappa
    return 1.0 - float(np.prod([(b + j) / (a + b + j) for j in range(k)]))


def exact_wilson_coverage(n: int, p: float, confidence: float) -> float:
    """Return the exact coverage of the Wilson interval for Bernoulli(p), n trials."""
    hits = [
        lower <= p <= upper
        for lower, upper in (wilson_interval(x, n, confidence) for x in range(n + 1))
    ]
    return float(scipy_stats.binom.pmf(np.arange(n + 1), n, p)[hits].sum())


def simulate(cell: Cell, args: argparse.Namespace) -> list[Coverage]:
    """Run ``args.runs`` simulated evaluations of one cell."""
    rng = np.random.default_rng([args.seed, cell.n, round(cell.p * 1000), cell.repeats])
    a, b = cell.p * args.kappa, (1.0 - cell.p) * args.kappa
    targets = {"pass@1": cell.p}
    if cell.repeats > 1:
        targets[f"pass@{cell.repeats}"] = pass_k_target(
            cell.p, args.kappa, cell.repeats
        )
    bounds = {name: np.empty((args.runs, 2)) for name in targets}
    wilson = {name: np.zeros(args.runs, dtype=bool) for name in targets}
    for run in range(args.runs):
        rates = rng.beta(a, b, size=cell.n)
        rewards = rng.random((cell.n, cell.repeats)) < rates[:, None]
        metrics = compute_metrics(
            rewards.astype(float).tolist(),
            binary=True,
            repeats=cell.repeats,
            confidence=args.confidence,
            n_boot=args.n_boot,
            seed=run,
        )
        for name in targets:
            bounds[name][run] = (metrics[name].ci_lower, metrics[name].ci_upper)
            wilson[name][run] = metrics[name].method.startswith("wilson")
    return [
        _summarise(name, targets[name], bounds[name], wilson[name]) for name in targets
    ]


def _summarise(
    metric: str, target: float, bounds: np.ndarray, wilson: np.ndarray
) -> Coverage:
    lower, upper = bounds[:, 0], bounds[:, 1]
    return Coverage(
        metric=metric,
        target=target,
        covered=float(np.mean((lower <= target) & (target <= upper))),
        below=float(np.mean(upper < target)),
        above=float(np.mean(lower > target)),
        width=float(np.mean(upper - lower)),
        zero_width=float(np.mean(upper == lower)),
        wilson_share=float(np.mean(wilson)),
        runs=len(bounds),
    )


HEADER = (
    f"{'n':>5} {'p':>5} {'rep':>3} {'metric':<7} {'target':>6} {'cover':>6} "
    f"{'+-se':>5} {'below':>6} {'above':>6} {'width':>7} {'0-wide':>6} "
    f"{'W':>5} {'wilson':>6} {'sec':>5}"
)


def format_row(cell: Cell, result: Coverage, exact: str, seconds: float) -> str:
    """Return one table row."""
    se = (result.covered * (1 - result.covered) / result.runs) ** 0.5
    return (
        f"{cell.n:>5} {cell.p:>5.2f} {cell.repeats:>3} {result.metric:<7} "
        f"{result.target:>6.3f} {result.covered:>6.3f} {se:>5.3f} "
        f"{result.below:>6.3f} {result.above:>6.3f} {result.width:>7.4f} "
        f"{result.zero_width:>6.3f} {result.wilson_share:>5.2f} {exact:>6} "
        f"{seconds:>5.1f}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4000, help="runs per cell")
    parser.add_argument("--n", type=int, nargs="+", default=[30, 200, 2000])
    parser.add_argument("--p", type=float, nargs="+", default=[0.05, 0.5, 0.95])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--kappa",
        type=float,
        default=2.0,
        help="Beta concentration a + b of per-problem rates (smaller: more "
        "correlated repeats); default 2 (intra-class correlation 1/3)",
    )
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Simulate every cell and print the coverage table."""
    args = parse_args(argv)
    print(
        f"runs/cell={args.runs} kappa={args.kappa} confidence={args.confidence} "
        f"n_boot={args.n_boot} seed={args.seed}"
    )
    print(HEADER)
    started = time.perf_counter()
    for n, p, repeats in itertools.product(args.n, args.p, args.repeats):
        cell = Cell(n, p, repeats)
        cell_start = time.perf_counter()
        results = simulate(cell, args)
        seconds = time.perf_counter() - cell_start
        for result in results:
            exact = "-"
            if repeats == 1 or result.metric != "pass@1":  # Bernoulli per problem
                coverage = exact_wilson_coverage(n, result.target, args.confidence)
                exact = f"{coverage:.3f}"
            print(format_row(cell, result, exact, seconds), flush=True)
    total = time.perf_counter() - started
    per_run = 1000 * total / (args.runs * len(args.n) * len(args.p) * len(args.repeats))
    print(f"total {total:.1f} s ({per_run:.2f} ms per simulated run)")


if __name__ == "__main__":
    main()
