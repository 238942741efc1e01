"""The built-in benchmarks of issue 3 (mmlu_pro, gpqa, math500, mgsm) on real data and
on the GPQA fixture: prompts, targets, scorers, breakdowns and fingerprints."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_nel.benchmarks import gpqa as gpqa_module
from pytest_nel.benchmarks import mgsm as mgsm_module

from pytest_nel.benchmark import BUILTINS, resolve, specs_in
from pytest_nel.config import BenchmarkConfig
from pytest_nel.datasets import load_subsets
from pytest_nel.exceptions import DatasetError
from pytest_nel.problems import load_problems, render_prompt
from pytest_nel.scoring import ScorerInput

FIXTURES = Path(__file__).parent / "fixtures"
NEW = ("mmlu_pro", "gpqa", "math500", "mgsm")


@pytest.fixture
def gpqa_mirror(tmp_path: Path) -> Path:
    """An offline mirror holding the hand-written GPQA fixture (the hub's schema)."""
    target = tmp_path / "mirror" / "Idavidrein" / "gpqa" / "gpqa_diamond"
    target.mkdir(parents=True)
    shutil.copy(FIXTURES / "gpqa" / "gpqa_diamond" / "train.jsonl", target)
    return tmp_path / "mirror"


def _problems(name: str, mirror: Path, n: int | None = None) -> list[Any]:
    cfg = BenchmarkConfig(name=name, max_problems=n, shuffle_seed=None)
    return load_problems(resolve(name), cfg, mirror)[1]


def _score(name: str, response: str, row: dict[str, Any]) -> dict[str, Any]:
    spec = resolve(name)
    sample = ScorerInput(response=response, target=spec.target_of(row), metadata=row)
    return spec.scorer(sample)


def test_every_new_benchmark_is_built_in_with_its_hub_id() -> None:
    datasets = {name: resolve(name).dataset for name in NEW}
    assert datasets["mmlu_pro"] == "hf://TIGER-Lab/MMLU-Pro?split=test"
    assert datasets["gpqa"] == "hf://Idavidrein/gpqa?config=gpqa_diamond&split=train"
    assert datasets["math500"] == "hf://HuggingFaceH4/MATH-500?split=test"
    assert datasets["mgsm"] == {
        lang: f"hf://juletxara/mgsm?config={lang}&split=test"
        for lang in mgsm_module.LANGUAGES
    }
    mgsm_names = {n for n, module in BUILTINS.items() if module.endswith(".mgsm")}
    assert mgsm_names == set(specs_in(mgsm_module)) and len(mgsm_names) == 12


# --------------------------------------------------------------------------- oracle


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("gsm8k", 1319),
        ("mmlu", 14042),
        ("mmlu_pro", 12032),
        ("math500", 500),
        ("mgsm", 2750),
        ("gpqa", 6),
    ],
)
def test_the_oracle_scores_100_percent_on_all_of_the_data(
    name: str, count: int, datasets_dir: Path, gpqa_mirror: Path
) -> None:
    """``nel validate``'s check, without pytest around it: every reference answer,
    stated by the benchmark's oracle, passes the benchmark's own scorer."""
    spec = resolve(name)
    problems = _problems(name, gpqa_mirror if name == "gpqa" else datasets_dir)
    assert len(problems) == count
    failed = []
    for problem in problems:
        row = problem.row
        sample = ScorerInput(
            response=spec.oracle_response(row), target=spec.target_of(row), metadata=row
        )
        if spec.scorer(sample).get("correct") is not True:
            failed.append(problem.idx)
    assert failed == []


# --------------------------------------------------------------------------- mmlu_pro


def test_mmlu_pro_offers_every_option_letter(datasets_dir: Path) -> None:
    problems = _problems("mmlu_pro", datasets_dir, 50)
    ten = next(p for p in problems if len(p.row["options"]) == 10)
    prompt = render_prompt(resolve("mmlu_pro"), ten.row)
    assert isinstance(prompt, str)
    assert "\nJ) " in prompt and "one of A, B, C, D, E, F, G, H, I, J." in prompt
    assert ten.category == ten.row["category"] and ten.id == str(ten.row["question_id"])


@pytest.mark.parametrize(
    ("response", "gold", "options", "correct", "extracted"),
    [
        ("Answer: J", "J", 10, True, "J"),
        ("The answer is (I).", "I", 10, True, "I"),
        ("so it must be **H**", "H", 10, True, "H"),
        ("A car travels far.\nAnswer: F", "F", 10, True, "F"),
        ("Answer: E", "B", 4, False, None),  # no E among four options
        ("Answer: K", "J", 10, False, None),
        ("Answer: A\nOn reflection, Answer: G", "G", 10, True, "G"),
    ],
)
def test_mmlu_pro_reads_letters_beyond_d(
    response: str, gold: str, options: int, correct: bool, extracted: str | None
) -> None:
    row = {"options": [f"option {i}" for i in range(options)], "answer": gold}
    result = _score("mmlu_pro", response, row)
    assert (result["correct"], result["extracted"]) == (correct, extracted)


# --------------------------------------------------------------------------- gpqa


def test_gpqa_shuffles_each_row_the_same_way_every_time(gpqa_mirror: Path) -> None:
    first = _problems("gpqa", gpqa_mirror)
    again = _problems("gpqa", gpqa_mirror)
    spec = resolve("gpqa")
    letters = [spec.target_of(p.row) for p in first]
    assert letters == [spec.target_of(p.row) for p in again] == list("DDAAAA")
    for problem in first:
        prompt = render_prompt(spec, problem.row)
        gold = spec.target_of(problem.row)
        correct = str(problem.row["Correct Answer"]).strip()
        assert f"\n{gold}) {correct}\n" in f"{prompt}\n"
    assert {p.category for p in first} == {"Physics", "Chemistry", "Biology"}
    assert first[0].id == "recFX00000000001"


def test_gpqa_order_depends_on_the_record_not_the_position(gpqa_mirror: Path) -> None:
    row = _problems("gpqa", gpqa_mirror)[2].row
    moved = {**row, "Question": "reworded"}
    assert gpqa_module.shuffled_choices(moved) == gpqa_module.shuffled_choices(row)
    golds = {
        gpqa_module.shuffled_choices({**row, "Record ID": f"rec{i}"})[1]
        for i in range(40)
    }
    assert golds == set("ABCD")


def test_gpqa_accepts_the_option_text_as_the_answer(gpqa_mirror: Path) -> None:
    row = _problems("gpqa", gpqa_mirror)[2].row  # "DNA ligase"
    assert _score("gpqa", "The answer is DNA ligase.", row)["correct"] is True
    assert _score("gpqa", "The answer is Primase.", row)["correct"] is False
    assert _score("gpqa", "Answer: A", row)["correct"] is True


# --------------------------------------------------------------------------- math500


def test_math500_breaks_down_by_subject_and_level(datasets_dir: Path) -> None:
    problem = _problems("math500", datasets_dir, 1)[0]
    assert problem.category == ["subject=Precalculus", "level=2"]
    assert problem.id == "test/precalculus/807.json"
    prompt = render_prompt(resolve("math500"), problem.row)
    assert isinstance(prompt, str) and "\\boxed{}" in prompt
    assert prompt.endswith(problem.row["problem"])


# --------------------------------------------------------------------------- mgsm

# (language, response, gold, correct, extracted)
MGSM_GOLDEN: list[tuple[str, str, int, bool, str | None]] = [
    ("de", "Rechnung: 16 - 3 - 4 = 9\nAntwort: 18", 18, True, "18"),
    ("de", "**Antwort:** 18", 18, True, "18"),
    ("de", "Antwort: 1.000", 1000, True, "1000"),
    ("de", "Antwort: 276.000 Dollar", 276000, True, "276000"),
    ("es", "Respuesta: 1.500", 1500, True, "1500"),
    ("fr", "Réponse : 18", 18, True, "18"),
    ("fr", "Réponse : 276 000 $", 276000, True, "276000"),
    ("ru", "Ответ: 18", 18, True, "18"),
    ("zh", "所以她每天赚 18 美元。\n答案：18", 18, True, "18"),
    ("zh", "答案：１８", 18, True, "18"),
    ("ja", "答え：18", 18, True, "18"),
    ("ja", "解答: 18", 18, True, "18"),
    ("bn", "উত্তর: ১৮", 18, True, "18"),
    ("bn", "উত্তর: 18", 18, True, "18"),
    ("th", "คำตอบ: ๑๘", 18, True, "18"),
    ("te", "సమాధానం: 18", 18, True, "18"),
    ("sw", "Jibu: 18", 18, True, "18"),
    ("en", "Answer: 18", 18, True, "18"),
    # English forms in another language's response, and the LAST statement wins
    ("de", "The answer is 18.", 18, True, "18"),
    ("de", "Antwort: 20\nKorrektur. Antwort: 18", 18, True, "18"),
    ("zh", "答案：18\nThe answer is 20", 18, False, "20"),
    ("ja", "\\boxed{18}", 18, True, "18"),
    # never by prefix, never from nothing
    ("de", "Antwort: 10", 100, False, "10"),
    ("de", "Antwort: 100", 10, False, "100"),
    ("en", "Answer: 1,000", 1000, True, "1000"),
    ("en", "Answer: 1.000", 1000, False, "1"),  # English: 1.000 is one
    ("de", "", 0, False, None),
    ("zh", "我不知道", 5, False, None),
    ("de", "<think>Antwort: 18</think>", 18, False, None),
]


@pytest.mark.parametrize(
    ("lang", "response", "gold", "correct", "extracted"), MGSM_GOLDEN
)
def test_mgsm_golden_table(
    lang: str, response: str, gold: int, correct: bool, extracted: str | None
) -> None:
    row = {"question": "q", "answer_number": gold, "subset": lang}
    result = _score("mgsm", response, row)
    assert (result["correct"], result["extracted"]) == (correct, extracted), result
    assert result["unparsed"] is (extracted is None) and result["language"] == lang


def test_mgsm_golden_table_is_big_enough() -> None:
    assert len(MGSM_GOLDEN) >= 25
    assert {lang for lang, *_ in MGSM_GOLDEN} == set(mgsm_module.LANGUAGES)


def test_mgsm_combines_the_languages_with_a_breakdown(datasets_dir: Path) -> None:
    problems = _problems("mgsm", datasets_dir)
    assert len(problems) == 2750
    assert [p.category for p in problems[::250]] == list(mgsm_module.LANGUAGES)
    assert problems[250].row["question"].startswith("Janets Enten")
    german = _problems("mgsm_de", datasets_dir)
    assert len(german) == 250 and {p.category for p in german} == {"de"}
    prompt = render_prompt(resolve("mgsm_de"), german[0].row)
    assert isinstance(prompt, str)
    assert "written in German" in prompt and '"Antwort: N"' in prompt


# --------------------------------------------------------------------------- datasets


def test_subsets_are_concatenated_in_order_and_named(tmp_path: Path) -> None:
    for name, rows in (("a", [{"x": 1}, {"x": 2}]), ("b", [{"x": 3}])):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    data = load_subsets({"a": "a.jsonl", "b": "b.jsonl"}, base_dir=tmp_path)
    assert data.rows == [
        {"x": 1, "subset": "a"},
        {"x": 2, "subset": "a"},
        {"x": 3, "subset": "b"},
    ]
    again = load_subsets({"a": "a.jsonl", "b": "b.jsonl"}, base_dir=tmp_path)
    swapped = load_subsets({"b": "b.jsonl", "a": "a.jsonl"}, base_dir=tmp_path)
    assert data.fingerprint == again.fingerprint != swapped.fingerprint
    (tmp_path / "c.jsonl").write_text('{"subset": "mine"}\n')
    with pytest.raises(DatasetError, match="already has a 'subset' column"):
        load_subsets({"c": "c.jsonl"}, base_dir=tmp_path)


# ------------------------------------------------------------------------ fingerprint


@pytest.mark.parametrize(
    ("name", "module", "constant"),
    [
        ("mgsm", mgsm_module, "INSTRUCTION"),
        ("mgsm_de", mgsm_module, "LANGUAGES"),
        ("gpqa", gpqa_module, "SHUFFLE_SEED"),
    ],
)
def test_prompt_fingerprint_covers_the_constants_a_prompt_uses(
    name: str, module: Any, constant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = resolve(name).prompt_fingerprint()
    value = getattr(module, constant)
    changed = {**value, "xx": ("X", ("Y",))} if isinstance(value, dict) else value + "!"
    monkeypatch.setattr(module, constant, changed)
    assert resolve(name).prompt_fingerprint() != before


def test_math500_fingerprint_has_its_template_and_scorer_version() -> None:
    spec = resolve("math500")
    assert spec.prompt_fingerprint() != replace(spec, prompt="x").prompt_fingerprint()
    assert spec.scorer_version == "1"
