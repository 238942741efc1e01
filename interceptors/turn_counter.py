"""turn_counter: counts model calls per session and refuses them past a budget.

The session is the ``/s/<session>/v1`` path prefix (requests without one share the
session ``default``). Past ``max_turns`` a request is answered, without the upstream,
with an OpenAI-style 429 error of code ``turn_budget_exhausted``. Reminders are appended
to the messages as a user message when the turns left are in ``remind_at``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    error_response,
    register,
)


class TurnCounterConfig(BaseModel):
    """Options of turn_counter.

    Attributes:
        max_turns: Requests allowed per session.
        remind_at: Turns left at which the reminder is injected.
        reminder: The reminder, formatted with ``remaining``, ``used`` and ``max``.
    """

    model_config = STRICT
    max_turns: int = Field(ge=1)
    remind_at: list[int] = Field(default_factory=list)
    reminder: str = "You have {remaining} of {max} turns left."


@register("turn_counter")
class TurnCounter(Interceptor):
    """Per-session counts live in this proxy process."""

    Config = TurnCounterConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, TurnCounterConfig)
        self.cfg = config
        self.turns: dict[str, int] = {}

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Count the turn and inject a reminder when one is due."""
        session = request.session or "default"
        used = self.turns[session] = self.turns.get(session, 0) + 1
        request.meta["turn"] = used
        remaining = self.cfg.max_turns - used
        messages = request.body.get("messages")
        if remaining in self.cfg.remind_at and isinstance(messages, list):
            text = self.cfg.reminder.format(
                remaining=remaining, used=used, max=self.cfg.max_turns
            )
            request.body["messages"] = [*messages, {"role": "user", "content": text}]
        return request

    async def respond(self, request: ProxyRequest) -> ProxyResponse | None:
        """Refuse a turn past the budget."""
        if request.meta["turn"] <= self.cfg.max_turns:
            return None
        return error_response(
            429,
            f"turn budget exhausted: session {request.session or 'default'!r} "
            f"used its {self.cfg.max_turns} turns",
            "rate_limit_error",
            "turn_budget_exhausted",
        )
