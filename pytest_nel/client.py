"""The HTTP client for model endpoints: retries with backoff, time limits, a circuit
breaker.

One :class:`ModelClient` per service and process. It speaks httpx's API over the aiohttp
transport (httpx's own pool costs ~10 ms of CPU per request at 64 in flight; the aiohttp
transport ~0.4 ms). It is the only retry layer when no proxy sits in front of the
service.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

from pytest_nel.exceptions import (
    CircuitOpen,
    FatalClientError,
    ModelError,
    ModelTimeout,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
# Set by the proxy's raise_client_errors interceptor on answers that stop the run.
FATAL_HEADER = "X-Nel-Fatal"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one request.

    Attributes:
        max_retries: Attempts after the first one.
        request_timeout: Seconds one attempt may take, end to end.
        backoff_base: First backoff delay in seconds (doubled per attempt, jittered).
        backoff_cap: Longest backoff delay in seconds.
    """

    max_retries: int = 5
    request_timeout: float = 600.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def delay(
        self, attempt: int, retry_after: float | None, rng: random.Random
    ) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.request_timeout))
        exp = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return float(exp * rng.uniform(0.5, 1.5))


@dataclass(slots=True)
class CircuitBreaker:
    """Stops an endpoint that keeps failing from being retried sample by sample.

    It opens after ``threshold`` consecutive failed attempts (429s do not count: a rate
    limit is not an outage) spanning at least ``min_down_s`` seconds without a success,
    and stays open: every request then fails at once, and the run stops.
    """

    threshold: int = 10
    min_down_s: float = 5.0
    consecutive: int = 0
    last_ok: float = field(default_factory=time.monotonic)
    open_reason: str | None = None

    def check(self, url: str) -> None:
        """Raise at once when the breaker is open."""
        if self.open_reason is not None:
            raise CircuitOpen(f"circuit open for {url}: {self.open_reason}")

    def success(self) -> None:
        """Record a successful attempt."""
        self.consecutive = 0
        self.last_ok = time.monotonic()

    def failure(self, error: str) -> None:
        """Record a failed attempt; may open the breaker."""
        self.consecutive += 1
        down = time.monotonic() - self.last_ok
        if self.consecutive >= self.threshold and down >= self.min_down_s:
            self.open_reason = (
                f"{self.consecutive} consecutive failures over {down:.0f}s; "
                f"last: {error}"
            )


@dataclass(slots=True)
class ClientStats:
    """Counters for the summary."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class _Attempt(Exception):
    """One failed attempt: retryable or not, with Retry-After if the server sent one."""

    def __init__(
        self,
        message: str,
        *,
        retry: bool,
        timeout: bool = False,
        retry_after: float | None = None,
        counts: bool = True,
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.timeout = timeout
        self.retry_after = retry_after
        self.counts = counts


class ModelClient:
    """POSTs JSON to one endpoint with retries; must be used inside one event loop."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        policy: RetryPolicy,
        max_connections: int = 64,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.policy = policy
        self.breaker = CircuitBreaker()
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_connections = max_connections
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            from httpx_aiohttp import AiohttpTransport

            limits = httpx.Limits(max_connections=self._max_connections)
            transport = AiohttpTransport(limits=limits, trust_env=False)
            timeout = httpx.Timeout(
                self.policy.request_timeout,
                connect=min(30.0, self.policy.request_timeout),
            )
            self._http = httpx.AsyncClient(
                transport=transport, timeout=timeout, trust_env=False
            )
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def post(
        self,
        body: dict[str, Any],
        *,
        max_retries: int | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` and return the decoded JSON object, retrying what is transient.

        ``headers`` are sent besides the client's own (e.g. ``X-Nel-Repeat``, which a
        proxy's cache keys on).

        Raises:
            ModelTimeout: Every attempt timed out.
            ModelError: Any other failure after the retries, a non-retryable status,
                or an open circuit breaker.
        """
        retries = self.policy.max_retries if max_retries is None else max_retries
        limit = self.policy.request_timeout if timeout is None else timeout
        payload = json.dumps(body).encode()
        stats = self.stats
        stats.requests += 1
        all_timeouts = True
        last = ""
        for attempt in range(retries + 1):
            self.breaker.check(self.url)
            stats.attempts += 1
            try:
                return await self._attempt(payload, limit, headers)
            except _Attempt as failed:
                last = str(failed)
                all_timeouts = all_timeouts and failed.timeout
                if failed.counts:
                    self.breaker.failure(last)
                if not failed.retry or attempt == retries:
                    break
                stats.retries += 1
                await asyncio.sleep(
                    self.policy.delay(attempt, failed.retry_after, self._rng)
                )
        stats.failures += 1
        tries = f" after {attempt + 1} attempt{'s' if attempt else ''}"
        if all_timeouts:
            raise ModelTimeout(f"{self.url}: timed out ({limit:g}s per attempt){tries}")
        raise ModelError(f"{self.url}: {last}{tries}")

    async def _attempt(
        self, payload: bytes, limit: float, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            async with asyncio.timeout(limit):
                response = await self._client().post(
                    self.url,
                    content=payload,
                    headers={**self._headers, **headers} if headers else self._headers,
                )
        except TimeoutError as exc:
            raise _Attempt(
                f"timed out after {limit:g}s", retry=True, timeout=True
            ) from exc
        except httpx.TransportError as exc:
            raise _transport_failure(exc) from exc
        finally:
            stats.in_flight -= 1
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                data = json.loads(response.content)
            except ValueError as exc:
                raise _Attempt(
                    f"invalid JSON in a 200 response: {_preview(response.content)}",
                    retry=True,
                ) from exc
            if not isinstance(data, dict):
                raise _Attempt(
                    f"expected a JSON object, got: {_preview(response.content)}",
                    retry=True,
                )
            self.breaker.success()
            return data
        message = f"HTTP {status}: {_error_message(response.content)}"
        if response.headers.get(FATAL_HEADER) == "1":
            self.breaker.success()
            self.stats.failures += 1
            raise FatalClientError(f"{self.url}: {message}")
        if status in RETRY_STATUSES:
            raise _Attempt(
                message,
                retry=True,
                retry_after=_retry_after(response),
                timeout=False,
                counts=status != 429,
            )
        self.breaker.success()  # the endpoint is up; the request itself is wrong
        raise _Attempt(message, retry=False)


def _transport_failure(exc: httpx.TransportError) -> _Attempt:
    cause = exc.__cause__
    timed_out = isinstance(
        cause, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)
    ) or (cause is None and isinstance(exc, httpx.TimeoutException))
    text = str(cause or exc) or type(cause or exc).__name__
    kind = "timed out" if timed_out else "connection error"
    return _Attempt(f"{kind}: {text}", retry=True, timeout=timed_out)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _error_message(content: bytes) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return _preview(content)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return _preview(content)


def _preview(content: bytes, limit: int = 120) -> str:
    text = content[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(content) > limit else ""))
