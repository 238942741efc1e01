"""MGSM: 250 GSM8K problems translated into 10 languages, plus English (juletxara/mgsm).

Benchmarks (one config per language, split ``test``, integer answers):

- ``mgsm``: all 11 languages, 2,750 problems, with a per-language breakdown (the
  category is the language code). The headline is over every problem; as every
  language has 250, it equals the mean of the per-language scores.
- ``mgsm_<lang>`` (``mgsm_bn``, ``mgsm_de``, ... ``mgsm_zh``): one language.

Rows keep their language in the ``subset`` column. The instruction is in English for
every language (so scores compare across languages); the question is in its own
language, and the model is asked to end with the language's own answer cue
(``Antwort: N``, ``答案：N``, ``উত্তর: N``...). The scorer reads the LAST of the native
cue, the English forms (``Answer:``, ``The answer is``, ``\\boxed{}``) and ``#### N``,
with Unicode digits (``১৮``, ``๑๘``, ``１８``) and, in German and Spanish, ``1.000``
read as a thousand.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pytest_nel.benchmark import ScorerFn, benchmark, scorer
from pytest_nel.scoring import ScorerInput, extract_number

#: Language code -> (language name, answer cues in that language).
LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bn": ("Bengali", ("উত্তর",)),
    "de": ("German", ("Antwort",)),
    "en": ("English", ("Answer",)),
    "es": ("Spanish", ("Respuesta",)),
    "fr": ("French", ("Réponse",)),
    "ja": ("Japanese", ("答え", "解答")),
    "ru": ("Russian", ("Ответ",)),
    "sw": ("Swahili", ("Jibu",)),
    "te": ("Telugu", ("సమాధానం",)),
    "th": ("Thai", ("คำตอบ",)),
    "zh": ("Chinese", ("答案",)),
}
DOT_THOUSANDS = frozenset({"de", "es"})  # "1.000" is one thousand there
INSTRUCTION = (
    "Solve this math problem, written in {language}. Give your reasoning steps, then "
    'write the final answer on the last line by itself in the form "{cue}: N", '
    "where N is the integer answer and nothing else."
)
_DOT_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?![\d.,]?\d)")


def _source(lang: str) -> str:
    return f"hf://juletxara/mgsm?config={lang}&split=test"


def _prompt(row: dict[str, Any]) -> str:
    language, cues = LANGUAGES[row["subset"]]
    instruction = INSTRUCTION.format(language=language, cue=cues[0])
    return f"{instruction}\n\n{row['question']}"


def _oracle(row: dict[str, Any]) -> str:
    return f"{LANGUAGES[row['subset']][1][0]}: {row['answer_number']}"


def _show(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def score_mgsm(sample: ScorerInput) -> dict[str, Any]:
    """The number after the last answer cue (native or English) against the gold."""
    lang = sample.metadata["subset"]
    text = sample.response
    if lang in DOT_THOUSANDS:
        text = _DOT_GROUPED.sub(lambda m: m.group().replace(".", ""), text)
    value, method = extract_number(text, cues=LANGUAGES[lang][1])
    gold = Decimal(str(sample.target))
    return {
        "correct": value is not None and value == gold,
        "extracted": None if value is None else _show(value),
        "unparsed": value is None,
        "method": method,
        "expected": _show(gold),
        "language": lang,
    }


_OPTIONS: dict[str, Any] = {
    "prompt": _prompt,
    "target_field": "answer_number",
    "category_field": "subset",
    "oracle": _oracle,
    "scorer_version": "1",
}


@benchmark(
    name="mgsm",
    dataset={lang: _source(lang) for lang in LANGUAGES},
    description="MGSM, 11 languages, per-language breakdown (pass@1).",
    **_OPTIONS,
)
@scorer
def mgsm(sample: ScorerInput) -> dict[str, Any]:
    """MGSM over every language."""
    return score_mgsm(sample)


def _one_language(lang: str) -> ScorerFn:
    """The benchmark ``mgsm_<lang>``: one language's 250 problems."""

    def score(sample: ScorerInput) -> dict[str, Any]:
        return score_mgsm(sample)

    score.__name__ = score.__qualname__ = f"mgsm_{lang}"
    return benchmark(
        name=f"mgsm_{lang}",
        dataset={lang: _source(lang)},
        description=f"MGSM, {LANGUAGES[lang][0]} only (pass@1).",
        **_OPTIONS,
    )(scorer(score))


mgsm_bn = _one_language("bn")
mgsm_de = _one_language("de")
mgsm_en = _one_language("en")
mgsm_es = _one_language("es")
mgsm_fr = _one_language("fr")
mgsm_ja = _one_language("ja")
mgsm_ru = _one_language("ru")
mgsm_sw = _one_language("sw")
mgsm_te = _one_language("te")
mgsm_th = _one_language("th")
mgsm_zh = _one_language("zh")
