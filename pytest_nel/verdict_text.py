"""Text, markdown and JSON renderings of ``nel compare`` and ``nel gate`` results.

Public API::

    render_compare(result: CompareResult, fmt="text", show_flips=False) -> str
    render_gate(result: GateResult, fmt="text") -> str

``fmt`` is ``text`` (the terminal), ``markdown`` (CI job summaries, PR comments) or
``json`` (``to_dict()``, indented). HTML belongs to the reports.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_nel.compare import BenchmarkComparison, CompareResult
    from pytest_nel.gate import BenchmarkGate, GateResult

__all__ = ["FORMATS", "render_compare", "render_gate"]

FORMATS = ("text", "markdown", "json")
FLIPS_SHOWN = 20


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _ci(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"[{pair[0]:+.4f}, {pair[1]:+.4f}]"


def _table(rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |"]
        out.append("|" + "|".join("---" for _ in rows[0]) + "|")
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return out
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


# ---------------------------------------------------------------------- compare


def render_compare(
    result: CompareResult, fmt: str = "text", show_flips: bool = False
) -> str:
    """Render a comparison (see the module docstring)."""
    if fmt == "json":
        return _json(result.to_dict())
    md = fmt == "markdown"
    head = f"## nel compare: {result.verdict}" if md else f"{result.verdict}"
    lines = [
        head,
        "",
        f"baseline:  {result.baseline}",
        f"candidate: {result.candidate}",
        f"max drop:  {result.max_drop}  (confidence {result.confidence:.0%})",
        "",
    ]
    if md:
        lines[2:5] = [f"- {line}" for line in lines[2:5]]
    rows = [
        [
            "benchmark",
            "verdict",
            "metric",
            "baseline",
            "candidate",
            "diff",
            "CI",
            "p",
            "MDE",
            "n",
            "worse/better",
        ]  # fmt: skip
    ]
    rows += [_compare_row(b) for b in result.benchmarks]
    lines += _table(rows, md)
    for bench in result.benchmarks:
        lines += ["", f"{'### ' if md else ''}{bench.benchmark}: {bench.reason}"]
        lines += _identity_lines(bench, md)
        lines += [f"{'- ' if md else '  '}warning: {w}" for w in bench.warnings]
        if show_flips:
            lines += _flip_lines(bench, md)
    if result.warnings:
        lines.append("")
    lines += [f"{'- ' if md else ''}warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def _compare_row(bench: BenchmarkComparison) -> list[str]:
    d = bench.difference
    p = "-" if bench.p_value is None else f"{bench.p_value:.3g}"
    return [
        bench.benchmark,
        bench.verdict,
        bench.metric,
        _num(d.baseline if d else None),
        _num(d.candidate if d else None),
        _num(d.diff if d else None, sign=True),
        _ci((d.ci_lower, d.ci_upper) if d else None),
        p,
        _num(d.mde if d else None),
        str(bench.samples["problems"]),
        f"{bench.regressions}/{bench.improvements}",
    ]


def _identity_lines(bench: BenchmarkComparison, md: bool) -> list[str]:
    base, cand = bench.identity["baseline"], bench.identity["candidate"]
    lead = "- " if md else "  "
    lines = []
    for key in ("model", "endpoint", "package_version"):
        if base.get(key) != cand.get(key):
            lines.append(f"{lead}{key}: {base.get(key)} -> {cand.get(key)}")
    errors = bench.errors
    for side in ("baseline", "candidate"):
        if errors[side]["errors"]:
            e = errors[side]
            lines.append(
                f"{lead}{side} errors: {e['errors']}/{e['samples']} "
                f"({e['rate']:.1%}) excluded from the scores"
            )
    return lines


def _flip_lines(bench: BenchmarkComparison, md: bool) -> list[str]:
    lines: list[str] = []
    for key in ("regressions", "improvements"):
        flips = bench.flips[key]
        if not flips:
            continue
        lines.append(f"{'- ' if md else '  '}{key} ({len(flips)}):")
        for flip in flips[:FLIPS_SHOWN]:
            lines.append(
                f"{'  - ' if md else '    '}#{flip['problem_idx']} "
                f"({flip['problem_id']}): {flip['baseline']:.2f} -> "
                f"{flip['candidate']:.2f}  expected {flip['expected_answer']!r}, "
                f"baseline {flip['baseline_answer']!r}, "
                f"candidate {flip['candidate_answer']!r}"
            )
        if len(flips) > FLIPS_SHOWN:
            more = len(flips) - FLIPS_SHOWN
            lines.append(f"{'  - ' if md else '    '}... {more} more (in -o JSON)")
    return lines


# ---------------------------------------------------------------------- gate


def render_gate(result: GateResult, fmt: str = "text") -> str:
    """Render a gate result (see the module docstring)."""
    if fmt == "json":
        return _json(result.to_dict())
    md = fmt == "markdown"
    lines = [
        f"## nel gate: {result.verdict}" if md else result.verdict,
        "",
        f"{'- ' if md else ''}baseline:  {result.baseline}",
        f"{'- ' if md else ''}candidate: {result.candidate}",
        "",
    ]
    lines += [f"{'- ' if md else '  '}{reason}" for reason in result.reasons]
    lines.append("")
    rows = [
        [
            "benchmark",
            "tier",
            "status",
            "metric",
            "baseline",
            "candidate",
            "delta",
            "drop CI",
            "threshold",
            "n",
            "errors",
        ]  # fmt: skip
    ]
    rows += [_gate_row(g) for g in result.benchmarks]
    lines += _table(rows, md)
    for gate in result.benchmarks:
        if gate.status != "PASS" or md:
            lines.append("")
            lines.append(f"{'### ' if md else ''}{gate.benchmark} ({gate.status})")
            lines += [f"{'- ' if md else '  '}{reason}" for reason in gate.reasons]
    if result.warnings:
        lines.append("")
    lines += [f"{'- ' if md else ''}warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def _gate_row(gate: BenchmarkGate) -> list[str]:
    rate = gate.error_rate.get("candidate")
    return [
        gate.benchmark,
        gate.tier,
        gate.status,
        gate.metric or "-",
        _num(gate.baseline_score),
        _num(gate.candidate_score),
        _num(gate.delta, sign=True),
        _ci(gate.drop_ci),
        _num(gate.threshold),
        str(gate.n_problems),
        "-" if rate is None else f"{rate:.1%}",
    ]
