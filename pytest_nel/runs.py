"""Reading finished runs back for ``nel compare``, ``nel gate`` and reports.

Public API (stable; reports and gates build on it)::

    run = load_run(Path("results/run1"), allow_partial=False)   # -> Run
    run.benchmarks["gsm8k"]                                     # -> BenchmarkResults
    bench.samples.problem_idx / .repeat / .reward / .errored    # numpy arrays
    bench.fingerprint, bench.summary, bench.binary, bench.repeats, bench.identity()
    bench.error_rate(), bench.metric_names(), bench.answers(i)  # small fields

Two folder layouts are read:

* **pytest-nel**: ``<dir>/<benchmark>/results.jsonl`` (+ ``summary.json``,
  ``fingerprint.json``, and unmerged ``results.part-*.jsonl`` after a crash under
  xdist), or one benchmark folder given directly.
* **NeMo Evaluator**: ``eval-*.json`` bundles (``{"benchmark": {"name": ...,
  "scores": {...}}}``) with a ``results.jsonl`` beside them (``problem_idx``,
  ``repeat``, ``reward``), flat in ``<dir>`` or one sub-folder per benchmark. They
  carry no fingerprint: comparing them says so in a warning.

The last record per (problem_idx, repeat) counts, as in the run itself. A sample
that errored (``status: "error"``, or no reward) is kept as *errored*: excluded from
scores, counted in the error rate, never a reward of 0.

Partial data (a truncated last line from a crash, unreadable lines, a run that was
interrupted or never wrote its summary, unmerged worker part files) raises
:class:`~pytest_nel.exceptions.ResultsError` naming the file and what is wrong,
unless ``allow_partial=True``: then it is read and the reasons are kept in
``BenchmarkResults.partial`` (and shown as warnings by compare and gate).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_nel.exceptions import ResultsError
from pytest_nel.results import FINGERPRINT, PART_GLOB, RESULTS, SUMMARY

__all__ = [
    "NEMO_EVALUATOR",
    "PYTEST_NEL",
    "BenchmarkResults",
    "Run",
    "Samples",
    "load_pair",
    "load_run",
]

PYTEST_NEL = "pytest-nel"
NEMO_EVALUATOR = "nemo-evaluator"
BUNDLE_GLOB = "eval-*.json"
# Above this many bytes of results files, two runs are read in parallel.
PARALLEL_BYTES = 32 << 20


@dataclass(frozen=True, slots=True)
class Samples:
    """One benchmark's samples as aligned arrays (one entry per (problem, repeat)).

    Attributes:
        problem_idx: Row index of the problem in its dataset split.
        repeat: Repeat number of the sample.
        reward: The reward; NaN where the sample errored.
        errored: True where the sample could not be evaluated.
    """

    problem_idx: npt.NDArray[np.int64]
    repeat: npt.NDArray[np.int64]
    reward: npt.NDArray[np.float64]
    errored: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.problem_idx.size)


@dataclass
class BenchmarkResults:
    """Everything read about one benchmark of one run.

    Attributes:
        name: Benchmark name (from summary/fingerprint/bundle, else the folder).
        path: The folder the results were read from.
        source: ``"pytest-nel"`` or ``"nemo-evaluator"``.
        samples: The samples, sorted by (problem_idx, repeat).
        fingerprint: The run fingerprint (``task``, ``model``, ``endpoint``,
            ``package_version``); None for NeMo Evaluator folders.
        summary: ``summary.json`` (pytest-nel) or the ``eval-*.json`` bundle.
        binary: Whether rewards are declared binary; inferred from the data
            (all rewards 0 or 1) when the folder does not say.
        repeats: Samples per problem the run was configured with.
        metrics: The stored headline metrics ``{name: {value, ci_lower, ...}}``.
        partial: Why the data is incomplete (empty when complete).
        notes: Other things worth showing (e.g. binary inferred from data).
        errors_by_category: Count of errored samples per error category.
    """

    name: str
    path: Path
    source: str
    samples: Samples
    fingerprint: dict[str, Any] | None
    summary: dict[str, Any] | None
    binary: bool
    repeats: int
    metrics: dict[str, dict[str, Any]]
    partial: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors_by_category: dict[str, int] = field(default_factory=dict)
    _answers: list[tuple[Any, Any, Any]] = field(default_factory=list, repr=False)

    def answers(self, index: int) -> dict[str, Any]:
        """Small fields of sample ``index`` (position in :attr:`samples`).

        Returns:
            ``{"problem_id", "expected_answer", "extracted_answer"}``.
        """
        problem_id, expected, extracted = self._answers[index]
        return {
            "problem_id": problem_id,
            "expected_answer": expected,
            "extracted_answer": extracted,
        }

    def error_rate(self) -> tuple[int, int, float]:
        """Return ``(errors, samples, errors / samples)``."""
        total = len(self.samples)
        errors = int(np.count_nonzero(self.samples.errored))
        return errors, total, errors / total if total else 0.0

    def metric_names(self) -> list[str]:
        """Metrics that can be compared paired: pass@1/mean_reward (+ pass@k)."""
        names = ["pass@1", "mean_reward"]
        if self.binary and self.repeats > 1:
            names.append(f"pass@{self.repeats}")
        return names

    def identity(self) -> dict[str, Any]:
        """Model, endpoint and package version (these may differ between runs)."""
        fp = self.fingerprint or {}
        model = (fp.get("model") or {}).get("model")
        if model is None and self.summary is not None:
            model = _nemo_model(self.summary)
        return {
            "model": model,
            "endpoint": fp.get("endpoint"),
            "package_version": fp.get("package_version"),
        }


@dataclass
class Run:
    """A results folder: its benchmarks by name.

    Attributes:
        path: The folder given.
        benchmarks: Benchmark results by name, in name order.
        source: ``"pytest-nel"`` or ``"nemo-evaluator"``.
    """

    path: Path
    benchmarks: dict[str, BenchmarkResults]
    source: str


def load_run(
    path: Path | str,
    *,
    allow_partial: bool = False,
    only: Collection[str] | None = None,
) -> Run:
    """Read a results folder (a whole run or a single benchmark folder).

    Args:
        path: A pytest-nel output folder, one of its benchmark folders, or a NeMo
            Evaluator results folder.
        allow_partial: Read truncated or interrupted results instead of refusing.
        only: Read only these benchmarks (others are not parsed).

    Returns:
        The run, with one :class:`BenchmarkResults` per benchmark found.

    Raises:
        ResultsError: The folder is missing or holds no results; a results file
            is partial and ``allow_partial`` is False; a benchmark has no samples.
    """
    root = Path(path)
    if not root.exists():
        raise ResultsError(f"{root}: no such folder")
    if not root.is_dir():
        raise ResultsError(f"{root}: not a folder (give a results folder)")
    found = list(_discover(root))
    if not found:
        raise ResultsError(
            f"{root}: no results found; expected <benchmark>/results.jsonl with "
            "summary.json (pytest-nel) or eval-*.json with results.jsonl "
            "(NeMo Evaluator)"
        )
    benchmarks: dict[str, BenchmarkResults] = {}
    for folder, bundle in found:
        bench = _read_benchmark(folder, bundle, allow_partial, only)
        if bench is None:
            continue
        if bench.name in benchmarks:
            raise ResultsError(
                f"{root}: benchmark {bench.name!r} found twice: "
                f"{benchmarks[bench.name].path} and {bench.path}"
            )
        benchmarks[bench.name] = bench
    sources = {b.source for b in benchmarks.values()}
    source = NEMO_EVALUATOR if sources == {NEMO_EVALUATOR} else PYTEST_NEL
    return Run(root, dict(sorted(benchmarks.items())), source)


def load_pair(
    baseline: Path | str | Run,
    candidate: Path | str | Run,
    *,
    allow_partial: bool = False,
) -> tuple[Run, Run]:
    """Read a baseline and a candidate run (given as folders or already read).

    Folders are read as :func:`load_run` does. JSON parsing is most of the time of
    ``nel compare`` on big runs (about 1 s per 100,000 samples), so when the
    results files are large, the machine has a
    second core and this process has no other thread (so forking is safe), the
    baseline is read in a forked process while this one reads the candidate.

    Raises:
        ResultsError: As :func:`load_run`, for either folder.
    """
    if isinstance(baseline, Run) or isinstance(candidate, Run):
        return _as_run(baseline, allow_partial), _as_run(candidate, allow_partial)
    paths = Path(baseline), Path(candidate)
    parallel = (
        (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
        and sum(_results_bytes(p) for p in paths) > PARALLEL_BYTES
    )
    if not parallel:
        return _as_run(paths[0], allow_partial), _as_run(paths[1], allow_partial)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(load_run, paths[0], allow_partial=allow_partial)
        cand = load_run(paths[1], allow_partial=allow_partial)
        return future.result(), cand


def _as_run(run: Path | str | Run, allow_partial: bool) -> Run:
    return run if isinstance(run, Run) else load_run(run, allow_partial=allow_partial)


def _results_bytes(root: Path) -> int:
    files = [*root.glob("results*.jsonl"), *root.glob("*/results*.jsonl")]
    return sum(f.stat().st_size for f in files if f.is_file())


# ---------------------------------------------------------------------- discovery


def _is_benchmark_dir(folder: Path) -> bool:
    return any(
        (folder / name).is_file() for name in (RESULTS, SUMMARY, FINGERPRINT)
    ) or any(folder.glob(PART_GLOB))


def _discover(root: Path) -> Iterator[tuple[Path, Path | None]]:
    """Yield ``(benchmark folder, NeMo bundle or None)`` for each benchmark."""
    bundles = sorted(root.glob(BUNDLE_GLOB))
    if len(bundles) > 1:
        raise ResultsError(
            f"{root}: {len(bundles)} eval-*.json bundles share one results.jsonl; "
            "give each benchmark its own folder"
        )
    if bundles:
        yield root, bundles[0]
        return
    if _is_benchmark_dir(root):
        yield root, None
        return
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        sub_bundles = sorted(sub.glob(BUNDLE_GLOB))
        if len(sub_bundles) > 1:
            raise ResultsError(
                f"{sub}: {len(sub_bundles)} eval-*.json bundles in one folder; "
                "remove the stale ones"
            )
        if sub_bundles:
            yield sub, sub_bundles[0]
        elif _is_benchmark_dir(sub):
            yield sub, None


# ---------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


def _read_benchmark(
    folder: Path,
    bundle_path: Path | None,
    allow_partial: bool,
    only: Collection[str] | None,
) -> BenchmarkResults | None:
    meta: dict[str, Any] | None
    if bundle_path is not None:
        meta = _read_json(bundle_path) or {}
        fingerprint = None
        name = str((meta.get("benchmark") or {}).get("name") or folder.name)
        source = NEMO_EVALUATOR
    else:
        meta = _read_json(folder / SUMMARY)
        fingerprint = _read_json(folder / FINGERPRINT)
        name = _our_name(folder, meta, fingerprint)
        source = PYTEST_NEL
    if only is not None and name not in only:
        return None
    partial: list[str] = []
    files = [folder / RESULTS, *sorted(folder.glob(PART_GLOB))]
    if len(files) > 1:
        partial.append(
            f"{len(files) - 1} unmerged worker part file(s) (the run did not finish)"
        )
    parsed = _parse_files(files, partial)
    if source == PYTEST_NEL:
        partial.extend(_summary_problems(folder, meta))
    if partial and not allow_partial:
        raise ResultsError(
            f"{folder}: partial results: "
            + "; ".join(partial)
            + ". Pass --allow-partial to use the complete samples anyway."
        )
    if not parsed.keys:
        raise ResultsError(f"{folder / RESULTS}: no samples")
    return _build(name, folder, source, meta, fingerprint, parsed, partial)


def _our_name(
    folder: Path, summary: dict[str, Any] | None, fingerprint: dict[str, Any] | None
) -> str:
    if summary and summary.get("benchmark"):
        return str(summary["benchmark"])
    task = (fingerprint or {}).get("task") or {}
    return str(task.get("benchmark") or folder.name)


def _summary_problems(folder: Path, summary: dict[str, Any] | None) -> list[str]:
    if summary is None:
        return [f"no {SUMMARY} (the run did not finish)"]
    if summary.get("complete") is False:
        return [f"{SUMMARY} says the run was interrupted (complete: false)"]
    return []


@dataclass
class _Parsed:
    keys: dict[tuple[int, int], int] = field(default_factory=dict)
    rewards: list[float] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)
    answers: list[tuple[Any, Any, Any]] = field(default_factory=list)


def _parse_files(files: list[Path], partial: list[str]) -> _Parsed:
    """Parse results files; the last record per (problem, repeat) wins."""
    parsed = _Parsed()
    for path in files:
        if not path.is_file():
            continue
        bad, last_bad = _parse_file(path, parsed)
        if last_bad:
            partial.append(f"{path.name}: the last line is truncated (a crashed run?)")
            bad -= 1
        if bad:
            partial.append(f"{path.name}: {bad} unreadable line(s)")
    return parsed


def _parse_file(path: Path, parsed: _Parsed) -> tuple[int, bool]:
    """Add one file's records to ``parsed``; return (bad lines, last line bad)."""
    bad = 0
    last_bad = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            last_bad = False
            try:
                record = json.loads(line)
                key = (int(record["problem_idx"]), int(record.get("repeat") or 0))
                _add(parsed, key, record)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
                last_bad = True
    return bad, last_bad


def _add(parsed: _Parsed, key: tuple[int, int], record: dict[str, Any]) -> None:
    reward = record.get("reward")
    category: str | None = None
    if record.get("status") == "error" or reward is None:
        category = str((record.get("error") or {}).get("category") or "harness_error")
    row = (
        record.get("problem_id", key[0]),
        record.get("expected_answer"),
        record.get("extracted_answer"),
    )
    value = float("nan") if reward is None or category else float(reward)
    position = parsed.keys.setdefault(key, len(parsed.rewards))
    if position == len(parsed.rewards):
        parsed.rewards.append(value)
        parsed.categories.append(category)
        parsed.answers.append(row)
    else:
        parsed.rewards[position] = value
        parsed.categories[position] = category
        parsed.answers[position] = row


def _build(
    name: str,
    folder: Path,
    source: str,
    meta: dict[str, Any] | None,
    fingerprint: dict[str, Any] | None,
    parsed: _Parsed,
    partial: list[str],
) -> BenchmarkResults:
    keys = np.array(list(parsed.keys), dtype=np.int64).reshape(-1, 2)
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    reward = np.array(parsed.rewards, dtype=np.float64)[order]
    errored = np.isnan(reward)
    samples = Samples(keys[order, 0], keys[order, 1], reward, errored)
    answers = [parsed.answers[i] for i in order.tolist()]
    notes: list[str] = []
    binary = _binary(source, meta, reward[~errored], notes)
    task = (fingerprint or {}).get("task") or {}
    repeats = int(
        (meta or {}).get("repeats")
        or task.get("repeats")
        or (int(samples.repeat.max()) + 1 if len(samples) else 1)
    )
    return BenchmarkResults(
        name=name,
        path=folder,
        source=source,
        samples=samples,
        fingerprint=fingerprint,
        summary=meta,
        binary=binary,
        repeats=repeats,
        metrics=_stored_metrics(source, meta),
        partial=partial,
        notes=notes,
        errors_by_category=_count(parsed.categories),
        _answers=answers,
    )


def _count(categories: list[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for category in categories:
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    return dict(sorted(counts.items()))


def _binary(
    source: str, meta: dict[str, Any] | None, rewards: np.ndarray, notes: list[str]
) -> bool:
    declared = (meta or {}).get("rewards") if source == PYTEST_NEL else None
    if declared in ("binary", "continuous"):
        return bool(declared == "binary")
    inferred = bool(np.all((rewards == 0.0) | (rewards == 1.0)))
    notes.append(
        f"reward type not recorded; inferred {'binary' if inferred else 'continuous'}"
        " from the data"
    )
    return inferred


def _stored_metrics(
    source: str, meta: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    if not meta:
        return {}
    if source == PYTEST_NEL:
        return dict(meta.get("metrics") or {})
    scores = (meta.get("benchmark") or {}).get("scores") or {}
    return {k: v for k, v in scores.items() if isinstance(v, dict)}


def _nemo_model(bundle: dict[str, Any]) -> Any:
    """Best effort: the model name in a NeMo Evaluator bundle."""
    for key in ("model", "model_id", "model_name"):
        value = bundle.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return value["name"]
    config = bundle.get("config") or {}
    if isinstance(config, dict):
        for key in ("model", "model_id"):
            if isinstance(config.get(key), str):
                return config[key]
    return None
