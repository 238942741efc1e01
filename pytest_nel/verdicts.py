"""Items decided from the whole run (error budgets; gates later), reported by the
controller.

Under xdist no single worker sees every sample, so these verdicts are computed by the
controller from results.jsonl after all items ran, and reported through the normal
report hooks: the terminal, ``--junitxml`` and the exit status all see them like any
item.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pytest_nel.run import NelRun

Outcome = Literal["passed", "failed", "skipped"]


def emit_report(
    session: pytest.Session,
    nodeid: str,
    outcome: Outcome,
    message: str,
    properties: list[tuple[str, object]],
    *,
    wasxfail: bool = False,
) -> None:
    """Report one synthetic item (passed, failed, skipped or xfailed) through pytest's
    hooks, so the terminal, JUnit and the exit status all see it.
    """
    hook = session.config.hook
    location = (nodeid.split("::")[0], None, nodeid)
    longrepr: Any = None
    if outcome == "failed":
        longrepr = message
    elif outcome == "skipped" and not wasxfail:
        longrepr = (location[0], None, f"Skipped: {message}")
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    report = pytest.TestReport(
        nodeid=nodeid,
        location=location,
        keywords={},
        outcome=outcome,
        longrepr=longrepr,
        when="call",
        user_properties=properties,
    )
    if wasxfail:
        report.wasxfail = message
        report.longrepr = message
    hook.pytest_runtest_logreport(report=report)
    # JUnit writes an item's properties when its teardown is reported.
    teardown = pytest.TestReport(
        nodeid=nodeid,
        location=location,
        keywords={},
        outcome="passed",
        longrepr=None,
        when="teardown",
        user_properties=properties,
    )
    hook.pytest_runtest_logreport(report=teardown)
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
    if outcome == "failed" and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def emit_error_budget_items(
    session: pytest.Session, run: NelRun, summaries: dict[str, dict[str, Any]]
) -> None:
    """One ``<benchmark>::error-budget`` item per benchmark.

    Only benchmarks that set ``error_budget`` get one.
    """
    for bench in run.benchmarks:
        budget = bench.config.error_budget
        summary = summaries.get(bench.name)
        if budget is None or summary is None:
            continue
        counts = summary["counts"]
        samples, errors = counts["samples"], counts["errors"]
        rate = errors / samples if samples else 0.0
        passed = rate <= budget
        message = (
            f"error rate {errors}/{samples} = {rate:.1%} "
            f"{'within' if passed else 'exceeds'} the error budget {budget:.1%}"
        )
        emit_report(
            session,
            f"{bench.name}::error-budget",
            "passed" if passed else "failed",
            message,
            [
                ("errors", errors),
                ("samples", samples),
                ("error_rate", round(rate, 6)),
                ("error_budget", budget),
            ],
        )
