"""modify_tools: adds or removes properties in the JSON schemas of the request's tools.

Keys of both maps are tool (function) names, or ``"*"`` for every tool. A removed
property also leaves the schema's ``required`` list.
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


class ModifyToolsConfig(BaseModel):
    """Options of modify_tools.

    Attributes:
        remove_properties: Tool name (or ``*``) -> property names to remove.
        add_properties: Tool name (or ``*``) -> {property name: JSON schema}.
    """

    model_config = STRICT
    remove_properties: dict[str, list[str]] = Field(default_factory=dict)
    add_properties: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


@register("modify_tools")
class ModifyTools(Interceptor):
    """Rewrites ``tools[*].function.parameters``; other requests pass unchanged."""

    Config = ModifyToolsConfig

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Rewrite each function tool's parameter schema."""
        tools = request.body.get("tools")
        if isinstance(tools, list):
            request.body["tools"] = [self._tool(t) for t in tools]
        return request

    def _tool(self, tool: Any) -> Any:
        cfg = self.config
        assert isinstance(cfg, ModifyToolsConfig)
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            return tool
        name = function.get("name")
        schema = dict(function.get("parameters") or {"type": "object"})
        props = dict(schema.get("properties") or {})
        required = list(schema.get("required") or [])
        for key in ("*", name):
            for prop in cfg.remove_properties.get(str(key), []):
                props.pop(prop, None)
                required = [r for r in required if r != prop]
            props.update(cfg.add_properties.get(str(key), {}))
        schema["properties"] = props
        if required or "required" in schema:
            schema["required"] = required
        return {**tool, "function": {**function, "parameters": schema}}
