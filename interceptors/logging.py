"""logging: request and response logs with body previews; API keys are redacted.

Lines go to the ``pytest_nel.proxy`` logger (INFO), and, when ``path`` is set, as JSON
lines to that file (relative paths are under the output folder).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

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
_SECRET_KEY = re.compile(r"key|token|secret|authorization|password", re.IGNORECASE)
_SECRET_TEXT = re.compile(r"(sk-|nvapi-|Bearer\s+)[A-Za-z0-9._\-]{6,}")
REDACTED = "<redacted>"


class LoggingConfig(BaseModel):
    """Options of the logging interceptor.

    Attributes:
        path: A JSON-lines file to write besides the logger.
        max_body_chars: Longest body preview.
        log_requests: Log each request.
        log_responses: Log each response.
    """

    model_config = STRICT
    path: str | None = None
    max_body_chars: int = Field(2000, ge=0)
    log_requests: bool = True
    log_responses: bool = True


def redact(value: Any, secret: str | None = None) -> Any:
    """``value`` with every secret-looking field and string replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_KEY.search(str(k)) else redact(v, secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    if isinstance(value, str):
        if secret and secret in value:
            value = value.replace(secret, REDACTED)
        return _SECRET_TEXT.sub(REDACTED, value)
    return value


@register("logging")
class Logging(Interceptor):
    """Writes one line per request and one per response."""

    Config = LoggingConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, LoggingConfig)
        self.cfg = config
        self.file = ctx.open_append(config.path)

    def _emit(self, event: dict[str, Any]) -> None:
        event = redact(event, self.ctx.settings.api_key)
        line = json.dumps(event, ensure_ascii=False)
        log.info("%s", line)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()

    def _preview(self, body: Any) -> str:
        text = json.dumps(redact(body, self.ctx.settings.api_key), ensure_ascii=False)
        limit = self.cfg.max_body_chars
        return text if len(text) <= limit else text[:limit] + "..."

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Log the request."""
        request.meta["logging_start"] = time.perf_counter()
        if self.cfg.log_requests:
            self._emit({"event": "request", "path": request.path,
                        "session": request.session, "headers": request.headers,
                        "body": self._preview(request.body)})  # fmt: skip
        return request

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Log the response (a stream is logged as such, unread)."""
        if self.cfg.log_responses:
            ms = (time.perf_counter() - request.meta["logging_start"]) * 1000
            body = "<stream>" if response.chunks is not None else response.body
            self._emit({"event": "response", "path": request.path,
                        "status": response.status, "source": response.source,
                        "ms": round(ms, 3), "body": self._preview(body)})  # fmt: skip
        return response

    async def aclose(self) -> None:
        """Close the file."""
        if self.file is not None:
            self.file.close()
