"""Headline metrics with confidence intervals, computed from per-problem rewards.

Pure numpy functions: no pytest, no I/O, seeded and deterministic. The rules follow
the statistics contract in the design:

* Binary rewards (declared by the benchmark, never guessed from the data) with one
  repeat give ``pass@1`` with a Wilson score interval.
* Binary rewards with ``repeats > 1`` give ``pass@1`` (the mean over problems of each
  problem's mean) with a bootstrap over problems: a resample draws problems with
  replacement and keeps each problem's own repeats, so the correlation of repeats
  inside a problem widens the interval as it should.
* They also give ``pass@k`` for ``k = repeats`` (the unbiased estimator per
  problem). A problem counts only with all ``k`` samples scored, and then its
  estimate is exactly 1 (some sample passed) or 0: pass@k is a binomial proportion
  over problems, so it gets the Wilson interval on the problems
  (``"wilson_problems"``: successes = problems that passed, n = problems).
* More generally, whenever every per-problem value of a binary benchmark's metric is
  0 or 1 (for ``pass@1`` with repeats: every problem passed all its samples or
  failed all of them, e.g. all problems fail) the metric gets that Wilson interval
  on the problems instead of the bootstrap.
* Continuous rewards give ``mean_reward`` with the same bootstrap over problems.

Which bootstrap interval, and why: the *expanded BCa* interval. It is the BCa
interval (bias-corrected and accelerated, Efron 1987) evaluated at the
small-sample-expanded level of Hesterberg's "expanded percentile" interval
(Hesterberg 2015, *What teachers should know about the bootstrap*): the normal
quantile ``z`` is replaced by ``sqrt(n / (n - 1)) * t_{n-1}``. The plain percentile
interval is too narrow at small ``n`` for two reasons: the bootstrap spread uses the
``1/n`` variance (narrowness bias) and ``z`` ignores that the spread is estimated;
the expansion corrects both. BCa corrects the skewness that rates near 0 or 1 give
the per-problem means; for the mean its acceleration has a closed jackknife form,
so it costs nothing. Both parts keep the interval inside the range of the data
(rates stay in [0, 1]) and invariant to monotone transformations. Bootstrap-t was
also simulated: it covers slightly better at the extremes but gives unusable
widths there (0.57 wide on average for ``p = 0.05``, 30 problems, 4 repeats, where
expanded BCa is 0.12 wide and covers 0.94 against 0.88 for the plain percentile
interval).

Why Wilson on the problems where the values are all 0 or 1: such values are
independent Bernoulli trials, one per problem, which is what Wilson's interval is
for; the bootstrap of them is a percentile interval for a binomial proportion, and
where every problem scores the same it has nothing to resample and gives a
zero-width interval such as ``[1, 1]``. Simulated (``kappa = 2``, 4 repeats, 1000
runs a cell; true pass@4 = 0.994, where every problem passes at least once in 83%
of runs of 30 problems), the bootstrap's pass@4 interval covered 0.17 with 30
problems, 0.69 with 200 and 0.94 with 2000; Wilson's on the problems covers 0.98,
0.97 and 0.93 (exactly: 0.986, 0.967 and 0.944), and is narrower elsewhere (pass@4
= 0.8, 30 problems: 0.27 wide covering 0.96, against 0.30 covering 0.98). Falling
back to Wilson only where the bootstrap is degenerate covered 0.997 and 0.993 in
the first two cells, wider than needed. For ``pass@1`` with repeats, a Wilson-style
floor under the bootstrap interval (its hull with the Wilson interval on the
pooled samples, or on the effective number of problems from the design effect) was
simulated too, also with ``kappa = 0.3`` and 50, and moved no coverage by more than
the simulation's noise beyond what the fallback for all-0/1 values already gives
(30 problems, 4 repeats, p = 0.05: 0.925 to 0.942; p = 0.95: 0.921 to 0.946), so
there is none. ``se`` of a Wilson metric is the plug-in ``sqrt(p (1 - p) / n)``, 0
when all problems agree.

``perf/coverage_sim.py`` prints the measured coverage, and the exact coverage of
the Wilson intervals. Bootstrap intervals of continuous rewards that are all equal
still have zero width: such rewards are not a count and nothing bounds them.

Resampling is vectorised in blocks of rows so memory stays bounded whatever the
number of problems: when the values take few distinct levels (binary rewards with a
handful of repeats) a resample is a multinomial draw of level counts, otherwise a
block of random problem indices. Both sample the same bootstrap distribution.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BOOTSTRAP_METHOD",
    "WILSON_METHOD",
    "WILSON_PROBLEMS_METHOD",
    "Metric",
    "bootstrap_mean_ci",
    "category_metrics",
    "compute_metrics",
    "pass_at_k",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WILSON_METHOD = "wilson"
WILSON_PROBLEMS_METHOD = "wilson_problems"
BOOTSTRAP_METHOD = "bootstrap_bca_expanded"

# Elements per resampling block: an int32 index block (2 MiB) plus the gathered
# float64 values (4 MiB) stay well under 64 MiB for any number of problems; blocks
# this size also measured faster than larger ones (they stay in cache).
_BLOCK_ELEMENTS = 1 << 19
# A multinomial draw costs about 16 index draws per level; use it when cheaper.
_LEVEL_COST = 16
_MAX_LEVELS = 1024


@dataclass(frozen=True, slots=True)
class Metric:
    """One headline metric with its confidence interval.

    Attributes:
        value: The point estimate.
        ci_lower: Lower bound of the confidence interval.
        ci_upper: Upper bound of the confidence interval.
        se: Standard error of the estimate.
        method: Name of the interval method: ``"wilson"`` (one repeat: Wilson
            on the samples), ``"wilson_problems"`` (Wilson on the problems, for
            a binary benchmark's metric whose per-problem values are all 0 or 1,
            which pass@k always is) or ``"bootstrap_bca_expanded"``.
        n: Number of problems the metric is computed over.
    """

    value: float
    ci_lower: float
    ci_upper: float
    se: float
    method: str
    n: int

    def to_dict(self) -> dict[str, float | int | str]:
        """Return the metric as the ``summary.json`` mapping."""
        return {
            "value": self.value,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "se": self.se,
            "method": self.method,
            "n": self.n,
        }


def wilson_interval(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Return the Wilson score interval for a binomial proportion.

    Args:
        successes: Number of successes, ``0 <= successes <= n``.
        n: Number of trials, at least 1.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(lower, upper)``; exactly 0 (resp. 1) when there are no successes
        (resp. failures).

    Raises:
        ValueError: If the counts or the confidence level are out of range.
    """
    _check_confidence(confidence)
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    z2 = z * z
    center = (successes + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(successes * (n - successes) / n + z2 / 4)
    lower = 0.0 if successes == 0 else max(0.0, center - half)
    upper = 1.0 if successes == n else min(1.0, center + half)
    return lower, upper


def pass_at_k(n: int, c: int, k: int) -> float:
    """Return the unbiased pass@k estimate ``1 - C(n - c, k) / C(n, k)``.

    Computed as ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)``, which never forms the
    large binomial coefficients.

    Args:
        n: Number of scored samples of the problem.
        c: Number of those samples that passed.
        k: Budget of attempts, ``1 <= k <= n``.

    Returns:
        The probability that at least one of ``k`` samples drawn without
        replacement from the ``n`` passes.

    Raises:
        ValueError: If not ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bootstrap_mean_ci(
    values: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Return an expanded BCa bootstrap interval for the mean of ``values``.

    Each value is one problem's score; a resample draws problems with
    replacement. See the module docstring for the choice of interval. The
    interval contains the sample mean and lies inside ``[min(values),
    max(values)]``; all-equal values give a zero-width interval with se 0.

    Args:
        values: One finite value per problem (1-D, non-empty).
        confidence: Two-sided confidence level in (0, 1).
        n_boot: Number of bootstrap resamples, at least 2.
        seed: Seed of the resampling; equal seeds give equal results.

    Returns:
        ``(lower, upper, se)``, where ``se`` is the standard deviation of the
        bootstrap means.

    Raises:
        ValueError: If ``values`` is empty, not 1-D or not finite, or an option
            is out of range.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("values must be a non-empty 1-D array of finite numbers")
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    return _bootstrap_ci(x, confidence, n_boot, np.random.default_rng(seed))


def compute_metrics(
    rewards: Sequence[Sequence[float]],
    *,
    binary: bool,
    repeats: int,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Metric]:
    """Return the headline metrics of one benchmark with confidence intervals.

    Args:
        rewards: One sequence of rewards per problem, errored samples already
            removed (so a problem may have fewer than ``repeats``); problems with
            no reward are dropped.
        binary: Whether the benchmark declares binary rewards (every reward must
            then be 0 or 1).
        repeats: Samples drawn per problem; ``pass@k`` uses ``k = repeats``.
        confidence: Two-sided confidence level in (0, 1).
        n_boot: Number of bootstrap resamples, at least 2.
        seed: Seed of the bootstrap.

    Returns:
        ``{"pass@1": ...}`` (Wilson) for binary rewards and one repeat;
        ``{"pass@1": ..., "pass@k": ...}`` for binary rewards and more repeats,
        where pass@k uses only problems with at least ``k`` scored samples and is
        absent when there are none. pass@1 uses the bootstrap over problems, and
        the Wilson interval on the problems (``"wilson_problems"``) when every
        problem's mean is 0 or 1 (all problems failed everything, say); pass@k,
        whose per-problem values are then always 0 or 1, uses the Wilson interval
        on the problems. ``{"mean_reward": ...}`` (bootstrap) for continuous
        rewards; ``{}`` when no problem has a reward.

    Raises:
        ValueError: If a reward is not finite, a binary reward is not 0 or 1, a
            problem has more than ``repeats`` rewards, or an option is out of range.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    flat, counts = _flatten(rewards, repeats)
    if counts.size == 0:
        return {}
    if binary and not np.all((flat == 0.0) | (flat == 1.0)):
        bad = flat[(flat != 0.0) & (flat != 1.0)][0]
        raise ValueError(f"binary rewards must be 0 or 1, got {bad!r}")
    unit = bool(flat.min() >= 0.0 and flat.max() <= 1.0)
    sums = np.add.reduceat(flat, np.cumsum(counts) - counts)
    means = sums / counts
    if not binary:
        return {"mean_reward": _bootstrap_metric(means, unit, confidence, n_boot, seed)}
    if repeats == 1:
        successes = int(round(float(sums.sum())))
        return {"pass@1": _wilson_metric(successes, counts.size, confidence)}
    metrics = {"pass@1": _binary_metric(means, confidence, n_boot, seed)}
    scores = _pass_at_k_per_problem(counts, np.rint(sums).astype(np.int64), repeats)
    if scores.size:
        metrics[f"pass@{repeats}"] = _binary_metric(
            scores, confidence, n_boot, [seed, repeats]
        )
    return metrics


def category_metrics(
    rewards_by_category: Mapping[str, Sequence[Sequence[float]]],
    *,
    binary: bool,
    repeats: int,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Metric]]:
    """Return :func:`compute_metrics` for each category.

    Each category's seed is derived from ``seed`` and the category's name, so a
    category's metrics do not depend on which other categories exist or on the
    order of the mapping.

    Args:
        rewards_by_category: Per-problem rewards (as for :func:`compute_metrics`)
            keyed by category name.
        binary: As for :func:`compute_metrics`.
        repeats: As for :func:`compute_metrics`.
        confidence: As for :func:`compute_metrics`.
        n_boot: As for :func:`compute_metrics`.
        seed: Base seed; combined with each category's name.

    Returns:
        ``{category: metrics}``, sorted by category name; a category whose
        problems have no rewards maps to ``{}``.
    """
    return {
        name: compute_metrics(
            rewards_by_category[name],
            binary=binary,
            repeats=repeats,
            confidence=confidence,
            n_boot=n_boot,
            seed=_category_seed(seed, name),
        )
        for name in sorted(rewards_by_category)
    }


def _category_seed(seed: int, name: str) -> int:
    """Return a seed that depends only on ``seed`` and ``name`` (not on hash salt)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])
    return int(sequence.generate_state(1)[0])


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_n_boot(n_boot: int) -> None:
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")


def _flatten(
    rewards: Sequence[Sequence[float]], repeats: int
) -> tuple[FloatArray, IntArray]:
    """Return all rewards in one array and the count per non-empty problem."""
    counts = np.fromiter((len(row) for row in rewards), dtype=np.int64)
    total = int(counts.sum())
    flat = np.fromiter(
        itertools.chain.from_iterable(rewards), dtype=np.float64, count=total
    )
    if not np.all(np.isfinite(flat)):
        raise ValueError("rewards must be finite numbers")
    if counts.size and int(counts.max()) > repeats:
        raise ValueError(
            f"a problem has {int(counts.max())} rewards but repeats is {repeats}"
        )
    return flat, counts[counts > 0]


def _pass_at_k_per_problem(counts: IntArray, passed: IntArray, k: int) -> FloatArray:
    """Return pass@k of every problem with at least ``k`` scored samples."""
    keep = counts >= k
    pairs, inverse = np.unique(
        np.stack([counts[keep], passed[keep]], axis=1), axis=0, return_inverse=True
    )
    table = np.array([pass_at_k(int(n), int(c), k) for n, c in pairs], dtype=float)
    return table[inverse.reshape(-1)]


def _wilson_metric(
    successes: int, n: int, confidence: float, method: str = WILSON_METHOD
) -> Metric:
    p = successes / n
    lower, upper = wilson_interval(successes, n, confidence)
    se = math.sqrt(p * (1.0 - p) / n)
    return Metric(p, lower, upper, se, method, n)


def _binary_metric(
    values: FloatArray, confidence: float, n_boot: int, seed: int | list[int]
) -> Metric:
    """Return the metric of a binary benchmark from its per-problem values in [0, 1].

    Values that are all 0 or 1 are Bernoulli trials over the problems and get the
    Wilson interval on the problems; other values get the bootstrap.
    """
    passed = values == 1.0
    if np.all(passed | (values == 0.0)):
        successes = int(np.count_nonzero(passed))
        return _wilson_metric(
            successes, values.size, confidence, WILSON_PROBLEMS_METHOD
        )
    return _bootstrap_metric(values, True, confidence, n_boot, seed)


def _bootstrap_metric(
    values: FloatArray,
    unit: bool,
    confidence: float,
    n_boot: int,
    seed: int | list[int],
) -> Metric:
    rng = np.random.default_rng(seed)
    lower, upper, se = _bootstrap_ci(values, confidence, n_boot, rng)
    value = float(values.mean())
    if unit:
        value = min(max(value, 0.0), 1.0)
        lower, upper = max(lower, 0.0), min(upper, 1.0)
    return Metric(value, lower, upper, se, BOOTSTRAP_METHOD, int(values.size))


def _bootstrap_ci(
    x: FloatArray, confidence: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Return ``(lower, upper, se)`` of the expanded BCa interval for the mean."""
    mean = float(x.mean())
    low, high = float(x.min()), float(x.max())
    if low == high:
        return mean, mean, 0.0
    means = _resample_means(x, n_boot, rng)
    levels = _bca_levels(x, means, mean, confidence)
    q_low, q_high = np.quantile(means, levels)
    lower = min(max(float(q_low), low), mean)
    upper = max(min(float(q_high), high), mean)
    return lower, upper, float(means.std(ddof=1))


_NORMAL = NormalDist()


@lru_cache(maxsize=256)
def _t_quantile(df: int, q: float) -> float:
    """Student's t quantile; scipy is imported only here (it costs ~0.2 s to import)."""
    from scipy import special

    return float(special.stdtrit(df, q))


def _bca_levels(
    x: FloatArray, means: FloatArray, mean: float, confidence: float
) -> list[float]:
    """Return the quantile levels of the expanded BCa interval."""
    n = x.size
    z = math.sqrt(n / (n - 1)) * _t_quantile(n - 1, 0.5 + confidence / 2)
    tolerance = 1e-12 * max(1.0, abs(mean))
    below = np.count_nonzero(means < mean - tolerance)
    ties = np.count_nonzero(np.abs(means - mean) <= tolerance)
    share = (below + 0.5 * ties) / means.size
    half_step = 0.5 / means.size
    bias = _NORMAL.inv_cdf(min(max(share, half_step), 1.0 - half_step))
    deviations = x - mean
    acceleration = float(np.sum(deviations**3) / (6.0 * np.sum(deviations**2) ** 1.5))
    return [_bca_level(bias, acceleration, -z), _bca_level(bias, acceleration, z)]


def _bca_level(bias: float, acceleration: float, z: float) -> float:
    """Return the BCa-adjusted quantile level for the normal quantile ``z``."""
    denominator = 1.0 - acceleration * (bias + z)
    if denominator <= 0.0:
        # The adjustment diverges towards the tail on the side of z.
        return 1.0 if z > 0 else 0.0
    return _NORMAL.cdf(bias + (bias + z) / denominator)


def _resample_means(x: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """Return ``n_boot`` means of resamples of ``x`` (problems with replacement)."""
    levels, counts = np.unique(x, return_counts=True)
    if levels.size <= _MAX_LEVELS and levels.size * _LEVEL_COST <= x.size:
        return _multinomial_means(levels, counts, n_boot, rng)
    return _indexed_means(x, n_boot, rng)


def _multinomial_means(
    levels: FloatArray, counts: IntArray, n_boot: int, rng: np.random.Generator
) -> FloatArray:
    """Resample by drawing how many problems fall on each distinct value."""
    n = int(counts.sum())
    rows = max(1, _BLOCK_ELEMENTS // levels.size)
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, rows):
        size = min(rows, n_boot - start)
        drawn = rng.multinomial(n, counts / n, size=size)
        out[start : start + size] = drawn @ levels / n
    return out


def _indexed_means(x: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """Resample by drawing problem indices, one block of rows at a time."""
    n = x.size
    index_type: Any = np.int32 if n < 2**31 else np.int64
    rows = max(1, _BLOCK_ELEMENTS // n)
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, rows):
        size = min(rows, n_boot - start)
        index = rng.integers(0, n, size=(size, n), dtype=index_type)
        out[start : start + size] = x[index].mean(axis=1)
    return out
