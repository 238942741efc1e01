"""Empirical coverage of the paired interval of `nel compare`; false NO-GO rate.

For each cell (problems ``n`` x baseline rate ``p`` x repeats) many pairs of runs
are simulated. Each problem has a true pass rate drawn from
``Beta(p * kappa, (1 - p) * kappa)`` (repeats correlated within a problem, as in
``perf/coverage_sim.py``). The baseline's repeats are Bernoulli draws at that rate;
the candidate's, independent of them, at the same rate ("no change") or at
``(1 - s) * rate`` ("drop", s = ``--shrink``, so the true difference is
``-s * p``). The interval is :func:`pytest_nel.paired.mean_difference`, exactly
as ``nel compare`` and ``nel gate`` compute it.

Columns: ``cover`` share of intervals containing the true difference (``+-se``
its simulation error), ``below``/``above`` misses on each side, ``width`` mean
width, ``floor`` share of runs where no problem changed and the Wilson floor
gave the width, ``sig`` share of runs with a significant difference (the interval
excludes 0: at no change this is the false WARN/BLOCK rate of ``nel compare``,
two-sided), ``NOGO@0`` / ``NOGO@.01`` share of runs where the gate says BREACH
(NO-GO for a critical benchmark) with ``max_drop`` 0 or 0.01 (at no change: the
false NO-GO rate per benchmark, which must stay at most 5%).

Usage::

    PYTHONPATH=. python perf/compare_sim.py --runs 4000     # thorough (~2 min)
    PYTHONPATH=. python perf/compare_sim.py --runs 300      # quick look
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_nel.gate import threshold_status
from pytest_nel.paired import FLOOR_METHOD, Pairing, mean_difference


@dataclass(frozen=True, slots=True)
class Cell:
    """One simulated setting."""

    n: int
    p: float
    repeats: int
    shrink: float  # 0: no change; s: candidate rate (1 - s) * rate


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the intervals and the gate did over all runs of a cell."""

    target: float
    covered: float
    below: float
    above: float
    width: float
    floor: float
    significant: float
    nogo_0: float
    nogo_01: float
    runs: int


def pairing(baseline: np.ndarray, candidate: np.ndarray) -> Pairing:
    """A :class:`Pairing` of per-problem means (every problem fully paired)."""
    n = baseline.shape[0]
    zeros = np.zeros(n, dtype=np.int64)
    counts = np.full(n, 1, dtype=np.int64)
    return Pairing(
        np.arange(n), baseline, candidate, counts, None, zeros, zeros, 0, 0, 0
    )


def simulate(cell: Cell, runs: int, kappa: float, seed: int) -> Outcome:
    """Simulate ``runs`` baseline/candidate pairs of one cell."""
    rng = np.random.default_rng(
        [seed, cell.n, round(cell.p * 1000), cell.repeats, round(cell.shrink * 1000)]
    )
    a, b = cell.p * kappa, (1.0 - cell.p) * kappa
    target = 0.0 - cell.shrink * cell.p
    bounds = np.empty((runs, 2))
    floor = np.zeros(runs, dtype=bool)
    for run in range(runs):
        rates = rng.beta(a, b, size=cell.n)
        shape = (cell.n, cell.repeats)
        base = (rng.random(shape) < rates[:, None]).mean(axis=1)
        cand = (rng.random(shape) < ((1 - cell.shrink) * rates)[:, None]).mean(axis=1)
        diff = mean_difference(pairing(base, cand))
        bounds[run] = diff.ci_lower, diff.ci_upper
        floor[run] = diff.method == FLOOR_METHOD
    lower, upper = bounds[:, 0], bounds[:, 1]
    # Gate on the drop = -difference: its interval is [-upper, -lower].
    nogo = {
        t: np.mean([threshold_status(-u, -lo, t) == "BREACH" for lo, u in bounds])
        for t in (0.0, 0.01)
    }
    return Outcome(
        target=target,
        covered=float(np.mean((lower <= target) & (target <= upper))),
        below=float(np.mean(upper < target)),
        above=float(np.mean(lower > target)),
        width=float(np.mean(upper - lower)),
        floor=float(np.mean(floor)),
        significant=float(np.mean((lower > 0) | (upper < 0))),
        nogo_0=float(nogo[0.0]),
        nogo_01=float(nogo[0.01]),
        runs=runs,
    )


HEADER = (
    f"{'n':>5} {'p':>5} {'rep':>3} {'change':>8} {'target':>7} {'cover':>6} "
    f"{'+-se':>5} {'below':>6} {'above':>6} {'width':>7} {'floor':>6} {'sig':>6} "
    f"{'NOGO@0':>7} {'NOGO@.01':>8} {'sec':>5}"
)


def format_row(cell: Cell, out: Outcome, seconds: float) -> str:
    """One table row."""
    se = (out.covered * (1 - out.covered) / out.runs) ** 0.5
    change = "none" if cell.shrink == 0 else f"-{cell.shrink:.0%}"
    return (
        f"{cell.n:>5} {cell.p:>5.2f} {cell.repeats:>3} {change:>8} "
        f"{out.target:>7.4f} {out.covered:>6.3f} {se:>5.3f} {out.below:>6.3f} "
        f"{out.above:>6.3f} {out.width:>7.4f} {out.floor:>6.3f} "
        f"{out.significant:>6.3f} {out.nogo_0:>7.3f} {out.nogo_01:>8.3f} "
        f"{seconds:>5.1f}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4000, help="runs per cell")
    parser.add_argument("--n", type=int, nargs="+", default=[30, 200, 2000])
    parser.add_argument("--p", type=float, nargs="+", default=[0.05, 0.5, 0.95])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--shrink",
        type=float,
        nargs="+",
        default=[0.0, 0.1],
        help="relative drop of the candidate's rates (0 = no change)",
    )
    parser.add_argument("--kappa", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Simulate every cell and print the table."""
    args = parse_args(argv)
    print(f"runs/cell={args.runs} kappa={args.kappa} seed={args.seed}")
    print(HEADER)
    started = time.perf_counter()
    cells = itertools.product(args.n, args.p, args.repeats, args.shrink)
    worst_nogo = 0.0
    for n, p, repeats, shrink in cells:
        cell = Cell(n, p, repeats, shrink)
        start = time.perf_counter()
        out = simulate(cell, args.runs, args.kappa, args.seed)
        if shrink == 0:
            worst_nogo = max(worst_nogo, out.nogo_0, out.nogo_01)
        print(format_row(cell, out, time.perf_counter() - start), flush=True)
    print(f"worst false NO-GO rate at no change: {worst_nogo:.3f} (limit 0.05)")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
