"""The engine process: plan order, concurrency limits, on-demand samples, death."""

from __future__ import annotations

import os
import random
import signal

import pytest
from pytest_nel.solvers.protocol import Generation, SolveTask

from pytest_nel.engine import Engine, Request, SolverSetup
from pytest_nel.exceptions import EngineDied, ModelError
from pytest_nel.testing.fake_model import FakeModel


def setup_for(fake: FakeModel, limit: int, **params: object) -> SolverSetup:
    return SolverSetup(
        endpoint=fake.base_url + "/chat/completions",
        api_key="sk-x",
        model="fake",
        protocol="chat_completions",
        params=dict(params),
        system_prompt=None,
        max_retries=1,
        request_timeout=10,
        limit=limit,
    )


def requests(n: int, text: str = "SAY: The answer is {i}") -> list[Request]:
    return [
        Request(f"b::{i}-r0", "b", SolveTask("b", i, 0, text.format(i=i)))
        for i in range(n)
    ]


def test_results_in_any_order_and_limit_respected(fake: FakeModel) -> None:
    fake.control(latency_ms=50)
    engine = Engine(window=64)
    engine.start()
    engine.setup({"b": setup_for(fake, 5, seed=3)})
    plan = requests(40)
    engine.submit(plan)
    order = list(range(40))
    random.Random(0).shuffle(order)  # the consumer may ask out of order
    for i in order:
        result = engine.wait(f"b::{i}-r0")
        assert isinstance(result, Generation) and result.text == f"The answer is {i}"
    engine.stop()
    assert fake.stats()["max_in_flight"] <= 5
    assert engine.stats.values["completed"] == 40
    assert all(r["authorization"] for r in fake.requests())


def test_window_bounds_how_far_the_engine_runs_ahead(fake: FakeModel) -> None:
    engine = Engine(window=8)
    engine.start()
    engine.setup({"b": setup_for(fake, 4)})
    engine.submit(requests(200))
    engine.wait("b::0-r0")
    engine.stop()
    assert len(fake.requests()) <= 1 + 8  # the item being waited for plus the window


def test_unplanned_sample_is_generated_on_demand(fake: FakeModel) -> None:
    engine = Engine()
    engine.start()
    engine.setup({"b": setup_for(fake, 2)})
    engine.submit([])
    extra = Request("b::99-r0", "b", SolveTask("b", 99, 0, "SAY: late"))
    assert engine.wait("b::99-r0", extra).text == "late"
    engine.stop()


def test_errors_cross_the_process_boundary_with_their_category(fake: FakeModel) -> None:
    engine = Engine()
    engine.start()
    engine.setup({"b": setup_for(fake, 2)})
    engine.submit(requests(1, "FAULT: 404"))
    with pytest.raises(ModelError, match="HTTP 404") as info:
        engine.wait("b::0-r0")
    assert info.value.category == "model_error"
    engine.stop()


def test_a_dead_engine_is_reported_not_hung(fake: FakeModel) -> None:
    fake.control(latency_ms=2000)
    engine = Engine()
    engine.start()
    engine.setup({"b": setup_for(fake, 2)})
    engine.submit(requests(2))
    assert engine._proc is not None
    os.kill(engine._proc.pid, signal.SIGKILL)
    with pytest.raises(EngineDied, match="engine process exited"):
        engine.wait("b::0-r0")
    with pytest.raises(EngineDied):
        engine.wait("b::1-r0")
    engine.stop()
