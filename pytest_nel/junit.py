"""JUnit XML: suite-level properties for ``--junitxml`` and the gate-only file.

Per-sample properties (``reward``, ``expected``, ``extracted``, ``error_category``) are
the items' ``user_properties`` (see :mod:`pytest_nel.sampler`); pytest's junitxml
plugin writes them on each ``<testcase>``. The run's scores go on the ``<testsuite>``
as ``<properties>``, added by the controller at session finish (before pytest's
junitxml plugin writes the file, and under ``-n`` only the controller writes it)::

    nel.<benchmark>.<metric>            the value (pass@1, pass@k, mean_reward)
    nel.<benchmark>.<metric>.ci_lower   95% interval, its method and n
    nel.<benchmark>.<metric>.ci_upper
    nel.<benchmark>.<metric>.n
    nel.<benchmark>.<metric>.method
    nel.<benchmark>.samples / .errors / .complete
    nel.<benchmark>.gate                the gate status, when a gate ran
    nel.gate.verdict                    GO / NO-GO / INCONCLUSIVE, when a gate ran

:func:`write_gate_junit` writes ``nel gate --junit FILE``: one ``<testcase>`` per gated
benchmark (PASS passes; BREACH and MISSING fail, or are skipped for the advisory tier;
INSUFFICIENT_EVIDENCE is skipped, or fails with ``strict``), with the gate's numbers as
suite properties.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_nel.report_sections import difference, entries, number, reasons, threshold

__all__ = [
    "add_suite_properties",
    "gate_of_run",
    "suite_properties",
    "write_gate_junit",
]

_FAILING = {"BREACH", "MISSING"}
_UNDECIDED = {"INSUFFICIENT_EVIDENCE", "INCONCLUSIVE"}


def suite_properties(
    summaries: dict[str, dict[str, Any]], gate: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """The ``(name, value)`` suite properties of a run (see the module docstring)."""
    props: list[tuple[str, str]] = []
    for bench, summary in summaries.items():
        for metric, m in summary.get("metrics", {}).items():
            key = f"nel.{bench}.{metric}"
            props.append((key, _num(m.get("value"))))
            props += [
                (f"{key}.ci_lower", _num(m.get("ci_lower"))),
                (f"{key}.ci_upper", _num(m.get("ci_upper"))),
                (f"{key}.n", str(m.get("n", ""))),
                (f"{key}.method", str(m.get("method", ""))),
            ]
        counts = summary.get("counts", {})
        props += [
            (f"nel.{bench}.samples", str(counts.get("samples", ""))),
            (f"nel.{bench}.errors", str(counts.get("errors", ""))),
            (f"nel.{bench}.complete", str(summary.get("complete", True)).lower()),
        ]
    if gate is not None:
        for name, entry in entries(gate):
            props.append((f"nel.{name}.gate", _status(entry)))
        props.append(("nel.gate.verdict", str(gate.get("verdict", ""))))
    return props


def add_suite_properties(
    config: pytest.Config,
    summaries: dict[str, dict[str, Any]],
    gate: dict[str, Any] | None = None,
) -> bool:
    """Add the run's suite properties to pytest's ``--junitxml`` report.

    Call it in the process that writes the XML (single process or xdist controller)
    after the in-run gate was evaluated (its result is read from the config's stash
    when ``gate`` is None) and before pytest's junitxml plugin finishes the session.

    Returns:
        False when ``--junitxml`` is not in use (nothing to add to).
    """
    from _pytest.junitxml import xml_key  # the key record_testsuite_property uses

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return False
    if gate is None:
        gate = gate_of_run(config)
    for name, value in suite_properties(summaries, gate):
        xml.add_global_property(name, value)
    return True


def gate_of_run(config: pytest.Config) -> dict[str, Any] | None:
    """The in-run gate's result (``--nel-baseline``), when one was evaluated."""
    from pytest_nel.gate_items import GATE_RESULT_KEY

    result = config.stash.get(GATE_RESULT_KEY, None)
    return result.to_dict() if result is not None else None


def write_gate_junit(
    gate_result: dict[str, Any], path: Path | str, *, strict: bool = False
) -> Path:
    """Write a gate-only JUnit XML file from ``GateResult.to_dict()``.

    Args:
        gate_result: The gate result as plain data (what ``nel gate -o`` writes).
        path: Where to write the XML (parent folders are created).
        strict: Fail benchmarks with insufficient evidence instead of skipping them.

    Returns:
        The path written.
    """
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    cases = [_gate_case(TestCase, name, e, strict) for name, e in entries(gate_result)]
    properties = {"nel.gate.verdict": str(gate_result.get("verdict", ""))}
    for key in ("baseline", "candidate", "policy"):
        value = gate_result.get(key)
        if value is not None:
            text = (
                value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            )
            properties[f"nel.gate.{key}"] = text
    for name, entry in entries(gate_result):
        numbers = _gate_numbers(entry)
        properties.update({f"nel.gate.{name}.{k}": v for k, v in numbers.items()})
    suite = TestSuite("nel-gate", cases, properties=properties)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_xml_report_string([suite], encoding="utf-8"), encoding="utf-8")
    return out


def _gate_case(case_type: Any, name: str, entry: dict[str, Any], strict: bool) -> Any:
    tier = str(entry.get("tier") or "default")
    status = _status(entry)
    reason = "; ".join(reasons(entry)) or status
    case = case_type(
        name=name,
        classname=f"nel.gate.{tier}",
        stdout="\n".join(f"{k}={v}" for k, v in _gate_numbers(entry).items()),
    )
    message = f"{status}: {reason}" if reason != status else status
    if status in _FAILING:
        if tier == "advisory":
            case.add_skipped_info(message=f"advisory tier, not blocking: {message}")
        else:
            case.add_failure_info(message=message, failure_type=status)
    elif status in _UNDECIDED:
        if strict:
            case.add_failure_info(message=message, failure_type=status)
        else:
            case.add_skipped_info(message=message)
    return case


def _gate_numbers(entry: dict[str, Any]) -> dict[str, str]:
    d = difference(entry)
    found = {
        "status": _status(entry),
        "tier": entry.get("tier"),
        "metric": entry.get("metric"),
        "baseline": number(d, "baseline"),
        "candidate": number(d, "candidate"),
        "diff": number(d, "diff"),
        "ci_lower": number(d, "ci_lower"),
        "ci_upper": number(d, "ci_upper"),
        "n": number(d, "n"),
        "threshold": threshold(entry, {}),
        "problems_needed": number(entry, "problems_needed"),
        "repeats_needed": number(entry, "repeats_needed"),
        "error_rate": number(entry.get("error_rate"), "candidate"),
    }
    return {
        k: _num(v) if isinstance(v, float) else str(v)
        for k, v in found.items()
        if v is not None
    }


def _status(entry: dict[str, Any]) -> str:
    return str(entry.get("status") or entry.get("verdict") or "")


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)
