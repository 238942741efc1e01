"""The triviaqa benchmark on a fixture in mandarjoshi/trivia_qa's schema (rc.nocontext).

The fixture (tests/fixtures/trivia_qa/validation.jsonl) is served through a temporary
mirror laid out as <org>/<name>/<config>/<split>.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_nel.benchmark import resolve
from pytest_nel.scoring import ScorerInput, normalize_score
from pytest_nel.testing.fake_model import FakeModel
from pytest_nel.text_scoring import normalize_text

FIXTURE = Path(__file__).parent / "fixtures" / "trivia_qa" / "validation.jsonl"
ANSWER_KEYS = {
    "aliases", "normalized_aliases", "matched_wiki_entity_name",
    "normalized_matched_wiki_entity_name", "normalized_value", "type", "value",
}  # fmt: skip

# What the fake model says to each fixture row, and whether that is correct.
REPLIES: list[tuple[str, bool]] = [
    ("They were the Fab Four.\\nAnswer: **The Fab Four**", True),
    ("Answer: Sydney", False),
    ("Answer: 7", True),  # "7" is an alias of "Seven"
    ("Answer: Eric Blair.", True),
    ("", False),  # unparsed
    ("<think>Answer: Iron</think>", False),  # unparsed: only in the reasoning
    ("Answer: Torino", True),
    ("Answer: H.M.S. Beagle", True),
]


def _rows() -> list[dict[str, Any]]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _mirror(root: Path, rows: list[dict[str, Any]]) -> Path:
    folder = root / "mandarjoshi" / "trivia_qa" / "rc.nocontext"
    folder.mkdir(parents=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (folder / "validation.jsonl").write_text(text, encoding="utf-8")
    return root


def test_fixture_has_the_hubs_schema() -> None:
    for row in _rows():
        assert set(row) == {
            "question", "question_id", "question_source", "entity_pages",
            "search_results", "answer",
        }  # fmt: skip
        assert set(row["answer"]) == ANSWER_KEYS
        normalized = [normalize_text(a) for a in row["answer"]["aliases"]]
        assert set(row["answer"]["normalized_aliases"]) == set(normalized)
        assert row["entity_pages"]["wiki_context"] == []  # rc.nocontext


def test_triviaqa_end_to_end(
    pytester: pytest.Pytester, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows()
    for row, (say, _) in zip(rows, REPLIES, strict=True):
        row["question"] += f"\nSAY: {say}"
    monkeypatch.setenv("NEL_DATASETS_DIR", str(_mirror(pytester.path / "hub", rows)))
    result = pytester.runpytest(
        "--nel-bench", "triviaqa", "--nel-model-url", fake.base_url,
        "--nel-model-id", "fake", "--nel-output", "out",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    summary = json.loads((pytester.path / "out/triviaqa/summary.json").read_text())
    right = sum(correct for _, correct in REPLIES)
    assert summary["metrics"]["pass@1"]["value"] == pytest.approx(right / len(rows))
    assert summary["counts"]["unparsed"] == 2
    lines = (pytester.path / "out/triviaqa/results.jsonl").read_text().splitlines()
    for record in map(json.loads, lines):
        row = rows[record["problem_idx"]]
        assert record["problem_id"] == row["question_id"]
        assert record["expected_answer"] == row["answer"]["value"]
        assert record["reward"] == float(REPLIES[record["problem_idx"]][1])
        assert record["scoring_details"]["f1"] >= record["reward"]


@pytest.mark.parametrize(
    ("idx", "response", "correct", "f1"),
    [
        (0, "Answer: Beatles", True, 1.0),
        (0, "Answer: The Rolling Stones", False, 0.0),
        (1, "Answer: Canberra, ACT", True, 1.0),  # an alias
        (1, "Answer: Canberra, NSW", False, 2 / 3),
        (3, "Answer: Orwell", True, 1.0),
        (3, "Answer: George Orwell (Eric Blair)", False, 2 / 3),
        (4, "Answer: 1989", True, 1.0),
        (4, "Answer: 1898", False, 0.0),
        (5, "Answer: Fe", True, 1.0),
    ],
)
def test_triviaqa_scorer_on_fixture_rows(
    idx: int, response: str, correct: bool, f1: float
) -> None:
    row = _rows()[idx]
    spec = resolve("triviaqa")
    sample = ScorerInput(response=response, target=spec.target_of(row), metadata=row)
    result = spec.scorer(sample)
    assert result["correct"] is correct
    assert result["f1"] == pytest.approx(f1)
    assert normalize_score(result).reward == float(correct)


def test_oracle_answers_are_correct() -> None:
    spec = resolve("triviaqa")
    for row in _rows():
        target = spec.target_of(row)
        sample = ScorerInput(response=f"Answer: {target}", target=target, metadata=row)
        assert spec.scorer(sample)["correct"] is True, row["question_id"]
