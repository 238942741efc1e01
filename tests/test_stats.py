"""Tests for pytest_nel.stats: intervals, pass@k, the bootstrap and the metric rules."""

from __future__ import annotations

import itertools
import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pytest_nel.stats import (
    BOOTSTRAP_METHOD,
    WILSON_METHOD,
    WILSON_PROBLEMS_METHOD,
    Metric,
    bootstrap_mean_ci,
    category_metrics,
    compute_metrics,
    pass_at_k,
    wilson_interval,
)

# --- Wilson ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n"), [(0, 10), (10, 10), (5, 10), (50, 100), (1, 3), (97, 100)]
)
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_wilson_matches_scipy(successes: int, n: int, confidence: float) -> None:
    expected = scipy_stats.binomtest(successes, n).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    lower, upper = wilson_interval(successes, n, confidence)
    assert lower == pytest.approx(expected.low, abs=1e-12)
    assert upper == pytest.approx(expected.high, abs=1e-12)


def test_wilson_textbook_values() -> None:
    # 5/10 at 95%: (0.2366, 0.7634) in Newcombe (1998), table I.
    lower, upper = wilson_interval(5, 10)
    assert (round(lower, 4), round(upper, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize(
    ("successes", "n", "confidence"),
    [(0, 0, 0.95), (-1, 5, 0.95), (6, 5, 0.95), (1, 5, 1.0), (1, 5, 0.0)],
)
def test_wilson_rejects_bad_input(successes: int, n: int, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, n, confidence)


# --- pass@k ----------------------------------------------------------------------


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (the first c pass) with a pass."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(min(subset) < c for subset in subsets) / len(subsets)


def test_pass_at_k_matches_enumeration() -> None:
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = _brute_pass_at_k(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n() -> None:
    n, c, k = 1000, 3, 500
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(200, 17, 1) == pytest.approx(17 / 200, rel=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_bad_input(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# --- bootstrap -------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(1).random(300)
    first = bootstrap_mean_ci(values, seed=7)
    assert bootstrap_mean_ci(values, seed=7) == first
    assert bootstrap_mean_ci(values, seed=8) != first


@pytest.mark.parametrize("kind", ["continuous", "few_levels"])
def test_bootstrap_se_matches_analytic_se(kind: str) -> None:
    rng = np.random.default_rng(2)
    if kind == "continuous":  # resampled by problem index
        values = rng.random(5000)
    else:  # a few distinct values: resampled by multinomial level counts
        values = rng.binomial(4, 0.3, size=5000) / 4
    lower, upper, se = bootstrap_mean_ci(values, seed=3)
    analytic = values.std(ddof=1) / math.sqrt(values.size)
    assert se == pytest.approx(analytic, rel=0.1)
    assert upper - lower == pytest.approx(2 * 1.96 * analytic, rel=0.1)
    assert lower < values.mean() < upper


def test_bootstrap_interval_stays_in_data_range() -> None:
    values = np.array([0.0] * 9 + [1.0])
    lower, upper, _ = bootstrap_mean_ci(values)
    assert 0.0 <= lower <= 0.1 <= upper <= 1.0


def test_bootstrap_all_equal_is_zero_width() -> None:
    assert bootstrap_mean_ci(np.full(50, 0.25)) == (0.25, 0.25, 0.0)
    assert bootstrap_mean_ci(np.array([0.7])) == (0.7, 0.7, 0.0)


@pytest.mark.parametrize("values", [[], [1.0, float("nan")], [[0.5, 0.5]]])
def test_bootstrap_rejects_bad_values(values: list[float]) -> None:
    with pytest.raises(ValueError):
        bootstrap_mean_ci(np.array(values))


def test_bootstrap_memory_is_bounded_for_many_problems() -> None:
    values = np.random.default_rng(4).random(100_000)
    tracemalloc.start()
    try:
        bootstrap_mean_ci(values, n_boot=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


# --- compute_metrics -------------------------------------------------------------


def test_empty_input_gives_no_metric() -> None:
    assert compute_metrics([], binary=True, repeats=1) == {}
    assert compute_metrics([[], []], binary=False, repeats=3) == {}


def test_binary_rewards_are_validated() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        compute_metrics([[1.0], [0.5]], binary=True, repeats=1)
    assert "mean_reward" in compute_metrics([[1.0], [0.5]], binary=False, repeats=1)


@pytest.mark.parametrize(
    ("rewards", "repeats"), [([[1.0, 0.0]], 1), ([[float("nan")]], 1), ([[1.0]], 0)]
)
def test_inconsistent_input_is_rejected(
    rewards: list[list[float]], repeats: int
) -> None:
    with pytest.raises(ValueError):
        compute_metrics(rewards, binary=False, repeats=repeats)


def test_binary_single_repeat_uses_wilson() -> None:
    rewards = [[1.0]] * 30 + [[0.0]] * 70 + [[]] * 5
    metric = compute_metrics(rewards, binary=True, repeats=1)["pass@1"]
    assert metric.method == WILSON_METHOD
    assert metric.n == 100
    assert metric.value == pytest.approx(0.3)
    assert (metric.ci_lower, metric.ci_upper) == wilson_interval(30, 100)
    assert metric.se == pytest.approx(math.sqrt(0.3 * 0.7 / 100))


def test_ragged_repeats_average_within_problem() -> None:
    rewards = [[1.0, 1.0, 0.0, 0.0], [1.0], [0.0, 0.0, 1.0], [], [1.0, 1.0, 1.0, 1.0]]
    metrics = compute_metrics(rewards, binary=True, repeats=4, seed=5)
    means = np.array([0.5, 1.0, 1 / 3, 1.0])
    pass1 = metrics["pass@1"]
    assert pass1.n == 4
    assert pass1.value == pytest.approx(means.mean())
    assert pass1.method == BOOTSTRAP_METHOD
    lower, upper, se = bootstrap_mean_ci(means, seed=5)
    assert (pass1.ci_lower, pass1.ci_upper, pass1.se) == (lower, upper, se)


def test_pass_at_k_uses_only_problems_with_k_samples() -> None:
    rewards = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0], [1.0], [0.0, 1.0, 1.0]]
    metrics = compute_metrics(rewards, binary=True, repeats=3)
    assert metrics["pass@1"].n == 5
    pass3 = metrics["pass@3"]
    assert pass3.n == 3
    assert pass3.value == pytest.approx(2 / 3)
    assert (pass3.ci_lower, pass3.ci_upper) == wilson_interval(2, 3)


def test_pass_at_k_with_fewer_samples_than_k() -> None:
    metrics = compute_metrics([[1.0, 0.0], [1.0]], binary=True, repeats=5)
    assert set(metrics) == {"pass@1"}


def test_pass_at_k_averages_the_unbiased_estimator() -> None:
    rng = np.random.default_rng(6)
    rewards = rng.integers(0, 2, size=(40, 6)).astype(float).tolist()
    rewards[0] = rewards[0][:5]  # left out of pass@6
    metric = compute_metrics(rewards, binary=True, repeats=6)["pass@6"]
    expected = np.mean([pass_at_k(6, int(sum(row)), 6) for row in rewards[1:]])
    assert metric.n == 39
    assert metric.value == pytest.approx(expected)


def test_all_ones_use_wilson_on_problems() -> None:
    metrics = compute_metrics([[1.0, 1.0, 1.0, 1.0]] * 30, binary=True, repeats=4)
    assert set(metrics) == {"pass@1", "pass@4"}
    lower, upper = wilson_interval(30, 30)
    assert lower == pytest.approx(0.8865, abs=1e-4)  # not the bootstrap's [1, 1]
    for metric in metrics.values():
        assert metric.method == WILSON_PROBLEMS_METHOD
        assert (metric.value, metric.ci_lower, metric.ci_upper) == (1.0, lower, 1.0)
        assert (metric.se, metric.n) == (0.0, 30)


def test_all_zeros_use_wilson_on_problems() -> None:
    metrics = compute_metrics([[0.0, 0.0, 0.0, 0.0]] * 30, binary=True, repeats=4)
    _, upper = wilson_interval(0, 30)
    assert upper == pytest.approx(0.1135, abs=1e-4)
    for metric in metrics.values():
        assert metric.method == WILSON_PROBLEMS_METHOD
        assert (metric.value, metric.ci_lower, metric.ci_upper) == (0.0, 0.0, upper)
        assert metric.ci_lower < metric.ci_upper


def test_pass_at_k_all_ones_with_mixed_repeats() -> None:
    # Every problem passes at least once, so pass@3 is 1 on every problem while
    # pass@1 is not degenerate and keeps the bootstrap.
    rewards = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]] * 10 + [[0.0]]
    metrics = compute_metrics(rewards, binary=True, repeats=3)
    pass3 = metrics["pass@3"]
    assert pass3.method == WILSON_PROBLEMS_METHOD
    assert pass3.n == 30
    assert (pass3.value, pass3.ci_upper) == (1.0, 1.0)
    assert pass3.ci_lower == wilson_interval(30, 30)[0]
    assert metrics["pass@1"].method == BOOTSTRAP_METHOD
    assert metrics["pass@1"].n == 31


def test_pass_at_k_is_wilson_on_problems() -> None:
    # With k = repeats a problem's pass@k is 0 or 1: a binomial count of problems.
    rng = np.random.default_rng(10)
    rewards = rng.integers(0, 2, size=(50, 3)).astype(float).tolist()
    metric = compute_metrics(rewards, binary=True, repeats=3)["pass@3"]
    passed = sum(any(row) for row in rewards)
    assert 0 < passed < 50
    assert metric.method == WILSON_PROBLEMS_METHOD
    assert metric.value == pytest.approx(passed / 50)
    assert (metric.ci_lower, metric.ci_upper) == wilson_interval(passed, 50)
    assert metric.se == pytest.approx(math.sqrt(metric.value * (1 - metric.value) / 50))


def test_pass_at_1_with_agreeing_repeats_uses_wilson_on_problems() -> None:
    rewards = [[1.0, 1.0]] * 12 + [[0.0, 0.0]] * 8 + [[1.0]]
    metric = compute_metrics(rewards, binary=True, repeats=2)["pass@1"]
    assert metric.method == WILSON_PROBLEMS_METHOD
    assert (metric.ci_lower, metric.ci_upper) == wilson_interval(13, 21)
    assert metric.value == pytest.approx(13 / 21)


def test_continuous_all_equal_rewards_keep_the_bootstrap() -> None:
    metric = compute_metrics([[1.0]] * 10, binary=False, repeats=1)["mean_reward"]
    assert metric.method == BOOTSTRAP_METHOD
    assert (metric.ci_lower, metric.ci_upper) == (1.0, 1.0)


def test_continuous_rewards_single_repeat_use_bootstrap() -> None:
    rewards = [[x] for x in np.random.default_rng(7).random(50)]
    metric = compute_metrics(rewards, binary=False, repeats=1)["mean_reward"]
    assert metric.method == BOOTSTRAP_METHOD
    assert 0.0 <= metric.ci_lower < metric.value < metric.ci_upper <= 1.0
    assert not any(math.isnan(v) for v in (metric.value, metric.se))


def test_rewards_outside_unit_range_are_not_clipped() -> None:
    metric = compute_metrics([[3.0], [4.0], [5.0]], binary=False, repeats=1)
    assert metric["mean_reward"].ci_upper > 1.0


def test_metric_to_dict() -> None:
    metric = Metric(0.5, 0.4, 0.6, 0.05, WILSON_METHOD, 100)
    assert metric.to_dict() == {
        "value": 0.5,
        "ci_lower": 0.4,
        "ci_upper": 0.6,
        "se": 0.05,
        "method": "wilson",
        "n": 100,
    }


def test_category_metrics_do_not_depend_on_order_or_siblings() -> None:
    rng = np.random.default_rng(8)
    data = {
        name: rng.integers(0, 2, size=(30, 3)).astype(float).tolist()
        for name in ("algebra", "geometry", "number_theory")
    }
    forward = category_metrics(data, binary=True, repeats=3, seed=1)
    backward = category_metrics(
        dict(reversed(data.items())), binary=True, repeats=3, seed=1
    )
    alone = category_metrics(
        {"geometry": data["geometry"]}, binary=True, repeats=3, seed=1
    )
    assert forward == backward
    assert alone["geometry"] == forward["geometry"]
    assert forward["algebra"]["pass@1"].n == 30


# --- coverage, checked by simulation --------------------------------------------


@pytest.mark.parametrize("repeats", [1, 4])
def test_coverage_n200_p05(repeats: int) -> None:
    rng = np.random.default_rng(9)
    runs, n, p = 500, 200, 0.5
    covered = 0
    for run in range(runs):
        rates = rng.beta(1.0, 1.0, size=n)  # mean p, repeats correlated in a problem
        rewards = (rng.random((n, repeats)) < rates[:, None]).astype(float)
        metric = compute_metrics(
            rewards.tolist(), binary=True, repeats=repeats, seed=run
        )["pass@1"]
        covered += metric.ci_lower <= p <= metric.ci_upper
    assert 0.88 <= covered / runs <= 0.99


@pytest.mark.parametrize(("n", "runs"), [(30, 400), (200, 200)])
def test_coverage_pass_at_k_near_one(n: int, runs: int) -> None:
    # True pass@4 = 0.994: every problem passes at least once in most runs, where
    # the bootstrap gave [1, 1] and covered 0.17 (n = 30) and 0.69 (n = 200).
    rng = np.random.default_rng(11)
    p, kappa, repeats = 0.95, 2.0, 4
    a, b = p * kappa, (1 - p) * kappa
    target = 1 - math.prod((b + j) / (a + b + j) for j in range(repeats))
    covered = 0
    for run in range(runs):
        rates = rng.beta(a, b, size=n)
        rewards = (rng.random((n, repeats)) < rates[:, None]).astype(float)
        metric = compute_metrics(
            rewards.tolist(), binary=True, repeats=repeats, seed=run
        )["pass@4"]
        covered += metric.ci_lower <= target <= metric.ci_upper
    assert covered / runs >= 0.93
