"""summary.json's unparsed, truncated and error rates, and their denominators."""

from __future__ import annotations

from typing import Any

from pytest_nel.summary import percent, sample_rates, summarize


def _record(idx: int, **fields: Any) -> dict[str, Any]:
    base = {"problem_idx": idx, "repeat": 0, "status": "scored", "reward": 1.0}
    return {**base, **fields}


def test_rates_use_scored_samples_for_unparsed_and_all_samples_otherwise() -> None:
    records = [
        _record(0),
        _record(1, reward=0.0, unparsed=True, truncated=True),
        _record(2, reward=0.0, unparsed=True),
        _record(3, status="error", truncated=True, error={"category": "model_error"}),
    ]
    s = summarize(
        records, benchmark="b", binary=True, repeats=1, fingerprint={}, run_info={}
    )
    assert s["counts"]["unparsed"] == 2 and s["counts"]["truncated"] == 2
    # unparsed: 2 of 3 scored; truncated and errors: of all 4 samples.
    assert s["rates"] == {"unparsed": 0.666667, "truncated": 0.5, "errors": 0.25}
    assert sample_rates(s) == s["rates"]


def test_rates_of_an_empty_run_are_zero_and_old_summaries_derive_them() -> None:
    s = summarize(
        [], benchmark="b", binary=True, repeats=1, fingerprint={}, run_info={}
    )
    assert s["rates"] == {"unparsed": 0.0, "truncated": 0.0, "errors": 0.0}
    old = {"counts": {"samples": 8, "scored": 4, "errors": 4, "unparsed": 1}}
    assert sample_rates(old) == {"unparsed": 0.25, "truncated": None, "errors": 0.5}
    assert [percent(r) for r in sample_rates(old).values()] == ["25.0%", "-", "50.0%"]
