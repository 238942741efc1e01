"""``nel gate``: the policy file, per-benchmark statuses, the verdict and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_nel.cli import main
from pytest_nel.exceptions import PolicyError
from pytest_nel.gate import Policy, evaluate_gate, load_policy
from pytest_nel.testing.fake_runs import write_benchmark

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"


def ones(n: int, wrong: int = 0) -> np.ndarray:
    rewards = np.ones((n, 1))
    rewards[:wrong] = 0.0
    return rewards


def policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\ndefaults: {max_dropp: 0.1}\n", "defaults.max_dropp: unknown key"),
        ("version: 1\nbenchmarks:\n  g: {tier: crit}\n", "benchmarks.g.tier: 'crit'"),
        ("version: 1\nthresholds: {}\n", "thresholds: unknown key (allowed: version"),
        ("version: 2\n", "only version 1 is supported"),
        ("version: 1\nbenchmarks:\n  g: {max_drop: -1}\n", "benchmarks.g.max_drop"),
        ("version: 1\ndefaults: {max_error_rate: 2}\n", "defaults.max_error_rate"),
        ("- 1\n", "must be a mapping"),
        ("version: [1\n", "malformed YAML"),
    ],
)
def test_bad_policies_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(policy_file(tmp_path, text))


def test_defaults_and_examples() -> None:
    with pytest.raises(PolicyError, match="cannot read gate policy"):
        load_policy("/nonexistent/policy.yaml")
    rules = Policy().resolve("anything")
    assert (rules.tier, rules.max_drop, rules.direction) == (
        "supporting",
        0.015,
        "higher_is_better",
    )
    for path in sorted(EXAMPLES.glob("*.yaml")):
        load_policy(path)
    release = load_policy(EXAMPLES / "release.yaml")
    assert release.resolve("gsm8k").tier == "critical"
    assert release.resolve("math500").max_error_rate == 0.02


# ---------------------------------------------------------------------- decisions


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Baseline and candidate with four benchmarks of 2000 problems.

    same: no change; worse: 10 points worse; unsure: 30 problems, no change;
    flaky: no change in scores, but 5% of the candidate's samples errored.
    """
    base, cand = tmp_path / "base", tmp_path / "cand"
    errors = np.zeros((2000, 1), bool)
    errors[::20] = True
    for root, worse in ((base, 0), (cand, 200)):
        write_benchmark(root, "same", ones(2000))
        write_benchmark(root, "worse", ones(2000, worse))
        write_benchmark(root, "unsure", ones(30))
        write_benchmark(
            root, "flaky", ones(2000), errors=errors if root == cand else None
        )
    return base, cand


def test_statuses_and_verdicts(runs: tuple[Path, Path]) -> None:
    text = """
version: 1
defaults: {tier: critical, max_drop: 0.02}
benchmarks:
  worse: {tier: advisory}
  unsure: {}
  flaky: {max_error_rate: 0.01}
  absent: {tier: supporting}
"""
    policy = Policy.model_validate(__import__("yaml").safe_load(text))
    result = evaluate_gate(*runs, policy)
    status = {g.benchmark: g.status for g in result.benchmarks}
    assert status == {
        "absent": "MISSING",
        "flaky": "BREACH",
        "same": "PASS",
        "unsure": "INSUFFICIENT_EVIDENCE",
        "worse": "BREACH",
    }
    assert result.verdict == "NO-GO"
    assert result.reasons == [
        "BREACH: flaky [critical]",
        "MISSING: absent [supporting]",
    ]
    flaky = next(g for g in result.benchmarks if g.benchmark == "flaky")
    # Errored samples are left out of the scores, not counted as wrong.
    assert flaky.candidate_score == 1.0 and flaky.error_rate["candidate"] == 0.05
    assert "exceeds max_error_rate 1.00%" in flaky.reasons[-1]
    unsure = next(g for g in result.benchmarks if g.benchmark == "unsure")
    assert unsure.problems_needed is not None and unsure.problems_needed > 30


def test_advisory_never_blocks_and_inconclusive(runs: tuple[Path, Path]) -> None:
    policy = Policy.model_validate(
        {
            "defaults": {"max_drop": 0.02},
            "benchmarks": {"worse": {"tier": "advisory"}},
        }
    )
    base, cand = runs
    result = evaluate_gate(base, cand, policy)
    assert result.verdict == "INCONCLUSIVE"  # unsure straddles; worse is advisory
    assert result.exit_code() == 2 and result.exit_code(strict=True) == 1
    assert "INSUFFICIENT_EVIDENCE: unsure [supporting]" in result.reasons[0]


def test_relative_guard_tightens_the_threshold(tmp_path: Path) -> None:
    low_base = np.zeros((4000, 1))
    low_base[:400] = 1.0  # baseline 10%
    low_cand = low_base.copy()
    low_cand[:40] = 0.0  # candidate 9%: 1 point absolute, 10% relative
    write_benchmark(tmp_path / "base", "aime", low_base)
    write_benchmark(tmp_path / "cand", "aime", low_cand)
    rules = {"max_drop": 0.02, "max_relative_drop": 0.05, "relative_guard_below": 0.2}
    guarded = Policy.model_validate({"benchmarks": {"aime": rules}})
    gate = evaluate_gate(tmp_path / "base", tmp_path / "cand", guarded).benchmarks[0]
    assert gate.threshold == pytest.approx(0.005) and gate.status == "BREACH"
    assert "relative guard" in gate.reasons[0]
    rules["relative_guard_below"] = 0.05  # baseline above the guard: absolute only
    plain = Policy.model_validate({"benchmarks": {"aime": rules}})
    gate = evaluate_gate(tmp_path / "base", tmp_path / "cand", plain).benchmarks[0]
    assert gate.threshold == 0.02 and gate.status == "PASS"


# ---------------------------------------------------------------------- CLI


def test_cli(
    tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = (str(p) for p in runs)
    go = policy_file(tmp_path, "version: 1\nbenchmarks:\n  same: {tier: critical}\n")
    out, md = tmp_path / "gate.json", tmp_path / "gate.md"
    code = main(["gate", base, cand, "--policy", str(go), "-o", str(out)])
    assert code == 1  # unlisted benchmarks get the defaults: worse is a BREACH
    capsys.readouterr()
    advisory = "version: 1\ndefaults: {tier: advisory}\nbenchmarks:\n  same: {}\n"
    go.write_text(advisory)
    argv = ["gate", base, cand, "--policy", str(go), "--report", str(md)]
    assert main([*argv, "--strict"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("GO") and "no critical or supporting" in text
    assert md.read_text().startswith("## nel gate: GO")
    assert json.loads(out.read_text())["kind"] == "gate"
    go.write_text("version: 1\nbenchmarks:\n  worse: {tier: critical}\n")
    assert main(["gate", base, cand, "--policy", str(go), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "NO-GO"
    go.write_text("version: 1\nbenchmarks:\n  worse: {tier: blocking}\n")
    assert main(["gate", base, cand, "--policy", str(go)]) == 4
    assert "benchmarks.worse.tier: 'blocking' is not one of" in capsys.readouterr().err
