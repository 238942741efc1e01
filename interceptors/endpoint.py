"""endpoint: forwards a request to the upstream, with pooling, retries and time limits.

It speaks httpx over the aiohttp transport (as ``pytest_nel.client`` does: httpx's
own pool costs ~10 ms of CPU per request at 64 in flight). With a proxy in front of a
service this is the only retry layer: 429, 5xx, timeouts and dropped connections are
retried with jittered exponential backoff, honouring ``Retry-After``. A streamed
answer is retried only before its first byte.

``requests_per_minute`` and ``tokens_per_minute`` hold requests back (never fail them)
for rate-limited APIs: token buckets (``interceptors/limits.py``) with ``burst_s``
seconds' worth of burst; every upstream attempt takes one request, and a request's
tokens are estimated before it goes and corrected with the usage its answer reports.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, Field
from pytest_nel.interceptors.limits import TokenBucket, estimate_tokens, used_tokens
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    error_response,
    register,
    sse_summary,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
COMPLETION_PATHS = ("/v1/chat/completions", "/v1/completions")


class EndpointConfig(BaseModel):
    """Options of the endpoint interceptor (unset ones come from the service)."""

    model_config = STRICT
    max_retries: int | None = Field(None, ge=0, le=100)
    request_timeout: float | None = Field(None, gt=0)
    backoff_base: float = Field(0.5, ge=0)
    backoff_cap: float = Field(30.0, ge=0)
    max_connections: int = Field(256, ge=1)
    extra_headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    burst_s: float = Field(1.0, gt=0)


class _Failed(Exception):
    """One attempt failed; ``response`` is what the client gets if it was the last."""

    def __init__(
        self, response: ProxyResponse, *, retry: bool, after: float | None = None
    ) -> None:
        super().__init__(str(response.body))
        self.response = response
        self.retry = retry
        self.after = after


@register("endpoint")
class Endpoint(Interceptor):
    """Forwards to ``settings.upstream`` and answers every request that reaches it."""

    Config = EndpointConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, EndpointConfig)
        self.cfg = config
        settings = ctx.settings
        self.retries = (
            settings.max_retries if config.max_retries is None else config.max_retries
        )
        self.timeout = config.request_timeout or settings.request_timeout
        self.base = settings.upstream.rstrip("/")
        if self.base.endswith("/v1"):
            self.base = self.base[: -len("/v1")]
        self.headers = {"Content-Type": "application/json", **config.extra_headers}
        if settings.api_key:
            self.headers["Authorization"] = f"Bearer {settings.api_key}"
        self.rng = random.Random()
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path: ~0.1 ms each
        self._http: httpx.AsyncClient | None = None
        self.request_bucket = _bucket(config.requests_per_minute, config.burst_s)
        self.token_bucket = _bucket(config.tokens_per_minute, config.burst_s)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            from httpx_aiohttp import AiohttpTransport

            limits = httpx.Limits(max_connections=self.cfg.max_connections)
            self._http = httpx.AsyncClient(
                transport=AiohttpTransport(limits=limits, trust_env=False),
                timeout=httpx.Timeout(self.timeout, connect=min(30.0, self.timeout)),
                trust_env=False,
            )
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()

    async def respond(self, request: ProxyRequest) -> ProxyResponse:
        """Forward with retries; the last failure becomes the client's error."""
        body = {**request.body, **self.cfg.extra_body} if request.body else None
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, **request.headers}
        stats = self.ctx.stats
        bucket, tokens = self.token_bucket, 0
        if bucket is not None and body:
            tokens = estimate_tokens(body)
            waited = await bucket.take(tokens)  # not `+= await`: it loses updates
            stats.rate_limit_wait_s += waited
        for attempt in range(self.retries + 1):
            if self.request_bucket is not None:
                waited = await self.request_bucket.take(1)
                stats.rate_limit_wait_s += waited
            stats.upstream_calls += 1
            try:
                return self._settle(
                    tokens, await self._attempt(request, payload, headers)
                )
            except _Failed as failed:
                if not failed.retry or attempt == self.retries:
                    return self._settle(tokens, failed.response)
                stats.retries += 1
                await asyncio.sleep(self._delay(attempt, failed.after))
        raise AssertionError("unreachable")

    def _settle(self, estimate: int, response: ProxyResponse) -> ProxyResponse:
        """Correct the token bucket with the usage the answer reports."""
        bucket = self.token_bucket
        if bucket is None or not estimate:
            return response
        if response.chunks is not None:
            response.chunks = _settle_stream(bucket, estimate, response.chunks)
            return response
        used = used_tokens(response.body)
        if used is not None:
            bucket.adjust(estimate - used)
        elif response.status != 200:
            bucket.adjust(estimate)  # a refused request used no tokens
        return response

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.timeout)
        exp = min(self.cfg.backoff_cap, self.cfg.backoff_base * 2.0**attempt)
        return exp * self.rng.uniform(0.5, 1.5)

    async def _attempt(
        self, request: ProxyRequest, payload: bytes | None, headers: dict[str, str]
    ) -> ProxyResponse:
        method = "POST" if payload is not None else "GET"
        http = self._client()
        url = self._urls.get(request.path)
        if url is None:
            url = self._urls[request.path] = httpx.URL(self.base + request.path)
        built = http.build_request(method, url, content=payload, headers=headers)
        try:
            async with asyncio.timeout(self.timeout):
                response = await http.send(built, stream=True)
                if response.status_code != 200 or not request.stream:
                    await response.aread()
                    await response.aclose()
        except TimeoutError as exc:
            msg = f"upstream timed out after {self.timeout:g}s"
            raise _Failed(
                error_response(504, msg, "timeout_error", "upstream_timeout"),
                retry=True,
            ) from exc
        except httpx.TransportError as exc:
            msg = f"upstream connection failed: {type(exc).__name__}: {exc}"
            raise _Failed(
                error_response(502, msg, "api_error", "upstream_unreachable"),
                retry=True,
            ) from exc
        if response.status_code != 200:
            raise _status_failure(response)
        if request.stream:
            return ProxyResponse(200, chunks=_relay(response), headers=_sse_headers())
        return _decoded(request, response)


def _bucket(per_minute: float | None, burst_s: float) -> TokenBucket | None:
    return TokenBucket(per_minute, burst_s) if per_minute else None


async def _settle_stream(
    bucket: TokenBucket, estimate: int, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """Relay a stream, then correct the bucket with the usage in its last chunk."""
    tail = b""
    async for chunk in chunks:
        tail = (tail + chunk)[-4096:]
        yield chunk
    used = used_tokens(sse_summary(tail))
    if used is not None:
        bucket.adjust(estimate - used)


def _sse_headers() -> dict[str, str]:
    return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


async def _relay(response: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream's bytes as they arrive; closes the upstream response at the end."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()


def _status_failure(response: httpx.Response) -> _Failed:
    status = response.status_code
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "error" not in body:
        text = response.content[:200].decode(errors="replace")
        body = error_response(status, f"upstream answered {status}: {text}").body
    return _Failed(
        ProxyResponse(status, body, source="upstream"),
        retry=status in RETRY_STATUSES,
        after=_retry_after(response),
    )


def _decoded(request: ProxyRequest, response: httpx.Response) -> ProxyResponse:
    try:
        data = json.loads(response.content)
    except ValueError:
        preview = response.content[:120].decode(errors="replace")
        msg = f"upstream answered 200 with invalid JSON: {preview!r}"
        raise _Failed(
            error_response(502, msg, "api_error", "upstream_bad_response"), retry=True
        ) from None
    if request.path in COMPLETION_PATHS and not (
        isinstance(data, dict)
        and isinstance(data.get("choices"), list)
        and data["choices"]
    ):
        msg = f"upstream answered 200 with no choices: {str(data)[:120]!r}"
        raise _Failed(
            error_response(502, msg, "api_error", "upstream_bad_response"), retry=True
        )
    return ProxyResponse(200, data)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None
