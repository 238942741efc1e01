"""``-n 2`` runs: static shards, no model call twice.

The summary is the same as in one process.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import toy_rows
from pytest_nel.distribution import group_key, shard_of_items
from pytest_nel.testing.fake_model import FakeModel


def test_shards_keep_repeats_together_and_cover_everything() -> None:
    ids = [f"b::{p}-r{r}" for p in (5, 1, 9, 3, 7) for r in range(3)] + [
        "tests/t.py::test_x"
    ]
    shards = shard_of_items(ids, 2)
    assert sorted(i for s in shards for i in s) == list(range(len(ids)))
    for shard in shards:
        groups = {group_key(ids[i]) for i in shard}
        for other in shards:
            if other is not shard:
                assert not groups & {group_key(ids[i]) for i in other}
    assert shard_of_items(ids, 2) == shards


def summary(pytester: pytest.Pytester, out: str) -> dict[str, Any]:
    return json.loads((pytester.path / out / "toy" / "summary.json").read_text())


def test_two_workers_match_one_process(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(30, wrong={2, 5, 11}, extra={7: "FAULT: 400"}))
    common = [
        "--nel-bench",
        "./toy_bench.py",
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "fake",
        "--nel-repeats",
        "2",
        "--nel-seed",
        "5",
        "-p",
        "no:cacheprovider",
    ]
    single = pytester.runpytest_subprocess(*common, "--nel-output", "one")
    single.assert_outcomes(passed=58, failed=2)
    fake.reset()
    result = pytester.runpytest_subprocess(*common, "--nel-output", "two", "-n", "2")
    result.assert_outcomes(passed=58, failed=2)
    bodies = [r["body"] for r in fake.requests()]
    keys = [(json.dumps(b["messages"]), b["seed"]) for b in bodies if b.get("seed")]
    assert len(keys) == 60 and len(set(keys)) == 60  # every sample asked exactly once
    one, two = summary(pytester, "one"), summary(pytester, "two")
    assert one["metrics"] == two["metrics"] and one["counts"] == two["counts"]
    assert one["categories"] == two["categories"]
    assert not list((pytester.path / "two" / "toy").glob("results.part-*"))
    lines = (pytester.path / "two" / "toy" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 60


CRASHING_BENCH = """
import os
from pathlib import Path
from pytest_nel import benchmark, scorer, exact_match

@benchmark(name="toy", dataset="data.jsonl", prompt="Q: {question}\\n{say}",
           target_field="answer")
@scorer
def toy(sample):
    flag = Path(__file__).with_name("crashed")
    if sample.problem_idx == 3 and not flag.exists():
        flag.write_text("once")
        os._exit(1)  # the worker dies in the middle of its shard
    return exact_match(sample)
"""


def test_a_crashed_worker_does_not_lose_samples(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(12))
    (pytester.path / "toy_bench.py").write_text(CRASHING_BENCH)
    result = pytester.runpytest_subprocess(
        "--nel-bench",
        "./toy_bench.py",
        "--nel-model-url",
        fake.base_url,
        "--nel-model-id",
        "fake",
        "--nel-output",
        "out",
        "-n",
        "2",
        "--nel-override",
        "benchmarks.0.shuffle_seed=null",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    # The crashed item is reported as failed by xdist; every other sample still runs,
    # including the rest of the dead worker's shard (on its replacement, on demand).
    result.assert_outcomes(passed=11, failed=1)
    s = json.loads((pytester.path / "out" / "toy" / "summary.json").read_text())
    assert s["counts"]["samples"] == 11
