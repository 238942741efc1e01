"""Side-by-side reports: runs, labels, rows, and the markdown/csv/json/latex renderings.

Also ``nel report`` and ``nel eval report`` on the command line. The html rendering
and its screenshot are in test_report_html.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_runs import write_run

from pytest_nel.cli import main
from pytest_nel.compare import compare_runs
from pytest_nel.exceptions import NelUsageError
from pytest_nel.gate import Policy, evaluate_gate
from pytest_nel.report_data import Report, load_run, load_runs
from pytest_nel.report_formats import MULTI_FORMATS, render_report, tex
from pytest_nel.testing.fake_runs import write_benchmark

CATS = {"algebra": 0.5, "biology": 0.8, "history": 0.65}


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """A baseline and a clearly worse candidate on ``quiz``; ``extra`` only in one."""
    base = write_run(
        tmp_path / "base",
        model="model-a",
        benchmarks={"quiz": CATS, "extra": {"x": 0.5}},
        problems=300,
        seed=1,
    )
    worse = {k: v - 0.25 for k, v in CATS.items()}
    cand = write_run(
        tmp_path / "cand",
        model="model-b",
        benchmarks={"quiz": worse},
        problems=300,
        flag_every=10,  # 30 unparsed (10% of scored), 15 truncated (5% of samples)
    )
    return base, cand


def summary(run: Path, bench: str) -> dict[str, Any]:
    return json.loads((run / bench / "summary.json").read_text())


def test_labels_come_from_the_model_then_the_folder(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", model="m", benchmarks={"q": {"c": 0.5}})
    b = write_run(tmp_path / "b", model="m", benchmarks={"q": {"c": 0.5}})
    c = write_run(tmp_path / "c", model=None, benchmarks={"q": {"c": 0.5}})
    assert [r.label for r in load_runs([a, b, c])] == ["m (a)", "m (b)", "c"]
    assert [r.label for r in load_runs([a, a])] == ["m (a) #1", "m (a) #2"]
    assert [r.label for r in load_runs([a, c], ["old", "new"])] == ["old", "new"]
    with pytest.raises(NelUsageError, match="--label was given 1 times for 2"):
        load_runs([a, c], ["old"])


def test_bad_folders_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NelUsageError, match="no such results folder"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NelUsageError, match="no summary.json .*nel eval run"):
        load_run(tmp_path / "empty")
    broken = tmp_path / "broken" / "q"
    broken.mkdir(parents=True)
    (broken / "summary.json").write_text('{"metrics": {"pass@1": ')
    with pytest.raises(NelUsageError, match=r"broken/q/summary.json: not valid JSON"):
        load_run(tmp_path / "broken")


def test_rows_put_runs_side_by_side(two_runs: tuple[Path, Path]) -> None:
    base, cand = two_runs
    report = Report(load_runs([base, cand]))
    assert report.labels == ["model-a", "model-b"]
    assert report.benchmarks() == ["extra", "quiz"]
    overall = {(r.benchmark, r.metric): r for r in report.overall()}
    extra = overall["extra", "pass@1"]
    assert extra.cells[0] is not None and extra.cells[1] is None
    quiz = overall["quiz", "pass@1"].cells
    stored = summary(cand, "quiz")["metrics"]["pass@1"]
    assert quiz[1] is not None and quiz[1].value == stored["value"]
    assert quiz[1].ci_lower == stored["ci_lower"] and quiz[1].n == 300
    cats = report.categories("quiz")
    assert [r.category for r in cats] == sorted(CATS)
    assert all(c is not None and c.n == 100 for r in cats for c in r.cells)


def test_csv_and_json_carry_every_value(two_runs: tuple[Path, Path]) -> None:
    base, cand = two_runs
    report = Report(load_runs([base, cand]))
    table = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    row = next(r for r in table if r["benchmark"] == "quiz" and not r["category"])
    stored = summary(base, "quiz")["metrics"]["pass@1"]
    assert float(row["model-a"]) == pytest.approx(stored["value"], abs=1e-6)
    assert float(row["model-a ci_upper"]) == pytest.approx(stored["ci_upper"], abs=1e-6)
    assert row["model-b n"] == "300"
    assert {r["category"] for r in table if r["benchmark"] == "quiz"} == {"", *CATS}
    data = json.loads(render_report(report, "json"))
    assert [r["label"] for r in data["runs"]] == ["model-a", "model-b"]
    cells = data["rows"][0]["cells"]
    assert set(cells) == {"model-a", "model-b"} and cells["model-b"] is None


def test_markdown_and_latex(two_runs: tuple[Path, Path]) -> None:
    base, cand = two_runs
    report = Report(load_runs([base, cand], ["base_v1 & co", "cand%2"]))
    md = render_report(report, "markdown")
    assert "| benchmark | metric | n | base_v1 & co | cand%2 |" in md
    assert re.search(r"\| quiz \| pass@1 \| 300 \| 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", md)
    assert "<details><summary>quiz by category</summary>" in md
    assert "| extra | pass@1 | 300 | 0." in md and "| — |" in md
    latex = render_report(report, "latex")
    assert r"base\_v1 \& co & cand\%2 \\" in latex
    assert latex.count(r"\begin{table}") == latex.count(r"\end{table}") == 4
    assert latex.count("{") == latex.count("}")
    assert tex("a_b {x} ~ → —") == r"a\_b \{x\} \textasciitilde{} $\rightarrow$ ---"


def test_unparsed_and_truncated_rates_in_every_format(
    two_runs: tuple[Path, Path],
) -> None:
    base, cand = two_runs
    stored = summary(cand, "quiz")
    assert stored["counts"]["unparsed"] == 30 and stored["counts"]["truncated"] == 15
    assert stored["rates"] == {"unparsed": 0.1, "truncated": 0.05, "errors": 0.0}
    report = Report(load_runs([base, cand]))
    md = render_report(report, "markdown")
    assert "| benchmark | run | samples | unparsed % | truncated % | errors % |" in md
    assert "| quiz | model-b | 300 | 10.0% | 5.0% | 0.0% |" in md
    assert "| quiz | model-a | 300 | 0.0% | 0.0% | 0.0% |" in md
    page = render_report(report, "html")
    assert "<h2>Samples</h2>" in page and "<td class='num'>10.0%</td>" in page
    assert "quiz & model-b & 300 & 10.0\\% & 5.0\\% & 0.0\\% \\\\" in render_report(
        report, "latex"
    )
    table = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    row = next(r for r in table if r["benchmark"] == "quiz" and not r["category"])
    assert float(row["model-b unparsed_rate"]) == 0.1
    assert float(row["model-b truncated_rate"]) == 0.05
    assert float(row["model-a unparsed_rate"]) == 0.0
    cat = next(r for r in table if r["category"])
    assert cat["model-b unparsed_rate"] == ""
    data = json.loads(render_report(report, "json"))
    rates = {(r["benchmark"], r["run"]): r for r in data["sample_rates"]}
    assert rates["quiz", "model-b"]["truncated"] == 0.05
    assert ("extra", "model-b") not in rates


def test_compare_and_gate_sections_from_real_results(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = two_runs
    compare = compare_runs(base, cand, max_drop=0.02, allow_partial=True).to_dict()
    policy = Policy.model_validate(
        {"version": 1, "benchmarks": {"quiz": {"tier": "critical", "max_drop": 0.02}}}
    )
    gate = evaluate_gate(base, cand, policy, allow_partial=True).to_dict()
    assert compare["verdict"] == "BLOCK" and gate["verdict"] == "NO-GO"
    report = Report(load_runs([base, cand]), compare=compare, gate=gate)
    md = render_report(report, "markdown")
    assert "## Paired comparison: **BLOCK**" in md
    assert "## Quality gate: **NO-GO**" in md
    assert re.search(r"\| quiz \| pass@1 \| 0\.\d+ → 0\.\d+ \| -0\.\d+ \[-0\.", md)
    assert re.search(
        r"\| quiz \| critical \| pass@1 \|.*\| 0\.0200 \| 0\.0% \| BREACH", md
    )
    assert "regressions</summary>" in md and "expected A, baseline said A" in md
    latex = render_report(report, "latex")
    assert r"Quality gate: NO-GO" in latex and r"$\rightarrow$" in latex


@pytest.mark.parametrize("fmt", MULTI_FORMATS)
def test_nel_report_command(
    fmt: str, two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    base, cand = two_runs
    compare = compare_runs(base, cand, allow_partial=True)
    cmp_json = tmp_path / "cmp.json"
    cmp_json.write_text(json.dumps(compare.to_dict(), default=str))
    out = tmp_path / f"report.{fmt}"
    args = ["report", str(base), str(cand), "-f", fmt, "-o", str(out)]
    assert main([*args, "--compare-json", str(cmp_json), "--title", "T<1>"]) == 0
    text = out.read_text()
    assert "model-a" in text and "model-b" in text and "quiz" in text
    assert "BLOCK" in text or fmt == "csv"


def test_nel_report_usage_errors(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = two_runs
    assert main(["report", str(base), str(tmp_path / "nope")]) == 4
    assert "nope: no such results folder" in capsys.readouterr().err
    assert main(["report", str(base), "--gate-json", str(tmp_path / "g.json")]) == 4
    assert "--gate-json" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1]")
    assert main(["report", str(base), "--compare-json", str(tmp_path / "list.json")])
    assert "expected the JSON object `nel compare -o` writes" in capsys.readouterr().err


def test_eval_report_latex_and_html(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = two_runs
    assert main(["eval", "report", str(base), "-f", "latex"]) == 0
    assert r"\begin{tabular}{llc}" in capsys.readouterr().out
    assert main(["eval", "report", str(base), "-f", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "model-a" in page


def test_nemo_evaluator_folder_beside_a_pytest_nel_run(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    rewards = (np.arange(300) % 3 == 0).astype(float)
    write_benchmark(tmp_path / "nemo", "quiz", rewards, nemo=True, model="old-model")
    report = Report(load_runs([tmp_path / "nemo", two_runs[0]]))
    assert report.labels == ["old-model", "model-a"]
    row = next(
        r for r in report.overall() if (r.benchmark, r.metric) == ("quiz", "pass@1")
    )
    cell = row.cells[0]
    assert cell is not None and cell.n == 300 and cell.method == "wilson"
    assert cell.value == pytest.approx(1 / 3)
    assert cell.ci_lower < cell.value < cell.ci_upper
    # NeMo Evaluator records no unparsed answers: unknown, not zero.
    nemo = next(r for r in report.sample_rates() if r.run == "old-model")
    assert nemo.unparsed is None and nemo.errors == 0.0
    assert "| quiz | old-model | 300 | - | - | 0.0% |" in render_report(
        report, "markdown"
    )
