"""HumanEval scored for real: programs run in the local (bubblewrap) sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pytest_nel.benchmarks.humaneval import PASS_MARKER, build_program, extract_code

from pytest_nel.testing.fake_model import FakeModel

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)

#: A BYOB copy of humaneval whose prompt makes the fake model say the row's ``say``.
SAY_BENCH = """
from pytest_nel import benchmark, scorer
import pytest_nel.benchmarks.humaneval as he

@benchmark(name="he", dataset="data.jsonl", prompt="{prompt}\\nSAY: {say}",
           target_field="canonical_solution", id_field="task_id", needs_sandbox=True)
@scorer
def he_says(sample):
    return he.humaneval(sample)
"""


def humaneval_rows(datasets_dir: Path) -> list[dict[str, Any]]:
    path = datasets_dir / "openai" / "openai_humaneval" / "default" / "test.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_say_bench(pytester: pytest.Pytester, rows: list[dict[str, Any]]) -> None:
    """The BYOB benchmark and its rows; ``say`` is sent back with newlines escaped."""
    for row in rows:
        row["say"] = row["say"].replace("\n", "\\n")
    pytester.path.joinpath("data.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    pytester.path.joinpath("he_bench.py").write_text(SAY_BENCH)


def run_say_bench(
    pytester: pytest.Pytester, fake: FakeModel, *args: str
) -> pytest.RunResult:
    return pytester.runpytest(
        "--nel-bench",
        "./he_bench.py",
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "fake",
        "--nel-output",
        "out",
        "-p",
        "no:randomly",
        *args,
    )


def records(pytester: pytest.Pytester, bench: str) -> dict[str, dict[str, Any]]:
    path = pytester.path / "out" / bench / "results.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["problem_id"]: r for r in lines}


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ("```python\ndef f():\n    return 1\n```\nmore", "def f():\n    return 1\n"),
        ("Here:\n```\n    return 2\n```\n```python\nx\n```", "    return 2\n"),
        ("    return 3\n", "    return 3\n"),
        ("<think>```python\nwrong\n```</think>```py\nright\n", "right\n"),
    ],
)
def test_completion_is_the_first_code_block_or_the_raw_text(
    response: str, code: str
) -> None:
    assert extract_code(response) == code


def test_program_is_prompt_completion_tests_and_check() -> None:
    row = {
        "prompt": "def f():\n",
        "test": "def check(c):\n    pass",
        "entry_point": "f",
    }
    program = build_program(row, "    return 1")
    assert program == (
        "def f():\n    return 1\n\ndef check(c):\n    pass\n\ncheck(f)\n" + PASS_MARKER
    )


def test_all_164_canonical_solutions_pass_in_the_sandbox(
    pytester: pytest.Pytester, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    result = pytester.runpytest(
        "--nel-bench",
        "humaneval",
        "--nel-override",
        "__all_benchmarks__.solver.type=oracle",
        "--nel-output",
        "out",
    )
    result.assert_outcomes(passed=164)
    recs = records(pytester, "humaneval")
    assert len(recs) == 164
    assert all(r["reward"] == 1.0 for r in recs.values())
    assert recs["HumanEval/0"]["scoring_details"]["reason"] == "passed"
    summary = json.loads((pytester.path / "out/humaneval/summary.json").read_text())
    assert summary["metrics"]["pass@1"]["value"] == 1.0


WRONG = {
    "HumanEval/0": "    return False\n",  # wrong answer: an assertion fails
    "HumanEval/2": "    return number %% 1.0 +\n",  # syntax error
    "HumanEval/3": "    raise ValueError('no idea')\n",
    "HumanEval/4": "def mean_absolute_deviation(numbers):\n    return 0.0\n",
    "HumanEval/7": "```python\n    return strings\n```",  # fenced, wrong
    "HumanEval/1": "    import sys\n    sys.exit(0)\n",  # stops before the tests
    "HumanEval/5": "    import os\n    os._exit(0)\n",
}


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_wrong_solutions_score_zero_and_right_ones_one(
    pytester: pytest.Pytester,
    fake: FakeModel,
    datasets_dir: Path,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    if backend == "docker":
        request.getfixturevalue("docker_host")
    rows = humaneval_rows(datasets_dir)[:8]
    for row in rows:
        row["say"] = WRONG.get(row["task_id"], row["canonical_solution"]).replace(
            "%%", "%"
        )
    write_say_bench(pytester, rows)
    override = f"__all_benchmarks__.sandbox.type={backend}"
    result = run_say_bench(pytester, fake, "--nel-override", override)
    result.assert_outcomes(passed=8)
    recs = records(pytester, "he")
    rewards = {k: r["reward"] for k, r in recs.items()}
    assert {k for k, v in rewards.items() if v == 0.0} == set(WRONG)
    assert {k for k, v in rewards.items() if v == 1.0} == {"HumanEval/6"}
    details = {k: r["scoring_details"] for k, r in recs.items()}
    assert details["HumanEval/0"]["error"] == "AssertionError"
    assert details["HumanEval/2"]["error"].startswith("SyntaxError")
    assert details["HumanEval/3"]["error"] == "ValueError: no idea"
    early = {"HumanEval/1", "HumanEval/5"}
    assert all(details[k]["reason"] == "failed" for k in set(WRONG) - early)
    assert all(details[k]["reason"] == "exited_early" for k in early)
    assert all(details[k]["exit_code"] == 0 for k in early)
