"""Gate items inside the pytest run (``--nel-baseline``), through pytester."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import scipy.special  # noqa: F401

# Imported before pytester's in-process runs (it unloads modules first imported
# inside a run, and numpy/scipy extension modules cannot be loaded twice).
import pytest_nel.gate_items  # noqa: F401
from conftest import toy_rows
from pytest_nel.testing.fake_model import FakeModel


def run(pytester: pytest.Pytester, fake: FakeModel, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--nel-bench",
        "./toy_bench.py",
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "fake",
        "-p",
        "no:randomly",
        *args,
    )


def policy(pytester: pytest.Pytester, text: str) -> str:
    path = pytester.path / "policy.yaml"
    path.write_text(text)
    return str(path)


def make_baseline_better(folder: Path) -> None:
    """Rewrite a finished run's results as if every sample had been right."""
    path = folder / "toy" / "results.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for record in lines:
        record["reward"] = 1.0
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.fixture
def baseline(pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any) -> Path:
    """A finished run of 40 toy problems (30 answered wrong) in ``base``."""
    toy_bench(toy_rows(40, wrong=set(range(30))))
    run(pytester, fake, "--nel-output", "base").assert_outcomes(passed=40)
    return pytester.path / "base"


def test_same_model_passes_and_insufficient_evidence_skips(
    pytester: pytest.Pytester, fake: FakeModel, baseline: Path
) -> None:
    wide = policy(pytester, "version: 1\ndefaults: {max_drop: 0.1}\n")
    result = run(
        pytester, fake, "--nel-output", "out", "--nel-baseline", "base",
        "--nel-gate-policy", wide, "--junitxml", "junit.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=41)
    suite = ET.parse(pytester.path / "junit.xml").getroot()
    case = next(c for c in suite.iter("testcase") if c.get("name") == "gate")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["gate_status"] == "PASS" and props["tier"] == "supporting"
    gate = json.loads((pytester.path / "out" / "gate.json").read_text())
    assert gate["verdict"] == "GO"
    # No change seen, but 40 problems cannot rule out a drop of 0.05.
    narrow = policy(pytester, "version: 1\ndefaults: {max_drop: 0.05}\n")
    args = ["--nel-output", "out", "--nel-overwrite", "--nel-baseline", "base"]
    result = run(pytester, fake, *args, "--nel-gate-policy", narrow, "-rs")
    result.assert_outcomes(passed=40, skipped=1)
    result.stdout.fnmatch_lines(["*INSUFFICIENT_EVIDENCE*problems*"])
    result = run(pytester, fake, *args, "--nel-gate-policy", narrow, "--nel-strict")
    result.assert_outcomes(passed=40, failed=1)
    assert result.ret == 1


def test_breach_fails_advisory_xfails_missing_fails(
    pytester: pytest.Pytester, fake: FakeModel, baseline: Path
) -> None:
    make_baseline_better(baseline)
    text = "version: 1\nbenchmarks:\n  toy: {tier: critical}\n  other: {}\n"
    args = ["--nel-output", "out", "--nel-baseline", "base"]
    result = run(pytester, fake, *args, "--nel-gate-policy", policy(pytester, text))
    result.assert_outcomes(passed=40, failed=2)
    result.stdout.fnmatch_lines(
        ["FAILED other::gate - MISSING*", "FAILED toy::gate - BREACH [[]critical[]]*"]
    )
    text = "version: 1\nbenchmarks:\n  toy: {tier: advisory}\n"
    args += ["--nel-overwrite", "--nel-gate-policy", policy(pytester, text)]
    result = run(pytester, fake, *args)
    result.assert_outcomes(passed=40, xfailed=1)
    assert result.ret == 0


def test_bad_gate_options_stop_the_run_before_any_request(
    pytester: pytest.Pytester, fake: FakeModel, baseline: Path
) -> None:
    bad = policy(pytester, "version: 1\nbenchmarks:\n  toy: {tier: crit}\n")
    args = ["--nel-output", "out", "--nel-baseline", "base"]
    fake.reset()
    result = run(pytester, fake, *args, "--nel-gate-policy", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*benchmarks.toy.tier: 'crit' is not one of*"])
    result = run(pytester, fake, "--nel-output", "out", "--nel-gate-policy", bad)
    result.stderr.fnmatch_lines(["*--nel-gate-policy needs --nel-baseline DIR*"])
    result = run(pytester, fake, *args, "--nel-override", "benchmarks.0.repeats=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not comparable*", "*task.repeats: 1 -> 2*"])
    assert not fake.requests()
