"""JUnit XML, read back with a JUnit reader (junitparser).

``--junitxml`` carries per-sample properties on each testcase and the run's scores as
suite properties, in one process and under ``-n 2``; ``nel gate --junit FILE`` writes
a gate-only file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import xunit2
from report_runs import write_run

from conftest import toy_rows
from pytest_nel.cli import main
from pytest_nel.gate import Policy, evaluate_gate
from pytest_nel.junit import suite_properties, write_gate_junit
from pytest_nel.testing.fake_model import FakeModel


def read_suite(path: Path) -> xunit2.TestSuite:
    suites = list(xunit2.JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return suites[0]


def properties(node: Any) -> dict[str, str]:
    return {p.name: p.value for p in node.properties()}


@pytest.mark.parametrize("workers", [0, 2])
def test_junitxml_has_sample_and_suite_properties(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any, workers: int
) -> None:
    toy_bench(toy_rows(12, wrong={3}, extra={5: "FAULT: 400"}))
    args = [
        *("--nel-bench", "./toy_bench.py", "--nel-model-url", fake.base_url),
        *("--nel-model-id", "fake", "--nel-output", "out", "--junitxml=junit.xml"),
        *("-p", "no:randomly", "-p", "no:cacheprovider"),
    ]
    if workers:
        result = pytester.runpytest_subprocess(*args, "-n", str(workers))
    else:
        result = pytester.runpytest(*args)
    result.assert_outcomes(passed=11, failed=1)
    suite = read_suite(pytester.path / "junit.xml")
    cases = {case.name: case for case in suite}
    assert len(cases) == 12
    right, wrong, errored = cases["0-r0"], cases["3-r0"], cases["5-r0"]
    assert right.classname == "toy" and right.is_passed
    assert properties(right) == {"reward": "1.0", "expected": "0", "extracted": "0"}
    assert properties(wrong)["reward"] == "0.0"
    assert properties(wrong)["extracted"] == "x"
    assert properties(errored) == {"error_category": "model_error"}
    assert errored.is_failure
    props = properties(suite)
    stored = json.loads((pytester.path / "out/toy/summary.json").read_text())
    m = stored["metrics"]["pass@1"]
    assert float(props["nel.toy.pass@1"]) == pytest.approx(m["value"], abs=1e-6)
    assert float(props["nel.toy.pass@1.ci_lower"]) == pytest.approx(m["ci_lower"])
    assert float(props["nel.toy.pass@1.ci_upper"]) == pytest.approx(m["ci_upper"])
    assert props["nel.toy.pass@1.n"] == "11" and props["nel.toy.pass@1.method"]
    assert (props["nel.toy.samples"], props["nel.toy.errors"]) == ("12", "1")


@pytest.fixture
def gate_runs(tmp_path: Path) -> tuple[Path, Path]:
    """quiz drops a lot (critical), side too (advisory), tiny is too small to say."""
    base = write_run(
        tmp_path / "base",
        model="a",
        benchmarks={"quiz": {"c": 0.8}, "side": {"c": 0.8}},
        problems=200,
        seed=1,
    )
    write_run(base, model="a", benchmarks={"tiny": {"c": 0.5}}, problems=20, seed=5)
    cand = write_run(
        tmp_path / "cand",
        model="b",
        benchmarks={"quiz": {"c": 0.5}, "side": {"c": 0.5}},
        problems=200,
        seed=2,
    )
    write_run(cand, model="b", benchmarks={"tiny": {"c": 0.5}}, problems=20, seed=6)
    return base, cand


POLICY = {
    "version": 1,
    "defaults": {"tier": "supporting", "max_drop": 0.01},
    "benchmarks": {
        "quiz": {"tier": "critical", "max_drop": 0.02},
        "side": {"tier": "advisory"},
        "absent": {"tier": "supporting"},
    },
}


def test_gate_junit_file(gate_runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, cand = gate_runs
    gate = evaluate_gate(base, cand, Policy.model_validate(POLICY)).to_dict()
    statuses = {b["benchmark"]: b["status"] for b in gate["benchmarks"]}
    assert statuses == {
        "quiz": "BREACH",
        "side": "BREACH",
        "tiny": "INSUFFICIENT_EVIDENCE",
        "absent": "MISSING",
    }
    suite = read_suite(write_gate_junit(gate, tmp_path / "gate.xml"))
    cases = {case.name: case for case in suite}
    assert cases["quiz"].classname == "nel.gate.critical" and cases["quiz"].is_failure
    assert "BREACH" in cases["quiz"].result[0].message
    assert cases["absent"].is_failure and cases["side"].is_skipped
    assert "advisory" in cases["side"].result[0].message
    assert cases["tiny"].is_skipped
    assert "problems_needed=" in (cases["tiny"].system_out or "")
    props = properties(suite)
    assert props["nel.gate.verdict"] == "NO-GO"
    assert props["nel.gate.quiz.status"] == "BREACH"
    assert float(props["nel.gate.quiz.diff"]) < -0.2
    assert float(props["nel.gate.quiz.threshold"]) == 0.02
    json.loads(props["nel.gate.policy"])
    strict = read_suite(write_gate_junit(gate, tmp_path / "s.xml", strict=True))
    assert {c.name: c for c in strict}["tiny"].is_failure
    assert {k: v for k, v in suite_properties({}, gate)} == {
        "nel.absent.gate": "MISSING",
        "nel.quiz.gate": "BREACH",
        "nel.side.gate": "BREACH",
        "nel.tiny.gate": "INSUFFICIENT_EVIDENCE",
        "nel.gate.verdict": "NO-GO",
    }


def test_nel_gate_junit_option(gate_runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, cand = gate_runs
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps(POLICY))  # JSON is YAML
    out = tmp_path / "ci" / "gate.xml"
    code = main(["gate", str(base), str(cand), "-p", str(policy), "--junit", str(out)])
    assert code == 1
    suite = read_suite(out)
    assert suite.tests == 4 and suite.failures == 2 and suite.skipped == 2


def test_in_run_gate_reaches_suite_properties_and_report(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(40, wrong={3}))
    args = [
        *("--nel-bench", "./toy_bench.py", "--nel-model-url", fake.base_url),
        *("--nel-model-id", "fake", "-p", "no:randomly", "-p", "no:cacheprovider"),
    ]
    pytester.runpytest(*args, "--nel-output", "base").assert_outcomes(passed=40)
    result = pytester.runpytest(
        *args,
        *("--nel-output", "cand", "--nel-baseline", "base", "--junitxml=junit.xml"),
        *("--nel-override", "output.report_formats=[html]"),
    )
    suite = read_suite(pytester.path / "junit.xml")
    gate_case = {case.name: case for case in suite}["gate"]
    status = properties(gate_case)["gate_status"]
    # The same answers on 40 problems cannot rule out a drop of 0.015.
    assert status == "INSUFFICIENT_EVIDENCE" and gate_case.is_skipped
    result.assert_outcomes(passed=40, skipped=1)
    props = properties(suite)
    assert props["nel.toy.gate"] == status
    verdict = json.loads((pytester.path / "cand/gate.json").read_text())["verdict"]
    assert props["nel.gate.verdict"] == verdict == "INCONCLUSIVE"
    page = (pytester.path / "cand/report.html").read_text()
    assert "Quality gate" in page and ">INSUFFICIENT EVIDENCE</span>" in page
