"""Retry policy, Retry-After parsing and the circuit breaker."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import httpx
import pytest

from pytest_nel.client import CircuitBreaker, ModelClient, RetryPolicy, _retry_after
from pytest_nel.exceptions import CircuitOpen, ModelError
from pytest_nel.testing.fake_model import FakeModel


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0, request_timeout=60)
    rng = random.Random(1)
    delays = [policy.delay(a, None, rng) for a in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(4.0, 0.5 * 2**attempt)
        assert 0.5 * base <= delay <= 1.5 * base
    assert policy.delay(3, 2.5, rng) == 2.5  # Retry-After wins
    assert RetryPolicy(request_timeout=1).delay(0, 30.0, rng) == 1.0  # bounded


def test_retry_after_seconds_and_http_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": value})

    assert _retry_after(response("1.5")) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (_retry_after(response(future)) or 0) <= 31
    assert _retry_after(response("soon")) is None


def test_breaker_needs_both_count_and_duration() -> None:
    breaker = CircuitBreaker(threshold=3, min_down_s=0.0)
    breaker.failure("x")
    breaker.failure("x")
    breaker.success()
    breaker.failure("x")
    breaker.check("u")  # reset by the success
    breaker.failure("x")
    breaker.failure("x")
    with pytest.raises(CircuitOpen, match="3 consecutive failures"):
        breaker.check("u")
    slow = CircuitBreaker(threshold=1, min_down_s=3600)
    slow.failure("x")
    slow.check("u")  # not down long enough


def test_client_does_not_retry_other_4xx(fake: FakeModel) -> None:
    async def go() -> None:
        client = ModelClient(
            fake.base_url + "/chat/completions",
            api_key=None,
            policy=RetryPolicy(max_retries=3, backoff_base=0.01),
        )
        body = {"model": "m", "messages": [{"role": "user", "content": "FAULT: 401"}]}
        with pytest.raises(ModelError, match="HTTP 401.*after 1 attempt"):
            await client.post(body)
        body = {"model": "m", "messages": [{"role": "user", "content": "FAULT: 503x2"}]}
        data = await client.post(body)
        assert data["choices"]
        assert client.stats.retries == 2
        await client.aclose()

    asyncio.run(go())
