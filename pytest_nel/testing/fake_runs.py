"""Write synthetic results folders (pytest-nel or NeMo Evaluator layout).

For tests, simulations and perf scripts of ``nel compare`` / ``nel gate`` / reports:
the files have the same shape as a real run's, with rewards you choose::

    rewards = np.array([[1, 0], [1, 1]])          # problems x repeats
    write_benchmark(tmp / "base", "toy", rewards)  # -> tmp/base/toy/results.jsonl ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_nel.results import FINGERPRINT, RESULTS, SUMMARY

__all__ = ["fingerprint", "write_benchmark"]


def fingerprint(
    benchmark: str, repeats: int, *, model: str = "model-a", **task: Any
) -> dict[str, Any]:
    """A run fingerprint like the harness writes; ``task`` overrides task keys."""
    base_task: dict[str, Any] = {
        "benchmark": benchmark,
        "dataset": f"hf://org/{benchmark}?split=test",
        "dataset_fingerprint": "sha256:0123456789abcdef",
        "prompt_template": "sha256:aaaaaaaaaaaaaaaa",
        "system_prompt": None,
        "scorer_version": "1",
        "protocol": "chat_completions",
        "generation": {"temperature": 0.0, "max_tokens": 512},
        "repeats": repeats,
        "params": {},
    }
    base_task.update(task)
    return {
        "task": base_task,
        "model": {"model": model, "service_type": "api"},
        "endpoint": "http://127.0.0.1:8000/v1/chat/completions",
        "package_version": "0.1.0",
    }


def write_benchmark(
    root: Path,
    benchmark: str,
    rewards: npt.ArrayLike,
    *,
    errors: npt.ArrayLike | None = None,
    binary: bool = True,
    model: str = "model-a",
    task: dict[str, Any] | None = None,
    nemo: bool = False,
    complete: bool = True,
    response: str = "The answer is 42.",
) -> Path:
    """Write one benchmark's results under ``root/benchmark`` and return the folder.

    Args:
        root: The run's output folder.
        benchmark: Benchmark name.
        rewards: ``problems x repeats`` rewards.
        errors: Same shape, True where the sample errored (reward written null).
        binary: Declared reward type (summary.json ``rewards``).
        model: Model name in the fingerprint.
        task: Task fingerprint overrides (e.g. ``{"scorer_version": "2"}``).
        nemo: Write a NeMo Evaluator folder (``eval-<name>.json``, no
            fingerprint, no status field) instead.
        complete: Value of summary.json's ``complete``.
        response: ``model_response`` of every record (its length sets file size).
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    err = np.zeros(r.shape, bool) if errors is None else np.asarray(errors, bool)
    folder = root / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / RESULTS, "w", encoding="utf-8") as fh:
        for i in range(r.shape[0]):
            for k in range(r.shape[1]):
                fh.write(_record(benchmark, i, k, r[i, k], err[i, k], response, nemo))
    scored = r[~err]
    value = float(scored.mean()) if scored.size else 0.0
    metric = "pass@1" if binary else "mean_reward"
    if nemo:
        bundle = {
            "benchmark": {
                "name": benchmark,
                "scores": {"mean_reward": {"value": value}},
            },
            "model": model,
        }
        (folder / f"eval-{benchmark}.json").write_text(json.dumps(bundle))
        return folder
    fp = fingerprint(benchmark, r.shape[1], model=model, **(task or {}))
    summary = {
        "schema_version": 1,
        "benchmark": benchmark,
        "complete": complete,
        "counts": {"samples": int(r.size), "errors": int(err.sum())},
        "repeats": r.shape[1],
        "rewards": "binary" if binary else "continuous",
        "metrics": {metric: {"value": value}},
        "fingerprint": fp,
    }
    (folder / FINGERPRINT).write_text(json.dumps(fp))
    (folder / SUMMARY).write_text(json.dumps(summary))
    return folder


def _record(
    benchmark: str,
    i: int,
    k: int,
    reward: float,
    errored: bool,
    response: str,
    nemo: bool,
) -> str:
    record: dict[str, Any] = {
        "schema_version": 1,
        "benchmark": benchmark,
        "problem_idx": i,
        "problem_id": f"p{i}",
        "repeat": k,
        "status": "error" if errored else "scored",
        "reward": None if errored else float(reward),
        "expected_answer": str(i),
        "extracted_answer": None if errored else str(i if reward else -1),
        "model_response": response,
        "error": {"category": "model_error", "message": "HTTP 500"}
        if errored
        else None,
    }
    if nemo:
        del record["status"], record["schema_version"]
    return json.dumps(record) + "\n"
