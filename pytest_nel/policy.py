"""Gate policy files: NeMo Evaluator's schema (version 1) plus ``max_error_rate``.

Public API::

    policy = load_policy(Path("policy.yaml"))  # Policy; PolicyError names the key
    policy.resolve("gsm8k")                    # ResolvedPolicy (defaults applied)
    default_policy()                           # every benchmark supporting, 0.015

Keys: ``version: 1``; ``defaults`` and ``benchmarks.<name>`` with ``tier``
(critical, supporting, advisory), ``max_drop``, ``max_relative_drop``,
``relative_guard_below``, ``metric``, ``direction`` (higher_is_better,
lower_is_better) and ``max_error_rate`` (ours: the candidate's share of errored
samples above it is a BREACH). Unknown keys and values are errors naming the key
path and what is allowed. The file is read with plain ``yaml.safe_load``: its
``defaults`` key is the policy's, not the config files' composition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_nel.exceptions import PolicyError

__all__ = [
    "BenchmarkPolicy",
    "Defaults",
    "Direction",
    "Policy",
    "ResolvedPolicy",
    "Tier",
    "default_policy",
    "load_policy",
]


class Tier(StrEnum):
    """How much a benchmark's result weighs in the verdict."""

    critical = "critical"
    supporting = "supporting"
    advisory = "advisory"


class Direction(StrEnum):
    """Which way the metric improves."""

    higher_is_better = "higher_is_better"
    lower_is_better = "lower_is_better"


Fraction = Field(default=None, ge=0.0, le=1.0)


class BenchmarkPolicy(BaseModel):
    """One benchmark's settings; unset ones come from ``defaults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier | None = None
    max_drop: float | None = Field(default=None, ge=0.0)
    max_relative_drop: float | None = Field(default=None, ge=0.0)
    relative_guard_below: float | None = Fraction
    metric: str | None = None
    direction: Direction | None = None
    max_error_rate: float | None = Fraction


class Defaults(BenchmarkPolicy):
    """Settings every benchmark starts from."""

    tier: Tier = Tier.supporting
    max_drop: float = Field(default=0.015, ge=0.0)
    direction: Direction = Direction.higher_is_better


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """A benchmark's settings after applying the defaults."""

    tier: str
    max_drop: float
    max_relative_drop: float | None
    relative_guard_below: float | None
    metric: str | None
    direction: str
    max_error_rate: float | None


class Policy(BaseModel):
    """A gate policy file (NeMo Evaluator schema, version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    benchmarks: dict[str, BenchmarkPolicy] = Field(default_factory=dict)

    def resolve(self, name: str) -> ResolvedPolicy:
        """The settings of benchmark ``name`` (the defaults when not listed)."""
        d = self.defaults
        entry = self.benchmarks.get(name) or BenchmarkPolicy()

        def pick(key: str) -> Any:
            value = getattr(entry, key)
            value = getattr(d, key) if value is None else value
            return value.value if isinstance(value, Enum) else value

        return ResolvedPolicy(
            tier=pick("tier"),
            max_drop=pick("max_drop"),
            max_relative_drop=pick("max_relative_drop"),
            relative_guard_below=pick("relative_guard_below"),
            metric=pick("metric"),
            direction=pick("direction"),
            max_error_rate=pick("max_error_rate"),
        )


def default_policy() -> Policy:
    """Every benchmark at the defaults (supporting, max_drop 0.015)."""
    return Policy()


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy YAML file.

    Raises:
        PolicyError: The file is missing or malformed, or a key or value is
            invalid (the message names the key path and what is allowed).
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(
            f"cannot read gate policy {str(p)!r}: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{p}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{p}: a gate policy must be a mapping with version: 1")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        raise PolicyError(
            f"{p}: invalid gate policy:\n  " + "\n  ".join(lines)
        ) from None


def _describe(err: Any) -> str:
    path = ".".join(str(part) for part in err["loc"]) or "<top>"
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(err["loc"]))
        return f"{path}: unknown key (allowed: {allowed})"
    if err["type"] == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{path}: {err['input']!r} is not one of {expected}"
    if err["type"] == "literal_error" and err["loc"] == ("version",):
        return f"version: only version 1 is supported (got {err['input']!r})"
    return f"{path}: {err['msg']} (got {err.get('input')!r})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if len(loc) == 1:
        return list(Policy.model_fields)
    return list(BenchmarkPolicy.model_fields)
