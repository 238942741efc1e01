"""Solvers: how a problem is put to a model (``pytest_nel.solvers``)."""

from __future__ import annotations

from pytest_nel.solvers.protocol import Generation, Solver, SolveTask, TokenUsage

__all__ = ["Generation", "SolveTask", "Solver", "TokenUsage"]
