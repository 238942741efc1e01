"""Request-per-minute and token-per-minute limits for the endpoint interceptor.

A :class:`TokenBucket` refills at ``per_minute / 60`` units a second up to a capacity
of ``burst_s`` seconds' worth (at least one unit). Taking waits, in arrival order, until
the bucket holds what is asked (or is full, for a request larger than the capacity,
which then leaves the bucket in debt), so a limit delays requests and never fails them.

Tokens are estimated before the call (:func:`estimate_tokens`: ``max_tokens`` plus the
prompt's characters / 4) and corrected with the answer's actual usage afterwards
(:meth:`TokenBucket.adjust`), so a limit is neither overshot by long answers nor wasted
on short ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """A token bucket shared by the coroutines of one event loop.

    Args:
        per_minute: Units (requests or tokens) allowed per minute.
        burst_s: Seconds' worth of units that may go at once.
        clock: Monotonic seconds (a test passes a fake).
        sleep: Waits that many seconds (a test passes a fake).
    """

    def __init__(
        self,
        per_minute: float,
        burst_s: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()  # fair: waiters are served in arrival order

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, amount: float) -> float:
        """Wait until ``amount`` units may go, take them; returns the seconds waited."""
        start = self._clock()
        async with self._lock:
            self._refill()
            need = min(amount, self.capacity)
            while self.level < need:
                await self._sleep((need - self.level) / self.rate)
                self._refill()
            self.level -= amount
        return self._clock() - start

    def adjust(self, amount: float) -> None:
        """Give back (positive) or charge (negative) units after the fact."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


def estimate_tokens(body: dict[str, Any]) -> int:
    """Tokens a request may use: its ``max_tokens`` plus its prompt's characters / 4."""
    prompt = body.get("messages", body.get("prompt", body.get("input", "")))
    text = prompt if isinstance(prompt, str) else json.dumps(prompt)
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return int(limit) + -(-len(text) // 4)


def used_tokens(body: dict[str, Any] | None) -> int | None:
    """The total tokens an answer reports, or None when it reports no usage."""
    usage = (body or {}).get("usage")
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if total is None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        total = (prompt or 0) + (completion or 0)
    return int(total)
