"""Test helpers: the proxy served from a thread, and a streaming upstream.

:class:`ThreadedProxy` runs :class:`~pytest_nel.interceptors.server.ProxyServer` on its
own event loop in a daemon thread (as httpx's tests serve a real app), which starts in
milliseconds; runs use the proxy process instead.

:class:`StreamingUpstream` is a tiny OpenAI-style upstream that streams chat chunks with
a pause between them (``SAY:`` text split on spaces), can die mid-stream (a prompt
containing ``DIE``) and serves embeddings.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from pytest_nel.interceptors.protocol import ProxySettings
from pytest_nel.interceptors.server import ProxyServer


class _LoopThread:
    """An aiohttp application on 127.0.0.1 served from a daemon thread."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._make_app = make_app
        self.port = 0
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self._make_app(), access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        """Stop the loop (cleanup runs first) and join the thread; idempotent."""
        if not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class ThreadedProxy(_LoopThread):
    """A proxy in front of ``upstream`` with the given chain, in a thread.

    Attributes:
        server: The :class:`ProxyServer` (its ``ctx.stats`` can be read).
        base_url: ``http://127.0.0.1:PORT/v1``.
    """

    def __init__(
        self,
        upstream: str,
        interceptors: list[dict[str, Any]] | None = None,
        *,
        output_dir: Path = Path("."),
        **settings: Any,
    ) -> None:
        specs = [(i["name"], i.get("config")) for i in interceptors or []]
        config = ProxySettings(
            service=settings.pop("service", "model"),
            upstream=upstream,
            output_dir=output_dir,
            **settings,
        )
        self.server = ProxyServer(config, specs)
        super().__init__(self.server.app)
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"


class StreamingUpstream(_LoopThread):
    """A small upstream that streams; counts its requests in ``calls``."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.pause_s = pause_s
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        super().__init__(self._app)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        return app

    async def _embeddings(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.json()
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        self.bodies.append(body)
        text = str(body["messages"][-1]["content"])
        words = text.removeprefix("SAY: ").split(" ")
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        for i, word in enumerate(words):
            if word == "DIE":
                assert request.transport is not None
                request.transport.abort()
                return out
            delta = {"content": word if i == 0 else " " + word}
            await out.write(_sse(_chunk(body, delta, None, time.time())))
            await asyncio.sleep(self.pause_s)
        final = _chunk(body, {}, "stop", time.time())
        if (body.get("stream_options") or {}).get("include_usage"):
            final["usage"] = {"prompt_tokens": 3, "completion_tokens": len(words),
                              "total_tokens": 3 + len(words)}  # fmt: skip
        await out.write(_sse(final) + b"data: [DONE]\n\n")
        await out.write_eof()
        return out


class WebhookSink(_LoopThread):
    """Collects the JSON bodies POSTed to ``url`` (for webhook tests)."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        super().__init__(self._app)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"ok": True})


def _chunk(
    body: dict[str, Any], delta: dict[str, Any], finish: str | None, sent: float
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0,
            "model": body["model"], "choices": [choice], "sent_at": sent}  # fmt: skip


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"
