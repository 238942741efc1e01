"""The terminal summary table printed at the end of an evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytest_nel.summary import headline, percent, sample_rates

HEADER = (
    "benchmark",
    "metric",
    "score",
    "95% CI",
    "problems",
    "samples",
    "errors",
    "unparsed",
    "trunc",
    "tokens",
    "wall s",
    "samples/s",
)


def table_rows(summaries: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row of cells per benchmark."""
    out: list[tuple[str, ...]] = []
    for name, s in summaries.items():
        counts, run = s["counts"], s.get("run", {})
        found = headline(s)
        metric, score, ci = "-", "-", "-"
        if found is not None:
            metric, m = found
            score = f"{m['value']:.4f}"
            ci = f"[{m['ci_lower']:.4f}, {m['ci_upper']:.4f}]"
        tokens = s.get("tokens", {})
        total_tokens = tokens.get("prompt", 0) + tokens.get("completion", 0)
        rate = run.get("samples_per_s")
        rates = sample_rates(s)
        out.append(
            (
                name + ("" if s.get("complete", True) else " (partial)"),
                metric,
                score,
                ci,
                str(counts["problems"]),
                str(counts["samples"]),
                str(counts["errors"]),
                f"{counts['unparsed']} ({percent(rates['unparsed'])})",
                f"{counts['truncated']} ({percent(rates['truncated'])})",
                str(total_tokens),
                f"{run.get('wall_s', 0):.1f}",
                "-" if rate is None else f"{rate:.1f}",
            )
        )
    return out


def write_summary_table(
    reporter: Any, summaries: dict[str, dict[str, Any]], output: Path
) -> None:
    """Write the table with pytest's terminal writer."""
    data = [HEADER, *table_rows(summaries)]
    widths = [max(len(row[i]) for row in data) for i in range(len(HEADER))]
    reporter.write_sep("=", "nel evaluation summary")
    for n, row in enumerate(data):
        reporter.write_line(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        )
        if n == 0:
            reporter.write_line("  ".join("-" * w for w in widths))
    reporter.write_line(f"results: {output}")


class Progress:
    """A status line every ``interval`` seconds on long runs.

    It shows samples, rate, score and errors.
    """

    def __init__(self, reporter: Any, total: int, interval: float) -> None:
        self.reporter = reporter
        self.total = total
        self.interval = interval
        self.start = time.monotonic()
        self.last = self.start
        self.done = 0
        self.errors = 0
        self.reward = 0.0
        self.scored = 0

    def update(self, report: Any) -> None:
        """Count one finished sample and print a line when it is time."""
        self.done += 1
        props = dict(report.user_properties)
        if "error_category" in props:
            self.errors += 1
        elif isinstance(props.get("reward"), (int, float)):
            self.scored += 1
            self.reward += float(props["reward"])
        now = time.monotonic()
        if self.interval > 0 and now - self.last >= self.interval:
            self.last = now
            self.reporter.write_line(self.line(now))

    def line(self, now: float) -> str:
        """The status line."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        mean = f"{self.reward / self.scored:.3f}" if self.scored else "-"
        return (
            f"[nel] {self.done}/{self.total} samples "
            f"({self.done / max(self.total, 1):.0%}), "
            f"{rate:.1f}/s, mean reward so far {mean}, {self.errors} errors, "
            f"ETA {eta:.0f}s"
        )
