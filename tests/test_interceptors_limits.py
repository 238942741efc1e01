"""raise_client_errors and the endpoint's RPM/TPM limits, through a real proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from pytest_nel.interceptors.endpoint import Endpoint
from pytest_nel.interceptors.launcher import ManagedProxy, ProxyStartError
from pytest_nel.interceptors.limits import TokenBucket, estimate_tokens, used_tokens
from pytest_nel.interceptors.protocol import validate_config

from pytest_nel.client import ModelClient, RetryPolicy
from pytest_nel.exceptions import ConfigError, FatalClientError, ModelError
from pytest_nel.testing.fake_model import FakeModel
from pytest_nel.testing.proxy import ThreadedProxy

MakeProxy = Callable[..., ThreadedProxy]


@pytest.fixture
def make_proxy(fake: FakeModel, tmp_path: Path) -> Iterator[MakeProxy]:
    """Start proxies (no retries) in front of the fake model; closed after the test."""
    started: list[ThreadedProxy] = []

    def make(*chain: dict[str, Any]) -> ThreadedProxy:
        proxy = ThreadedProxy(
            fake.base_url, list(chain), output_dir=tmp_path, max_retries=0
        )
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.close()


def chat(url: str, text: str, **params: Any) -> Any:
    """One chat completion through the official SDK, which does not retry."""
    with openai.OpenAI(
        base_url=url, api_key="sk-test", max_retries=0, timeout=30
    ) as sdk:
        return sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], **params
        )


def test_raise_client_errors_marks_upstream_4xx_fatal(make_proxy: MakeProxy) -> None:
    proxy = make_proxy({"name": "raise_client_errors"})
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(proxy.base_url, "FAULT: 401")
    assert caught.value.status_code == 401
    assert caught.value.response.headers["x-nel-fatal"] == "1"
    error = caught.value.response.json()["error"]
    assert error["type"] == "nel_fatal_client_error"
    assert error["message"].startswith("upstream answered 401")
    assert "fake fault 401" in error["message"]
    with pytest.raises(openai.RateLimitError) as limited:  # 429 is not fatal
        chat(proxy.base_url, "FAULT: 429")
    assert "x-nel-fatal" not in limited.value.response.headers
    assert chat(proxy.base_url, "SAY: fine").choices[0].message.content == "fine"


def test_raise_client_errors_statuses_and_config(make_proxy: MakeProxy) -> None:
    proxy = make_proxy({"name": "raise_client_errors", "config": {"statuses": [404]}})
    with pytest.raises(openai.BadRequestError) as caught:  # 400 not listed
        chat(proxy.base_url, "FAULT: 400")
    assert caught.value.response.json()["error"]["type"] != "nel_fatal_client_error"
    with pytest.raises(openai.NotFoundError) as missing:
        chat(proxy.base_url, "FAULT: 404")
    assert missing.value.response.headers["x-nel-fatal"] == "1"
    with pytest.raises(ConfigError, match="statuses.*only 4xx.*500"):
        validate_config("raise_client_errors", {"statuses": [500]})


def test_engine_client_raises_fatal_error(make_proxy: MakeProxy) -> None:
    proxy = make_proxy({"name": "raise_client_errors"})
    body = {"model": "m", "messages": [{"role": "user", "content": "FAULT: 401"}]}

    async def post(text: str) -> None:
        client = ModelClient(
            proxy.base_url + "/chat/completions",
            api_key=None,
            policy=RetryPolicy(max_retries=3, backoff_base=0.01),
        )
        body["messages"][0]["content"] = text
        try:
            await client.post(body)
        finally:
            await client.aclose()

    with pytest.raises(FatalClientError, match="HTTP 401: upstream answered 401"):
        asyncio.run(post("FAULT: 401"))
    with pytest.raises(ModelError) as plain:  # not fatal: an ordinary sample error
        asyncio.run(post("FAULT: 408"))
    assert not isinstance(plain.value, FatalClientError)


class FakeTime:
    """A clock that only moves when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        """The fake time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance the fake time instead of waiting."""
        self.now += seconds


def test_token_bucket_waits_and_corrects() -> None:
    fake = FakeTime()
    bucket = TokenBucket(60, burst_s=2, clock=fake.clock, sleep=fake.sleep)

    async def takes() -> list[float]:
        waits = [await bucket.take(1) for _ in range(3)]  # capacity 2, 1 a second
        waits.append(await bucket.take(5))  # over capacity: waits until full
        bucket.adjust(4)  # it used 1 of the 5 it was charged
        waits.append(await bucket.take(1))
        return waits

    assert asyncio.run(takes()) == pytest.approx([0, 0, 1.0, 2.0, 0])
    assert fake.now == pytest.approx(3.0)


def test_token_estimate_and_usage() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 30}], "max_tokens": 100}
    assert estimate_tokens(body) == 100 + 16  # 64 characters of JSON / 4
    assert estimate_tokens({"prompt": "abcd", "max_completion_tokens": 5}) == 6
    assert used_tokens({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == 7
    assert used_tokens({"choices": []}) is None


def test_requests_per_minute_spaces_requests(make_proxy: MakeProxy) -> None:
    limits = {"requests_per_minute": 120, "burst_s": 1}  # 2 at once, then 1 per 0.5 s
    proxy = make_proxy({"name": "endpoint", "config": limits})
    start = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda i: chat(proxy.base_url, f"SAY: {i}"), range(6)))
    elapsed = time.monotonic() - start
    assert [r.choices[0].message.content for r in replies] == [str(i) for i in range(6)]
    assert elapsed >= 1.9  # 4 requests past the burst, 0.5 s apart: never faster
    # Each waited in line: 0.5 + 1.0 + 1.5 + 2.0 s in all.
    assert proxy.server.ctx.stats.rate_limit_wait_s >= 4.5


def test_tokens_per_minute_is_corrected_by_usage(make_proxy: MakeProxy) -> None:
    limits = {"tokens_per_minute": 600, "burst_s": 10}  # 100 tokens, 10 a second
    proxy = make_proxy({"name": "endpoint", "config": limits})
    endpoint = proxy.server.chain[-1]
    assert isinstance(endpoint, Endpoint) and endpoint.token_bucket is not None
    reply = chat(proxy.base_url, "SAY: hi", max_tokens=80)  # estimated 80 + 11
    assert reply.usage is not None and reply.usage.total_tokens < 10
    # Charged 91 up front, given back all but the few tokens the answer used.
    assert endpoint.token_bucket.level > 80


def test_launched_proxy_serves_requests_sent_before_it_is_ready(
    fake: FakeModel, tmp_path: Path
) -> None:
    spec = {"service": "svc", "upstream": fake.base_url, "output_dir": str(tmp_path),
            "interceptors": []}  # fmt: skip
    managed = ManagedProxy(spec, None, tmp_path)
    try:
        url = managed.launch()  # returns at once: the socket is bound already
        assert chat(url, "SAY: early").choices[0].message.content == "early"
        assert managed.wait_ready() == url
    finally:
        managed.stop()


def test_launched_proxy_that_fails_is_reported(fake: FakeModel, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    caching = {"name": "caching", "config": {"path": str(tmp_path / "file" / "c.db")}}
    spec = {"service": "svc", "upstream": fake.base_url, "output_dir": str(tmp_path),
            "interceptors": [caching]}  # fmt: skip
    managed = ManagedProxy(spec, None, tmp_path)
    managed.launch()
    with pytest.raises(ProxyStartError, match="proxy for service 'svc' did not start"):
        managed.wait_ready(timeout=20)
    assert managed.proc is None  # stopped
