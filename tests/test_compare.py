"""``nel compare`` and the results reader: verdicts, fingerprints, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_nel.cli import main
from pytest_nel.compare import compare_runs
from pytest_nel.exceptions import ResultsError
from pytest_nel.runs import NEMO_EVALUATOR, load_run
from pytest_nel.testing.fake_runs import write_benchmark


def ones(n: int, wrong: int = 0, repeats: int = 1) -> np.ndarray:
    """``n`` problems, the first ``wrong`` of them answered wrong."""
    rewards = np.ones((n, repeats))
    rewards[:wrong] = 0.0
    return rewards


# ---------------------------------------------------------------------- reading


def test_reader_keeps_last_record_and_errors_apart(tmp_path: Path) -> None:
    folder = write_benchmark(tmp_path, "b", ones(4, 1), errors=[[0], [1], [0], [0]])
    with open(folder / "results.jsonl", "a") as fh:  # a --resume redid problem 1
        fh.write(json.dumps({"problem_idx": 1, "repeat": 0, "reward": 1.0}) + "\n")
    run = load_run(tmp_path)
    bench = run.benchmarks["b"]
    assert bench.samples.reward.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert bench.error_rate() == (0, 4, 0.0) and bench.binary and bench.repeats == 1
    assert load_run(folder).benchmarks.keys() == {"b"}  # one benchmark folder works


def test_bad_folders_give_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(ResultsError, match="no results found; expected"):
        load_run(tmp_path)
    folder = write_benchmark(tmp_path / "run", "b", ones(5))
    with open(folder / "results.jsonl", "a") as fh:
        fh.write('{"problem_idx": 5, "repea')  # the crash cut the last line
    with pytest.raises(ResultsError, match=r"last line is truncated.*--allow-partial"):
        load_run(tmp_path / "run")
    bench = load_run(tmp_path / "run", allow_partial=True).benchmarks["b"]
    assert len(bench.samples) == 5 and "truncated" in bench.partial[0]
    (folder / "summary.json").unlink()
    with pytest.raises(ResultsError, match="no summary.json"):
        load_run(tmp_path / "run")
    (folder / "results.jsonl").write_text("")
    with pytest.raises(ResultsError, match="no samples"):
        load_run(tmp_path / "run", allow_partial=True)


def test_interrupted_run_is_partial(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "b", ones(5), complete=False)
    with pytest.raises(ResultsError, match="interrupted"):
        load_run(tmp_path)


def test_nemo_evaluator_folder_is_compared_with_a_warning(tmp_path: Path) -> None:
    write_benchmark(tmp_path / "old", "b", ones(300), nemo=True, model="old-model")
    write_benchmark(tmp_path / "new", "b", ones(300))
    old = load_run(tmp_path / "old")
    assert old.source == NEMO_EVALUATOR and old.benchmarks["b"].fingerprint is None
    result = compare_runs(tmp_path / "old", tmp_path / "new", max_drop=0.02)
    bench = result.benchmarks[0]
    assert bench.verdict == "PASS"
    assert any("no fingerprint" in w for w in bench.warnings)
    assert any("inferred binary" in w for w in bench.warnings)
    assert bench.identity["baseline"]["model"] == "old-model"


# ---------------------------------------------------------------------- verdicts


def test_verdicts(tmp_path: Path) -> None:
    def verdict(name: str, base: np.ndarray, cand: np.ndarray, drop: float) -> str:
        write_benchmark(tmp_path / name / "base", "b", base)
        write_benchmark(tmp_path / name / "cand", "b", cand)
        result = compare_runs(tmp_path / name / "base", tmp_path / name / "cand",
                              max_drop=drop)  # fmt: skip
        return result.benchmarks[0].verdict

    assert verdict("same", ones(400), ones(400), 0.02) == "PASS"
    assert verdict("block", ones(400), ones(400, 100), 0.02) == "BLOCK"
    assert verdict("warn", ones(10000), ones(10000, 100), 0.02) == "WARN"
    assert verdict("unsure", ones(50), ones(50, 2), 0.01) == "INCONCLUSIVE"
    assert verdict("better", ones(400, 100), ones(400), 0.0) == "PASS"


def test_inconclusive_says_what_would_decide(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rates = rng.random(100)
    base = rng.random((100, 4)) < rates[:, None]
    cand = rng.random((100, 4)) < rates[:, None]
    write_benchmark(tmp_path / "base", "b", base)
    write_benchmark(tmp_path / "cand", "b", cand)
    bench = compare_runs(tmp_path / "base", tmp_path / "cand").benchmarks[0]
    assert bench.verdict == "INCONCLUSIVE" and bench.test == "paired_t"
    assert bench.problems_needed is not None and bench.problems_needed > 100
    assert f"about {bench.problems_needed} problems" in bench.reason
    assert bench.difference is not None and bench.difference.mde > 0.01


def test_mcnemar_and_flips_for_binary_single_repeat(tmp_path: Path) -> None:
    base, cand = ones(60, 5), ones(60)
    cand[10:13] = 0.0  # problems 10-12 regress, 0-4 improve
    write_benchmark(tmp_path / "base", "b", base)
    write_benchmark(tmp_path / "cand", "b", cand)
    bench = compare_runs(tmp_path / "base", tmp_path / "cand").benchmarks[0]
    assert bench.test == "mcnemar_exact"
    assert bench.p_value == pytest.approx(0.7265625)  # binomtest(3, 8)
    assert (bench.regressions, bench.improvements) == (3, 5)
    flip = bench.flips["regressions"][0]
    assert flip["problem_idx"] == 10 and flip["expected_answer"] == "10"
    assert (flip["baseline_answer"], flip["candidate_answer"]) == ("10", "-1")


def test_errors_are_excluded_not_counted_wrong(tmp_path: Path) -> None:
    errors = np.zeros((400, 1), bool)
    errors[:100] = True  # a quarter of the candidate's samples errored
    write_benchmark(tmp_path / "base", "b", ones(400))
    write_benchmark(tmp_path / "cand", "b", ones(400), errors=errors)
    bench = compare_runs(tmp_path / "base", tmp_path / "cand", max_drop=0.02)
    b = bench.benchmarks[0]
    assert b.verdict == "PASS" and b.samples["dropped_errors"] == 100
    assert b.errors["candidate"]["rate"] == 0.25
    assert b.errors["candidate"]["by_category"] == {"model_error": 100}


# ---------------------------------------------------------------------- comparability


def test_task_fingerprint_differences_are_refused_and_named(tmp_path: Path) -> None:
    write_benchmark(tmp_path / "base", "b", ones(50))
    write_benchmark(
        tmp_path / "cand", "b", ones(50), model="other-model",
        task={"scorer_version": "2", "generation": {"temperature": 0.7}},
    )  # fmt: skip
    with pytest.raises(ResultsError) as info:
        compare_runs(tmp_path / "base", tmp_path / "cand")
    message = str(info.value)
    assert "task.scorer_version: '1' -> '2'" in message
    assert "task.generation.temperature: 0.0 -> 0.7" in message
    assert "task.generation.max_tokens: 512 -> None" in message
    assert "--allow-mismatch" in message and "model" not in message.split("\n")[1]
    result = compare_runs(tmp_path / "base", tmp_path / "cand", allow_mismatch=True)
    bench = result.benchmarks[0]
    assert bench.task_differences and bench.identity["candidate"]["model"] == (
        "other-model"
    )


def test_benchmark_on_one_side_only(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_benchmark(tmp_path / "base", name, ones(20))
    write_benchmark(tmp_path / "cand", "a", ones(20))
    write_benchmark(tmp_path / "cand", "c", ones(20))
    with pytest.raises(ResultsError, match=r"only in the baseline: b.*only in the "):
        compare_runs(tmp_path / "base", tmp_path / "cand")
    result = compare_runs(tmp_path / "base", tmp_path / "cand", allow_partial=True)
    assert [b.benchmark for b in result.benchmarks] == ["a"]
    assert "only in the candidate: c" in result.warnings


# ---------------------------------------------------------------------- CLI


def test_cli_exit_codes_formats_and_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_benchmark(tmp_path / "base", "b", ones(10000))
    write_benchmark(tmp_path / "warn", "b", ones(10000, 100))
    write_benchmark(tmp_path / "block", "b", ones(10000, 1000))
    base, warn, block = (str(tmp_path / n) for n in ("base", "warn", "block"))
    assert main(["compare", base, warn, "--max-drop", "0.02"]) == 0
    assert main(["compare", base, warn, "--max-drop", "0.02", "--strict"]) == 2
    capsys.readouterr()
    report = tmp_path / "report.json"
    code = main(["compare", base, block, "--show-flips", "-o", str(report)])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("BLOCK")
    assert "regressions (1000):" in out and "... 980 more" in out
    data = json.loads(report.read_text())
    assert data["verdict"] == "BLOCK" and len(data["benchmarks"][0]["flips"]) == 2
    main(["compare", base, block, "--format", "markdown"])
    assert capsys.readouterr().out.startswith("## nel compare: BLOCK")
    main(["compare", base, block, "--format", "json"])
    assert json.loads(capsys.readouterr().out)["kind"] == "compare"
    assert main(["compare", base, str(tmp_path / "missing")]) == 4
    assert "no such folder" in capsys.readouterr().err
