"""Quality gates inside the pytest run: one ``<benchmark>::gate`` item per benchmark.

``pytest --nel-config c.yaml --nel-baseline DIR [--nel-gate-policy policy.yaml]
[--nel-strict]`` (``nel eval run ... --baseline DIR --gate-policy FILE --strict``)
gates this run against the baseline folder with :func:`pytest_nel.gate.evaluate_gate`
after all samples ran. The controller reports each benchmark's decision as an item
through the normal report hooks (like the error-budget items of
:mod:`pytest_nel.verdicts`), so the terminal, ``--junitxml`` and the exit status
show it:

* ``PASS`` passes;
* ``BREACH`` and ``MISSING`` fail (xfail for advisory benchmarks);
* ``INSUFFICIENT_EVIDENCE`` skips, or fails under ``--nel-strict`` (advisory:
  always skips).

The options are checked when the run is configured, before any model call: the
policy is validated, the baseline folder read, and each benchmark's task
fingerprint compared with the baseline's, so a gate that could never be evaluated
stops the run at once (exit 4). The :class:`~pytest_nel.gate.GateResult` is kept
in ``config.stash[GATE_RESULT_KEY]`` and written to ``<output>/gate.json`` and
``gate.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_nel.exceptions import NelUsageError, ResultsError
from pytest_nel.gate import BenchmarkGate, GateResult, Policy
from pytest_nel.runs import Run
from pytest_nel.verdicts import Outcome, emit_report

if TYPE_CHECKING:
    from pytest_nel.run import NelRun

__all__ = ["GATE_KEY", "GATE_RESULT_KEY", "GateSetup", "emit_gate_items", "setup_gate"]


@dataclass
class GateSetup:
    """The gate of this run, checked at configure time."""

    baseline: Run
    policy: Policy
    strict: bool


GATE_KEY = pytest.StashKey[GateSetup]()
GATE_RESULT_KEY = pytest.StashKey[GateResult]()


def setup_gate(config: pytest.Config, run: NelRun) -> None:
    """Validate the gate options and the baseline (controller or single process).

    Raises:
        NelUsageError: A policy without a baseline, a bad policy, an unreadable
            baseline, or a baseline whose task fingerprint differs.
    """
    baseline = config.getoption("nel_baseline")
    policy_path = config.getoption("nel_gate_policy")
    if not baseline:
        if policy_path:
            raise NelUsageError("--nel-gate-policy needs --nel-baseline DIR")
        return
    from pytest_nel.gate import default_policy, load_policy
    from pytest_nel.runs import load_run

    if Path(baseline).resolve() == run.output.resolve():
        raise NelUsageError(
            f"--nel-baseline {baseline} is this run's own output folder; "
            "give the baseline run's folder"
        )
    policy = load_policy(policy_path) if policy_path else default_policy()
    names = {b.name for b in run.benchmarks} | set(policy.benchmarks)
    base = load_run(Path(baseline), only=names)
    _check_tasks(run, base)
    config.stash[GATE_KEY] = GateSetup(base, policy, config.getoption("nel_strict"))


def _check_tasks(run: NelRun, base: Run) -> None:
    from pytest_nel.results import fingerprint_diff

    for bench in run.benchmarks:
        stored = base.benchmarks.get(bench.name)
        if stored is None or stored.fingerprint is None:
            continue
        diffs = fingerprint_diff(
            stored.fingerprint.get("task") or {},
            bench.fingerprint(None)["task"],
            "task.",
        )
        if diffs:
            raise NelUsageError(
                f"--nel-baseline: {bench.name} is not comparable with "
                f"{stored.path}; the task differs:\n  " + "\n  ".join(diffs)
            )


def emit_gate_items(session: pytest.Session, run: NelRun, *, interrupted: bool) -> None:
    """Evaluate the gate and report one ``<benchmark>::gate`` item per benchmark."""
    setup = session.config.stash.get(GATE_KEY, None)
    if setup is None:
        return
    if interrupted:
        for bench in run.benchmarks:
            emit_report(
                session, f"{bench.name}::gate", "skipped", "run interrupted", []
            )
        return
    from pytest_nel.gate import evaluate_gate
    from pytest_nel.verdict_text import render_gate

    try:
        result = evaluate_gate(
            setup.baseline, _candidate(run), setup.policy, allow_partial=True
        )
    except NelUsageError as exc:
        for bench in run.benchmarks:
            emit_report(session, f"{bench.name}::gate", "failed", str(exc), [])
        return
    session.config.stash[GATE_RESULT_KEY] = result
    (run.output / "gate.json").write_text(render_gate(result, "json"), "utf-8")
    (run.output / "gate.md").write_text(render_gate(result, "markdown"), "utf-8")
    for gate in result.benchmarks:
        outcome, wasxfail = _outcome(gate, setup.strict)
        message = f"{gate.status} [{gate.tier}]: " + "; ".join(gate.reasons)
        emit_report(
            session,
            f"{gate.benchmark}::gate",
            outcome,
            message,
            _properties(gate),
            wasxfail=wasxfail,
        )


def _candidate(run: NelRun) -> Run:
    """This run's results, one benchmark at a time (a benchmark with no samples is
    left out, so a listed one becomes MISSING)."""
    from pytest_nel.runs import PYTEST_NEL, load_run

    benchmarks = {}
    for bench in run.benchmarks:
        try:
            loaded = load_run(bench.dir, allow_partial=True)
        except ResultsError:
            continue
        benchmarks.update(loaded.benchmarks)
    return Run(run.output, benchmarks, PYTEST_NEL)


def _outcome(gate: BenchmarkGate, strict: bool) -> tuple[Outcome, bool]:
    """``(outcome, reported as xfail)`` of one benchmark's gate item."""
    if gate.status == "PASS":
        return "passed", False
    if gate.status == "INSUFFICIENT_EVIDENCE":
        return ("failed" if strict and gate.blocking else "skipped"), False
    if not gate.blocking:
        return "skipped", True
    return "failed", False


def _properties(gate: BenchmarkGate) -> list[tuple[str, object]]:
    props: list[tuple[str, object]] = [
        ("gate_status", gate.status),
        ("tier", gate.tier),
        ("metric", gate.metric),
        ("baseline_score", gate.baseline_score),
        ("candidate_score", gate.candidate_score),
        ("delta", gate.delta),
        ("drop_ci_lower", gate.drop_ci[0] if gate.drop_ci else None),
        ("drop_ci_upper", gate.drop_ci[1] if gate.drop_ci else None),
        ("threshold", gate.threshold),
        ("n_problems", gate.n_problems),
        ("problems_needed", gate.problems_needed),
        ("repeats_needed", gate.repeats_needed),
        ("error_rate", gate.error_rate.get("candidate")),
    ]
    return [(k, round(v, 6) if isinstance(v, float) else v) for k, v in props]
