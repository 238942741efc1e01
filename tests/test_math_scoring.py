"""math_equivalence (pytest_nel.math_scoring) and math answer extraction: golden table,
adversarial input, the checker process, and the real MATH-500 references."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_nel import math_scoring
from pytest_nel.extraction import clean_math_answer, extract_math_answer
from pytest_nel.math_scoring import (
    MathChecker,
    check_equivalence,
    math_equivalence,
    normalize_math,
)
from pytest_nel.scoring import SCORERS, ScorerInput, get_scorer, normalize_score

DATASETS = Path(
    os.environ.get(
        "NEL_DATASETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)
ONE_MB = 1_000_000

# (response, target, correct, checker that decided; None when nothing was extracted)
GOLDEN: list[tuple[str, str, bool, str | None]] = [
    # the equivalences
    ("So the answer is $\\boxed{\\frac{1}{2}}$.", "0.5", True, "numeric"),
    ("The answer is 0.5", "\\frac{1}{2}", True, "numeric"),
    ("\\boxed{1/2}", "\\frac12", True, "numeric"),
    (
        "$\\boxed{(3,\\pi/2)}$",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
        "math_verify",
    ),
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True, "math_verify"),
    # never by prefix or trailing zeros
    ("\\boxed{10}", "100", False, "math_verify"),
    ("\\boxed{100}", "10", False, "math_verify"),
    ("\\boxed{10.0}", "10", True, "numeric"),
    # MATH's own spellings
    (
        "Final Answer: The final answer is $\\dfrac{14}{3}$. I hope it is correct.",
        "\\frac{14}{3}",
        True,
        "string",
    ),
    ("\\boxed{90}", "90^\\circ", True, "string"),
    ("\\boxed{10080}", "10,\\!080", True, "numeric"),
    ("\\boxed{\\$32,348}", "\\$32,\\!348", True, "string"),
    ("\\boxed{864}", "864 \\mbox{ inches}^2", True, "string"),
    ("\\boxed{x = 5}", "5", True, "string"),
    ("\\boxed{[2, 5)}", "[2,5)", True, "string"),
    ("\\boxed{(2,5)}", "[2,5)", False, "math_verify"),
    ("\\boxed{5\\sqrt{2}}", "\\sqrt{50}", True, "math_verify"),
    ("\\boxed{-2, 1}", "1,-2", True, "math_verify"),
    ("\\boxed{C}", "\\text{(C)}", True, "math_verify"),
    ("Answer: $\\boxed{\\text{Evelyn}}$", "\\text{Evelyn}", True, "string"),
    ("\\boxed{1.8}", "1\\frac{4}{5}", True, "math_verify"),
    ("\\boxed{2.8}", "1\\frac{4}{5}", False, "math_verify"),
    (
        "\\boxed{\\begin{pmatrix} -\\frac13 \\\\ \\frac{2}{3} \\\\ "
        "\\frac53 \\end{pmatrix}}",
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        True,
        "math_verify",
    ),
    ("**Final Answer:** $\\frac{3}{4}$", "0.75", True, "numeric"),
    ("**\\boxed{7}**", "7", True, "string"),
    ("\\boxed{1,000}", "1000", True, "numeric"),  # thousands separator
    ("\\boxed{0.50}", "\\frac{1}{2}", True, "numeric"),  # trailing zero
    ("\\boxed{١٨}", "18", True, "numeric"),  # Arabic-Indic digits
    # the LAST answer wins; reasoning and checks after the box do not
    ("First \\boxed{5}, no wait: \\boxed{6}", "6", True, "string"),
    ("\\boxed{6}\nChecking: so our answer is correct.", "6", True, "string"),
    ("<think>\\boxed{5}</think>The answer is 6", "5", False, "math_verify"),
    ("<think>the answer is 5, I am sure", "5", False, None),
    # adversarial: nothing to read
    ("", "0", False, None),
    ("I don't know.", "5", False, None),
    ("The answer is \\boxed{\\frac{1}{2}", "\\frac{1}{2}", False, None),
    ("\\boxed{}", "0", False, None),
    ("}}}{{{\\boxed{\\boxed{", "1", False, None),
    ("\x00\x01\xff\ufffd junk \ud800", "1", False, None),
]


def _score(response: str, target: str, **config: Any) -> dict[str, Any]:
    return math_equivalence(
        ScorerInput(response=response, target=target, config=config)
    )


@pytest.mark.parametrize(("response", "target", "correct", "checker"), GOLDEN)
def test_golden_table(
    response: str, target: str, correct: bool, checker: str | None
) -> None:
    result = _score(response, target)
    assert result["correct"] is correct, result
    assert result["checker"] == checker, result
    assert result["unparsed"] is (checker is None)
    assert "checker_timeout" not in result
    normalize_score(result)  # a valid scorer result


def test_the_golden_table_is_big_enough() -> None:
    assert len(GOLDEN) >= 25
    assert {c for *_, c in GOLDEN} == {"string", "numeric", "math_verify", None}


def test_registered_by_name_for_configs_and_byob() -> None:
    assert SCORERS["math_equivalence"] is math_equivalence
    assert get_scorer("math_equivalence") is math_equivalence


def test_a_sympy_blow_up_is_the_models_failure_within_the_time_limit() -> None:
    start = time.monotonic()
    result = _score("\\boxed{9^{9^{9^{9}}}}", "1", math_timeout_s=1)
    assert time.monotonic() - start < 1 + math_scoring.KILL_GRACE_S + 5  # generous
    assert result["correct"] is False and result["unparsed"] is False
    assert result["checker_timeout"] is True and result["checker"] == "math_verify"
    score = normalize_score(result)
    assert score.reward == 0.0 and score.details["checker_timeout"] is True
    # the checker keeps working after a time-out
    assert _score("\\boxed{(x+1)^2}", "x^2+2x+1")["correct"] is True


def test_a_stuck_checker_process_is_killed_and_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(math_scoring, "KILL_GRACE_S", 0.2)
    checker = MathChecker()
    try:
        assert checker.check("2", "1+1", 5.0) == {"equal": True}
        assert checker._proc is not None
        os.kill(checker._proc.pid, signal.SIGSTOP)  # stuck, as in a C-level blow-up
        reply = checker.check("2", "1+1", 0.3)
        assert reply["equal"] is False and reply["timeout"] is True
        assert "killed" in reply["error"]
        assert checker.check("2", "1+1", 5.0) == {"equal": True}  # a fresh process
    finally:
        checker.close()


def test_a_one_megabyte_response_is_read_in_bounded_time() -> None:
    padding = "x " * (ONE_MB // 2)
    start = time.monotonic()
    assert _score(padding + "so \\boxed{\\frac{1}{2}}", "0.5")["correct"] is True
    unparsed = _score(padding + "\\frac{" * 1000, "0.5")
    assert unparsed["unparsed"] is True
    boxed_junk = _score("\\boxed{" + "{" * 5000 + "}" * 5001, "1")
    assert boxed_junk["correct"] is False
    assert time.monotonic() - start < 10  # measured ~0.1 s


def test_an_overlong_answer_is_compared_as_a_string_only() -> None:
    answer = "+".join(["x"] * 2000)
    verdict = check_equivalence("1", answer)
    assert verdict == math_scoring.Verdict(
        False, "string", error="answer over 2000 chars"
    )


def test_a_bad_time_limit_or_target_is_a_scorer_error() -> None:
    with pytest.raises(ValueError, match="math_timeout_s"):
        _score("\\boxed{(x+1)^2}", "x^2+2x+1", math_timeout_s=0)
    with pytest.raises(ValueError, match="non-empty target"):
        _score("\\boxed{1}", "")


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("\\dfrac 12", "\\frac{1}{2}"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("15\\mbox{ cm}^2", "15"),
        ("11\\sqrt2", "11\\sqrt{2}"),
        ("\\$18.90", "18.90"),
        ("y = 2x + 3", "2x+3"),
        (".5", "0.5"),
        ("10\\%", "10"),
    ],
)
def test_normalize_math(text: str, normal: str) -> None:
    assert normalize_math(text) == normal


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("**$\\frac{1}{2}$**.", "\\frac{1}{2}"),
        ("$$\\boxed{(1,2)}$$", "(1,2)"),
        ("\\(x^2\\)", "x^2"),
        ("\\frac{a+b}{c}", "\\frac{a+b}{c}"),
        ("$5$ and $6$", "$5$ and $6$"),
    ],
)
def test_clean_math_answer_keeps_the_mathematics(text: str, answer: str) -> None:
    assert clean_math_answer(text) == answer


def test_extraction_takes_the_whole_nested_box() -> None:
    response = "so $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$."
    assert extract_math_answer(response) == (
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "boxed",
    )


def test_every_math500_reference_solution_scores_as_its_answer() -> None:
    path = DATASETS / "HuggingFaceH4" / "MATH-500" / "default" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"dataset mirror not found: {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    wrong = [
        row["unique_id"]
        for row in rows
        if not _score(row["solution"], row["answer"])["correct"]
    ]
    assert len(rows) == 500 and wrong == []


def test_math_extraction_moved_but_old_imports_still_work() -> None:
    from pytest_nel import extraction, math_extraction

    assert extraction.extract_math_answer is math_extraction.extract_math_answer
    assert clean_math_answer is math_extraction.clean_math_answer
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        extraction.nope  # noqa: B018
