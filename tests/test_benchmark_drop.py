"""The drop benchmark on a fixture in ucinlp/drop's schema, through a temporary mirror.

The fixture (tests/fixtures/drop/{validation,train}.jsonl) has the hub's columns:
section_id, query_id, passage, question, answers_spans {spans, types}. The
end-to-end run appends the fake model's SAY directives to each question in the copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

# scipy.optimize is loaded before any pytester run: drop_metric imports it lazily, and
# pytester unloads modules first imported inside a run (numpy's cannot load twice).
import scipy.optimize  # noqa: F401

from pytest_nel.benchmark import resolve
from pytest_nel.config import BenchmarkConfig
from pytest_nel.exceptions import DatasetError
from pytest_nel.problems import load_problems, render_prompt
from pytest_nel.scoring import ScorerInput, normalize_score
from pytest_nel.testing.fake_model import FakeModel

FIXTURES = Path(__file__).parent / "fixtures" / "drop"
HUB_COLUMNS = {"section_id", "query_id", "passage", "question", "answers_spans"}

# What the fake model says to each validation row, and the DROP F1 / EM it earns.
REPLIES: list[tuple[str, float, float]] = [
    ("Williams ran 12 yards first.\\nAnswer: DeAngelo Williams", 1.0, 1.0),
    ("Answer: 6", 1.0, 1.0),
    ("Answer: Matt Bryant; John Kasay", 1.0, 1.0),
    ("Answer: 3\nFINISH: length", 0.0, 0.0),
    ("", 0.0, 0.0),  # empty response: unparsed
    ("<think>Answer: 200000</think>", 0.0, 0.0),  # answer only in reasoning
    ("Answer: Cortes", 1.0, 1.0),  # a second annotator's span
    ("Answer: 75.5 percent", 0.67, 0.0),
    ("Answer: Asian; Native American", 1.0, 1.0),
]


def _rows(name: str) -> list[dict[str, Any]]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _mirror(root: Path, validation: list[dict[str, Any]] | None = None) -> Path:
    """Lay the fixture out as <org>/<name>/<config>/<split>.jsonl under ``root``."""
    folder = root / "ucinlp" / "drop" / "default"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "train.jsonl", folder / "train.jsonl")
    rows = _rows("validation.jsonl") if validation is None else validation
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (folder / "validation.jsonl").write_text(text, encoding="utf-8")
    return root


def test_fixture_has_the_hubs_schema() -> None:
    for name in ("validation.jsonl", "train.jsonl"):
        for row in _rows(name):
            assert set(row) == HUB_COLUMNS
            spans = row["answers_spans"]
            assert set(spans) == {"spans", "types"}
            assert len(spans["spans"]) == len(spans["types"]) > 0
            assert set(spans["types"]) <= {"number", "date", "span"}


def test_drop_end_to_end_reports_f1_and_em(
    pytester: pytest.Pytester, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows("validation.jsonl")
    assert len(rows) == len(REPLIES)
    for row, (say, _, _) in zip(rows, REPLIES, strict=True):
        row["question"] += "\n" + "\n".join(
            f"SAY: {part}" if not part.startswith("FINISH:") else part
            for part in say.split("\n")
        )
    monkeypatch.setenv("NEL_DATASETS_DIR", str(_mirror(pytester.path / "hub", rows)))
    result = pytester.runpytest(
        "--nel-bench", "drop", "--nel-model-url", fake.base_url,
        "--nel-model-id", "fake", "--nel-output", "out",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    summary = json.loads((pytester.path / "out/drop/summary.json").read_text())
    assert summary["rewards"] == "continuous"
    expected_f1 = sum(f1 for _, f1, _ in REPLIES) / len(REPLIES)
    assert summary["metrics"]["mean_reward"]["value"] == pytest.approx(expected_f1)
    assert summary["counts"]["unparsed"] == 2
    assert summary["counts"]["truncated"] == 1
    lines = (pytester.path / "out/drop/results.jsonl").read_text().splitlines()
    records = sorted(map(json.loads, lines), key=lambda r: r["problem_idx"])
    for record, row, (_, f1, em) in zip(records, rows, REPLIES, strict=True):
        assert record["problem_id"] == row["query_id"]
        assert record["scoring_details"]["f1"] == f1 == record["reward"]
        assert record["scoring_details"]["em"] == em


def test_prompt_has_three_fixed_train_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(_mirror(tmp_path)))
    spec = resolve("drop")
    _, problems = load_problems(
        spec, BenchmarkConfig(name="drop", shuffle_seed=None), tmp_path
    )
    prompts = [render_prompt(spec, p.row) for p in problems]
    assert all(isinstance(p, str) for p in prompts)
    prefix = str(prompts[0]).split("# Your task")[0]
    assert all(str(p).startswith(prefix) for p in prompts)  # one cacheable prefix
    assert prefix.count("Passage: ") == 3 and prefix.count("\nAnswer: ") == 3
    assert "Answer: Gibraltar; Minorca" in prefix  # the multi-span example
    for row in _rows("validation.jsonl"):
        assert row["passage"] not in prefix
    assert str(prompts[0]).endswith('e.g. "Answer: Smith; Jones".')
    assert spec.prompt_fingerprint() == resolve("drop").prompt_fingerprint()


def test_unreadable_train_split_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (A missing train file goes on to the hub and fails the same way, naming the
    # mirror path; not tested here because that path may retry the network.)
    train = _mirror(tmp_path) / "ucinlp/drop/default/train.jsonl"
    train.write_text("{not json\n", encoding="utf-8")
    monkeypatch.setenv("NEL_DATASETS_DIR", str(tmp_path))
    spec = resolve("drop")
    with pytest.raises(DatasetError, match=r"drop's few-shot examples.*split=train"):
        render_prompt(spec, _rows("validation.jsonl")[0])


def test_oracle_answers_score_full_marks() -> None:
    spec = resolve("drop")
    for row in _rows("validation.jsonl"):
        target = spec.target_of(row)
        response = f"Reading the passage.\nAnswer: {target}"
        score = normalize_score(
            spec.scorer(ScorerInput(response=response, target=target, metadata=row))
        )
        assert score.reward == 1.0 and score.details["em"] == 1.0, row["query_id"]
