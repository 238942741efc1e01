"""End-to-end behaviour of the plugin through pytester against the fake model server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
        "--nel-output",
        "out",
        "-p",
        "no:randomly",
        *args,
    )


def records(pytester: pytest.Pytester, bench: str = "toy") -> list[dict[str, Any]]:
    path = pytester.path / "out" / bench / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def summary(pytester: pytest.Pytester, bench: str = "toy") -> dict[str, Any]:
    return json.loads((pytester.path / "out" / bench / "summary.json").read_text())


def test_ordinary_suite_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    assert 1\n\ndef test_b():\n    assert 0\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*nel evaluation summary*")
    assert not (pytester.path / "nel-results").exists()


def test_byob_run_items_results_and_summary(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    # Problem 5's reply is cut by the token limit (still right); 3 and 7 are wrong.
    toy_bench(toy_rows(10, wrong={3, 7}, extra={5: "FINISH: length"}))
    pytester.makepyfile(test_unrelated="def test_x():\n    assert 0\n")
    result = run(pytester, fake, "-v")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        [
            "toy::*-r0 PASSED*",
            "*nel evaluation summary*",
            "*unparsed*trunc*",
            "toy *pass@1*0.8000*0 (0.0%)*1 (10.0%)*",
        ]
    )
    recs = records(pytester)
    assert len(recs) == 10
    first = recs[0]
    for key in (
        "schema_version",
        "benchmark",
        "problem_idx",
        "problem_id",
        "repeat",
        "status",
        "reward",
        "unparsed",
        "truncated",
        "expected_answer",
        "extracted_answer",
        "model_response",
        "scoring_details",
        "error",
        "tokens",
        "latency_ms",
        "finish_reason",
    ):
        assert key in first
    wrong = {r["problem_idx"] for r in recs if r["reward"] == 0.0}
    assert wrong == {3, 7}
    assert [r["problem_idx"] for r in recs if r["truncated"]] == [5]
    s = summary(pytester)
    assert s["counts"]["truncated"] == 1 and s["counts"]["unparsed"] == 0
    assert s["rates"] == {"unparsed": 0.0, "truncated": 0.1, "errors": 0.0}
    m = s["metrics"]["pass@1"]
    assert m["value"] == pytest.approx(0.8) and m["method"] == "wilson"
    assert m["ci_lower"] < 0.8 < m["ci_upper"] and m["n"] == 10
    assert set(s["categories"]) == {"even", "odd"}
    assert s["fingerprint"]["task"]["benchmark"] == "toy"
    report = (pytester.path / "out" / "report.md").read_text()
    assert "| unparsed | unparsed % | truncated % |" in report
    assert "| 10 | 10 | 0 | 0 | 0.0% | 10.0% |" in report


def test_node_ids_shuffle_and_selection(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(6))
    result = run(pytester, fake, "--collect-only", "-q", "--nel-repeats", "2")
    ids = [line for line in result.outlines if line.startswith("toy::")]
    assert len(ids) == 12 and ids[0].endswith("-r0") and ids[1].endswith("-r1")
    assert ids[0].split("::")[1].split("-")[0] == ids[1].split("::")[1].split("-")[0]
    assert sorted({i.split("::")[1].split("-")[0] for i in ids}, key=int) == [
        str(i) for i in range(6)
    ]
    result = run(
        pytester,
        fake,
        "-k",
        "r1 and not 3-",
        "--nel-repeats",
        "2",
        "--deselect",
        "toy::0-r1",
        "--nel-overwrite",
    )
    result.assert_outcomes(passed=4, deselected=8)


def test_system_prompt_and_generation_reach_the_server(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(2))
    result = run(
        pytester,
        fake,
        "--nel-system-prompt",
        "Be terse.",
        "--nel-temperature",
        "0.3",
        "--nel-max-tokens",
        "77",
        "--nel-seed",
        "100",
        "--nel-repeats",
        "3",
        "--nel-override",
        "benchmarks.0.solver.generation.top_p=0.9",
        "--nel-override",
        "benchmarks.0.solver.generation.stop=['END']",
    )
    result.assert_outcomes(passed=6)
    bodies = [r["body"] for r in fake.requests() if r["body"].get("max_tokens") == 77]
    assert len(bodies) == 6
    for body in bodies:
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}
        assert (
            body["temperature"] == 0.3
            and body["top_p"] == 0.9
            and body["stop"] == ["END"]
        )
    seeds = sorted(b["seed"] for b in bodies)
    assert seeds == [100, 100, 101, 101, 102, 102]


def test_completions_protocol(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(3))
    result = run(
        pytester, fake, "--nel-protocol", "completions", "--nel-system-prompt", "SYS"
    )
    result.assert_outcomes(passed=3)
    bodies = [r for r in fake.requests() if r["path"] == "/v1/completions"]
    assert bodies and all(
        r["body"]["prompt"].startswith("SYS\n\nQ: question") for r in bodies[1:]
    )


def test_errors_fail_items_and_are_never_scored(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(6, extra={1: "FAULT: 400", 4: "FAULT: 503"}))
    result = run(
        pytester,
        fake,
        "--nel-override",
        "services.model.max_retries=1",
        "--junitxml",
        "junit.xml",
    )
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        ["*[[]model_error[]]*HTTP 400*", "*[[]model_error[]]*HTTP 503*"]
    )
    errs = [r for r in records(pytester) if r["status"] == "error"]
    assert {r["problem_idx"] for r in errs} == {1, 4}
    assert all(
        r["reward"] is None and r["error"]["category"] == "model_error" for r in errs
    )
    s = summary(pytester)
    assert s["counts"]["errors"] == 2 and s["metrics"]["pass@1"]["n"] == 4
    assert s["metrics"]["pass@1"]["value"] == 1.0
    xml = (pytester.path / "junit.xml").read_text()
    assert (
        'name="reward" value="1.0"' in xml
        and 'name="error_category" value="model_error"' in xml
    )


def test_error_budget_turns_errors_into_xfails(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(10, extra={2: "FAULT: 400"}))
    result = run(
        pytester, fake, "--nel-override", "benchmarks.0.error_budget=0.2", "-rA"
    )
    result.assert_outcomes(passed=10, xfailed=1)
    result.stdout.fnmatch_lines(["*toy::error-budget*"])
    result = run(
        pytester,
        fake,
        "--nel-override",
        "benchmarks.0.error_budget=0.05",
        "--nel-overwrite",
    )
    result.assert_outcomes(passed=9, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*error rate 1/10 = 10.0% exceeds the error budget 5.0%*"]
    )


def test_retries_honour_retry_after_and_timeouts(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(
        toy_rows(3, extra={0: "FAULT: 429x2 retry-after=0.05", 1: "FAULT: timeout"})
    )
    result = run(
        pytester,
        fake,
        "--nel-override",
        "services.model.request_timeout=0.5",
        "--nel-override",
        "services.model.max_retries=2",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*[[]model_timeout[]]*timed out*3 attempts*"])
    statuses = fake.stats()["by_status"]
    assert statuses.get("429") == 2


def test_unreachable_endpoint_fails_fast(
    pytester: pytest.Pytester, toy_bench: Any
) -> None:
    toy_bench(toy_rows(3))
    result = pytester.runpytest(
        "--nel-bench",
        "./toy_bench.py",
        "--nel-model-url",
        "http://127.0.0.1:9/v1",
        "--nel-model-id",
        "m",
        "--nel-output",
        "out",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*http://127.0.0.1:9/v1/chat/completions is unreachable*"]
    )
    assert result.duration < 10


def test_garbage_endpoint_fails_preflight(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any, tmp_path: Path
) -> None:
    toy_bench(toy_rows(3))
    result = pytester.runpytest(
        "--nel-bench",
        "./toy_bench.py",
        "--nel-model-url",
        fake.url + "/health",
        "--nel-model-id",
        "m",
        "--nel-output",
        "out",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*answered*"])


def test_stop_on_first_failure_keeps_partial_summary(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(300, extra={3: "FAULT: 400"}))
    fake.control(latency_ms=20)
    result = run(
        pytester,
        fake,
        "-x",
        "--nel-override",
        "benchmarks.0.shuffle_seed=null",
        "--nel-max-concurrent",
        "4",
    )
    result.assert_outcomes(passed=3, failed=1)
    s = summary(pytester)
    assert s["complete"] is False and s["counts"]["errors"] == 1
    assert s["counts"]["samples"] == 4
    assert len(fake.requests()) < 100  # the engine ran ahead by its window, not the run


def test_resume_skips_scored_and_redoes_errors(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(8, extra={5: "FAULT: 400x1"}))
    result = run(pytester, fake, "--nel-max-problems", "6")
    result.assert_outcomes(passed=5, failed=1)
    result = run(pytester, fake, "--nel-max-problems", "6")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is not empty: pass --resume*"])
    before = len(fake.requests())
    result = run(pytester, fake, "--nel-resume")
    result.assert_outcomes(passed=3, deselected=5)
    assert (
        len(fake.requests()) - before == 4
    )  # preflight + problem 5 again + 2 new ones
    s = summary(pytester)
    assert s["counts"]["samples"] == 8 and s["counts"]["errors"] == 0
    result = run(pytester, fake, "--nel-resume", "--nel-system-prompt", "changed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--resume refused for toy*", "*task.system_prompt: None ->*"]
    )


def test_last_failed_reruns_only_errors(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(5, extra={2: "FAULT: 400x1"}))
    run(pytester, fake).assert_outcomes(passed=4, failed=1)
    result = run(pytester, fake, "--lf", "--nel-resume")
    result.assert_outcomes(passed=1, deselected=4)
    assert summary(pytester)["metrics"]["pass@1"]["n"] == 5


def test_circuit_breaker_stops_a_dead_endpoint(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(60, extra={i: "FAULT: reset" for i in range(60)}))
    result = run(pytester, fake)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*circuit open*", "*stopping, the endpoint is down*"])
    assert result.duration < 30
    assert summary(pytester)["complete"] is False


def test_unknown_benchmark_lists_known_ones(
    pytester: pytest.Pytester, fake: FakeModel
) -> None:
    result = pytester.runpytest(
        "--nel-bench", "nope", "--nel-model-url", fake.base_url, "--nel-model-id", "m"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown benchmark 'nope'; known: *gsm8k*mmlu*"])


def test_missing_dataset_names_the_id(
    pytester: pytest.Pytester, fake: FakeModel
) -> None:
    pytester.path.joinpath("b.py").write_text(
        "from pytest_nel import benchmark, scorer, exact_match\n"
        "@benchmark(name='b', dataset='hf://nobody/nothing?split=test', prompt='{q}',"
        " target_field='a')\n@scorer\ndef b(s):\n    return exact_match(s)\n"
    )
    pytester.path.joinpath("mirror").mkdir()
    result = pytester.runpytest(
        "--nel-bench",
        "./b.py",
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "m",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*dataset 'hf://nobody/nothing?split=test'*NEL_DATASETS_DIR*"]
    )


def test_garbage_mid_run_is_a_model_error(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(
        toy_rows(
            4, extra={0: "FAULT: garbage", 1: "FAULT: malformed", 2: "FAULT: nochoices"}
        )
    )
    result = run(pytester, fake, "--nel-override", "services.model.max_retries=1")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*no choices*", "*invalid JSON*"])
    assert all(r["reward"] is None for r in records(pytester) if r["problem_idx"] < 3)


def test_ctrl_c_keeps_finished_samples_and_writes_a_partial_summary(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    import signal
    import subprocess
    import sys
    import time

    toy_bench(toy_rows(400))
    fake.control(latency_ms=300)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nel-bench",
            "./toy_bench.py",
            "--nel-model-url",
            fake.base_url,
            "--nel-model-id",
            "fake",
            "--nel-output",
            "out",
            "--nel-max-concurrent",
            "8",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results = pytester.path / "out" / "toy" / "results.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not results.is_file() or len(results.read_text().splitlines()) < 10
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    s = summary(pytester)
    assert s["complete"] is False
    assert 10 <= s["counts"]["samples"] < 400
    assert s["counts"]["samples"] == len(results.read_text().splitlines())
    time.sleep(0.5)
    assert fake.stats()["in_flight"] == 0  # in-flight requests were cancelled


def test_progress_line_on_long_runs(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(5))
    result = run(pytester, fake, "--nel-progress-interval", "0.000001")
    result.stdout.fnmatch_lines(
        ["*[[]nel[]] */5 samples*mean reward so far 1.000*ETA*"]
    )
