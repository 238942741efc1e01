"""Parity with a real peer: lm-evaluation-harness's own gsm8k filters and metric.

lm-eval's ``gsm8k`` task YAML (shipped in the package) is read as lm-eval reads it:
its two filter pipelines ("strict-match": regex ``#### (\\-?[0-9\\.\\,]+)`` then
take_first; "flexible-extract": regex ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` with
``group_select: -1`` then take_first) are built with lm-eval's filter registry
(``RegexFilter``, ``TakeFirstFilter``) and applied to ``Instance`` objects, and the
filtered answer is scored with lm-eval's ``exact_match`` and the YAML's options
(ignore case; strip ``,``, ``$``, everything up to ``#### `` and a final ``.``).

Our side is the gsm8k benchmark's own scorer (``numeric_match``). Every row states
all three verdicts; each difference is explained in the row and listed in
docs/scoring.md ("Differences from lm-evaluation-harness").
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from lm_eval.api.instance import Instance
from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.filters import build_filter_ensemble

from pytest_nel.benchmark import resolve
from pytest_nel.scoring import ScorerInput, gsm8k_target


def _gsm8k_task() -> dict[str, Any]:
    spec = importlib.util.find_spec("lm_eval")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "tasks" / "gsm8k" / "gsm8k.yaml"
    task: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return task


TASK = _gsm8k_task()
PIPELINES = {
    entry["name"]: build_filter_ensemble(
        entry["name"],
        [
            (step["function"], {k: v for k, v in step.items() if k != "function"})
            for step in entry["filter"]
        ],
    )
    for entry in TASK["filter_list"]
}
METRIC = next(m for m in TASK["metric_list"] if m["metric"] == "exact_match")
METRIC_OPTIONS = {
    key: METRIC[key]
    for key in ("ignore_case", "ignore_punctuation", "regexes_to_ignore")
    if key in METRIC
}


def lm_eval_verdict(pipeline: str, response: str, answer_field: str) -> bool:
    """lm-eval's gsm8k verdict for one response under one filter pipeline."""
    instance = Instance(
        request_type="generate_until",
        doc={"answer": answer_field},
        arguments=("", {}),
        idx=0,
        resps=[response],
    )
    PIPELINES[pipeline].apply([instance])
    filtered = instance.filtered_resps[pipeline]
    score = exact_match_hf_evaluate(
        predictions=[filtered], references=[answer_field], **METRIC_OPTIONS
    )
    return bool(score["exact_match"] == 1.0)


def ours(response: str, answer_field: str) -> bool:
    """The gsm8k benchmark's verdict (numeric_match) for one response."""
    spec = resolve("gsm8k")
    sample = ScorerInput(
        response=response,
        target=gsm8k_target(answer_field),
        metadata={"answer": answer_field},
    )
    return bool(spec.scorer(sample)["correct"])


class Case(NamedTuple):
    """One model output, its gold number, and the three verdicts with the reason."""

    response: str
    gold: str
    ours: bool
    strict: bool
    flexible: bool
    why: str


STEPS = "Janet's ducks lay 16 eggs. She uses 3 + 4 = 7.\nShe sells 16 - 7 = 9 eggs.\n"
CASES = [
    Case(STEPS + "9 * 2 = 18\n#### 18", "18", True, True, True, "GSM8K's own format"),
    Case(STEPS + "The answer is 18.", "18", True, False, True,
         "strict needs '#### N'; it misses 'The answer is N'"),
    Case(STEPS + "Answer: 18", "18", True, False, True, "strict misses 'Answer: N'"),
    Case(STEPS + "So she makes **18** dollars.\n\n**18**", "18", True, False, True,
         "strict misses a bold final line"),
    Case(STEPS + "$\\boxed{18}$", "18", True, False, True, "strict misses \\boxed"),
    Case(STEPS + "The answer is $18.", "18", True, False, True,
         "flexible's regex keeps '$18.', the metric strips '$' and the final '.'"),
    Case("The house cost 80,000 + 50,000 = 130,000.\nThe answer is $70,000.",
         "70000", True, False, True, "thousands separators are ignored by both"),
    Case(STEPS + "#### 18.00", "18", True, False, False,
         "lm-eval compares strings: '18.00' is not '18'; we compare values"),
    Case(STEPS + "The answer is 18.0", "18", True, False, False,
         "same: 18.0 equals 18 by value only"),
    Case(STEPS + "#### 10", "100", False, False, False, "10 is not 100"),
    Case(STEPS + "#### 100", "10", False, False, False, "100 is not 10"),
    Case("", "0", False, False, False, "an empty answer never matches, not even 0"),
    Case("I cannot solve this problem.", "0", False, False, False, "no number"),
    Case(STEPS + "The answer is eighteen.", "18", False, False, False,
         "numbers in words are not read by either"),
    Case(STEPS + "#### 12\nWait, I forgot the muffins.\n#### 18", "18", True, False,
         True, "strict takes the FIRST '#### N' (take_first of findall); we the last"),
    Case(STEPS + "Answer: 12\nWait, that is wrong: 9 * 2 = 18.\nAnswer: 18", "18",
         True, False, True, "the last answer statement wins for us and flexible"),
    Case(STEPS + "The answer is 18 (9 * 2).", "18", True, False, False,
         "flexible takes the last number, '2' from the remark; we skip the remark"),
    Case(STEPS + "The answer is 18.\nI hope this helps with these 2 questions!",
         "18", True, False, False,
         "flexible takes the last number of the whole text, '2'"),
    Case(STEPS + "The answer is 18. She goes to the market at 9:30.", "18", True,
         False, False, "flexible takes '30' from the time; we stop at the sentence"),
    Case("<think>9 * 2 = 18</think>", "18", False, False, True,
         "flexible reads the last number inside the think block; for us an answer "
         "only in the reasoning is no answer"),
    Case("<think>The answer is 18.</think>\nI am not sure.", "18", False, False, True,
         "same: we strip <think> blocks before extracting"),
    Case("<think>Maybe 20? No: 9 * 2 = 18.</think>\nThe answer is 18.", "18", True,
         False, True, "both read the answer after the think block"),
    Case(STEPS + "#### $18", "18", True, False, True,
         "strict's regex needs a digit right after '#### '"),
    Case(STEPS + "####18", "18", True, False, True,
         "strict's regex needs a space after '####'"),
    Case("#### 1. Count the eggs\n" + STEPS + "The answer is 18.", "18", True, False,
         True, "strict reads the markdown heading '#### 1.' as the answer"),
    Case(STEPS + "The answer is -3.", "-3", True, False, True, "negative numbers"),
    Case(STEPS + "The answer is 25%.", "25", True, False, True, "a percent sign"),
    Case(STEPS + "Total: 18 dollars.", "18", True, False, True,
         "no answer statement: both take the last number"),
    Case(STEPS + "The answer is 7 + 11 = 18.", "18", True, False, True,
         "an equation in the statement: its last number"),
    Case(STEPS + "#### 18\n\nStep 2: check that 9 + 9 = 18.", "18", True, True,
         True, "all agree"),
]  # fmt: skip


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert sum(c.ours != c.flexible for c in CASES) >= 5  # the differences matter


def test_the_yaml_is_lm_evals_gsm8k_as_documented() -> None:
    names = [entry["name"] for entry in TASK["filter_list"]]
    assert names == ["strict-match", "flexible-extract"]
    strict, flexible = (entry["filter"] for entry in TASK["filter_list"])
    assert strict[0]["regex_pattern"] == "#### (\\-?[0-9\\.\\,]+)"
    assert flexible[0]["regex_pattern"] == "(-?[$0-9.,]{2,})|(-?[0-9]+)"
    assert flexible[0]["group_select"] == -1
    assert strict[1]["function"] == flexible[1]["function"] == "take_first"


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_gsm8k_verdicts_against_lm_eval(case: Case) -> None:
    answer_field = f"Worked solution.\n#### {case.gold}"
    got = (
        ours(case.response, answer_field),
        lm_eval_verdict("strict-match", case.response, answer_field),
        lm_eval_verdict("flexible-extract", case.response, answer_field),
    )
    assert got == (case.ours, case.strict, case.flexible), case.why
