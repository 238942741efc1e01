"""The ``nel`` command line: argument translation, run, report, list, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import toy_rows
from pytest_nel.cli import build_parser, main, pytest_args
from pytest_nel.testing.fake_model import FakeModel


def test_run_options_become_pytest_arguments() -> None:
    ns = build_parser().parse_args(
        [
            "eval",
            "run",
            "--bench",
            "gsm8k",
            "--model-url",
            "http://h/v1",
            "--model-id",
            "m",
            "--repeats",
            "4",
            "--max-problems",
            "10",
            "--temperature",
            "0.5",
            "-o",
            "out",
            "--resume",
            "-O",
            "benchmarks.0.shuffle_seed=1",
            "-n",
            "2",
        ]
    )
    args = pytest_args(ns, ["-x", "--junitxml", "j.xml"])
    assert args == [
        "--nel-bench",
        "gsm8k",
        "--nel-model-url",
        "http://h/v1",
        "--nel-model-id",
        "m",
        "--nel-repeats",
        "4",
        "--nel-max-problems",
        "10",
        "--nel-temperature",
        "0.5",
        "--nel-output",
        "out",
        "--nel-resume",
        "--nel-override",
        "benchmarks.0.shuffle_seed=1",
        "-n",
        "2",
        "-x",
        "--junitxml",
        "j.xml",
    ]


def test_help_is_fast() -> None:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest_nel.cli", "--help"],
        check=True,
        capture_output=True,
    )
    assert time.perf_counter() - start < 3  # measured ~0.1 s; generous for loaded CI


def test_list_names_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "gsm8k" in out and "mmlu" in out and "arithmetic" in out


def test_run_without_bench_or_config_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["eval", "run"]) == 4
    assert "give a config file or --bench" in capsys.readouterr().err


def test_eval_run_config_and_report(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: object, tmp_path: Path
) -> None:
    toy_bench(toy_rows(6, wrong={1}))  # type: ignore[operator]
    config = pytester.path / "eval.yaml"
    config.write_text(
        "services:\n  fake:\n    type: api\n"
        f"    url: {fake.base_url}\n    model: fake\n"
        "    api_key: ${NEL_TEST_SECRET}\n"
        "benchmarks:\n  - name: ./toy_bench.py\n    repeats: 2\n"
        "output:\n  dir: results\n  report_formats: [markdown, json, csv, html]\n"
    )
    env = {"NEL_TEST_SECRET": "sk-very-secret-value"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_nel.cli",
            "eval",
            "run",
            str(config),
            "--",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env={**_env(), **env},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 passed" in proc.stdout
    results = pytester.path / "results"
    for name in (
        "report.md",
        "report.json",
        "report.csv",
        "report.html",
        "config.yaml",
    ):
        assert (results / name).is_file()
    for path in results.rglob("*"):
        if path.is_file():
            assert "sk-very-secret-value" not in path.read_text(errors="replace"), path
    out = tmp_path / "r.csv"
    assert main(["eval", "report", str(results), "-f", "csv", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("benchmark,metric,value")
    report = json.loads((results / "report.json").read_text())
    assert report["benchmarks"]["toy"]["metrics"]["pass@1"]["value"] == pytest.approx(
        5 / 6
    )


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_bad_config_exits_4_with_the_key_path(pytester: pytest.Pytester) -> None:
    config = pytester.path / "bad.yaml"
    config.write_text("benchmarks:\n  - name: gsm8k\n    repeat: 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_nel.cli", "eval", "run", str(config)],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 4
    assert "benchmarks[0].repeat: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
