"""Results folders for report tests, written through the real summary code.

Each benchmark's records are seeded Bernoulli draws per category; ``summary.json`` comes
from :func:`pytest_nel.summary.summarize`, so the intervals are the real ones, and the
task fingerprint is the same for every run (so ``nel compare`` accepts the pair).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pytest_nel.results import FINGERPRINT, RESULTS, SUMMARY, write_json_atomic
from pytest_nel.summary import summarize


def write_run(
    folder: Path,
    *,
    model: str | None,
    benchmarks: dict[str, dict[str, float]],
    problems: int = 120,
    repeats: int = 1,
    seed: int = 0,
    flag_every: int = 0,
) -> Path:
    """Write ``<folder>/<benchmark>/{results.jsonl,summary.json,fingerprint.json}``.

    Args:
        folder: The run folder to create.
        model: The model named in the fingerprint (None: not recorded).
        benchmarks: Per benchmark, the chance of a right answer per category.
        problems: Problems per benchmark (dealt to categories in turn).
        repeats: Samples per problem.
        seed: Seed of the draws.
        flag_every: When > 0, every ``flag_every``-th problem's samples are marked
            unparsed (wrong) and every ``2 * flag_every``-th's also truncated.
    """
    rng = np.random.default_rng(seed)
    for bench, chances in benchmarks.items():
        categories = list(chances)
        records = []
        for i in range(problems):
            category = categories[i % len(categories)]
            for r in range(repeats):
                right = bool(rng.random() < chances[category])
                record = _record(bench, i, r, category, right)
                if flag_every and i % flag_every == 0:
                    record.update(reward=0.0, unparsed=True)
                    record["truncated"] = i % (2 * flag_every) == 0
                records.append(record)
        fingerprint = {
            "task": {"benchmark": bench, "dataset": f"hf://test/{bench}"},
            "model": {"model": model, "service_type": "api"},
            "endpoint": "http://127.0.0.1:9/v1/chat/completions",
            "package_version": "0.1.0",
        }
        out = folder / bench
        out.mkdir(parents=True, exist_ok=True)
        with open(out / RESULTS, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        write_json_atomic(out / FINGERPRINT, fingerprint)
        summary = summarize(
            records,
            benchmark=bench,
            binary=True,
            repeats=repeats,
            fingerprint=fingerprint,
            run_info={"complete": True},
        )
        write_json_atomic(out / SUMMARY, summary)
    return folder


def _record(
    bench: str, idx: int, repeat: int, category: str, right: bool
) -> dict[str, object]:
    return {
        "schema_version": 1,
        "benchmark": bench,
        "problem_idx": idx,
        "problem_id": f"q{idx}",
        "repeat": repeat,
        "category": category,
        "status": "scored",
        "reward": 1.0 if right else 0.0,
        "expected_answer": "A",
        "extracted_answer": "A" if right else "B",
    }
