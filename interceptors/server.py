"""The OpenAI-compatible proxy server: aiohttp on 127.0.0.1, running the chain.

``python -m pytest_nel.interceptors.server SPEC.json`` serves one service (see
:func:`main`); it prints ``READY http://127.0.0.1:<port>/v1`` and serves until SIGTERM.
The spec holds the :class:`ProxySettings` fields and ``interceptors``; the API key comes
from the environment variable ``NEL_PROXY_API_KEY`` so it is never written to disk.

Routes: POST ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``; GET
``/v1/models``, ``/health``, ``/_stats``. Each ``/v1`` route also answers under a
session prefix ``/s/<session>/v1/...`` so interceptors can count per sample.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web
from pytest_nel.interceptors.protocol import (
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    ProxySettings,
    ProxyStats,
    build_chain,
    error_response,
)

MAX_BODY = 10 * 1024 * 1024
POST_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
log = logging.getLogger("pytest_nel.proxy")


class ProxyServer:
    """One service's proxy: the chain, its statistics and the aiohttp application."""

    def __init__(
        self, settings: ProxySettings, specs: list[tuple[str, dict[str, Any] | None]]
    ) -> None:
        self.ctx = Context(settings, ProxyStats())
        self.chain: list[Interceptor] = build_chain(specs, self.ctx)

    def app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(client_max_size=MAX_BODY)
        for prefix in ("", "/s/{session}"):
            for path in POST_PATHS:
                app.router.add_post(prefix + path, self._post)
            app.router.add_get(prefix + "/v1/models", self._get)
        app.router.add_get("/health", self._health)
        app.router.add_get("/_stats", self._stats)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        for interceptor in self.chain:
            await interceptor.aclose()
        self.write_stats()

    def stats(self) -> dict[str, Any]:
        """The proxy's counters plus latency percentiles (ms)."""
        data = asdict(self.ctx.stats)
        lat = sorted(data.pop("latencies_ms"))
        for q in (50, 90, 99):
            data[f"latency_p{q}_ms"] = (
                round(lat[min(len(lat) - 1, int(len(lat) * q / 100))], 3)
                if lat
                else None
            )
        return data

    def write_stats(self) -> None:
        """Write ``proxy-<service>.json`` into the output folder."""
        settings = self.ctx.settings
        path = settings.output_dir / f"proxy-{settings.service}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.stats(), indent=2) + "\n")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _get(self, request: web.Request) -> web.StreamResponse:
        proxied = ProxyRequest(
            "/v1/models", {}, session=request.match_info.get("session")
        )
        return await self._serve(request, proxied)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        if isinstance(body, ProxyResponse):
            self.ctx.stats.requests += 1
            self.ctx.stats.errors += 1
            return _json(body)
        session = request.match_info.get("session")
        path = request.path if session is None else request.path.split(session, 1)[1]
        proxied = ProxyRequest(path, body, session=session)
        repeat = request.headers.get("X-Nel-Repeat")
        if repeat is not None and repeat.isdigit():
            proxied.meta["repeat"] = int(repeat)
        return await self._serve(request, proxied)

    async def _serve(
        self, request: web.Request, proxied: ProxyRequest
    ) -> web.StreamResponse:
        stats = self.ctx.stats
        stats.requests += 1
        start = time.perf_counter()
        try:
            response = await self.run_chain(proxied)
        except Exception as exc:  # noqa: BLE001 - a request boundary: answer, keep serving
            log.exception("interceptor chain failed")
            response = error_response(
                500, f"proxy error: {type(exc).__name__}: {exc}", "api_error"
            )
        if response.status >= 400:
            stats.errors += 1
        elif response.body and isinstance(response.body.get("usage"), dict):
            usage = response.body["usage"]
            stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            stats.completion_tokens += int(usage.get("completion_tokens") or 0)
        if response.chunks is not None:
            out = await _stream(request, response)
        else:
            out = _json(response)
        stats.latencies_ms.append((time.perf_counter() - start) * 1000)
        return out

    async def run_chain(self, request: ProxyRequest) -> ProxyResponse:
        """Run the three stages over the chain."""
        for interceptor in self.chain:
            request = await interceptor.on_request(request)
        response: ProxyResponse | None = None
        for interceptor in self.chain:
            response = await interceptor.respond(request)
            if response is not None:
                break
        assert response is not None  # endpoint always answers
        for interceptor in reversed(self.chain):
            response = await interceptor.on_response(request, response)
        return response


async def _read_json(request: web.Request) -> dict[str, Any] | ProxyResponse:
    if request.content_type != "application/json":
        return error_response(
            415, f"content type must be application/json, not {request.content_type!r}"
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body over {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return error_response(400, f"the request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error_response(400, "the request body must be a JSON object")
    return body


def _json(response: ProxyResponse) -> web.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return web.Response(
        status=response.status,
        body=json.dumps(response.body).encode(),
        content_type="application/json",
        headers=headers,
    )


async def _stream(request: web.Request, response: ProxyResponse) -> web.StreamResponse:
    """Write each chunk as it comes; a stream that dies ends with an SSE error event."""
    out = web.StreamResponse(status=response.status, headers=response.headers)
    await out.prepare(request)
    assert response.chunks is not None
    try:
        async for chunk in response.chunks:
            await out.write(chunk)
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band
        error = {"message": f"upstream stream failed: {exc}", "type": "api_error"}
        await out.write(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
    await out.write_eof()
    return out


def settings_from_spec(spec: dict[str, Any]) -> ProxySettings:
    """Settings from a spec file's fields (the key comes from the environment)."""
    return ProxySettings(
        service=spec["service"],
        upstream=spec["upstream"],
        api_key=os.environ.get("NEL_PROXY_API_KEY") or None,
        request_timeout=float(spec.get("request_timeout", 600.0)),
        max_retries=int(spec.get("max_retries", 5)),
        output_dir=Path(spec.get("output_dir", ".")),
        verbose=bool(spec.get("verbose", False)),
    )


async def serve(spec: dict[str, Any], port: int = 0) -> None:
    """Serve one proxy until SIGTERM/SIGINT."""
    specs = [(i["name"], i.get("config")) for i in spec.get("interceptors", [])]
    server = ProxyServer(settings_from_spec(spec), specs)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if spec.get("listen_fd") is not None:  # a socket the launcher bound for us
        listener = socket.socket(fileno=int(spec["listen_fd"]))
        site = web.SockSite(runner, listener, backlog=1024)
    else:
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{bound}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the proxy process: ``server SPEC.json``."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    logging.basicConfig(
        level=logging.INFO if spec.get("verbose") else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(spec))


if __name__ == "__main__":
    main()
