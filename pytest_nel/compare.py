"""``nel compare``: a paired comparison of two runs of the same task.

Public API (stable; reports and gates build on it)::

    result = compare_runs(Path("base"), Path("cand"), max_drop=0.01)  # CompareResult
    result.verdict                 # "PASS" | "WARN" | "BLOCK" | "INCONCLUSIVE"
    result.exit_code(strict=False) # 0 PASS; 1 BLOCK; 2 WARN/INCONCLUSIVE if strict
    result.to_dict()               # plain data (the -o report.json)
    result.benchmarks[0]           # BenchmarkComparison, .to_dict() likewise
    compare_benchmark(base_bench, cand_bench, max_drop=0.01)  # one benchmark

Per benchmark (see :mod:`pytest_nel.paired` for the statistics): samples are
paired by (problem, repeat), each problem's paired repeats averaged, and the mean
per-problem difference gets a confidence interval. The *drop* is
``baseline - candidate`` (``candidate - baseline`` for ``lower_is_better``).
A drop is *significant* when the interval on it excludes 0 (so the verdict agrees
with the interval shown). The p-value reported is McNemar's exact test for binary
rewards with one repeat, the paired t test's otherwise; a borderline case where
McNemar's test disagrees with the interval is flagged in the warnings. Verdicts:

* ``BLOCK``: a significant drop whose estimate exceeds ``max_drop``;
* ``WARN``: a significant drop whose estimate is within ``max_drop``;
* ``PASS``: no significant drop, and the interval rules out a drop beyond
  ``max_drop`` (its upper end on the drop is ``<= max_drop``);
* ``INCONCLUSIVE``: no significant drop, but a drop beyond ``max_drop`` cannot be
  ruled out; the result says how many problems (or repeats) would decide it.

``compare`` is the investigation tool (is the change real, how big is it);
``nel gate`` is the release decision (the whole interval against a policy).

Runs are comparable only when the task parts of their fingerprints agree
(benchmark, dataset, prompts, scorer version, generation parameters, repeats);
otherwise :class:`~pytest_nel.exceptions.ResultsError` lists every difference,
unless ``allow_mismatch=True`` (then they are warnings). Model, endpoint and
package version may differ and are reported. NeMo Evaluator folders have no
fingerprint: they are compared with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_nel.exceptions import ResultsError
from pytest_nel.paired import (
    Difference,
    Pairing,
    describe_needs,
    mcnemar_exact,
    mean_difference,
    needed,
    pair_samples,
    t_test_p,
)
from pytest_nel.results import fingerprint_diff
from pytest_nel.runs import BenchmarkResults, Run, load_pair

__all__ = [
    "VERDICTS",
    "BenchmarkComparison",
    "CompareResult",
    "compare_benchmark",
    "compare_runs",
    "comparability",
    "metric_k",
]

VERDICTS = ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")  # in rising severity
HIGHER = "higher_is_better"
LOWER = "lower_is_better"
ALPHA_DEFAULT = 0.05


@dataclass
class BenchmarkComparison:
    """The comparison of one benchmark.

    Attributes:
        benchmark: Benchmark name.
        metric: The compared metric (``pass@1``, ``mean_reward`` or ``pass@k``).
        direction: ``higher_is_better`` or ``lower_is_better``.
        max_drop: Tolerated drop, on the metric's scale.
        verdict: ``PASS``, ``WARN``, ``BLOCK`` or ``INCONCLUSIVE``.
        reason: One sentence saying why.
        difference: The paired difference (None with fewer than 2 problems).
        test: ``mcnemar_exact`` or ``paired_t``.
        p_value: Two-sided p-value of "no difference".
        significant_drop: The interval on the drop excludes 0.
        regressions: Flipped problems that got worse (details in ``flips``).
        improvements: Problems that got better.
        flips: ``{"regressions": [...], "improvements": [...]}``.
        problems_needed: Problems that would decide an INCONCLUSIVE result.
        repeats_needed: Or repeats per problem at the current problems.
        repeats: Repeats per problem of the runs.
        samples: Pairing counts (paired, baseline_only, candidate_only, ...).
        errors: Error counts and rates per side.
        identity: Model, endpoint and package version per side.
        task_differences: Fingerprint differences (only with allow_mismatch).
        warnings: Anything the reader must know.
        within_var: Within-problem variance of the paired differences (for
            planning repeats; None with one repeat).
    """

    benchmark: str
    metric: str
    direction: str
    max_drop: float
    verdict: str
    reason: str
    difference: Difference | None
    test: str
    p_value: float | None
    significant_drop: bool
    regressions: int
    improvements: int
    flips: dict[str, list[dict[str, Any]]]
    problems_needed: int | None
    repeats_needed: int | None
    repeats: int
    samples: dict[str, int]
    errors: dict[str, dict[str, Any]]
    identity: dict[str, dict[str, Any]]
    task_differences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    within_var: float | None = None

    @property
    def drop(self) -> float | None:
        """The estimated drop (positive: the candidate is worse)."""
        if self.difference is None:
            return None
        return _damage(self.difference.diff, self.direction)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = {k: v for k, v in vars(self).items() if k != "difference"}
        data["difference"] = self.difference.to_dict() if self.difference else None
        data["drop"] = self.drop
        return data


@dataclass
class CompareResult:
    """The comparison of two runs, benchmark by benchmark.

    Attributes:
        baseline: Baseline folder.
        candidate: Candidate folder.
        verdict: The most severe benchmark verdict (BLOCK > INCONCLUSIVE > WARN
            > PASS).
        max_drop: Tolerated drop.
        confidence: Interval level.
        benchmarks: One comparison per benchmark on both sides.
        warnings: Run-level warnings (one-sided benchmarks, partial data, ...).
    """

    baseline: Path
    candidate: Path
    verdict: str
    max_drop: float
    confidence: float
    benchmarks: list[BenchmarkComparison]
    warnings: list[str] = field(default_factory=list)

    def exit_code(self, strict: bool = False) -> int:
        """0 PASS, 1 BLOCK; WARN and INCONCLUSIVE give 2 under ``strict``, else 0."""
        if self.verdict == "BLOCK":
            return 1
        if self.verdict in ("WARN", "INCONCLUSIVE") and strict:
            return 2
        return 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``nel compare -o report.json``)."""
        return {
            "schema_version": 1,
            "kind": "compare",
            "baseline": str(self.baseline),
            "candidate": str(self.candidate),
            "verdict": self.verdict,
            "max_drop": self.max_drop,
            "confidence": self.confidence,
            "benchmarks": [b.to_dict() for b in self.benchmarks],
            "warnings": self.warnings,
        }


def compare_runs(
    baseline: Path | str | Run,
    candidate: Path | str | Run,
    *,
    max_drop: float = 0.01,
    confidence: float = 0.95,
    metric: str | None = None,
    allow_mismatch: bool = False,
    allow_partial: bool = False,
) -> CompareResult:
    """Compare every benchmark present in both runs.

    Args:
        baseline: The reference run (a folder or a loaded :class:`Run`).
        candidate: The run under test.
        max_drop: Tolerated drop on the metric's scale (0.01 = 1 point).
        confidence: Level of the intervals (significance at ``1 - confidence``).
        metric: Metric to compare (default: pass@1 or mean_reward).
        allow_mismatch: Compare despite task fingerprint differences.
        allow_partial: Use truncated/interrupted results and compare only the
            benchmarks both runs have.

    Raises:
        ResultsError: Unreadable or partial folders, no common benchmark, a
            benchmark on one side only (without ``allow_partial``), or task
            fingerprints that differ (without ``allow_mismatch``).
    """
    if max_drop < 0:
        raise ResultsError(f"--max-drop must be >= 0, got {max_drop}")
    base, cand = load_pair(baseline, candidate, allow_partial=allow_partial)
    common, warnings = common_benchmarks(base, cand, allow_partial=allow_partial)
    results = [
        compare_benchmark(
            b,
            c,
            max_drop=max_drop,
            confidence=confidence,
            metric=metric,
            allow_mismatch=allow_mismatch,
        )
        for b, c in common
    ]
    verdict = max((r.verdict for r in results), key=VERDICTS.index)
    return CompareResult(
        base.path, cand.path, verdict, max_drop, confidence, results, warnings
    )


def common_benchmarks(
    base: Run, cand: Run, *, allow_partial: bool
) -> tuple[list[tuple[BenchmarkResults, BenchmarkResults]], list[str]]:
    """Pairs of benchmarks present in both runs, and warnings about the others.

    One benchmark on each side is paired even when the names differ (the
    fingerprint check then reports the difference).

    Raises:
        ResultsError: Nothing in common, or one-sided benchmarks without
            ``allow_partial``.
    """
    if len(base.benchmarks) == 1 and len(cand.benchmarks) == 1:
        (b,) = base.benchmarks.values()
        (c,) = cand.benchmarks.values()
        note = [f"comparing benchmark {b.name!r} with {c.name!r}"]
        return [(b, c)], note if b.name != c.name else []
    only_b = sorted(set(base.benchmarks) - set(cand.benchmarks))
    only_c = sorted(set(cand.benchmarks) - set(base.benchmarks))
    common = sorted(set(base.benchmarks) & set(cand.benchmarks))
    notes = [f"only in the baseline: {', '.join(only_b)}"] if only_b else []
    notes += [f"only in the candidate: {', '.join(only_c)}"] if only_c else []
    if not common:
        raise ResultsError(
            f"no benchmark in common: baseline {base.path} has "
            f"{sorted(base.benchmarks)}, candidate {cand.path} has "
            f"{sorted(cand.benchmarks)}"
        )
    if notes and not allow_partial:
        raise ResultsError(
            "benchmarks differ between the runs: "
            + "; ".join(notes)
            + f". Pass --allow-partial to compare the {len(common)} common one(s)."
        )
    return [(base.benchmarks[n], cand.benchmarks[n]) for n in common], notes


def comparability(
    base: BenchmarkResults, cand: BenchmarkResults
) -> tuple[list[str], list[str]]:
    """Return ``(task differences, warnings)`` between two benchmarks' runs.

    Task differences make results incomparable; warnings do not (no fingerprint
    to check, a different model, endpoint or package version).
    """
    warnings: list[str] = []
    for side, bench in (("baseline", base), ("candidate", cand)):
        if bench.fingerprint is None:
            warnings.append(
                f"{side} {bench.path} has no fingerprint ({bench.source}): "
                "comparability of task, prompts and generation settings not checked"
            )
        warnings += [f"{side}: partial data: {reason}" for reason in bench.partial]
        warnings += [f"{side}: {note}" for note in bench.notes]
    if base.fingerprint is None or cand.fingerprint is None:
        return [], warnings
    diffs = fingerprint_diff(
        base.fingerprint.get("task") or {}, cand.fingerprint.get("task") or {}, "task."
    )
    return diffs, warnings


def metric_k(bench: BenchmarkResults, metric: str | None) -> tuple[str, int]:
    """Resolve a metric name to ``(name, k)`` (k = 1 for pass@1/mean_reward).

    Raises:
        ResultsError: The benchmark cannot give that metric.
    """
    if metric is None:
        return ("pass@1" if bench.binary else "mean_reward"), 1
    if metric in ("pass@1", "mean_reward"):
        return metric, 1
    if metric in bench.metric_names():
        return metric, bench.repeats
    raise ResultsError(
        f"{bench.name}: metric {metric!r} cannot be compared; "
        f"choose one of {bench.metric_names()}"
    )


def _damage(diff: float, direction: str) -> float:
    return -diff if direction == HIGHER else diff


def compare_benchmark(
    base: BenchmarkResults,
    cand: BenchmarkResults,
    *,
    max_drop: float = 0.01,
    confidence: float = 0.95,
    metric: str | None = None,
    direction: str = HIGHER,
    allow_mismatch: bool = False,
) -> BenchmarkComparison:
    """Compare one benchmark of two runs (see the module docstring).

    Raises:
        ResultsError: Task fingerprints differ (without ``allow_mismatch``) or
            the metric is not available.
    """
    diffs, warnings = comparability(base, cand)
    if diffs and not allow_mismatch:
        raise ResultsError(
            f"{base.name}: the runs are not comparable, their task fingerprints "
            "differ:\n  " + "\n  ".join(diffs) + "\nPass --allow-mismatch to compare "
            "anyway."
        )
    warnings += [f"task differs (allowed): {d}" for d in diffs]
    name, k = metric_k(base, metric)
    pairing = pair_samples(base.samples, cand.samples, k)
    out = _skeleton(base, cand, name, direction, max_drop, pairing, diffs, warnings)
    if pairing.problem_idx.size < 2:
        out.reason = (
            f"only {pairing.problem_idx.size} paired problem(s): nothing to conclude"
        )
        return out
    _fill_statistics(out, pairing, base, confidence, k)
    _decide(out, confidence)
    return out


def _skeleton(
    base: BenchmarkResults,
    cand: BenchmarkResults,
    metric: str,
    direction: str,
    max_drop: float,
    pairing: Pairing,
    diffs: list[str],
    warnings: list[str],
) -> BenchmarkComparison:
    d = pairing.diffs
    regressions = int(np.count_nonzero(_damage_array(d, direction) > 0))
    return BenchmarkComparison(
        benchmark=base.name,
        metric=metric,
        direction=direction,
        max_drop=max_drop,
        verdict="INCONCLUSIVE",
        reason="",
        difference=None,
        test="",
        p_value=None,
        significant_drop=False,
        regressions=regressions,
        improvements=int(np.count_nonzero(d)) - regressions,
        flips=_flips(base, cand, pairing, direction),
        problems_needed=None,
        repeats_needed=None,
        repeats=base.repeats,
        samples={
            "problems": int(pairing.problem_idx.size),
            "paired": int(pairing.counts.sum()),
            "baseline_only": pairing.baseline_only,
            "candidate_only": pairing.candidate_only,
            "dropped_errors": pairing.dropped_errors,
        },
        errors={"baseline": _errors(base), "candidate": _errors(cand)},
        identity={"baseline": base.identity(), "candidate": cand.identity()},
        task_differences=diffs,
        warnings=warnings,
        within_var=pairing.within_var,
    )


def _damage_array(d: np.ndarray, direction: str) -> np.ndarray:
    return -d if direction == HIGHER else d


def _errors(bench: BenchmarkResults) -> dict[str, Any]:
    errors, samples, rate = bench.error_rate()
    return {
        "errors": errors,
        "samples": samples,
        "rate": rate,
        "by_category": bench.errors_by_category,
    }


def _flips(
    base: BenchmarkResults, cand: BenchmarkResults, pairing: Pairing, direction: str
) -> dict[str, list[dict[str, Any]]]:
    damage = _damage_array(pairing.diffs, direction)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, picked in (("regressions", damage > 0), ("improvements", damage < 0)):
        index = np.flatnonzero(picked)
        index = index[np.lexsort((pairing.problem_idx[index], -np.abs(damage[index])))]
        out[key] = [_flip(base, cand, pairing, int(i)) for i in index]
    return out


def _flip(
    base: BenchmarkResults, cand: BenchmarkResults, pairing: Pairing, i: int
) -> dict[str, Any]:
    b = base.answers(int(pairing.first_base[i]))
    c = cand.answers(int(pairing.first_cand[i]))
    return {
        "problem_idx": int(pairing.problem_idx[i]),
        "problem_id": b["problem_id"],
        "baseline": float(pairing.baseline[i]),
        "candidate": float(pairing.candidate[i]),
        "expected_answer": b["expected_answer"],
        "baseline_answer": b["extracted_answer"],
        "candidate_answer": c["extracted_answer"],
    }


def _fill_statistics(
    out: BenchmarkComparison,
    pairing: Pairing,
    base: BenchmarkResults,
    confidence: float,
    k: int,
) -> None:
    unit = _unit(pairing)
    difference = mean_difference(pairing, confidence=confidence, unit=unit)
    out.difference = difference
    if base.binary and base.repeats == 1 and k == 1:
        out.test = "mcnemar_exact"
        worse = int(np.count_nonzero(pairing.diffs < 0))
        better = int(np.count_nonzero(pairing.diffs > 0))
        out.p_value = mcnemar_exact(worse, better)
    else:
        out.test = "paired_t"
        out.p_value = t_test_p(difference)
    low, _ = damage_interval(difference, out.direction)
    out.significant_drop = low > 0.0
    if out.significant_drop and out.p_value >= 1.0 - confidence:
        out.warnings.append(
            f"borderline: the interval excludes 0 but {out.test} gives "
            f"p = {out.p_value:.3g}"
        )


def _unit(pairing: Pairing) -> bool:
    values = np.concatenate([pairing.baseline, pairing.candidate])
    return bool(values.min() >= 0.0 and values.max() <= 1.0)


def damage_interval(difference: Difference, direction: str) -> tuple[float, float]:
    """The interval on the drop (positive = worse) from the one on the difference."""
    if direction == HIGHER:
        return -difference.ci_upper, -difference.ci_lower
    return difference.ci_lower, difference.ci_upper


def _decide(out: BenchmarkComparison, confidence: float) -> None:
    assert out.difference is not None
    drop = _damage(out.difference.diff, out.direction)
    low, high = damage_interval(out.difference, out.direction)
    span = f"drop {drop:+.4f}, {confidence:.0%} CI [{low:+.4f}, {high:+.4f}]"
    if out.significant_drop:
        beyond = drop > out.max_drop
        out.verdict = "BLOCK" if beyond else "WARN"
        out.reason = (
            f"significant drop (the CI excludes 0; {out.test} p = {out.p_value:.3g}), "
            f"{'beyond' if beyond else 'within'} --max-drop {out.max_drop}: {span}"
        )
        return
    if high <= out.max_drop:
        out.verdict = "PASS"
        out.reason = f"no significant drop; any drop is within {out.max_drop}: {span}"
        return
    out.verdict = "INCONCLUSIVE"
    margin = out.max_drop - max(drop, 0.0) if drop < out.max_drop else drop
    needs = needed(out.difference, out.within_var, margin, out.repeats, confidence)
    out.problems_needed, out.repeats_needed = needs
    out.reason = (
        f"no significant drop, but a drop beyond {out.max_drop} is not ruled out "
        f"({span}); {describe_needs(*needs, out.difference.n, out.repeats)}"
    )
