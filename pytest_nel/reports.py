"""Reports rendered from summary.json files: markdown, json, csv and html."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_nel.results import SUMMARY
from pytest_nel.summary import headline, percent, sample_rates

FORMATS = {
    "markdown": "report.md",
    "json": "report.json",
    "csv": "report.csv",
    "html": "report.html",
    "latex": "report.tex",
}
COLUMNS = (
    "benchmark",
    "metric",
    "value",
    "ci_lower",
    "ci_upper",
    "method",
    "problems",
    "samples",
    "errors",
    "unparsed",
    "truncated",
    "unparsed_rate",
    "truncated_rate",
    "complete",
)


def load_summaries(folder: Path) -> dict[str, dict[str, Any]]:
    """Every ``<benchmark>/summary.json`` below a results folder, by benchmark name."""
    summaries = {}
    for path in sorted(folder.glob(f"*/{SUMMARY}")):
        data = json.loads(path.read_text(encoding="utf-8"))
        summaries[data.get("benchmark", path.parent.name)] = data
    return summaries


def rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per benchmark and metric (categories as ``benchmark/category``)."""
    out = []
    for name, summary in summaries.items():
        counts = summary["counts"]
        rates = sample_rates(summary)
        base = {
            "problems": counts["problems"],
            "samples": counts["samples"],
            "errors": counts["errors"],
            "unparsed": counts["unparsed"],
            "truncated": counts["truncated"],
            "unparsed_rate": rates["unparsed"],
            "truncated_rate": rates["truncated"],
            "complete": summary.get("complete", True),
        }
        for metric, m in summary.get("metrics", {}).items():
            out.append(
                {"benchmark": name, "metric": metric, **_metric_cells(m), **base}
            )
        for category, metrics in summary.get("categories", {}).items():
            for metric, m in metrics.items():
                out.append(
                    {
                        "benchmark": f"{name}/{category}",
                        "metric": metric,
                        **_metric_cells(m),
                        "problems": m["n"],
                        "samples": "",
                        "errors": "",
                        "unparsed": "",
                        "truncated": "",
                        "unparsed_rate": "",
                        "truncated_rate": "",
                        "complete": "",
                    }
                )
    return out


def _metric_cells(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": round(m["value"], 6),
        "ci_lower": round(m["ci_lower"], 6),
        "ci_upper": round(m["ci_upper"], 6),
        "method": m["method"],
    }


def render(
    summaries: dict[str, dict[str, Any]],
    fmt: str,
    folder: Path | None = None,
    *,
    gate: dict[str, Any] | None = None,
) -> str:
    """The report in one format (html and latex through the side-by-side renderers).

    ``folder`` is the results folder, named in the html and latex reports; ``gate``
    (``GateResult.to_dict()`` of the in-run gate) adds a gate section to them.
    """
    if fmt == "json":
        return json.dumps({"benchmarks": summaries}, indent=2, default=str) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(summaries))
        return buffer.getvalue()
    if fmt == "markdown":
        return _markdown(summaries)
    if fmt in ("html", "latex"):
        from pytest_nel.report_data import Report, RunResults
        from pytest_nel.report_formats import render_report

        where = folder or Path(".")
        label = _single_label(summaries) or where.resolve().name or "run"
        run = RunResults(label=label, path=where, summaries=summaries)
        return render_report(Report([run], gate=gate), fmt)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {sorted(FORMATS)}")


def _markdown(summaries: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Evaluation report",
        "",
        "| benchmark | metric | score | 95% CI | method | problems | samples | errors "
        "| unparsed | unparsed % | truncated % |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows(summaries):
        lines.append(
            f"| {row['benchmark']} | {row['metric']} | {row['value']:.4f} "
            f"| [{row['ci_lower']:.4f}, {row['ci_upper']:.4f}] | {row['method']} "
            f"| {row['problems']} | {row['samples']} | {row['errors']} "
            f"| {row['unparsed']} | {_percent_cell(row['unparsed_rate'])} "
            f"| {_percent_cell(row['truncated_rate'])} |"
        )
    for name, summary in summaries.items():
        fp = summary.get("fingerprint", {})
        lines += [
            "",
            f"## {name}",
            "",
            f"- model: `{fp.get('model', {}).get('model')}` at `{fp.get('endpoint')}`",
            f"- complete: {summary.get('complete', True)}",
            f"- tokens: {summary.get('tokens')}",
            f"- latency (ms): {summary.get('latency_ms')}",
            f"- errors by category: {summary.get('errors_by_category') or 'none'}",
        ]
    return "\n".join(lines) + "\n"


def _percent_cell(rate: float | str | None) -> str:
    # Category rows carry no rates (they are per benchmark): an empty cell.
    if rate == "":
        return ""
    return percent(float(rate) if isinstance(rate, (int, float)) else None)


def write_reports(
    folder: Path,
    summaries: dict[str, dict[str, Any]],
    formats: Sequence[str],
    *,
    gate: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the configured report formats into the results folder."""
    written = []
    for fmt in formats:
        path = folder / FORMATS[fmt]
        path.write_text(render(summaries, fmt, folder, gate=gate), encoding="utf-8")
        written.append(path)
    return written


def headline_text(summary: dict[str, Any]) -> str:
    """``pass@1 0.7300 [0.7050, 0.7540]`` for a summary."""
    found = headline(summary)
    if found is None:
        return "no scored samples"
    name, m = found
    return f"{name} {m['value']:.4f} [{m['ci_lower']:.4f}, {m['ci_upper']:.4f}]"


def _single_label(summaries: dict[str, dict[str, Any]]) -> str | None:
    models = {
        str((s.get("fingerprint", {}).get("model") or {}).get("model"))
        for s in summaries.values()
    }
    return models.pop() if len(models) == 1 and "None" not in models else None
