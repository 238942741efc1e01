"""Each interceptor through a real proxy, with the openai SDK as the client."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pytest_nel.interceptors.caching import cache_key
from pytest_nel.interceptors.logging import redact
from pytest_nel.interceptors.protocol import ProxyRequest

from pytest_nel.testing.fake_model import FakeModel
from pytest_nel.testing.proxy import StreamingUpstream, ThreadedProxy

MakeProxy = Callable[..., ThreadedProxy]


@pytest.fixture
def make_proxy(fake: FakeModel, tmp_path: Path) -> Iterator[MakeProxy]:
    """Start proxies in front of the fake model; all are closed after the test."""
    started: list[ThreadedProxy] = []

    def make(*chain: dict[str, Any], **settings: Any) -> ThreadedProxy:
        settings.setdefault("output_dir", tmp_path)
        settings.setdefault("upstream", fake.base_url)
        proxy = ThreadedProxy(settings.pop("upstream"), list(chain), **settings)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.close()


def sdk(url: str, key: str = "sk-test") -> openai.OpenAI:
    """The official SDK, no retries of its own."""
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def chat(url: str, text: str, **params: Any) -> Any:
    """One chat completion through the SDK."""
    return sdk(url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": text}], **params
    )


def test_caching_hits_make_no_upstream_call(
    make_proxy: MakeProxy, fake: FakeModel, tmp_path: Path
) -> None:
    db = str(tmp_path / "cache.sqlite")
    proxy = make_proxy({"name": "caching", "config": {"path": db}})
    first = chat(proxy.base_url, "SAY: cached", temperature=0.5)
    again = chat(proxy.base_url, "SAY: cached", temperature=0.5)
    assert again.id == first.id and len(fake.requests()) == 1
    chat(proxy.base_url, "SAY: cached", temperature=0.6)  # another parameter: a miss
    chat(proxy.url + "/s/toy::1-r1/v1", "SAY: cached", temperature=0.5)  # repeat 1
    assert len(fake.requests()) == 3
    with pytest.raises(openai.BadRequestError):
        chat(proxy.base_url, "FAULT: 400")
    with pytest.raises(openai.BadRequestError):
        chat(proxy.base_url, "FAULT: 400")  # errors are never cached
    assert len(fake.requests()) == 5
    proxy.close()
    other = make_proxy({"name": "caching", "config": {"path": db}})  # a later run
    assert chat(other.base_url, "SAY: cached", temperature=0.5).id == first.id
    assert len(fake.requests()) == 5 and other.server.ctx.stats.cache_hits == 1


def test_cache_key_is_canonical() -> None:
    a = ProxyRequest("/v1/chat/completions", {"model": "m", "seed": 1, "top_p": 1})
    b = ProxyRequest("/v1/chat/completions", {"top_p": 1, "seed": 1, "model": "m"})
    assert cache_key(a) == cache_key(b)
    b.meta["repeat"] = 2
    assert cache_key(a) != cache_key(b)


def test_drop_params_and_payload_modifier(
    make_proxy: MakeProxy, fake: FakeModel
) -> None:
    proxy = make_proxy(
        {"name": "drop_params", "config": {"params": ["max_tokens"]}},
        {"name": "payload_modifier", "config": {
            "params_to_remove": ["seed", "extra.drop"],
            "params_to_rename": {"top_p": "sampling.top_p"},
            "params_to_add": {"extra": {"add": 1}, "top_k": 5}}},
    )  # fmt: skip
    chat(
        proxy.base_url, "SAY: x", max_tokens=5, seed=3, top_p=0.5,
        extra_body={"extra": {"drop": 1, "keep": 2}},
    )  # fmt: skip
    body = fake.requests()[-1]["body"]
    assert "max_tokens" not in body and "seed" not in body and "top_p" not in body
    assert body["sampling"] == {"top_p": 0.5}
    assert body["extra"] == {"keep": 2, "add": 1} and body["top_k"] == 5


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("replace", "NEW"), ("prepend", "NEW\nold"), ("append", "old\nNEW")],
)
def test_system_message(
    make_proxy: MakeProxy, fake: FakeModel, strategy: str, expected: str
) -> None:
    config = {"system_message": "NEW", "strategy": strategy}
    proxy = make_proxy({"name": "system_message", "config": config})
    sdk(proxy.base_url).chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "old"},
            {"role": "user", "content": "SAY: x"},
        ],
    )
    chat(proxy.base_url, "SAY: y")  # no system message: one is inserted
    first, second = (r["body"]["messages"] for r in fake.requests())
    assert first[0] == {"role": "system", "content": expected}
    assert second[0] == {"role": "system", "content": "NEW"}


def test_turn_counter_budget_and_reminders(
    make_proxy: MakeProxy, fake: FakeModel
) -> None:
    config = {"max_turns": 2, "remind_at": [0], "reminder": "last turn ({used}/{max})"}
    proxy = make_proxy({"name": "turn_counter", "config": config})
    a = proxy.url + "/s/a/v1"
    chat(a, "SAY: 1")
    chat(a, "SAY: 2")
    with pytest.raises(openai.RateLimitError, match="turn budget exhausted") as info:
        chat(a, "SAY: 3")
    assert info.value.code == "turn_budget_exhausted"
    chat(proxy.url + "/s/b/v1", "SAY: other session")
    bodies = [r["body"]["messages"] for r in fake.requests()]
    assert len(bodies) == 3  # the refused turn never reached the upstream
    assert bodies[1][-1] == {"role": "user", "content": "last turn (2/2)"}
    assert len(bodies[0]) == 1 and len(bodies[2]) == 1


def test_logging_redacts_keys(
    make_proxy: MakeProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = make_proxy(
        {"name": "logging", "config": {"path": "proxy-log.jsonl"}},
        api_key="sk-upstream-secret-123",
    )
    caplog.set_level(logging.INFO, logger="pytest_nel.proxy")
    chat(
        proxy.base_url, "SAY: hi, my key is sk-upstream-secret-123",
        extra_body={"api_key": "nvapi-abcdefgh"},
    )  # fmt: skip
    text = (tmp_path / "proxy-log.jsonl").read_text()
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in events] == ["request", "response"]
    assert events[1]["status"] == 200 and "hi, my key is" in events[1]["body"]
    assert "sk-upstream" not in text and "nvapi-abc" not in text
    assert "sk-upstream" not in caplog.text and "<redacted>" in caplog.text
    assert redact({"Authorization": "Bearer x", "n": ["Bearer abcdefgh"]}) == {
        "Authorization": "<redacted>",
        "n": ["<redacted>"],
    }


def test_response_stats_written_at_shutdown(
    make_proxy: MakeProxy, tmp_path: Path
) -> None:
    proxy = make_proxy({"name": "response_stats"}, service="svc")
    for i in range(3):
        chat(proxy.base_url, f"SAY: {i}\nFINISH: length")
    with pytest.raises(openai.NotFoundError):
        chat(proxy.base_url, "FAULT: 404")
    proxy.close()
    stats = json.loads((tmp_path / "response_stats-svc.json").read_text())
    assert stats["requests"] == 4
    assert stats["counts"]["status_200"] == 3 and stats["counts"]["status_404"] == 1
    assert stats["counts"]["finish_length"] == 3
    assert stats["tokens"]["completion_tokens"] == 3
    assert stats["latency_ms"]["p50"] is not None


def test_response_stats_reads_streamed_usage(tmp_path: Path) -> None:
    upstream = StreamingUpstream()
    proxy = ThreadedProxy(
        upstream.base_url, [{"name": "response_stats"}], output_dir=tmp_path
    )
    try:
        stream = chat(
            proxy.base_url, "SAY: a b c", stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        assert sum(1 for _ in stream) == 4  # three words, then the final chunk
    finally:
        proxy.close()
        upstream.close()
    stats = json.loads((tmp_path / "response_stats-model.json").read_text())
    assert stats["tokens"]["completion_tokens"] == 3
    assert stats["counts"]["finish_stop"] == 1


def test_modify_tools(make_proxy: MakeProxy, fake: FakeModel) -> None:
    config = {
        "remove_properties": {"*": ["debug"], "search": ["limit"]},
        "add_properties": {"search": {"lang": {"type": "string"}}},
    }
    proxy = make_proxy({"name": "modify_tools", "config": config})
    params = {
        "type": "object",
        "properties": {"q": {"type": "string"}, "limit": {"type": "integer"},
                       "debug": {"type": "boolean"}},
        "required": ["q", "limit"],
    }  # fmt: skip
    tools = [
        {"type": "function", "function": {"name": "search", "parameters": params}},
        {"type": "function", "function": {"name": "calc", "parameters": params}},
    ]
    chat(proxy.base_url, "SAY: x", tools=tools)
    sent = fake.requests()[-1]["body"]["tools"]
    search, calc = (t["function"]["parameters"] for t in sent)
    assert set(search["properties"]) == {"q", "lang"} and search["required"] == ["q"]
    assert set(calc["properties"]) == {"q", "limit"}
    assert calc["required"] == ["q", "limit"]


def test_log_tokens(make_proxy: MakeProxy, tmp_path: Path) -> None:
    proxy = make_proxy(
        {"name": "caching"}, {"name": "log_tokens", "config": {"path": "tokens.jsonl"}}
    )
    chat(proxy.url + "/s/s1/v1", "SAY: four char words")
    chat(proxy.url + "/s/s1/v1", "SAY: four char words")  # a cache hit
    with pytest.raises(openai.BadRequestError):
        chat(proxy.base_url, "FAULT: 400")
    lines = (tmp_path / "tokens.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["session"] == "s1" and first["completion_tokens"] == 4
    assert (first["source"], second["source"]) == ("upstream", "cache")


def test_reasoning_moves_think_blocks(make_proxy: MakeProxy) -> None:
    proxy = make_proxy({"name": "reasoning"})
    reply = chat(proxy.base_url, "SAY: <think>2+2 is 4</think> The answer is 4.")
    message = reply.choices[0].message
    assert message.content == "The answer is 4."
    assert message.model_extra["reasoning_content"] == "2+2 is 4"
    cut = chat(proxy.base_url, "SAY: <think>still thinking")
    assert cut.choices[0].message.content == ""
    plain = chat(proxy.base_url, "SAY: no reasoning here")
    assert plain.choices[0].message.content == "no reasoning here"
    assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})


def test_reasoning_in_streamed_chunks(tmp_path: Path) -> None:
    upstream = StreamingUpstream()
    proxy = ThreadedProxy(
        upstream.base_url, [{"name": "reasoning"}], output_dir=tmp_path
    )
    try:
        stream = chat(
            proxy.base_url, "SAY: <think>plan more</think> The answer", stream=True
        )
        thought, content = "", ""
        for chunk in stream:
            delta = chunk.choices[0].delta
            thought += (delta.model_extra or {}).get("reasoning_content") or ""
            content += delta.content or ""
        assert (thought, content) == ("plan more", " The answer")
    finally:
        proxy.close()
        upstream.close()


def test_reasoning_splitter_holds_back_split_tags() -> None:
    from pytest_nel.interceptors.reasoning import _DeltaSplitter

    splitter = _DeltaSplitter("<think>", "</think>")
    pieces = ["<thi", "nk>a", "b</th", "ink>", "ans", "wer <"]
    out = [splitter.feed(p) for p in pieces] + [splitter.flush()]
    assert "".join(t for t, _ in out) == "ab"
    assert "".join(c for _, c in out) == "answer <"
    stray = _DeltaSplitter("<think>", "</think>")
    assert stray.feed("idea</think>done") == ("idea", "done")


def test_progress_tracking_posts_to_the_webhook(
    make_proxy: MakeProxy, tmp_path: Path
) -> None:
    from pytest_nel.testing.proxy import WebhookSink

    sink = WebhookSink()
    try:
        config = {"webhook_url": sink.url, "every": 2}
        proxy = make_proxy({"name": "progress_tracking", "config": config})
        for i in range(3):
            chat(proxy.base_url, f"SAY: {i}")
        with pytest.raises(openai.NotFoundError):
            chat(proxy.base_url, "FAULT: 404")
        proxy.close()
    finally:
        sink.close()
    final = {"service": "model", "completed": 3, "errors": 1}
    assert sorted(sink.received, key=lambda p: p["completed"] + p["errors"]) == [
        {"service": "model", "completed": 2, "errors": 0},
        final,
        final,
    ]
    assert json.loads((tmp_path / "progress-model.json").read_text()) == final
