"""The data of a side-by-side report: runs, their labels and one table of metrics.

``nel report DIR [DIR...]`` and ``nel eval report DIR`` both build a :class:`Report`
here and hand it to a renderer (:mod:`pytest_nel.report_formats` for markdown, csv,
json and latex; :mod:`pytest_nel.report_html` for html). Everything a renderer shows
is computed once, here, so the formats cannot disagree.

A run is a results folder (``<dir>/<benchmark>/summary.json``), one benchmark folder
(``<dir>/summary.json``), or a NeMo Evaluator results folder (``eval-*.json`` with
``results.jsonl``; its metrics are computed from the samples). Its label is the model
named in the fingerprints, or the folder's name when the benchmarks name different
models; clashing labels get the folder name appended. Compare and gate sections are the
JSON that ``nel compare -o`` and ``nel gate -o`` write, carried through as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_nel.exceptions import NelUsageError
from pytest_nel.results import SUMMARY
from pytest_nel.summary import sample_rates

REPORT_SCHEMA_VERSION = 1
BUNDLE = "eval-*.json"  # a NeMo Evaluator result bundle
# Headline metrics lead each benchmark's rows, in this order; the rest follow sorted.
_LEADING = ("pass@1", "mean_reward")


@dataclass(frozen=True)
class RunResults:
    """One run's summaries and how the report names it."""

    label: str
    path: Path
    summaries: dict[str, dict[str, Any]]

    @property
    def model(self) -> str | None:
        """The model the run evaluated, when all its benchmarks name the same one."""
        models = {_model_of(s) for s in self.summaries.values()}
        return models.pop() if len(models) == 1 else None

    def info(self) -> dict[str, Any]:
        """What the report says about the run itself (model, endpoint, counts)."""
        endpoints = sorted(
            {str(e) for s in self.summaries.values() if (e := _fp(s).get("endpoint"))}
        )
        versions = sorted(
            {
                str(v)
                for s in self.summaries.values()
                if (v := _fp(s).get("package_version"))
            }
        )
        counts = [s.get("counts", {}) for s in self.summaries.values()]
        return {
            "label": self.label,
            "path": str(self.path),
            "model": self.model,
            "endpoints": endpoints,
            "package_versions": versions,
            "benchmarks": list(self.summaries),
            "samples": sum(int(c.get("samples", 0)) for c in counts),
            "errors": sum(int(c.get("errors", 0)) for c in counts),
            "complete": all(s.get("complete", True) for s in self.summaries.values()),
        }


@dataclass(frozen=True)
class Cell:
    """One metric of one run: the value, its 95% interval, n and the CI method."""

    value: float
    ci_lower: float
    ci_upper: float
    n: int | None
    method: str

    @classmethod
    def from_metric(cls, m: dict[str, Any]) -> Cell:
        """Read a ``{value, ci_lower, ci_upper, n, method}`` metric of summary.json."""
        return cls(
            value=float(m["value"]),
            ci_lower=float(m.get("ci_lower", m["value"])),
            ci_upper=float(m.get("ci_upper", m["value"])),
            n=int(m["n"]) if m.get("n") is not None else None,
            method=str(m.get("method", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "value": self.value,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "n": self.n,
            "method": self.method,
        }


@dataclass(frozen=True)
class Row:
    """One benchmark (or one of its categories) and metric, one cell per run."""

    benchmark: str
    category: str | None
    metric: str
    cells: tuple[Cell | None, ...]

    def to_dict(self, labels: Sequence[str]) -> dict[str, Any]:
        """Plain JSON, cells keyed by run label."""
        return {
            "benchmark": self.benchmark,
            "category": self.category,
            "metric": self.metric,
            "cells": {
                label: cell.to_dict() if cell else None
                for label, cell in zip(labels, self.cells, strict=True)
            },
        }


@dataclass(frozen=True)
class SampleRates:
    """How one run's samples of one benchmark went: unparsed, truncated, errored.

    The rates are those of summary.json (:func:`pytest_nel.summary.summarize`):
    unparsed over scored samples, truncated and errors over all samples; None where
    the run does not record them.
    """

    benchmark: str
    run: str
    samples: int
    unparsed: float | None
    truncated: float | None
    errors: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "benchmark": self.benchmark,
            "run": self.run,
            "samples": self.samples,
            "unparsed": self.unparsed,
            "truncated": self.truncated,
            "errors": self.errors,
        }


@dataclass
class Report:
    """Everything a rendered report shows."""

    runs: list[RunResults]
    title: str = "Evaluation report"
    compare: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    rows: list[Row] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = build_rows(self.runs)

    @property
    def labels(self) -> list[str]:
        """The run labels, in the order the runs were given."""
        return [run.label for run in self.runs]

    def overall(self) -> list[Row]:
        """The rows of whole benchmarks (no category)."""
        return [row for row in self.rows if row.category is None]

    def categories(self, benchmark: str) -> list[Row]:
        """The per-category rows of one benchmark."""
        return [r for r in self.rows if r.benchmark == benchmark and r.category]

    def benchmarks(self) -> list[str]:
        """Benchmark names in order of first appearance."""
        return list(dict.fromkeys(row.benchmark for row in self.rows))

    def sample_rates(self) -> list[SampleRates]:
        """Per benchmark, then per run that has it: its sample rates."""
        out = []
        for bench in self.benchmarks():
            for run in self.runs:
                summary = run.summaries.get(bench)
                if summary is None:
                    continue
                rates = sample_rates(summary)
                samples = int(summary.get("counts", {}).get("samples", 0))
                out.append(SampleRates(bench, run.label, samples, **rates))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain JSON (what ``-f json`` writes)."""
        labels = self.labels
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "title": self.title,
            "runs": [run.info() for run in self.runs],
            "rows": [row.to_dict(labels) for row in self.rows],
            "sample_rates": [r.to_dict() for r in self.sample_rates()],
            "compare": self.compare,
            "gate": self.gate,
        }


def load_run(path: Path) -> dict[str, dict[str, Any]]:
    """The summaries of one results folder (or one benchmark folder), by benchmark.

    Raises:
        NelUsageError: the folder is missing, holds no summary.json, or one is not
            valid JSON.
    """
    if not path.is_dir():
        raise NelUsageError(f"{path}: no such results folder")
    files = (
        [path / SUMMARY]
        if (path / SUMMARY).is_file()
        else sorted(path.glob(f"*/{SUMMARY}"))
    )
    if not files and (any(path.glob(BUNDLE)) or any(path.glob(f"*/{BUNDLE}"))):
        return nemo_summaries(path)
    if not files:
        raise NelUsageError(
            f"{path}: no {SUMMARY} here or in its sub-folders; give the folder a "
            "`nel eval run -o DIR` wrote (a crashed run gets one with `nel eval run "
            "--resume`)"
        )
    summaries: dict[str, dict[str, Any]] = {}
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NelUsageError(f"{file}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or "metrics" not in data:
            raise NelUsageError(f"{file}: not a pytest-nel summary (no 'metrics')")
        summaries[str(data.get("benchmark") or file.parent.name)] = data
    return summaries


def nemo_summaries(path: Path) -> dict[str, dict[str, Any]]:
    """Summaries computed from a NeMo Evaluator results folder (no summary.json).

    The samples (``results.jsonl`` beside each ``eval-*.json``) are read with
    :func:`pytest_nel.runs.load_run` and their metrics and intervals computed as a
    pytest-nel run's are; the folder has no fingerprint, only the bundle's model.
    """
    from pytest_nel.runs import load_run as load_results
    from pytest_nel.stats import compute_metrics

    summaries = {}
    for name, bench in load_results(path).benchmarks.items():
        samples = bench.samples
        scored = ~samples.errored
        rewards = [
            samples.reward[scored & (samples.problem_idx == idx)].tolist()
            for idx in np.unique(samples.problem_idx)
        ]
        metrics = compute_metrics(rewards, binary=bench.binary, repeats=bench.repeats)
        errors, total, _ = bench.error_rate()
        summaries[name] = {
            "benchmark": name,
            "complete": not bench.partial,
            "counts": {"problems": len(rewards), "samples": total, "errors": errors},
            "metrics": {k: m.to_dict() for k, m in metrics.items()},
            "categories": {},
            "fingerprint": {"model": {"model": bench.identity()["model"]}},
            "source": bench.source,
        }
    return summaries


def load_runs(
    paths: Sequence[Path], labels: Sequence[str] | None = None
) -> list[RunResults]:
    """Load several runs and give each a distinct label.

    Args:
        paths: Results folders, in the order their columns appear.
        labels: Explicit labels, one per path; None to derive them.

    Raises:
        NelUsageError: a folder cannot be read, or the labels do not match the folders.
    """
    if labels and len(labels) != len(paths):
        raise NelUsageError(
            f"--label was given {len(labels)} times for {len(paths)} folders; "
            "give one label per folder or none"
        )
    loaded = [(path, load_run(path)) for path in paths]
    names = list(labels) if labels else derive_labels(loaded)
    return [
        RunResults(label=name, path=path, summaries=summaries)
        for name, (path, summaries) in zip(names, loaded, strict=True)
    ]


def derive_labels(
    loaded: Sequence[tuple[Path, dict[str, dict[str, Any]]]],
) -> list[str]:
    """The model of each run, or its folder name; clashes get the folder appended."""
    names = []
    for path, summaries in loaded:
        models = {_model_of(s) for s in summaries.values()}
        model = models.pop() if len(models) == 1 else None
        names.append(model or _folder_name(path))
    first = list(names)
    for i, name in enumerate(first):
        folder = _folder_name(loaded[i][0])
        if first.count(name) > 1 and name != folder:
            names[i] = f"{name} ({folder})"
    second = list(names)
    seen: dict[str, int] = {}
    for i, name in enumerate(second):
        seen[name] = seen.get(name, 0) + 1
        if second.count(name) > 1:
            names[i] = f"{name} #{seen[name]}"
    return names


def build_rows(runs: Sequence[RunResults]) -> list[Row]:
    """One row per benchmark and metric, then per benchmark, category and metric."""
    rows: list[Row] = []
    for bench in dict.fromkeys(b for run in runs for b in run.summaries):
        present = [run.summaries.get(bench) for run in runs]
        metrics = _ordered(m for s in present if s for m in s.get("metrics", {}))
        for metric in metrics:
            cells = tuple(_cell(s, metric) for s in present)
            rows.append(Row(bench, None, metric, cells))
        categories = sorted({c for s in present if s for c in s.get("categories", {})})
        for category in categories:
            for metric in metrics:
                cells = tuple(_cell(s, metric, category) for s in present)
                if any(cells):
                    rows.append(Row(bench, category, metric, cells))
    return rows


def load_section(path: Path | None, kind: str) -> dict[str, Any] | None:
    """Read a ``nel compare -o`` or ``nel gate -o`` JSON file (None passes through).

    Raises:
        NelUsageError: the file is missing or not a JSON object.
    """
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NelUsageError(f"--{kind}-json {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NelUsageError(f"--{kind}-json {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NelUsageError(
            f"--{kind}-json {path}: expected the JSON object `nel {kind} -o` writes"
        )
    return data


def _cell(
    summary: dict[str, Any] | None, metric: str, category: str | None = None
) -> Cell | None:
    if summary is None:
        return None
    metrics = (
        summary.get("categories", {}).get(category, {})
        if category
        else summary.get("metrics", {})
    )
    m = metrics.get(metric)
    return Cell.from_metric(m) if m else None


def _ordered(names: Any) -> list[str]:
    unique = set(names)
    lead = [m for m in _LEADING if m in unique]
    return lead + sorted(unique - set(lead), key=_metric_sort_key)


def _metric_sort_key(name: str) -> tuple[str, int, str]:
    # pass@2 before pass@16: the k is compared as a number.
    head, _, tail = name.partition("@")
    return (head, int(tail) if tail.isdigit() else 0, tail)


def _fp(summary: dict[str, Any]) -> dict[str, Any]:
    fp = summary.get("fingerprint")
    return fp if isinstance(fp, dict) else {}


def _model_of(summary: dict[str, Any]) -> str | None:
    model = _fp(summary).get("model")
    if isinstance(model, dict):
        model = model.get("model")
    return str(model) if model else None


def _folder_name(path: Path) -> str:
    return path.resolve().name or str(path)
