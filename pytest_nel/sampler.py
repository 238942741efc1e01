"""Turning one item into one recorded sample: wait for its generation, score, record."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_nel.config import endpoint_url
from pytest_nel.engine import Engine, Request, SolverSetup
from pytest_nel.exceptions import (
    CircuitOpen,
    EngineDied,
    FatalClientError,
    SampleError,
    ScorerError,
)
from pytest_nel.problems import Problem, render_prompt
from pytest_nel.results import RESULTS, SCHEMA_VERSION, ResultsWriter
from pytest_nel.run import BenchmarkRun, NelRun
from pytest_nel.scoring import ScorerInput, normalize_score
from pytest_nel.solvers.protocol import Generation, SolveTask, TokenUsage

if TYPE_CHECKING:
    from pytest_nel.collection import EvalItem

PROPERTY_LIMIT = 200


class Sampler:
    """Owns this process's engine and results writers; evaluates items one by one."""

    def __init__(
        self,
        run: NelRun,
        engine: Engine,
        *,
        worker_id: str | None,
        share: tuple[int, int],
    ) -> None:
        self.run = run
        self.worker_id = worker_id
        self.writers: dict[str, ResultsWriter] = {}
        self.engine = engine
        engine.setup(
            {
                b.name: _solver_setup(run, b, share)
                for b in run.benchmarks
                if not b.is_oracle
            }
        )
        self._since_start = 0

    @staticmethod
    def request(bench: BenchmarkRun, problem: Problem, repeat: int) -> Request:
        """The engine request that generates one sample."""
        key = f"{bench.name}::{problem.idx}-r{repeat}"
        task = SolveTask(
            bench.name, problem.idx, repeat, render_prompt(bench.spec, problem.row)
        )
        return Request(key, bench.name, task)

    def evaluate(self, item: EvalItem) -> None:
        """Run one item: wait, score, record; errors fail (or xfail) the item."""
        try:
            generation = self._generate(item)
        except SampleError as exc:
            self._record(item, None, error=exc)
            self._fail(item, exc)
            return
        verifier = _Verifier(item)
        try:
            with verifier:
                scored = item.bench.spec.scorer(
                    self._scorer_input(item, generation, verifier)
                )
            score = normalize_score(scored)
        except SampleError as exc:  # the sandbox failed: not the scorer's bug
            self._record(item, generation, error=exc)
            self._fail(item, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a scorer bug is its own error category
            error = ScorerError(f"scorer raised {type(exc).__name__}: {exc}")
            self._record(item, generation, error=error)
            self._fail(item, error)
            return
        record = self._record(item, generation, score=score)
        props = item.user_properties
        props.append(("reward", record["reward"]))
        props.append(("expected", _short(record["expected_answer"])))
        props.append(("extracted", _short(record["extracted_answer"])))
        if record["unparsed"]:
            props.append(("unparsed", True))

    def _generate(self, item: EvalItem) -> Generation:
        """The model's generation, or the reference answer for an oracle solver."""
        if item.bench.is_oracle:
            return _oracle_generation(item)
        # The plan holds the rendered prompt; render it only for an unplanned item.
        request = None
        if not self.engine.knows(item.nodeid):
            request = self.request(item.bench, item.problem, item.repeat)
        generation: Generation = self.engine.wait(item.nodeid, request)
        return generation

    def _scorer_input(
        self, item: EvalItem, generation: Generation, verifier: _Verifier
    ) -> ScorerInput:
        problem = item.problem
        return ScorerInput(
            response=generation.text,
            target=item.bench.spec.target_of(problem.row),
            metadata=problem.row,
            finish_reason=generation.finish_reason,
            problem_idx=problem.idx,
            repeat=item.repeat,
            config=item.bench.config.params,
            sandbox=_sandbox(item),
            verifier_sandbox=verifier if item.bench.verifier_sandbox else None,
        )

    def _fail(self, item: EvalItem, exc: SampleError) -> None:
        item.user_properties.append(("error_category", exc.category))
        if isinstance(exc, CircuitOpen):
            item.session.shouldstop = f"nel: stopping, the endpoint is down: {exc}"
        elif isinstance(exc, FatalClientError):
            item.session.shouldstop = f"nel: stopping, fatal client error: {exc}"
        elif isinstance(exc, EngineDied):
            item.session.shouldstop = f"nel: stopping: {exc}"
        if item.bench.config.error_budget is not None:
            pytest.xfail(f"[{exc.category}] {exc}")
        raise exc

    def _record(
        self,
        item: EvalItem,
        generation: Generation | None,
        *,
        score: Any = None,
        error: SampleError | None = None,
    ) -> dict[str, Any]:
        bench, problem = item.bench, item.problem
        target = bench.spec.target_of(problem.row)
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": bench.name,
            "problem_idx": problem.idx,
            "problem_id": problem.id,
            "repeat": item.repeat,
            "category": problem.category,
            "status": "error" if error is not None else "scored",
            "reward": None if score is None else score.reward,
            "unparsed": bool(score is not None and score.unparsed),
            "truncated": generation is not None
            and generation.finish_reason == "length",
            "expected_answer": None if target is None else str(target),
            "extracted_answer": None if score is None else score.extracted,
            "model_response": None if generation is None else generation.text,
            "reasoning": None if generation is None else generation.reasoning,
            "scoring_details": {} if score is None else score.details,
            "error": None
            if error is None
            else {"category": error.category, "message": str(error)},
            "tokens": _tokens(generation),
            "latency_ms": None
            if generation is None
            else round(generation.latency_ms, 2),
            "finish_reason": None if generation is None else generation.finish_reason,
            "time": time.time(),
        }
        self._writer(bench).write(record)
        return record

    def _writer(self, bench: BenchmarkRun) -> ResultsWriter:
        writer = self.writers.get(bench.name)
        if writer is None:
            name = (
                RESULTS
                if self.worker_id is None
                else f"results.part-{self.worker_id}.jsonl"
            )
            writer = self.writers[bench.name] = ResultsWriter(bench.dir / name)
        return writer

    def close(self) -> None:
        """Ask the engine to stop and close results files.

        The engine is reaped later by :meth:`finish`.
        """
        self.engine.request_stop()
        for writer in self.writers.values():
            writer.close()

    def finish(self) -> None:
        """Wait for the engine process to exit."""
        self.engine.stop()


def _oracle_generation(item: EvalItem) -> Generation:
    """The benchmark's oracle response (its reference answer), as a generation."""
    try:
        text = item.bench.spec.oracle_response(item.problem.row)
    except Exception as exc:  # noqa: BLE001 - the oracle is benchmark code, like a scorer
        raise ScorerError(f"oracle raised {type(exc).__name__}: {exc}") from exc
    return Generation(text, "stop", TokenUsage(), latency_ms=0.0)


def _sandbox(item: EvalItem) -> Any:
    """The item's started sandbox; None for benchmarks without one.

    Raises:
        SandboxError: The sandbox could not start (kept by the fixture).
    """
    if item.bench.sandbox is None:
        return None
    from pytest_nel.sandbox_fixture import SANDBOX_FAILURE

    failure = item.stash.get(SANDBOX_FAILURE, None)
    if failure is not None:
        raise failure
    return item.funcargs.get("nel_sandbox")


class _Verifier:
    """Stateless mode: the item's verifier sandbox, started when the scorer asks.

    It shares the item's sandbox's workdir (``Sandbox.verifier``) and is stopped when
    scoring ends, before the item's own sandbox.
    """

    def __init__(self, item: EvalItem) -> None:
        self.item = item
        self.box: Any = None

    def __call__(self) -> Any:
        if self.box is None:
            owner = _sandbox(self.item)
            box = owner.verifier(self.item.bench.verifier_sandbox)
            box.start()
            self.box = box
        return self.box

    def __enter__(self) -> _Verifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        box, self.box = self.box, None
        if box is not None:
            box.stop()


def _tokens(generation: Generation | None) -> dict[str, int]:
    if generation is None:
        return {"prompt": 0, "completion": 0, "reasoning": 0}
    t = generation.tokens
    return {"prompt": t.prompt, "completion": t.completion, "reasoning": t.reasoning}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > PROPERTY_LIMIT:
        return value[:PROPERTY_LIMIT] + "..."
    return value


def _share(total: int, share: tuple[int, int]) -> int:
    """This worker's part of a run-wide concurrency limit (at least 1)."""
    index, count = share
    base, rest = divmod(total, count)
    return max(1, base + (1 if index < rest else 0))


def _solver_setup(
    run: NelRun, bench: BenchmarkRun, share: tuple[int, int]
) -> SolverSetup:
    service = bench.service
    key = getattr(service, "api_key", None)
    return SolverSetup(
        endpoint=endpoint_url(run.endpoints[bench.service_name], bench.protocol),
        api_key=key.get_secret_value() if key else None,
        model=service.model,
        protocol=bench.protocol,
        params=bench.generation.request_params(),
        system_prompt=bench.system_prompt,
        # With a proxy in front, its endpoint interceptor is the one retry layer.
        max_retries=0 if getattr(service, "proxy", None) else service.max_retries,
        request_timeout=_engine_timeout(service),
        limit=_share(bench.config.max_concurrent, share),
    )


def _engine_timeout(service: Any) -> float:
    """The engine's time limit: one attempt, or all of the proxy's attempts."""
    proxy = getattr(service, "proxy", None)
    if proxy is None:
        return float(service.request_timeout)
    attempt = proxy.request_timeout or service.request_timeout
    backoff = 30.0  # the endpoint interceptor's longest backoff
    return float(attempt * (service.max_retries + 1) + backoff * service.max_retries)


__all__ = ["Sampler"]
