"""Items decided from the whole run (error budgets; gates later), reported by the
controller.

Under xdist no single worker sees every sample, so these verdicts are computed by the
controller from results.jsonl after all items ran, and reported through the normal
report hooks: the terminal, ``--junitxml`` and the exit status all see them like any
item.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_nel.run import NelRun


def emit_report(
    session: pytest.Session,
    nodeid: str,
    *,
    passed: bool,
    message: str,
    properties: list[tuple[str, object]],
) -> None:
    """Report one synthetic item through pytest's hooks.

    The terminal, JUnit and the exit status all see it.
    """
    hook = session.config.hook
    location = (nodeid.split("::")[0], None, nodeid)
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    report = pytest.TestReport(
        nodeid=nodeid,
        location=location,
        keywords={},
        outcome="passed" if passed else "failed",
        longrepr=None if passed else message,
        when="call",
        user_properties=properties,
    )
    hook.pytest_runtest_logreport(report=report)
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
    if not passed and session.exitstatus == pytest.ExitCode.OK:
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
            passed=passed,
            message=message,
            properties=[
                ("errors", errors),
                ("samples", samples),
                ("error_rate", round(rate, 6)),
                ("error_budget", budget),
            ],
        )
