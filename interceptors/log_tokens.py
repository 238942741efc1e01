"""log_tokens: one line per answer with its token usage (and session), for budgets.

Lines go to the ``pytest_nel.proxy.tokens`` logger (INFO), and, when ``path`` is set, as
JSON lines to that file (relative paths are under the output folder). Streamed answers
are logged after their last chunk, with the usage the stream carried (ask for it with
``stream_options.include_usage``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
    sse_summary,
)

log = logging.getLogger("pytest_nel.proxy.tokens")


class LogTokensConfig(BaseModel):
    """Options of log_tokens.

    Attributes:
        path: A JSON-lines file to write besides the logger.
    """

    model_config = STRICT
    path: str | None = None


@register("log_tokens")
class LogTokens(Interceptor):
    """Logs the usage of every successful answer."""

    Config = LogTokensConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, LogTokensConfig)
        self.file = ctx.open_append(config.path)

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Log the usage (a stream's after its last chunk)."""
        if response.status != 200:
            return response
        if response.chunks is not None:
            response.chunks = self._watch(request, response.chunks)
        else:
            self._emit(request, response.body or {}, response.source)
        return response

    async def _watch(
        self, request: ProxyRequest, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        tail = b""
        async for chunk in chunks:
            tail = (tail + chunk)[-4096:]
            yield chunk
        self._emit(request, sse_summary(tail), "upstream")

    def _emit(self, request: ProxyRequest, body: dict[str, Any], source: str) -> None:
        usage = body.get("usage") or {}
        line = json.dumps({
            "session": request.session,
            "source": source,
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "total_tokens": int(usage.get("total_tokens") or 0),
        })  # fmt: skip
        log.info("%s", line)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()

    async def aclose(self) -> None:
        """Close the file."""
        if self.file is not None:
            self.file.close()
