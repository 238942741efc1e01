"""From dataset rows to the ordered list of problems a benchmark evaluates."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_nel.benchmark import BenchmarkSpec
from pytest_nel.config import BenchmarkConfig
from pytest_nel.datasets import LoadedDataset, load_dataset, load_subsets
from pytest_nel.exceptions import DatasetError

ID_FIELDS = ("task_id", "unique_id", "question_id", "id", "problem_id")


@dataclass(frozen=True, slots=True)
class Problem:
    """One dataset row, with its index in the original (unshuffled) split.

    ``category`` is the value of the benchmark's category field, or a list of
    ``field=value`` labels when the benchmark breaks down by several fields.
    """

    idx: int
    id: str
    row: dict[str, Any]
    category: str | list[str] | None


def load_problems(
    spec: BenchmarkSpec, cfg: BenchmarkConfig, mirror_dir: Path | None
) -> tuple[LoadedDataset, list[Problem]]:
    """Load the dataset, shuffle it with the seed and cut it to ``max_problems``."""
    if isinstance(spec.dataset, str):
        data = load_dataset(spec.dataset, base_dir=spec.base_dir, mirror_dir=mirror_dir)
    else:
        data = load_subsets(spec.dataset, base_dir=spec.base_dir, mirror_dir=mirror_dir)
    if not data.rows:
        raise DatasetError(f"dataset {data.source!r} is empty")
    rows = (
        [_mapped(r, spec.field_mapping) for r in data.rows]
        if spec.field_mapping
        else data.rows
    )
    _check_fields(spec, rows[0])
    order = list(range(len(rows)))
    if cfg.shuffle_seed is not None:
        random.Random(cfg.shuffle_seed).shuffle(order)
    if cfg.max_problems is not None:
        order = order[: cfg.max_problems]
    id_field = spec.id_field or next((f for f in ID_FIELDS if f in rows[0]), None)
    problems = []
    for idx in order:
        row = rows[idx]
        pid = str(row[id_field]) if id_field and id_field in row else str(idx)
        problems.append(Problem(idx, pid, row, _category(spec, row)))
    return data, problems


def _category(spec: BenchmarkSpec, row: dict[str, Any]) -> str | list[str] | None:
    fields = spec.category_field
    if fields is None:
        return None
    if isinstance(fields, str):
        return str(row[fields])
    return [f"{name}={row[name]}" for name in fields]


def _mapped(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in row.items()}


def _check_fields(spec: BenchmarkSpec, row: dict[str, Any]) -> None:
    fields = sorted(row)
    if (
        spec.target is None
        and spec.target_field is not None
        and spec.target_field not in row
    ):
        raise DatasetError(
            f"benchmark {spec.name}: target_field {spec.target_field!r} "
            "is not a column of "
            f"{spec.dataset!r}; columns: {fields}"
        )
    category_fields = (
        (spec.category_field,)
        if isinstance(spec.category_field, str)
        else spec.category_field or ()
    )
    for category_field in category_fields:
        if category_field not in row:
            raise DatasetError(
                f"benchmark {spec.name}: category_field {category_field!r} "
                "is not a column; "
                f"columns: {fields}"
            )
    if isinstance(spec.prompt, str):
        try:
            render_prompt(spec, row)
        except KeyError as exc:
            raise DatasetError(
                f"benchmark {spec.name}: the prompt uses {{{exc.args[0]}}} "
                "but the dataset "
                f"has no such column; columns: {fields}"
            ) from None


def render_prompt(
    spec: BenchmarkSpec, row: dict[str, Any]
) -> str | list[dict[str, Any]]:
    """The user prompt (or chat messages) for one row."""
    prompt = spec.prompt
    if callable(prompt):
        return prompt(row)
    if "{%" in prompt or "{#" in prompt:
        return str(_jinja(prompt).render(**row))
    return prompt.format(**row)


_JINJA_CACHE: dict[str, Any] = {}


def _jinja(template: str) -> Any:
    compiled = _JINJA_CACHE.get(template)
    if compiled is None:
        import jinja2

        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        compiled = _JINJA_CACHE[template] = env.from_string(template)
    return compiled
