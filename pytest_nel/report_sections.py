"""Compare and gate results as report sections (one table each, with plots for html).

The inputs are the JSON objects ``nel compare -o`` and ``nel gate -o`` write
(``CompareResult.to_dict()`` in :mod:`pytest_nel.compare`, ``GateResult.to_dict()`` in
:mod:`pytest_nel.gate`). This module is the one place that reads their keys; every
renderer reads the neutral :class:`Section` it builds. Per benchmark the difference is
``candidate - baseline`` with its interval (``difference: {diff, ci_lower, ci_upper,
baseline, candidate, n, mde}``); missing keys show as an em dash rather than failing,
so a report still renders from an older or partial file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_nel.report_data import Report

MAX_FLIPS = 50  # flipped problems listed per benchmark and direction


@dataclass(frozen=True)
class DiffPlot:
    """A difference with its interval, drawn against the tolerated drop.

    Attributes:
        diff: Candidate minus baseline.
        ci_lower: Lower end of the interval on the difference.
        ci_upper: Upper end of the interval on the difference.
        limit: The difference at which the tolerated drop is reached (``-max_drop``
            when higher is better, ``+max_drop`` when lower is), or None.
        status: The row's verdict, which picks the colour.
    """

    diff: float
    ci_lower: float
    ci_upper: float
    limit: float | None
    status: str


@dataclass
class Section:
    """One titled table: verdict, notes, rows, a plot per row, details and reasons.

    ``notes`` say what was compared (shown first); ``reasons`` say why each row got
    its verdict (html folds them); ``details`` are titled lists (flipped problems).
    """

    kind: str
    title: str
    verdict: str | None
    notes: list[str]
    columns: list[str]
    rows: list[list[str]]
    plots: list[DiffPlot | None] = field(default_factory=list)
    details: list[tuple[str, list[str]]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


# Verdicts and statuses by how good they are; renderers colour them with this.
TONES = {
    "GO": "good",
    "PASS": "good",
    "NO-GO": "bad",
    "BLOCK": "bad",
    "BREACH": "bad",
    "MISSING": "bad",
    "WARN": "warn",
    "INCONCLUSIVE": "warn",
    "INSUFFICIENT_EVIDENCE": "warn",
}


def tone(verdict: str | None) -> str:
    """``good``, ``bad``, ``warn`` or ``neutral`` for a verdict or status."""
    return TONES.get(str(verdict or "").upper(), "neutral")


def sections(report: Report) -> Iterator[Section]:
    """The compare section, then the gate section, for those the report carries."""
    if report.compare is not None:
        yield compare_section(report.compare)
    if report.gate is not None:
        yield gate_section(report.gate)


def compare_section(data: dict[str, Any]) -> Section:
    """A ``nel compare`` result as a section."""
    columns = ["benchmark", "metric", "baseline → candidate", "difference [CI]"]
    columns += ["p", "MDE", "problems", "flips (−/+)", "verdict"]
    section = Section("compare", "Paired comparison", _verdict(data), [], columns, [])
    section.notes = _sides(data, "compare")
    for name, entry in entries(data):
        d = difference(entry)
        status = str(entry.get("verdict") or "")
        section.rows.append(
            [
                name,
                str(entry.get("metric") or "—"),
                _fmt_pair(d),
                _fmt_diff(d),
                _fmt_p(entry),
                _fmt(number(d, "mde")),
                _fmt_int(
                    number(d, "n") or number(entry.get("samples") or {}, "problems")
                ),
                f"{_fmt_int(number(entry, 'regressions'))} / "
                f"{_fmt_int(number(entry, 'improvements'))}",
                status + _needed(entry),
            ]
        )
        section.plots.append(_plot(d, entry, data, status))
        section.reasons += _entry_notes(name, entry)
        section.details += _flips(name, entry)
    return section


def gate_section(data: dict[str, Any]) -> Section:
    """A ``nel gate`` result as a section."""
    columns = ["benchmark", "tier", "metric", "baseline → candidate"]
    columns += ["difference [CI]", "max drop", "error rate", "status"]
    section = Section("gate", "Quality gate", _verdict(data), [], columns, [])
    section.notes = _sides(data, "gate")
    for name, entry in entries(data):
        d = difference(entry)
        status = str(entry.get("status") or entry.get("verdict") or "")
        section.rows.append(
            [
                name,
                str(entry.get("tier", "")),
                str(entry.get("metric") or "—"),
                _fmt_pair(d),
                _fmt_diff(d),
                _fmt(threshold(entry, data)),
                _fmt_rate(entry),
                status + _needed(entry),
            ]
        )
        section.plots.append(_plot(d, entry, data, status))
        section.reasons += _entry_notes(name, entry)
    return section


# ---------------------------------------------------------------------- reading
def entries(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Per-benchmark entries, whether a list of objects or an object by name."""
    found = data.get("benchmarks") or []
    if isinstance(found, dict):
        found = [{"benchmark": k, **v} for k, v in found.items() if isinstance(v, dict)]
    for entry in found:
        if isinstance(entry, dict):
            yield str(entry.get("benchmark") or entry.get("name") or "?"), entry


def number(entry: Any, *keys: str) -> float | None:
    """The first of ``keys`` that holds a number (bools are not numbers here)."""
    if not isinstance(entry, dict):
        return None
    for key in keys:
        value = entry.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def difference(entry: dict[str, Any]) -> dict[str, Any]:
    """The paired difference of an entry (``baseline, candidate, diff, ci_lower, ...``).

    A compare entry holds it as ``difference``, a gate entry inside ``comparison``;
    a gate entry without one (MISSING) gives its flat scores, if any.
    """
    found = entry.get("difference")
    if isinstance(found, dict):
        return found
    comparison = entry.get("comparison")
    if isinstance(comparison, dict) and isinstance(comparison.get("difference"), dict):
        return dict(comparison["difference"])
    return {
        "baseline": entry.get("baseline_score"),
        "candidate": entry.get("candidate_score"),
        "diff": entry.get("delta"),
        "n": entry.get("n_problems") or None,
    }


def threshold(entry: dict[str, Any], data: dict[str, Any]) -> float | None:
    """The tolerated drop of an entry (a gate's may be tightened by its policy)."""
    found = number(entry, "threshold", "max_drop")
    return found if found is not None else number(data, "max_drop")


def reasons(entry: dict[str, Any]) -> list[str]:
    """Why the entry got its verdict (compare: ``reason``; gate: ``reasons``)."""
    found = entry.get("reasons") or ([entry["reason"]] if entry.get("reason") else [])
    return [str(r) for r in found]


def _plot(
    d: dict[str, Any], entry: dict[str, Any], data: dict[str, Any], status: str
) -> DiffPlot | None:
    diff, lo, hi = (number(d, k) for k in ("diff", "ci_lower", "ci_upper"))
    if diff is None or lo is None or hi is None:
        return None
    tolerated = threshold(entry, data)
    limit = None
    if tolerated:
        lower_is_better = entry.get("direction") == "lower_is_better"
        limit = tolerated if lower_is_better else -tolerated
    return DiffPlot(diff, lo, hi, limit, status)


def _verdict(data: dict[str, Any]) -> str | None:
    verdict = data.get("verdict")
    return str(verdict) if verdict else None


def _sides(data: dict[str, Any], kind: str) -> list[str]:
    """Where the two runs came from, which models, and the run-level warnings."""
    identity = None
    for _, entry in entries(data):
        comparison = entry.get("comparison")
        identity = entry.get("identity") or (comparison or {}).get("identity")
        if identity:
            break
    notes = []
    for side in ("baseline", "candidate"):
        where = data.get(side)
        if isinstance(where, dict):
            where = where.get("path")
        model = ((identity or {}).get(side) or {}).get("model")
        if where or model:
            notes.append(f"{side}: {model or 'model not recorded'} ({where})")
    if kind == "compare" and number(data, "max_drop") is not None:
        notes.append(
            f"tolerated drop {data['max_drop']:g}, "
            f"{number(data, 'confidence') or 0.95:.0%} intervals"
        )
    if isinstance(data.get("policy"), str):
        notes.append(f"policy: {data['policy']}")
    if kind == "gate":
        notes += [str(r) for r in data.get("reasons") or []]
    notes += [str(w) for w in data.get("warnings") or []]
    return notes


def _entry_notes(name: str, entry: dict[str, Any]) -> list[str]:
    comparison = entry.get("comparison") or {}
    warnings = entry.get("warnings") or comparison.get("warnings") or []
    return [f"{name}: {r}" for r in reasons(entry)] + [f"{name}: {w}" for w in warnings]


def _needed(entry: dict[str, Any]) -> str:
    parts = []
    problems = number(entry, "problems_needed")
    repeats = number(entry, "repeats_needed")
    if problems:
        parts.append(f"{int(problems)} problems")
    if repeats:
        parts.append(f"or {int(repeats)} repeats")
    return f" (needs {' '.join(parts)})" if parts else ""


def _flips(name: str, entry: dict[str, Any]) -> list[tuple[str, list[str]]]:
    flips = entry.get("flips")
    if not isinstance(flips, dict):
        return []
    out = []
    for key in ("regressions", "improvements"):
        items = flips.get(key) or []
        if not items:
            continue
        lines = [_flip_text(item) for item in items[:MAX_FLIPS]]
        if len(items) > MAX_FLIPS:
            lines.append(f"... and {len(items) - MAX_FLIPS} more (see the json)")
        out.append((f"{name}: {len(items)} {key}", lines))
    return out


def _flip_text(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    pid = item.get("problem_id", item.get("problem_idx", "?"))
    text = f"problem {pid}: {_short(item.get('baseline'))} → "
    text += _short(item.get("candidate"))
    answers = [
        f"{label} {_short(item[key])}"
        for key, label in (
            ("expected_answer", "expected"),
            ("baseline_answer", "baseline said"),
            ("candidate_answer", "candidate said"),
        )
        if item.get(key) is not None
    ]
    return text + (f" ({', '.join(answers)})" if answers else "")


# ---------------------------------------------------------------------- formatting
def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _fmt_int(value: float | None) -> str:
    return "—" if value is None else str(int(value))


def _fmt_p(entry: dict[str, Any]) -> str:
    p = number(entry, "p_value")
    if p is None:
        return "—"
    test = {"mcnemar_exact": "McNemar", "paired_t": "t"}.get(str(entry.get("test")))
    return f"{p:.3g}" + (f" ({test})" if test else "")


def _fmt_rate(entry: dict[str, Any]) -> str:
    rate = number(entry, "error_rate")
    if rate is None:
        rate = number(entry.get("error_rate"), "candidate")
    return "—" if rate is None else f"{rate:.1%}"


def _fmt_pair(d: dict[str, Any]) -> str:
    before, after = number(d, "baseline"), number(d, "candidate")
    return f"{_fmt(before)} → {_fmt(after)}"


def _fmt_diff(d: dict[str, Any]) -> str:
    diff, lo, hi = (number(d, k) for k in ("diff", "ci_lower", "ci_upper"))
    if diff is None:
        return "—"
    if lo is None or hi is None:
        return f"{diff:+.4f}"
    return f"{diff:+.4f} [{lo:+.4f}, {hi:+.4f}]"
