"""Text renderings of a report: markdown, csv, json and latex.

Each shows one column per run and one row per benchmark and metric, every value with its
95% interval; markdown and latex add the per-category breakdown and the compare and gate
sections (:mod:`pytest_nel.report_sections`). The html rendering lives in
:mod:`pytest_nel.report_html`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence

from pytest_nel.report_data import Cell, Report, Row, SampleRates
from pytest_nel.report_sections import Section, sections
from pytest_nel.summary import percent

MULTI_FORMATS = ("markdown", "html", "csv", "json", "latex")


def render_report(report: Report, fmt: str) -> str:
    """The report in one of :data:`MULTI_FORMATS`."""
    if fmt == "html":
        from pytest_nel.report_html import render_html

        return render_html(report)
    renderers: dict[str, Callable[[Report], str]] = {
        "markdown": markdown,
        "csv": csv_table,
        "json": lambda r: json.dumps(r.to_dict(), indent=2, default=str) + "\n",
        "latex": latex,
    }
    if fmt not in renderers:
        raise ValueError(
            f"unknown report format {fmt!r}; choose one of {MULTI_FORMATS}"
        )
    return renderers[fmt](report)


def cell_text(cell: Cell | None, digits: int = 4) -> str:
    """``0.7367 [0.6841, 0.7833]``, or an em dash for a run without this metric."""
    if cell is None:
        return "—"
    lo, hi = cell.ci_lower, cell.ci_upper
    return f"{cell.value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


RATE_COLUMNS = ("benchmark", "run", "samples", "unparsed %", "truncated %", "errors %")


def rate_cells(rates: SampleRates) -> list[str]:
    """The cells of one row of the sample-rates table (before escaping)."""
    return [
        rates.benchmark,
        rates.run,
        str(rates.samples),
        percent(rates.unparsed),
        percent(rates.truncated),
        percent(rates.errors),
    ]


# ---------------------------------------------------------------------- markdown
def markdown(report: Report) -> str:
    """GitHub-flavoured markdown; category breakdowns fold into ``<details>``."""
    labels = [_md(label) for label in report.labels]
    lines = [f"# {_md(report.title)}", "", "## Runs", ""]
    lines += _md_table(
        ["run", "model", "folder", "samples", "errors", "complete"],
        [
            [
                _md(i["label"]),
                f"`{i['model']}`" if i["model"] else "—",
                f"`{i['path']}`",
                str(i["samples"]),
                str(i["errors"]),
                "yes" if i["complete"] else "**no**",
            ]
            for i in (run.info() for run in report.runs)
        ],
    )
    lines += ["", "## Scores (95% CI)", ""]
    lines += _md_table(
        ["benchmark", "metric", "n", *labels], [_md_row(r) for r in report.overall()]
    )
    for bench in report.benchmarks():
        rows = report.categories(bench)
        if rows:
            lines += ["", f"<details><summary>{_md(bench)} by category</summary>", ""]
            lines += _md_table(
                ["category", "metric", "n", *labels],
                [[_md(r.category or ""), *_md_row(r)[1:]] for r in rows],
            )
            lines += ["", "</details>"]
    lines += ["", "## Samples: unparsed, truncated, errors", ""]
    lines += _md_table(
        RATE_COLUMNS,
        [[_md(c) for c in rate_cells(r)] for r in report.sample_rates()],
    )
    for section in sections(report):
        lines += ["", *_md_section(section)]
    return "\n".join(lines) + "\n"


def _md_row(row: Row) -> list[str]:
    return [
        _md(row.benchmark),
        _md(row.metric),
        _n_text(row),
        *map(cell_text, row.cells),
    ]


def _md_section(section: Section) -> list[str]:
    head = f"## {_md(section.title)}"
    if section.verdict:
        head += f": **{section.verdict}**"
    lines = [head, ""]
    lines += [f"- {_md(note)}" for note in section.notes + section.reasons]
    if section.notes or section.reasons:
        lines.append("")
    lines += _md_table(section.columns, [[_md(c) for c in r] for r in section.rows])
    for title, items in section.details:
        lines += ["", f"<details><summary>{_md(title)}</summary>", ""]
        lines += [f"- {_md(item)}" for item in items] + ["", "</details>"]
    return lines


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _n_text(row: Row) -> str:
    ns = {c.n for c in row.cells if c is not None and c.n is not None}
    return "/".join(str(n) for n in sorted(ns)) or "—"


# ---------------------------------------------------------------------- csv
def csv_table(report: Report) -> str:
    """One row per benchmark, category and metric; per run value, CI bounds and n.

    The per-benchmark unparsed and truncated rates of each run follow, on the rows
    of whole benchmarks only.
    """
    header = ["benchmark", "category", "metric"]
    for label in report.labels:
        header += [label, f"{label} ci_lower", f"{label} ci_upper", f"{label} n"]
    for label in report.labels:
        header += [f"{label} unparsed_rate", f"{label} truncated_rate"]
    rates = {(r.benchmark, r.run): r for r in report.sample_rates()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in report.rows:
        out: list[object] = [row.benchmark, row.category or "", row.metric]
        for cell in row.cells:
            out += (
                [round(cell.value, 6), round(cell.ci_lower, 6), round(cell.ci_upper, 6)]
                + [cell.n]
                if cell
                else ["", "", "", ""]
            )
        for label in report.labels:
            found = None if row.category else rates.get((row.benchmark, label))
            out += [_csv_rate(found.unparsed if found else None)]
            out += [_csv_rate(found.truncated if found else None)]
        writer.writerow(out)
    return buffer.getvalue()


def _csv_rate(rate: float | None) -> object:
    return "" if rate is None else round(rate, 6)


# ---------------------------------------------------------------------- latex
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "—": "---",
    "→": r"$\rightarrow$",
}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX_SPECIAL))


def tex(text: str) -> str:
    """Escape LaTeX's special characters."""
    return _TEX_RE.sub(lambda m: _TEX_SPECIAL[m.group()], str(text))


def latex(report: Report) -> str:
    """A booktabs ``table`` per view, to paste into a paper (needs booktabs)."""
    out = [
        f"% {tex(report.title)}: generated by pytest-nel (nel report).",
        "% Needs \\usepackage{booktabs}. Cells: score [95% CI].",
    ]
    labels = [tex(label) for label in report.labels]
    out += _tex_table(
        ["Benchmark", "Metric", *labels],
        [
            [tex(r.benchmark), tex(r.metric), *map(_tex_cell, r.cells)]
            for r in report.overall()
        ],
        caption="Scores with 95\\% confidence intervals.",
        label="tab:nel-scores",
        align="ll" + "c" * len(labels),
    )
    for bench in report.benchmarks():
        rows = report.categories(bench)
        if rows:
            out += _tex_table(
                ["Category", "Metric", *labels],
                [
                    [tex(r.category or ""), tex(r.metric), *map(_tex_cell, r.cells)]
                    for r in rows
                ],
                caption=f"{tex(bench)} by category (95\\% CI).",
                label=f"tab:nel-{_tex_label(bench)}-categories",
                align="ll" + "c" * len(labels),
            )
    out += _tex_table(
        [tex(c) for c in RATE_COLUMNS],
        [[tex(c) for c in rate_cells(r)] for r in report.sample_rates()],
        caption="Samples: unparsed (of scored), truncated and errored (of all).",
        label="tab:nel-sample-rates",
        align="llrrrr",
    )
    for section in sections(report):
        caption = tex(section.title) + (
            f": {tex(section.verdict)}" if section.verdict else ""
        )
        out += _tex_table(
            [tex(c) for c in section.columns],
            [[tex(c) for c in r] for r in section.rows],
            caption=caption + ".",
            label=f"tab:nel-{_tex_label(section.title)}",
            align="l" * len(section.columns),
        )
    return "\n".join(out) + "\n"


def _tex_cell(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    return (
        f"{cell.value:.3f} {{\\scriptsize [{cell.ci_lower:.3f}, {cell.ci_upper:.3f}]}}"
    )


def _tex_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    caption: str,
    label: str,
    align: str,
) -> list[str]:
    return [
        "",
        "\\begin{table}[ht]",
        "\\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
        *(" & ".join(r) + " \\\\" for r in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]


def _tex_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"
