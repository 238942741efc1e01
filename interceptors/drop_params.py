"""drop_params: removes top-level request parameters the upstream rejects."""

from __future__ import annotations

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    STRICT,
    Interceptor,
    ProxyRequest,
    register,
)


class DropParamsConfig(BaseModel):
    """Options of drop_params.

    Attributes:
        params: Body keys to remove (e.g. ``max_tokens``, ``seed``).
    """

    model_config = STRICT
    params: list[str]


@register("drop_params")
class DropParams(Interceptor):
    """Deletes the configured keys from every request body."""

    Config = DropParamsConfig

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Drop the configured keys."""
        assert isinstance(self.config, DropParamsConfig)
        for key in self.config.params:
            request.body.pop(key, None)
        return request
