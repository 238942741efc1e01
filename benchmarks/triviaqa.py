"""TriviaQA: open-domain trivia questions without context
(mandarjoshi/trivia_qa, rc.nocontext, validation; 17,944 questions).

The stated answer (last ``Answer:`` line, ...) is correct when, after TriviaQA's own
answer normalisation (lowercase; punctuation, underscores and the articles a/an/the
removed; whitespace collapsed), it equals any of the question's aliases
(:func:`pytest_nel.text_scoring.fuzzy_match`). The token F1 against the best alias
is recorded in ``scoring_details`` as ``f1``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.scoring import ScorerInput
from pytest_nel.text_scoring import fuzzy_match, token_f1

PROMPT = (
    "Answer the following trivia question. Think briefly if you need to, then "
    'write a final line of the form "Answer: X", where X is only the answer: a '
    "name, a number or a short phrase.\n\nQuestion: {question}"
)


def _aliases(row: dict[str, Any]) -> list[str]:
    """Every accepted answer: the value, then the aliases and their normalised
    forms."""
    answer = row["answer"]
    names = [answer["value"], *answer["aliases"], *answer["normalized_aliases"]]
    return list(dict.fromkeys(name for name in names if name and name.strip()))


def _target(row: dict[str, Any]) -> str:
    return str(row["answer"]["value"])


@benchmark(
    name="triviaqa",
    dataset="hf://mandarjoshi/trivia_qa?config=rc.nocontext&split=validation",
    prompt=PROMPT,
    target=_target,
    id_field="question_id",
    scorer_version="1",
    description="TriviaQA (no context): answer equals an alias after normalisation.",
)
@scorer
def triviaqa(sample: ScorerInput) -> dict[str, Any]:
    """fuzzy_match against every alias, with the best token F1 as a detail."""
    aliases = _aliases(sample.metadata)
    result = fuzzy_match(replace(sample, target=aliases))
    said = result["extracted"]
    result["f1"] = max(token_f1(said, alias) for alias in aliases) if said else 0.0
    result["expected"] = aliases[0]
    return result
