"""response_stats: timing and token statistics, written to the output folder.

At shutdown it writes ``response_stats-<service>.json``: counts by status, source
(upstream or cache) and finish reason, token totals, and latency percentiles (ms). A
streamed answer is timed to its last chunk and its usage read from the chunk that
carries one (``stream_options.include_usage``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
    sse_summary,
)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99 and the mean of ``values`` (nearest rank), rounded to 0.001."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in (50, 90, 99):
        idx = min(len(ordered) - 1, int(len(ordered) * q / 100))
        out[f"p{q}"] = round(ordered[idx], 3) if ordered else None
    out["mean"] = round(sum(ordered) / len(ordered), 3) if ordered else None
    return out


@register("response_stats")
class ResponseStats(Interceptor):
    """Aggregates what the responses say; numbers only, no text."""

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.count: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.latencies: list[float] = []

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Note the start time."""
        request.meta["stats_start"] = time.perf_counter()
        return request

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Count the response (a stream when its last chunk has passed)."""
        self.count[f"status_{response.status}"] += 1
        self.count[f"source_{response.source}"] += 1
        if response.chunks is not None:
            response.chunks = self._watch(request, response.chunks)
            return response
        self._record(request, response.body or {})
        return response

    def _record(self, request: ProxyRequest, body: dict[str, Any]) -> None:
        self.latencies.append(
            (time.perf_counter() - request.meta["stats_start"]) * 1000
        )
        usage = body.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            self.tokens[key] += int(usage.get(key) or 0)
        for choice in body.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.count[f"finish_{choice['finish_reason']}"] += 1

    async def _watch(
        self, request: ProxyRequest, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        tail = b""
        async for chunk in chunks:
            tail = (tail + chunk)[-4096:]
            yield chunk
        self._record(request, sse_summary(tail))

    def summary(self) -> dict[str, Any]:
        """The statistics as plain data."""
        return {
            "requests": len(self.latencies),
            "counts": dict(sorted(self.count.items())),
            "tokens": dict(self.tokens),
            "latency_ms": percentiles(self.latencies),
        }

    async def aclose(self) -> None:
        """Write the statistics file."""
        settings = self.ctx.settings
        path = settings.output_dir / f"response_stats-{settings.service}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(), indent=2) + "\n")
