"""Built-in benchmarks on the real offline data, through the fake model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_nel.benchmark import resolve
from pytest_nel.config import BenchmarkConfig
from pytest_nel.problems import load_problems, render_prompt
from pytest_nel.testing.fake_model import FakeModel


def run_builtin(
    pytester: pytest.Pytester, fake: FakeModel, name: str, *args: str
) -> dict[str, Any]:
    result = pytester.runpytest(
        "--nel-bench",
        name,
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "fake",
        "--nel-output",
        "out",
        *args,
    )
    assert result.ret == 0, result.stdout.str()
    return json.loads((pytester.path / "out" / name / "summary.json").read_text())


def test_gsm8k_scores_the_fake_models_known_accuracy(
    pytester: pytest.Pytester,
    fake: FakeModel,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    summary = run_builtin(pytester, fake, "gsm8k", "--nel-max-problems", "200")
    spec = resolve("gsm8k")
    _, problems = load_problems(
        spec, BenchmarkConfig(name="gsm8k", max_problems=200), datasets_dir
    )
    # The fake answers correctly exactly when sha1(question) % 10000 < 7000 (accuracy
    # 0.7).
    expected = sum(
        int(hashlib.sha1(p.row["question"].encode()).hexdigest(), 16) % 10000 < 7000
        for p in problems
    ) / len(problems)
    metric = summary["metrics"]["pass@1"]
    assert metric["value"] == pytest.approx(expected)
    assert metric["ci_lower"] < expected < metric["ci_upper"]
    assert summary["counts"] == {
        "problems": 200,
        "samples": 200,
        "scored": 200,
        "errors": 0,
        "unparsed": 0,
        "truncated": 0,
    }


def test_mmlu_flags_unparsed_answers_and_breaks_down_by_subject(
    pytester: pytest.Pytester,
    fake: FakeModel,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    summary = run_builtin(pytester, fake, "mmlu", "--nel-max-problems", "60")
    # The fake says "The answer is 42.": no letter, so every sample is unparsed and 0.
    assert summary["counts"]["unparsed"] == 60
    assert summary["rates"] == {"unparsed": 1.0, "truncated": 0.0, "errors": 0.0}
    assert summary["metrics"]["pass@1"]["value"] == 0.0
    assert len(summary["categories"]) > 5
    first = json.loads(
        (pytester.path / "out" / "mmlu" / "results.jsonl").read_text().splitlines()[0]
    )
    assert first["expected_answer"] in "ABCD" and first["category"]


def test_mmlu_prompt_lists_lettered_choices(datasets_dir: Path) -> None:
    spec = resolve("mmlu")
    _, problems = load_problems(
        spec, BenchmarkConfig(name="mmlu", max_problems=1), datasets_dir
    )
    prompt = render_prompt(spec, problems[0].row)
    assert isinstance(prompt, str)
    assert "\nA) " in prompt and "\nD) " in prompt and "Answer: X" in prompt


def test_arithmetic_ships_its_data() -> None:
    spec = resolve("arithmetic")
    _, problems = load_problems(spec, BenchmarkConfig(name="arithmetic"), None)
    assert len(problems) == 200
    assert {p.category for p in problems} == {
        "addition",
        "subtraction",
        "multiplication",
        "division",
    }
