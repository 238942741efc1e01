"""system_message: injects, replaces or extends the system message of chat requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    STRICT,
    Interceptor,
    ProxyRequest,
    register,
)


class SystemMessageConfig(BaseModel):
    """Options of system_message.

    Attributes:
        system_message: The text.
        strategy: ``replace`` an existing system message (or insert one), ``prepend``
            or ``append`` the text to it (or insert one).
    """

    model_config = STRICT
    system_message: str
    strategy: Literal["replace", "prepend", "append"] = "replace"


@register("system_message")
class SystemMessage(Interceptor):
    """Works on ``messages``; completions requests pass unchanged."""

    Config = SystemMessageConfig

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Rewrite the first system message, or insert one."""
        assert isinstance(self.config, SystemMessageConfig)
        messages = request.body.get("messages")
        if not isinstance(messages, list):
            return request
        text, strategy = self.config.system_message, self.config.strategy
        messages = list(messages)
        for i, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "system":
                messages[i] = {**message, "content": _merged(message, text, strategy)}
                break
        else:
            messages.insert(0, {"role": "system", "content": text})
        request.body["messages"] = messages
        return request


def _merged(message: dict[str, Any], text: str, strategy: str) -> str:
    old = message.get("content")
    if strategy == "replace" or not isinstance(old, str) or not old:
        return text
    return f"{text}\n{old}" if strategy == "prepend" else f"{old}\n{text}"
