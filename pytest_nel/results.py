"""The durable record of a run: results.jsonl per benchmark, fingerprints, atomic
writes.

Every sample is appended to ``<output>/<benchmark>/results.jsonl`` (or, under xdist, to
the worker's ``results.part-<worker>.jsonl``) and flushed as soon as it is done, so a
crash loses nothing that finished. Readers take the *last* record per (problem_idx,
repeat).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

SCHEMA_VERSION = 1
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
FINGERPRINT = "fingerprint.json"
PART_GLOB = "results.part-*.jsonl"
RUN_MARKER = "run.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsWriter:
    """Appends one JSON line per sample and flushes it at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        """Append and flush one record."""
        if self._fh is None:
            raise ValueError(f"{self.path} is closed")
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Records read from results files.

    Also holds the count of lines that could not be parsed.
    """

    records: list[dict[str, Any]]
    bad_lines: int


def read_records(paths: Iterable[Path]) -> ReadResult:
    """Read records from results files, skipping (and counting) unparsable lines.

    A truncated last line (a crash mid-write) is the usual cause of a bad line.
    """
    records: list[dict[str, Any]] = []
    bad = 0
    for path in paths:
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    bad += 1
                    continue
                if isinstance(record, dict) and "problem_idx" in record:
                    records.append(record)
                else:
                    bad += 1
    return ReadResult(records, bad)


def result_files(bench_dir: Path) -> list[Path]:
    """results.jsonl followed by any worker part files, in a stable order."""
    return [bench_dir / RESULTS, *sorted(bench_dir.glob(PART_GLOB))]


def latest_records(
    records: Iterable[dict[str, Any]],
) -> dict[tuple[int, int], dict[str, Any]]:
    """The last record per (problem_idx, repeat)."""
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for record in records:
        latest[(int(record["problem_idx"]), int(record.get("repeat", 0)))] = record
    return latest


def merge_parts(bench_dir: Path) -> int:
    """Append worker part files to results.jsonl and delete them; returns lines moved.

    Crash-safe: a part is deleted only after its lines are flushed to results.jsonl, and
    a line copied twice is harmless because readers keep the last record per sample.
    """
    moved = 0
    parts = sorted(bench_dir.glob(PART_GLOB))
    if not parts:
        return 0
    with open(bench_dir / RESULTS, "a", encoding="utf-8") as out:
        for part in parts:
            with open(part, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.endswith("\n"):
                        out.write(line)
                        moved += 1
            out.flush()
            os.fsync(out.fileno())
            part.unlink()
    return moved


def fingerprint_diff(
    old: dict[str, Any], new: dict[str, Any], prefix: str = ""
) -> list[str]:
    """Human-readable differences between two fingerprints (``key: old -> new``)."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(fingerprint_diff(a, b, path + "."))
        elif a != b:
            changes.append(f"{path}: {a!r} -> {b!r}")
    return changes
