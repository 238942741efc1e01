"""Paired statistics for comparing two runs of the same task (numpy, no I/O).

Samples are paired by (problem_idx, repeat); a pair where either side errored is
dropped (errors are never scores). Each problem gives one paired difference
``d_i = candidate_i - baseline_i`` of its metric value: the mean of its paired
repeats for ``pass@1``/``mean_reward``, 0 or 1 for ``pass@k``. Everything below is
about the mean of the ``d_i``.

The interval: a Student-t interval on the per-problem differences,
``mean(d) +- t_{n-1} * sd(d) / sqrt(n)``. This is the cluster-robust (clustered by
problem) standard error of the sample-level difference, since a problem's repeats
are averaged first; repeats correlated within a problem widen it as they should.
It was chosen over the paired bootstrap (expanded BCa, as in ``stats.py``) by
simulation (``perf/compare_sim.py``): both cover alike where the bootstrap is
defined, the t interval is a closed form (a 100,000-sample comparison costs
milliseconds) and its small-n behaviour is the textbook one. Where every problem
has the same difference (e.g. no discordant pair at all, common with 30 problems
near p = 0 or 1) the t interval has zero width; for rewards in [0, 1] the half
width is then floored at Wilson's upper bound for 0 events in ``n`` problems,
``z^2 / (n + z^2)`` (the "no discordant pair yet" bound), so a run that saw no
change still says how large a change it could have missed.

For binary rewards with one repeat, McNemar's exact test (a two-sided binomial
test of the discordant pairs, b regressions against c improvements) gives the
p-value; otherwise the p-value is the t test's.

The minimum detectable effect (MDE) is on the metric's own scale, the same as
``--max-drop``/``max_drop``: the true difference the comparison would detect
with 80% power at the interval's level, ``(t_{n-1, 1-alpha/2} + z_{0.8}) * se``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from pytest_nel.runs import Samples

__all__ = [
    "Difference",
    "Pairing",
    "describe_needs",
    "mcnemar_exact",
    "mean_difference",
    "needed",
    "pair_samples",
    "problems_needed",
    "repeats_needed",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

POWER = 0.8
T_METHOD = "paired_t_clustered"
FLOOR_METHOD = "paired_t_clustered+wilson_floor"
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Pairing:
    """Per-problem metric values of two runs, paired.

    Attributes:
        problem_idx: The paired problems, ascending.
        baseline: Baseline metric value per problem.
        candidate: Candidate metric value per problem.
        counts: Paired (both scored) samples per problem.
        within_var: Pooled within-problem variance of the per-sample paired
            differences (None with fewer than 2 paired repeats anywhere).
        first_base: Position (in the baseline's samples) of each problem's first
            paired sample; ``first_cand`` likewise for the candidate.
        first_cand: See ``first_base``.
        baseline_only: Samples present only in the baseline.
        candidate_only: Samples present only in the candidate.
        dropped_errors: Pairs dropped because a side errored.
    """

    problem_idx: IntArray
    baseline: FloatArray
    candidate: FloatArray
    counts: IntArray
    within_var: float | None
    first_base: IntArray
    first_cand: IntArray
    baseline_only: int
    candidate_only: int
    dropped_errors: int

    @property
    def diffs(self) -> FloatArray:
        """Per-problem differences, candidate minus baseline."""
        return self.candidate - self.baseline


@dataclass(frozen=True, slots=True)
class Difference:
    """The mean paired difference with its interval.

    Attributes:
        n: Problems paired.
        baseline: Mean baseline value over the paired problems.
        candidate: Mean candidate value over the paired problems.
        diff: ``candidate - baseline``.
        ci_lower: Lower bound of the interval on ``diff``.
        ci_upper: Upper bound.
        se: Standard error of ``diff`` (clustered by problem).
        sd: Standard deviation of the per-problem differences.
        method: How the interval was made.
        confidence: The interval's level.
        mde: Minimum detectable effect (80% power), on the metric's scale.
    """

    n: int
    baseline: float
    candidate: float
    diff: float
    ci_lower: float
    ci_upper: float
    se: float
    sd: float
    method: str
    confidence: float
    mde: float

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain data for JSON."""
        return asdict(self)


def pair_samples(base: Samples, cand: Samples, metric_k: int = 1) -> Pairing:
    """Pair two runs' samples by (problem_idx, repeat), vectorised.

    Args:
        base: Baseline samples.
        cand: Candidate samples.
        metric_k: 1 for ``pass@1``/``mean_reward`` (per-problem mean of the
            paired repeats); ``k > 1`` for ``pass@k`` (problems with ``k`` paired
            repeats only; 1 if any passed, else 0).

    Returns:
        The pairing (possibly with no problems).
    """
    span = int(max(base.repeat.max(initial=0), cand.repeat.max(initial=0))) + 1
    key_b = base.problem_idx * span + base.repeat
    key_c = cand.problem_idx * span + cand.repeat
    _, ib, ic = np.intersect1d(key_b, key_c, assume_unique=True, return_indices=True)
    ok = ~(base.errored[ib] | cand.errored[ic])
    ib, ic = ib[ok], ic[ok]
    problems, first, inverse, counts = np.unique(
        base.problem_idx[ib], return_index=True, return_inverse=True, return_counts=True
    )
    rb, rc = base.reward[ib], cand.reward[ic]
    if metric_k == 1:
        mb = np.bincount(inverse, rb, problems.size) / np.maximum(counts, 1)
        mc = np.bincount(inverse, rc, problems.size) / np.maximum(counts, 1)
    else:
        mb = (np.bincount(inverse, rb > 0, problems.size) > 0).astype(np.float64)
        mc = (np.bincount(inverse, rc > 0, problems.size) > 0).astype(np.float64)
    keep = counts >= metric_k
    within = _within_var(rc - rb, inverse, counts, problems.size)
    return Pairing(
        problem_idx=problems[keep],
        baseline=mb[keep],
        candidate=mc[keep],
        counts=counts[keep],
        within_var=within,
        first_base=ib[first][keep],
        first_cand=ic[first][keep],
        baseline_only=int(key_b.size - ok.size),
        candidate_only=int(key_c.size - ok.size),
        dropped_errors=int(ok.size - np.count_nonzero(ok)),
    )


def _within_var(
    e: FloatArray, inverse: IntArray, counts: IntArray, groups: int
) -> float | None:
    """Pooled within-problem variance of the per-sample differences ``e``."""
    dof = int((counts - 1).clip(min=0).sum())
    if dof == 0:
        return None
    means = np.bincount(inverse, e, groups) / np.maximum(counts, 1)
    resid = e - means[inverse]
    return float(resid @ resid / dof)


@lru_cache(maxsize=512)
def _t(df: int, q: float) -> float:
    """Student's t quantile (scipy.special imports fast; scipy.stats does not)."""
    from scipy import special

    return float(special.stdtrit(df, q))


def mean_difference(
    pairing: Pairing, *, confidence: float = 0.95, unit: bool = True
) -> Difference:
    """Return the mean paired difference and its interval.

    Args:
        pairing: The paired per-problem values (at least 2 problems).
        confidence: Two-sided level of the interval.
        unit: Rewards lie in [0, 1]: clip the interval to [-1, 1] and floor a
            zero-width interval at Wilson's bound (see the module docstring).

    Raises:
        ValueError: Fewer than 2 paired problems.
    """
    d = pairing.diffs
    n = int(d.size)
    if n < 2:
        raise ValueError(f"need at least 2 paired problems, got {n}")
    diff = float(d.mean())
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = _t(n - 1, 0.5 + confidence / 2)
    half, method = t * se, T_METHOD
    if unit:
        z = _NORMAL.inv_cdf(0.5 + confidence / 2)
        floor = z * z / (n + z * z)
        if half < floor and sd == 0.0:
            half, method = floor, FLOOR_METHOD
            se = floor / t
    lower, upper = diff - half, diff + half
    if unit:
        lower, upper = max(lower, -1.0), min(upper, 1.0)
    mde = (t + _NORMAL.inv_cdf(POWER)) * se
    return Difference(
        n=n,
        baseline=float(pairing.baseline.mean()),
        candidate=float(pairing.candidate.mean()),
        diff=diff,
        ci_lower=lower,
        ci_upper=upper,
        se=se,
        sd=sd,
        method=method,
        confidence=confidence,
        mde=mde,
    )


def t_test_p(difference: Difference) -> float:
    """Two-sided p-value of the paired t test of ``diff == 0``."""
    if difference.se == 0.0:
        return 1.0 if difference.diff == 0.0 else 0.0
    from scipy import special

    stat = abs(difference.diff) / difference.se
    return float(2.0 * special.stdtr(difference.n - 1, -stat))


def mcnemar_exact(regressions: int, improvements: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    Equal to ``scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue`` (the binomial
    at p = 1/2 is symmetric, so "as likely or less" is twice the smaller tail),
    computed with ``scipy.special`` so ``nel compare`` avoids importing scipy.stats.
    """
    total = regressions + improvements
    if total == 0:
        return 1.0
    from scipy import special

    smaller = min(regressions, improvements)
    return float(min(1.0, 2.0 * special.bdtr(smaller, total, 0.5)))


def _factor(confidence: float, power: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2) + _NORMAL.inv_cdf(power)


def problems_needed(
    sd: float, margin: float, *, confidence: float = 0.95, power: float = POWER
) -> int | None:
    """Problems needed so a true difference ``margin`` away is resolved.

    ``n = ((z_{1-alpha/2} + z_power) * sd / margin)^2``; None when ``margin`` is
    not positive (the estimate sits on the threshold) or ``sd`` is 0.
    """
    if margin <= 0.0 or sd <= 0.0:
        return None
    return max(2, math.ceil((_factor(confidence, power) * sd / margin) ** 2))


def repeats_needed(
    sd: float,
    within_var: float | None,
    repeats: int,
    n: int,
    margin: float,
    *,
    confidence: float = 0.95,
    power: float = POWER,
) -> int | None:
    """Repeats per problem needed at the current number of problems.

    The per-problem variance is split into a between-problem part ``tau^2`` and
    a within part ``sigma_w^2 / r``; more repeats shrink only the latter. None
    when repeats cannot get there (the between part alone is too large), when
    the within variance is unknown (one repeat), or ``margin <= 0``.
    """
    if within_var is None or margin <= 0.0 or n < 2:
        return None
    between = max(sd * sd - within_var / repeats, 0.0)
    allowed = n * (margin / _factor(confidence, power)) ** 2 - between
    if allowed <= 0.0:
        return None
    return max(repeats, math.ceil(within_var / allowed))


def needed(
    difference: Difference,
    within_var: float | None,
    margin: float,
    repeats: int,
    confidence: float,
) -> tuple[int | None, int | None]:
    """Problems (at these repeats) and repeats (at these problems) to decide.

    The spread used is ``se * sqrt(n)``: the per-problem standard deviation, or
    what the Wilson floor implies when no problem changed at all.
    """
    sd = difference.se * math.sqrt(difference.n)
    problems = problems_needed(sd, margin, confidence=confidence)
    more_repeats = repeats_needed(
        sd,
        within_var,
        repeats,
        difference.n,
        margin,
        confidence=confidence,
    )
    return problems, more_repeats


def describe_needs(
    problems: int | None, repeats: int | None, n: int, current_repeats: int
) -> str:
    """One phrase: what would decide the question."""
    parts = []
    if problems is not None:
        parts.append(f"about {problems} problems (now {n}) would decide it")
    if repeats is not None and repeats > current_repeats:
        parts.append(f"or {repeats} repeats per problem (now {current_repeats})")
    if not parts:
        return "the estimate sits on the threshold; more data narrows it"
    return ", ".join(parts)
