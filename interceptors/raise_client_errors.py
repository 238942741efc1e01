"""raise_client_errors: an upstream client error (4xx) stops the run instead of failing
every sample the same way.

A 401 (bad key), 404 (wrong model name) or 400 (a parameter the model refuses) would
otherwise be recorded as the same error on every sample of the run. This interceptor
marks such an answer as fatal: the client gets the upstream's status, an OpenAI-style
body whose error ``type`` is ``nel_fatal_client_error`` (the upstream's message and code
kept) and the header ``X-Nel-Fatal: 1``. The engine's client raises
:class:`~pytest_nel.exceptions.FatalClientError` on that header and the run stops.

By default every 4xx except 408 (timeout) and 429 (rate limit) is fatal; ``statuses``
names the exact ones instead. Only answers from the upstream count: the proxy's own
refusals (a turn budget, a malformed request) pass through unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
)

FATAL_HEADER = "X-Nel-Fatal"
FATAL_TYPE = "nel_fatal_client_error"
NOT_FATAL = frozenset({408, 429})


class RaiseClientErrorsConfig(BaseModel):
    """Options of raise_client_errors.

    Attributes:
        statuses: The upstream statuses that stop the run; None means every 4xx but
            408 and 429.
    """

    model_config = STRICT
    statuses: list[int] | None = Field(None, min_length=1)

    @field_validator("statuses")
    @classmethod
    def _client_errors_only(cls, value: list[int] | None) -> list[int] | None:
        bad = [s for s in value or [] if not 400 <= s <= 499]
        if bad:
            raise ValueError(f"only 4xx statuses can be fatal, not {bad}")
        return value


@register("raise_client_errors")
class RaiseClientErrors(Interceptor):
    """Turns the configured upstream 4xx answers into fatal errors."""

    Config = RaiseClientErrorsConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, RaiseClientErrorsConfig)
        self.statuses = frozenset(config.statuses or [])

    def is_fatal(self, status: int) -> bool:
        """Whether an upstream answer with ``status`` stops the run."""
        if self.statuses:
            return status in self.statuses
        return 400 <= status <= 499 and status not in NOT_FATAL

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Mark a fatal upstream answer (status kept, body and header rewritten)."""
        if response.source != "upstream" or not self.is_fatal(response.status):
            return response
        error = (response.body or {}).get("error")
        upstream = error if isinstance(error, dict) else {"message": str(error)}
        message = str(upstream.get("message") or "no message")
        fatal = {
            "message": f"upstream answered {response.status} (a client error that "
            f"every request would repeat; the run stops): {message}",
            "type": FATAL_TYPE,
            "param": upstream.get("param"),
            "code": upstream.get("code") or f"upstream_{response.status}",
        }
        headers = {**response.headers, FATAL_HEADER: "1"}
        return ProxyResponse(
            response.status, {"error": fatal}, headers=headers, source="upstream"
        )
