"""pytest-nel: LLM evaluation as a pytest plugin.

The public API for bringing your own benchmark::

    from pytest_nel import benchmark, scorer, ScorerInput, exact_match

(PYTEST_DONT_REWRITE: the plugin needs no assertion rewriting, and ``nel`` imports this
package before it starts pytest.)
"""

from __future__ import annotations

from pytest_nel.benchmark import BenchmarkSpec, benchmark, scorer
from pytest_nel.exceptions import (
    ConfigError,
    DatasetError,
    ModelError,
    ModelTimeout,
    NelError,
    NelUsageError,
    SampleError,
    SandboxError,
    ScorerError,
)
from pytest_nel.scoring import (
    ScorerInput,
    answer_line,
    drop_f1,
    exact_match,
    extract_answer_text,
    extract_choice,
    extract_number,
    f1,
    fuzzy_match,
    math_equivalence,
    multichoice_regex,
    numeric_match,
)

__all__ = [
    "BenchmarkSpec",
    "ConfigError",
    "DatasetError",
    "ModelError",
    "ModelTimeout",
    "NelError",
    "NelUsageError",
    "SampleError",
    "SandboxError",
    "ScorerError",
    "ScorerInput",
    "answer_line",
    "benchmark",
    "drop_f1",
    "exact_match",
    "extract_answer_text",
    "extract_choice",
    "extract_number",
    "f1",
    "fuzzy_match",
    "math_equivalence",
    "multichoice_regex",
    "numeric_match",
    "scorer",
]
