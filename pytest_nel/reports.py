"""Reports rendered from summary.json files: markdown, json, csv and html."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_nel.results import SUMMARY
from pytest_nel.summary import headline

FORMATS = {
    "markdown": "report.md",
    "json": "report.json",
    "csv": "report.csv",
    "html": "report.html",
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
        base = {
            "problems": counts["problems"],
            "samples": counts["samples"],
            "errors": counts["errors"],
            "unparsed": counts["unparsed"],
            "truncated": counts["truncated"],
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


def render(summaries: dict[str, dict[str, Any]], fmt: str) -> str:
    """The report in one format."""
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
    if fmt == "html":
        return _html(summaries)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {sorted(FORMATS)}")


def _markdown(summaries: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Evaluation report",
        "",
        "| benchmark | metric | score | 95% CI | method | problems | samples | errors "
        "| unparsed |",
        "|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows(summaries):
        lines.append(
            f"| {row['benchmark']} | {row['metric']} | {row['value']:.4f} "
            f"| [{row['ci_lower']:.4f}, {row['ci_upper']:.4f}] | {row['method']} "
            f"| {row['problems']} | {row['samples']} | {row['errors']} | {row['unparsed']} |"
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


def _html(summaries: dict[str, dict[str, Any]]) -> str:
    body = []
    for row in rows(summaries):
        lo, hi, v = row["ci_lower"], row["ci_upper"], row["value"]
        bar = (
            f'<svg width="200" height="14"><line x1="{lo * 200:.1f}" x2="{hi * 200:.1f}" '
            f'y1="7" y2="7" stroke="#555" stroke-width="2"/><circle cx="{v * 200:.1f}" '
            f'cy="7" r="4" fill="#2a6"/></svg>'
        )
        cells = [
            row["benchmark"],
            row["metric"],
            f"{v:.4f}",
            f"[{lo:.4f}, {hi:.4f}]",
            row["method"],
            row["problems"],
            row["samples"],
            row["errors"],
        ]
        body.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + f"<td>{bar}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "benchmark",
            "metric",
            "score",
            "95% CI",
            "method",
            "problems",
            "samples",
            "errors",
            "score with CI (0 to 1)",
        )
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
        "</style></head><body><h1>Evaluation report</h1><table>"
        f"<tr>{head}</tr>{''.join(body)}</table></body></html>\n"
    )


def write_reports(
    folder: Path, summaries: dict[str, dict[str, Any]], formats: Sequence[str]
) -> list[Path]:
    """Write the configured report formats into the results folder."""
    written = []
    for fmt in formats:
        path = folder / FORMATS[fmt]
        path.write_text(render(summaries, fmt), encoding="utf-8")
        written.append(path)
    return written


def headline_text(summary: dict[str, Any]) -> str:
    """``pass@1 0.7300 [0.7050, 0.7540]`` for a summary."""
    found = headline(summary)
    if found is None:
        return "no scored samples"
    name, m = found
    return f"{name} {m['value']:.4f} [{m['ci_lower']:.4f}, {m['ci_upper']:.4f}]"
