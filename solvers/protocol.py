"""The Solver protocol and the data it exchanges with the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SolveTask:
    """One sample to generate.

    Attributes:
        benchmark: Benchmark name.
        problem_idx: Row index in the original split.
        repeat: Repeat index (0-based).
        prompt: Rendered user prompt, or a full list of chat messages.
    """

    benchmark: str
    problem_idx: int
    repeat: int
    prompt: str | list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts as reported by the endpoint (0 when it did not say)."""

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0


@dataclass(frozen=True, slots=True)
class Generation:
    """What a solver produced for one sample."""

    text: str
    finish_reason: str | None
    tokens: TokenUsage
    latency_ms: float
    reasoning: str | None = None


class Solver(Protocol):
    """Turns a task into a generation; runs inside the engine's event loop."""

    async def solve(self, task: SolveTask) -> Generation:
        """Generate the model's answer for one sample."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
