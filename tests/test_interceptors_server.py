"""The proxy server through the official openai SDK: routes, streaming, bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from pytest_nel.interceptors.launcher import ManagedProxy
from pytest_nel.interceptors.protocol import known_names, lookup, validate_config

from pytest_nel.exceptions import ConfigError
from pytest_nel.testing.fake_model import FakeModel
from pytest_nel.testing.proxy import StreamingUpstream, ThreadedProxy


@pytest.fixture
def proxy(fake: FakeModel, tmp_path: Path) -> Iterator[ThreadedProxy]:
    """A proxy with the default chain (endpoint only) in front of the fake model."""
    server = ThreadedProxy(
        fake.base_url, [{"name": "endpoint", "config": {"backoff_base": 0.01}}],
        output_dir=tmp_path, max_retries=2,
    )  # fmt: skip
    yield server
    server.close()


@pytest.fixture(scope="module")
def streaming() -> Iterator[StreamingUpstream]:
    """An upstream that streams a chunk every 0.2 s."""
    upstream = StreamingUpstream(pause_s=0.2)
    yield upstream
    upstream.close()


def client(url: str) -> openai.OpenAI:
    """The official SDK pointed at ``url``, with no retries of its own."""
    return openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=30)


def test_chat_completions_and_completions(proxy: ThreadedProxy) -> None:
    sdk = client(proxy.base_url)
    chat = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "SAY: hello"}]
    )
    assert chat.choices[0].message.content == "hello"
    text = sdk.completions.create(model="m", prompt="SAY: there")
    assert text.choices[0].text == "there"
    assert [m.id for m in sdk.models.list()] == ["fake"]
    assert httpx.get(proxy.url + "/health").json() == {"status": "ok"}


def test_session_prefix_routes(proxy: ThreadedProxy) -> None:
    sdk = client(proxy.url + "/s/toy::3-r1/v1")
    chat = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "SAY: ok"}]
    )
    assert chat.choices[0].message.content == "ok"


def test_retries_honour_status_and_keep_serving(
    proxy: ThreadedProxy, fake: FakeModel
) -> None:
    sdk = client(proxy.base_url)
    ok = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "FAULT: 503x2\nSAY: up"}]
    )
    assert ok.choices[0].message.content == "up"
    assert proxy.server.ctx.stats.retries == 2
    with pytest.raises(openai.BadRequestError, match="fake fault 400"):
        sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "FAULT: 400"}]
        )
    assert proxy.server.ctx.stats.retries == 2  # a 400 is not retried


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        ("malformed", 502, "invalid JSON"),
        ("nochoices", 502, "no choices"),
        ("reset", 502, "connection failed"),
    ],
)
def test_bad_upstream_answers_are_clear_errors(
    proxy: ThreadedProxy, fault: str, status: int, words: str
) -> None:
    sdk = client(proxy.base_url)
    with pytest.raises(openai.APIStatusError, match=words) as info:
        sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"FAULT: {fault}"}]
        )
    assert info.value.status_code == status
    after = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "SAY: still here"}]
    )
    assert after.choices[0].message.content == "still here"


def test_bad_client_input(proxy: ThreadedProxy) -> None:
    url = proxy.base_url + "/chat/completions"
    bad_json = httpx.post(
        url, content=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert "not valid JSON" in bad_json.json()["error"]["message"]
    wrong_type = httpx.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    big = b'{"x": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    too_big = httpx.post(url, content=big, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert httpx.get(proxy.url + "/health").status_code == 200


def test_streaming_is_relayed_chunk_by_chunk(
    streaming: StreamingUpstream, tmp_path: Path
) -> None:
    proxy = ThreadedProxy(streaming.base_url, output_dir=tmp_path)
    try:
        sdk = client(proxy.base_url)
        stream = sdk.chat.completions.create(
            model="m", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "SAY: one two three four"}],
        )  # fmt: skip
        gaps, words, usage = [], [], None
        for chunk in stream:
            gaps.append(time.time() - chunk.model_extra["sent_at"])
            if chunk.choices and chunk.choices[0].delta.content:
                words.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
        assert "".join(words) == "one two three four"
        assert usage is not None and usage.completion_tokens == 4
        # Each chunk reached the client long before the upstream's next one (0.2 s).
        assert sorted(gaps)[len(gaps) // 2] < 0.15
    finally:
        proxy.close()


def test_stream_that_dies_ends_with_an_error_event(
    streaming: StreamingUpstream, tmp_path: Path
) -> None:
    proxy = ThreadedProxy(streaming.base_url, output_dir=tmp_path)
    try:
        body = {"model": "m", "stream": True,
                "messages": [{"role": "user", "content": "SAY: a DIE"}]}  # fmt: skip
        with httpx.stream(
            "POST", proxy.base_url + "/chat/completions", json=body
        ) as response:
            text = response.read().decode()
        assert '"a"' in text
        assert "upstream stream failed" in text
        sdk = client(proxy.base_url)
        emb = sdk.embeddings.create(model="m", input="x")
        assert emb.data[0].embedding == [0.1, 0.2]
    finally:
        proxy.close()


def test_registry_and_config_errors() -> None:
    assert "endpoint" in known_names()
    assert lookup("endpoint").name == "endpoint"
    with pytest.raises(
        ConfigError, match="unknown interceptor 'nope'; known: .*endpoint"
    ):
        lookup("nope")
    with pytest.raises(
        ConfigError, match="interceptor 'endpoint'.*max_retriez: unknown"
    ):
        validate_config("endpoint", {"max_retriez": 3})


def test_proxy_process_serves_and_writes_stats(fake: FakeModel, tmp_path: Path) -> None:
    spec = {"service": "svc", "upstream": fake.base_url, "output_dir": str(tmp_path),
            "interceptors": []}  # fmt: skip
    with ManagedProxy(spec, "sk-secret", tmp_path) as managed:
        sdk = client(managed.base_url)
        chat = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "SAY: proc"}]
        )
        assert chat.choices[0].message.content == "proc"
    stats = json.loads((tmp_path / "proxy-svc.json").read_text())
    assert stats["requests"] == 1 and stats["upstream_calls"] == 1
    assert stats["completion_tokens"] == 1 and stats["latency_p50_ms"] > 0
    assert "sk-secret" not in (tmp_path / "proxy-svc.spec.json").read_text()
