"""``nel validate``, the oracle solver and ``scoring.metrics`` named scorers, end to end
(pytester in-process runs, and the real ``nel`` command in a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_nel.cli import build_parser, main
from pytest_nel.cli_validate import validate_pytest_args
from pytest_nel.testing.fake_model import FakeModel

FIXTURES = Path(__file__).parent / "fixtures"
ORACLE = ("--nel-override", "__all_benchmarks__.solver.type=oracle")

BROKEN_BENCH = """
from pytest_nel import benchmark, scorer, ScorerInput, numeric_match

@benchmark(name="broken", dataset="data.jsonl", prompt="Q: {question}",
           target_field="answer", oracle=lambda row: "The answer is 10")
@scorer
def broken(sample: ScorerInput) -> dict:
    return numeric_match(sample)
"""

MATH_BENCH = """
from pytest_nel import benchmark, scorer, ScorerInput, math_equivalence

@benchmark(name="mathy", dataset="data.jsonl", prompt="Q: {question}\\n{say}",
           target_field="answer")
@scorer
def mathy(sample: ScorerInput) -> dict:
    return math_equivalence(sample)
"""


def _summary(root: Path, bench: str) -> dict[str, Any]:
    return json.loads((root / "out" / bench / "summary.json").read_text())


def _records(root: Path, bench: str) -> list[dict[str, Any]]:
    path = root / "out" / bench / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _nel(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "pytest_nel.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=240,
    )


def _write_rows(root: Path, rows: list[dict[str, Any]]) -> None:
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


# --------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("name", ["gsm8k", "mmlu", "mmlu_pro", "math500", "mgsm"])
def test_an_oracle_run_needs_no_model_and_scores_100_percent(
    name: str,
    pytester: pytest.Pytester,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    result = pytester.runpytest(
        "--nel-bench", name, *ORACLE, "--nel-max-problems", "40", "--nel-output", "out"
    )
    result.assert_outcomes(passed=40)
    summary = _summary(pytester.path, name)
    assert summary["metrics"]["pass@1"]["value"] == 1.0
    assert summary["counts"]["unparsed"] == 0
    assert summary["fingerprint"]["model"] == {
        "model": "oracle",
        "service_type": "oracle",
    }
    assert summary["fingerprint"]["endpoint"] is None
    record = _records(pytester.path, name)[0]
    assert record["tokens"] == {"prompt": 0, "completion": 0, "reasoning": 0}
    if name == "math500":
        assert any(c.startswith("subject=") for c in summary["categories"])
        assert any(c.startswith("level=") for c in summary["categories"])
        assert record["scoring_details"]["checker"] == "string"


def test_an_oracle_solver_takes_no_model_settings(pytester: pytest.Pytester) -> None:
    config = pytester.path / "eval.yaml"
    config.write_text(
        "benchmarks:\n  - name: gsm8k\n"
        "    solver: {type: oracle, service: x, system_prompt: hi}\n"
    )
    result = pytester.runpytest("--nel-config", str(config))
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*benchmarks[[]0[]].solver*oracle calls no model; "
            "remove service, system_prompt*"
        ]
    )


def test_without_a_model_only_oracle_runs_are_allowed(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--nel-bench", "gsm8k")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*needs --nel-model-url and --nel-model-id*"])


# --------------------------------------------------------------------------- scoring


def test_a_config_replaces_the_scorer_by_a_named_one(
    pytester: pytest.Pytester, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    config = pytester.path / "eval.yaml"
    config.write_text(
        "benchmarks:\n  - name: gsm8k\n    max_problems: 20\n"
        "    solver: {type: oracle}\n"
        "    scoring: {metrics: [{type: scorer, name: math_equivalence}]}\n"
        "output: {dir: out}\n"
    )
    result = pytester.runpytest("--nel-config", str(config))
    result.assert_outcomes(passed=20)
    summary = _summary(pytester.path, "gsm8k")
    assert summary["metrics"]["pass@1"]["value"] == 1.0
    assert summary["fingerprint"]["task"]["scorer_version"] == "scorer:math_equivalence"
    details = _records(pytester.path, "gsm8k")[0]["scoring_details"]
    assert details["method"] == "hash" and details["checker"] in ("string", "numeric")


@pytest.mark.parametrize(
    ("scoring", "message"),
    [
        (
            "{metrics: [{type: scorer, name: nope}]}",
            "*benchmarks[[]gsm8k[]].scoring.metrics[[]0[]].name: unknown scorer 'nope';"
            " known scorers: *exact_match*math_equivalence*numeric_match*",
        ),
        (
            "{metrics: [{type: scorer, name: f1}, {type: scorer, name: exact_match}]}",
            "*scoring.metrics*one scorer per benchmark*",
        ),
        (
            "{metrics: [{type: judge, name: f1}]}",
            "*scoring.metrics[[]0[]].type: Input should be 'scorer' (got 'judge')",
        ),
        ("{metric: []}", "*scoring.metric: unknown key*"),
    ],
)
def test_a_bad_scoring_block_is_a_usage_error_naming_the_key(
    scoring: str, message: str, pytester: pytest.Pytester
) -> None:
    config = pytester.path / "eval.yaml"
    config.write_text(
        f"benchmarks:\n  - name: gsm8k\n    solver: {{type: oracle}}\n"
        f"    scoring: {scoring}\n"
    )
    result = pytester.runpytest("--nel-config", str(config))
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])


def test_a_checker_timeout_in_a_run_is_a_flagged_zero_not_an_error(
    pytester: pytest.Pytester, fake: FakeModel
) -> None:
    _write_rows(
        pytester.path,
        [
            {"question": "1", "answer": "1", "say": "SAY: \\boxed{9^{9^{9^{9}}}}"},
            {"question": "2", "answer": "x^2+2x+1", "say": "SAY: \\boxed{(x+1)^2}"},
        ],
    )
    (pytester.path / "math_bench.py").write_text(MATH_BENCH)
    config = pytester.path / "eval.yaml"
    config.write_text(
        f"services:\n  fake: {{type: api, url: '{fake.base_url}', model: fake}}\n"
        "benchmarks:\n  - name: ./math_bench.py\n    params: {math_timeout_s: 1}\n"
        "output: {dir: out}\n"
    )
    result = pytester.runpytest("--nel-config", str(config))
    result.assert_outcomes(passed=2)
    by_question = {r["problem_idx"]: r for r in _records(pytester.path, "mathy")}
    exploded, fine = by_question[0], by_question[1]
    assert exploded["status"] == "scored" and exploded["reward"] == 0.0
    assert exploded["scoring_details"]["checker_timeout"] is True
    assert fine["reward"] == 1.0 and fine["scoring_details"]["checker"] == "math_verify"


# ----------------------------------------------------------------------- nel validate


def test_validate_builds_oracle_or_model_pytest_arguments(tmp_path: Path) -> None:
    parser = build_parser()
    oracle = parser.parse_args(["validate", "-b", "gsm8k", "--max-problems", "5"])
    assert validate_pytest_args(oracle, tmp_path, ["-x"]) == [
        "-q",
        "-p",
        "no:cacheprovider",
        "--nel-output",
        str(tmp_path),
        "--nel-bench",
        "gsm8k",
        *ORACLE,
        "--nel-max-problems",
        "5",
        "-x",
    ]
    model = parser.parse_args(
        ["validate", "-b", "mgsm", "--model-url", "http://h/v1", "--model-id", "m"]
    )
    args = validate_pytest_args(model, tmp_path)
    assert "__all_benchmarks__.solver.type=oracle" not in args
    assert args[-6:] == [
        "--nel-model-url",
        "http://h/v1",
        "--nel-model-id",
        "m",
        "--nel-max-problems",
        "10",
    ]


def test_validate_gpqa_on_the_fixture(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "Idavidrein" / "gpqa" / "gpqa_diamond"
    mirror.mkdir(parents=True)
    shutil.copy(FIXTURES / "gpqa" / "gpqa_diamond" / "train.jsonl", mirror)
    proc = _nel(
        tmp_path,
        "validate",
        "-b",
        "gpqa",
        env={"NEL_DATASETS_DIR": str(tmp_path / "mirror")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nel validate gpqa (oracle): 6/6 = 100.00%" in proc.stdout
    assert not list(tmp_path.glob("nel-results*"))


def test_validate_lists_what_the_scorer_rejects_and_exits_1(tmp_path: Path) -> None:
    _write_rows(
        tmp_path,
        [{"question": "a", "answer": "10"}, {"question": "b", "answer": "100"}],
    )
    (tmp_path / "broken.py").write_text(BROKEN_BENCH)
    proc = _nel(tmp_path, "validate", "-b", "./broken.py", "-o", "kept")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "nel validate broken (oracle): 1/2 = 50.00%" in out
    failing = next(line for line in out.splitlines() if line.strip().startswith("1-r0"))
    assert failing.split()[:4] == ["1-r0", "0", "100", "10"]
    assert (tmp_path / "kept" / "broken" / "results.jsonl").is_file()


def test_validate_with_a_model_prints_every_sample(
    tmp_path: Path, fake: FakeModel
) -> None:
    _write_rows(
        tmp_path,
        [
            {"question": "a", "answer": "1", "say": "SAY: so \\boxed{1}"},
            {"question": "b", "answer": "2", "say": "SAY: I think it is 3"},
        ],
    )
    (tmp_path / "math_bench.py").write_text(MATH_BENCH)
    proc = _nel(
        tmp_path,
        "validate",
        "-b",
        "./math_bench.py",
        "--model-url",
        fake.base_url,
        "--model-id",
        "fake",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        "nel validate mathy (model): 1/2 = 50.00%  (errors 0, unparsed 1,"
        in "\n".join(lines)
    )
    table = {line.split()[0]: line.split() for line in lines if line.startswith("  ")}
    assert table["0-r0"][1:5] == ["1", "1", "1", "boxed"]
    assert table["1-r0"][1:4] == ["0", "2", "-"] and "unparsed" in table["1-r0"]


def test_validate_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-b", "gsm8k", "--model-url", "http://h/v1"]) == 4
    assert "both --model-url and --model-id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["validate"])  # -b is required
