"""Paired statistics: pairing, the interval, McNemar, planning, and coverage."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import stats

from pytest_nel.paired import (
    FLOOR_METHOD,
    T_METHOD,
    mcnemar_exact,
    mean_difference,
    pair_samples,
    problems_needed,
    repeats_needed,
)
from pytest_nel.runs import Samples

PERF = Path(__file__).resolve().parent.parent / "perf"


def samples(rows: list[tuple[int, int, float | None]]) -> Samples:
    idx = np.array([r[0] for r in rows], dtype=np.int64)
    rep = np.array([r[1] for r in rows], dtype=np.int64)
    reward = np.array([np.nan if r[2] is None else r[2] for r in rows])
    return Samples(idx, rep, reward, np.isnan(reward))


def test_pairing_by_problem_and_repeat_drops_errors_and_one_sided() -> None:
    base = samples([(0, 0, 1), (0, 1, 0), (1, 0, 1), (1, 1, None), (2, 0, 1)])
    cand = samples([(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 1), (3, 0, 1)])
    p = pair_samples(base, cand)
    assert p.problem_idx.tolist() == [0, 1]
    assert p.baseline.tolist() == [0.5, 1.0] and p.candidate.tolist() == [0.0, 1.0]
    assert p.counts.tolist() == [2, 1]
    assert (p.baseline_only, p.candidate_only, p.dropped_errors) == (1, 1, 1)
    assert p.within_var == pytest.approx(0.5)  # problem 0: diffs -1, 0
    pass_at_2 = pair_samples(base, cand, metric_k=2)
    assert pass_at_2.problem_idx.tolist() == [0]  # problem 1 has 1 paired repeat
    assert pass_at_2.baseline.tolist() == [1.0] and pass_at_2.candidate.tolist() == [0]


def test_mcnemar_exact_matches_scipy_binomtest() -> None:
    for b, c in [(0, 0), (0, 5), (3, 9), (10, 10), (45, 66), (200, 170)]:
        expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_interval_is_the_t_interval_with_a_floor_when_nothing_changed() -> None:
    rng = np.random.default_rng(1)
    base = samples([(i, 0, float(rng.random() < 0.6)) for i in range(100)])
    cand = samples([(i, 0, float(rng.random() < 0.5)) for i in range(100)])
    p = pair_samples(base, cand)
    d = mean_difference(p)
    diffs = p.diffs
    half = stats.t.ppf(0.975, 99) * diffs.std(ddof=1) / 10
    assert d.method == T_METHOD
    assert (d.ci_lower, d.ci_upper) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )
    assert d.mde == pytest.approx((stats.t.ppf(0.975, 99) + 0.8416212) * d.se)
    same = mean_difference(pair_samples(base, base))
    z2 = 1.959964**2
    assert same.method == FLOOR_METHOD and same.diff == 0.0
    assert same.ci_upper == pytest.approx(z2 / (100 + z2), rel=1e-5)


def test_planning_numbers() -> None:
    assert problems_needed(0.5, 0.05) == math.ceil((2.8015852 * 0.5 / 0.05) ** 2)
    assert problems_needed(0.5, 0.0) is None
    # Within-problem noise dominates: more repeats help.
    r = repeats_needed(sd=0.3, within_var=0.32, repeats=4, n=200, margin=0.05)
    assert r is not None and r > 4
    # Between-problem spread alone is too large: repeats cannot get there.
    assert repeats_needed(0.9, 0.04, 4, 30, 0.05) is None
    assert repeats_needed(0.3, None, 1, 200, 0.05) is None


def _compare_sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compare_sim", PERF / "compare_sim.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("n", "p", "repeats", "shrink"),
    [(200, 0.5, 1, 0.0), (200, 0.5, 4, 0.1), (200, 0.05, 1, 0.1), (30, 0.95, 4, 0.0)],
)
def test_coverage_and_false_no_go_by_simulation(
    n: int, p: float, repeats: int, shrink: float
) -> None:
    """A few cells of perf/compare_sim.py (seeded; tolerances are over 4 sigma wide)."""
    sim = _compare_sim()
    out = sim.simulate(sim.Cell(n, p, repeats, shrink), 1000, 2.0, 7)
    assert 0.92 <= out.covered <= 0.99
    if shrink == 0.0:
        assert out.nogo_0 <= 0.05 and out.nogo_01 <= 0.05
