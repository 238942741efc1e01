"""``nel gate``: a policy-driven release decision on two runs.

Public API (stable; reports, JUnit and the in-run gate items build on it)::

    policy = load_policy(Path("policy.yaml"))          # Policy (pydantic)
    result = evaluate_gate(Path("base"), Path("cand"), policy)  # GateResult
    result.verdict                  # "GO" | "NO-GO" | "INCONCLUSIVE"
    result.exit_code(strict=False)  # 0 GO, 1 NO-GO, 2 INCONCLUSIVE (1 if strict)
    result.to_dict()                # plain data (the -o gate.json)
    result.benchmarks[0]            # BenchmarkGate: .status, .tier, .reasons, ...

The policy is NeMo Evaluator's schema, version 1::

    version: 1
    defaults: {tier: supporting, max_drop: 0.015, direction: higher_is_better}
    benchmarks:
      gsm8k: {tier: critical, max_drop: 0.01}
      aime: {max_drop: 0.01, max_relative_drop: 0.02, relative_guard_below: 0.2}
      ifeval: {tier: advisory}

plus one key of ours, ``max_error_rate`` (in ``defaults`` or per benchmark): the
candidate's share of errored samples above it is a BREACH. Errored samples are
never scored as wrong: they are left out of the paired comparison and reported as
an error rate. Unknown keys and tiers are errors naming the key path.

Per benchmark, with the drop's interval ``[lo, hi]`` (see :mod:`pytest_nel.paired`)
and the threshold ``max_drop`` (tightened to ``max_relative_drop * baseline`` when
the baseline score is below ``relative_guard_below``, or always when no guard is
set): ``PASS`` when ``hi <= threshold``; ``BREACH`` when ``lo > threshold`` (or
the error budget is exceeded); ``INSUFFICIENT_EVIDENCE`` when the interval
straddles it (with the problems or repeats that would decide); ``MISSING`` when a
benchmark listed in the policy is not in both runs. Unlike NeMo Evaluator, the
relative guard is also applied to the interval, not to the point estimate: a
point-estimate rule says NO-GO on noise about half the time when nothing changed.

Verdict: any BREACH or MISSING in a critical or supporting benchmark is NO-GO;
else any INSUFFICIENT_EVIDENCE there is INCONCLUSIVE; else GO. Advisory
benchmarks are reported and never change the verdict. Benchmarks found in both
runs but not listed get the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_nel.compare import BenchmarkComparison, compare_benchmark, damage_interval
from pytest_nel.paired import describe_needs, needed
from pytest_nel.policy import Policy, ResolvedPolicy, default_policy, load_policy
from pytest_nel.runs import BenchmarkResults, Run, load_pair

__all__ = [
    "STATUSES",
    "BLOCKING_TIERS",
    "BenchmarkGate",
    "GateResult",
    "Policy",
    "ResolvedPolicy",
    "default_policy",
    "evaluate_gate",
    "gate_benchmark",
    "load_policy",
    "threshold_status",
]

STATUSES = ("PASS", "BREACH", "INSUFFICIENT_EVIDENCE", "MISSING")
BLOCKING_TIERS = ("critical", "supporting")


@dataclass
class BenchmarkGate:
    """The gate's decision on one benchmark.

    Attributes:
        benchmark: Benchmark name.
        tier: ``critical``, ``supporting`` or ``advisory``.
        status: ``PASS``, ``BREACH``, ``INSUFFICIENT_EVIDENCE`` or ``MISSING``.
        metric: The gated metric.
        direction: ``higher_is_better`` or ``lower_is_better``.
        threshold: The drop tolerated (max_drop, or tighter by the relative guard).
        policy: The resolved policy of this benchmark.
        baseline_score: Baseline metric over the paired problems.
        candidate_score: Candidate metric over the paired problems.
        delta: ``candidate - baseline``.
        drop_ci: Interval on the drop (positive = worse).
        n_problems: Paired problems.
        problems_needed: Problems that would decide INSUFFICIENT_EVIDENCE.
        repeats_needed: Or repeats per problem at the current problems.
        error_rate: Candidate's share of errored samples (and the baseline's).
        reasons: Why, in sentences.
        comparison: The full paired comparison (None for MISSING).
    """

    benchmark: str
    tier: str
    status: str
    metric: str | None
    direction: str
    threshold: float | None
    policy: ResolvedPolicy
    baseline_score: float | None = None
    candidate_score: float | None = None
    delta: float | None = None
    drop_ci: tuple[float, float] | None = None
    n_problems: int = 0
    problems_needed: int | None = None
    repeats_needed: int | None = None
    error_rate: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    comparison: BenchmarkComparison | None = None

    @property
    def blocking(self) -> bool:
        """True when this benchmark's status can change the verdict."""
        return self.tier in BLOCKING_TIERS

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = {k: v for k, v in vars(self).items() if k not in ("comparison",)}
        data["policy"] = {
            k: getattr(self.policy, k) for k in self.policy.__dataclass_fields__
        }
        data["drop_ci"] = list(self.drop_ci) if self.drop_ci else None
        data["comparison"] = self.comparison.to_dict() if self.comparison else None
        return data


@dataclass
class GateResult:
    """The gate's verdict over all benchmarks.

    Attributes:
        baseline: Baseline folder.
        candidate: Candidate folder.
        verdict: ``GO``, ``NO-GO`` or ``INCONCLUSIVE``.
        reasons: Why, in sentences.
        benchmarks: One decision per gated benchmark, in name order.
        warnings: Run-level warnings.
        policy: The policy applied (as plain data).
    """

    baseline: Path
    candidate: Path
    verdict: str
    reasons: list[str]
    benchmarks: list[BenchmarkGate]
    warnings: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)

    def exit_code(self, strict: bool = False) -> int:
        """0 GO, 1 NO-GO, 2 INCONCLUSIVE (1 under ``strict``: no benefit of doubt)."""
        if self.verdict == "GO":
            return 0
        if self.verdict == "NO-GO" or strict:
            return 1
        return 2

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``nel gate -o gate.json``)."""
        return {
            "schema_version": 1,
            "kind": "gate",
            "baseline": str(self.baseline),
            "candidate": str(self.candidate),
            "verdict": self.verdict,
            "reasons": self.reasons,
            "benchmarks": [b.to_dict() for b in self.benchmarks],
            "warnings": self.warnings,
            "policy": self.policy,
        }


def threshold_status(low: float, high: float, threshold: float) -> str:
    """PASS, BREACH or INSUFFICIENT_EVIDENCE from the drop's interval."""
    if high <= threshold:
        return "PASS"
    if low > threshold:
        return "BREACH"
    return "INSUFFICIENT_EVIDENCE"


def evaluate_gate(
    baseline: Path | str | Run,
    candidate: Path | str | Run,
    policy: Policy | None = None,
    *,
    confidence: float = 0.95,
    allow_mismatch: bool = False,
    allow_partial: bool = False,
) -> GateResult:
    """Apply ``policy`` to every benchmark of two runs.

    Raises:
        ResultsError: A folder cannot be read, data is partial (without
            ``allow_partial``), or task fingerprints differ (without
            ``allow_mismatch``).
    """
    policy = policy or default_policy()
    base, cand = load_pair(baseline, candidate, allow_partial=allow_partial)
    names = sorted(set(base.benchmarks) | set(cand.benchmarks) | set(policy.benchmarks))
    gates: list[BenchmarkGate] = []
    warnings: list[str] = []
    for name in names:
        rules = policy.resolve(name)
        b, c = base.benchmarks.get(name), cand.benchmarks.get(name)
        if b is None or c is None:
            side = "baseline" if b is None else "candidate"
            if c is None and b is None:
                side = "baseline and candidate"
            if name in policy.benchmarks:
                gates.append(_missing(name, rules, side))
            else:
                warnings.append(f"{name}: not in the {side}; not gated")
            continue
        gate = gate_benchmark(
            b, c, rules, confidence=confidence, allow_mismatch=allow_mismatch
        )
        gates.append(gate)
        if gate.comparison is not None:
            warnings += [f"{name}: {w}" for w in gate.comparison.warnings]
    verdict, reasons = aggregate(gates)
    return GateResult(
        base.path,
        cand.path,
        verdict,
        reasons,
        gates,
        warnings,
        policy.model_dump(mode="json"),
    )


def _missing(name: str, rules: ResolvedPolicy, side: str) -> BenchmarkGate:
    return BenchmarkGate(
        benchmark=name,
        tier=rules.tier,
        status="MISSING",
        metric=rules.metric,
        direction=rules.direction,
        threshold=None,
        policy=rules,
        reasons=[f"listed in the policy but not in the {side} results"],
    )


def gate_benchmark(
    base: BenchmarkResults,
    cand: BenchmarkResults,
    rules: ResolvedPolicy,
    *,
    confidence: float = 0.95,
    allow_mismatch: bool = False,
) -> BenchmarkGate:
    """Decide one benchmark (see the module docstring).

    Raises:
        ResultsError: Task fingerprints differ (without ``allow_mismatch``) or
            the policy's metric is not available for this benchmark.
    """
    comparison = compare_benchmark(
        base,
        cand,
        max_drop=rules.max_drop,
        confidence=confidence,
        metric=rules.metric,
        direction=rules.direction,
        allow_mismatch=allow_mismatch,
    )
    gate = BenchmarkGate(
        benchmark=base.name,
        tier=rules.tier,
        status="INSUFFICIENT_EVIDENCE",
        metric=comparison.metric,
        direction=rules.direction,
        threshold=rules.max_drop,
        policy=rules,
        comparison=comparison,
        error_rate={
            "baseline": comparison.errors["baseline"]["rate"],
            "candidate": comparison.errors["candidate"]["rate"],
        },
    )
    _decide(gate, comparison, base.repeats, confidence)
    _check_errors(gate, comparison)
    return gate


def _decide(
    gate: BenchmarkGate,
    comparison: BenchmarkComparison,
    repeats: int,
    confidence: float,
) -> None:
    difference = comparison.difference
    if difference is None:
        gate.reasons.append(comparison.reason)
        return
    rules = gate.policy
    gate.n_problems = difference.n
    gate.baseline_score = difference.baseline
    gate.candidate_score = difference.candidate
    gate.delta = difference.diff
    low, high = damage_interval(difference, rules.direction)
    gate.drop_ci = (low, high)
    threshold = _threshold(rules, difference.baseline, gate.reasons)
    gate.threshold = threshold
    gate.status = threshold_status(low, high, threshold)
    span = f"{confidence:.0%} CI of the drop [{low:+.4f}, {high:+.4f}]"
    if gate.status == "PASS":
        gate.reasons.append(f"{span} is within {threshold:.4f}")
    elif gate.status == "BREACH":
        gate.reasons.append(f"{span} is entirely beyond {threshold:.4f}")
    else:
        drop = comparison.drop or 0.0
        margin = abs(threshold - drop)
        needs = needed(difference, comparison.within_var, margin, repeats, confidence)
        gate.problems_needed, gate.repeats_needed = needs
        gate.reasons.append(
            f"{span} straddles {threshold:.4f}; "
            + describe_needs(*needs, difference.n, repeats)
        )


def _threshold(rules: ResolvedPolicy, baseline: float, reasons: list[str]) -> float:
    """max_drop, tightened by the relative guard where it applies."""
    threshold = rules.max_drop
    relative = rules.max_relative_drop
    guard = rules.relative_guard_below
    if relative is not None and (guard is None or baseline < guard):
        tightened = relative * abs(baseline)
        if tightened < threshold:
            reasons.append(
                f"relative guard: threshold {threshold:.4f} tightened to "
                f"{relative:.1%} of the baseline {baseline:.4f} = {tightened:.4f}"
            )
            threshold = tightened
    return threshold


def _check_errors(gate: BenchmarkGate, comparison: BenchmarkComparison) -> None:
    budget = gate.policy.max_error_rate
    errors = comparison.errors["candidate"]
    if budget is None or errors["rate"] <= budget:
        return
    gate.status = "BREACH"
    gate.reasons.append(
        f"candidate error rate {errors['errors']}/{errors['samples']} = "
        f"{errors['rate']:.2%} exceeds max_error_rate {budget:.2%} "
        "(errored samples are excluded from the scores, not counted as wrong)"
    )


def aggregate(gates: list[BenchmarkGate]) -> tuple[str, list[str]]:
    """GO / NO-GO / INCONCLUSIVE from the benchmark statuses, with reasons."""
    blocking = [g for g in gates if g.blocking]

    def named(status: str) -> list[str]:
        return [f"{g.benchmark} [{g.tier}]" for g in blocking if g.status == status]

    failed = [(s, named(s)) for s in ("BREACH", "MISSING") if named(s)]
    if failed:
        return "NO-GO", [f"{s}: {', '.join(n)}" for s, n in failed]
    unsure = named("INSUFFICIENT_EVIDENCE")
    if unsure:
        return "INCONCLUSIVE", [
            f"INSUFFICIENT_EVIDENCE: {', '.join(unsure)}",
            "add problems or repeats (see each benchmark), or relax the thresholds",
        ]
    if not blocking:
        return "GO", ["no critical or supporting benchmark to gate"]
    return "GO", [f"all {len(blocking)} gated benchmark(s) passed"]
