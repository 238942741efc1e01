"""payload_modifier: adds, removes and renames request parameters, at any depth.

Keys to remove or rename are dotted paths (``chat_template_kwargs.thinking``); added
parameters are deep-merged into the body (nested dicts merge, anything else replaces).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pytest_nel.interceptors.protocol import (
    STRICT,
    Interceptor,
    ProxyRequest,
    register,
)


class PayloadModifierConfig(BaseModel):
    """Options of payload_modifier (applied in the order remove, rename, add)."""

    model_config = STRICT
    params_to_remove: list[str] = Field(default_factory=list)
    params_to_rename: dict[str, str] = Field(default_factory=dict)
    params_to_add: dict[str, Any] = Field(default_factory=dict)


def _parent(body: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    *parents, leaf = path.split(".")
    node: Any = body
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` merged in, recursing into dicts both sides hold."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        out[key] = (
            deep_merge(old, value)
            if isinstance(old, dict) and isinstance(value, dict)
            else value
        )
    return out


@register("payload_modifier")
class PayloadModifier(Interceptor):
    """Rewrites every request body as configured."""

    Config = PayloadModifierConfig

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Remove, rename, then add."""
        cfg = self.config
        assert isinstance(cfg, PayloadModifierConfig)
        body = request.body
        for path in cfg.params_to_remove:
            node, leaf = _parent(body, path)
            if node is not None:
                node.pop(leaf, None)
        for old, new in cfg.params_to_rename.items():
            node, leaf = _parent(body, old)
            if node is not None and leaf in node:
                value = node.pop(leaf)
                for part in reversed(new.split(".")):
                    value = {part: value}
                body = deep_merge(body, value)
        request.body = deep_merge(body, cfg.params_to_add)
        return request
