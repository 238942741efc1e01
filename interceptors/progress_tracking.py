"""progress_tracking: counts answered requests; optionally POSTs the count to a webhook.

Every ``every`` answers (and at shutdown) the count is written to
``progress-<service>.json`` in the output folder and, when ``webhook_url`` is set,
POSTed there as ``{"service", "completed", "errors"}``. A webhook that fails is logged
and never fails the request.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
from pydantic import BaseModel, Field
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
)

log = logging.getLogger("pytest_nel.proxy")


class ProgressTrackingConfig(BaseModel):
    """Options of progress_tracking.

    Attributes:
        webhook_url: Where to POST the progress (none: only the file).
        every: Report after this many answers.
    """

    model_config = STRICT
    webhook_url: str | None = None
    every: int = Field(100, ge=1)


@register("progress_tracking")
class ProgressTracking(Interceptor):
    """Counts every answer the client gets (cache hits included)."""

    Config = ProgressTrackingConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, ProgressTrackingConfig)
        self.cfg = config
        self.completed = 0
        self.errors = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Count; report every ``every`` answers without delaying this one."""
        if response.status == 200:
            self.completed += 1
        else:
            self.errors += 1
        if (self.completed + self.errors) % self.cfg.every == 0:
            task = asyncio.get_running_loop().create_task(self._report(self._payload()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return response

    def _payload(self) -> dict[str, object]:
        return {
            "service": self.ctx.settings.service,
            "completed": self.completed,
            "errors": self.errors,
        }

    async def _report(self, payload: dict[str, object]) -> None:
        settings = self.ctx.settings
        path = settings.output_dir / f"progress-{settings.service}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload) + "\n")
        if self.cfg.webhook_url:
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                    await http.post(self.cfg.webhook_url, json=payload)
            except httpx.HTTPError as exc:
                log.warning("progress webhook %s failed: %s", self.cfg.webhook_url, exc)

    async def aclose(self) -> None:
        """Wait for pending reports, then report the final count."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._report(self._payload())
