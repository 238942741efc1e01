"""summary.json: metrics with confidence intervals, computed from the durable results.

The controller computes every summary from results.jsonl (the last record per
(problem_idx, repeat)), never from a worker's memory, so ``--resume``, ``--lf`` and
``-k`` reruns still summarise the whole run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pytest_nel.results import SCHEMA_VERSION, latest_records


def summarize(
    records: list[dict[str, Any]],
    *,
    benchmark: str,
    binary: bool,
    repeats: int,
    fingerprint: dict[str, Any],
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Build the summary of one benchmark from its records.

    ``counts`` holds the sample counts and ``rates`` the fractions derived from them:
    ``unparsed`` over the scored samples (an error has no answer to parse),
    ``truncated`` and ``errors`` over all samples (a cut response may also have
    errored). A rate whose denominator is zero is 0.0.
    """
    # numpy comes with the statistics; imported here so that importing this module
    # (the terminal table does) stays cheap.
    from pytest_nel.stats import category_metrics, compute_metrics

    latest = latest_records(records)
    samples = list(latest.values())
    scored = [r for r in samples if r.get("status") == "scored"]
    errors = [r for r in samples if r.get("status") != "scored"]
    by_problem: dict[int, list[float]] = defaultdict(list)
    by_category: dict[str, dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in scored:
        by_problem[int(r["problem_idx"])].append(float(r["reward"]))
        labels = r.get("category")
        for label in labels if isinstance(labels, list) else [labels]:
            if label is not None:  # several labels: one breakdown per field
                by_category[str(label)][int(r["problem_idx"])].append(
                    float(r["reward"])
                )
    # Problems in index order: the bootstrap's result must not depend on record order.
    rewards = [by_problem[k] for k in sorted(by_problem)]
    metrics = compute_metrics(rewards, binary=binary, repeats=repeats)
    categories = category_metrics(
        {c: [p[k] for k in sorted(p)] for c, p in sorted(by_category.items())},
        binary=binary,
        repeats=repeats,
    )
    problems = {int(r["problem_idx"]) for r in samples}
    unparsed = sum(bool(r.get("unparsed")) for r in scored)
    truncated = sum(bool(r.get("truncated")) for r in samples)
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": benchmark,
        "complete": run_info.get("complete", True),
        "counts": {
            "problems": len(problems),
            "samples": len(samples),
            "scored": len(scored),
            "errors": len(errors),
            "unparsed": unparsed,
            "truncated": truncated,
        },
        "rates": {
            "unparsed": _fraction(unparsed, len(scored)),
            "truncated": _fraction(truncated, len(samples)),
            "errors": _fraction(len(errors), len(samples)),
        },
        "repeats": repeats,
        "rewards": "binary" if binary else "continuous",
        "metrics": {name: m.to_dict() for name, m in metrics.items()},
        "categories": {
            c: {n: m.to_dict() for n, m in ms.items()} for c, ms in categories.items()
        },
        "errors_by_category": _count_errors(errors),
        "tokens": _token_totals(samples),
        "latency_ms": _latency(samples),
        "run": run_info,
        "fingerprint": fingerprint,
    }


def headline(summary: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The metric a report leads with: pass@1 or mean_reward."""
    metrics = summary.get("metrics", {})
    for name in ("pass@1", "mean_reward"):
        if name in metrics:
            return name, metrics[name]
    if metrics:
        name = next(iter(metrics))
        return name, metrics[name]
    return None


def sample_rates(summary: dict[str, Any]) -> dict[str, float | None]:
    """The unparsed, truncated and error rates of a summary (see :func:`summarize`).

    A summary written before ``rates`` existed gets them from its counts; a rate its
    counts cannot give (a NeMo Evaluator folder records no unparsed answers) is None.
    """
    stored = summary.get("rates")
    if isinstance(stored, dict):
        return {k: stored.get(k) for k in ("unparsed", "truncated", "errors")}
    counts = summary.get("counts", {})
    samples, scored = counts.get("samples"), counts.get("scored")

    def rate(key: str, total: Any) -> float | None:
        value = counts.get(key)
        return None if value is None or total is None else _fraction(value, total)

    return {
        "unparsed": rate("unparsed", scored),
        "truncated": rate("truncated", samples),
        "errors": rate("errors", samples),
    }


def percent(rate: float | None) -> str:
    """``12.5%`` for a rate of 0.125; ``-`` when it is unknown."""
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _fraction(part: int, total: int) -> float:
    return round(part / total, 6) if total else 0.0


def _count_errors(errors: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in errors:
        counts[(r.get("error") or {}).get("category", "harness_error")] += 1
    return dict(sorted(counts.items()))


def _token_totals(samples: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"prompt": 0, "completion": 0, "reasoning": 0}
    for r in samples:
        for key, value in (r.get("tokens") or {}).items():
            if key in totals and isinstance(value, int):
                totals[key] += value
    return totals


def _latency(samples: list[dict[str, Any]]) -> dict[str, float]:
    import numpy as np

    values = np.array(
        [r["latency_ms"] for r in samples if r.get("latency_ms") is not None]
    )
    if values.size == 0:
        return {}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "mean": round(float(values.mean()), 2),
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
    }
