"""The interceptor protocol, the request context and the registry of interceptors.

A request through the proxy passes three stages, each run over the configured chain:

1. ``on_request`` (in chain order): rewrite the request (drop or add parameters,
   inject a system message, count a turn).
2. ``respond`` (in chain order, first answer wins): answer without the upstream (a cache
   hit, a refused turn) or, for ``endpoint``, forward it.
3. ``on_response`` (in reverse chain order): look at or rewrite the answer (store it in
   the cache, collect statistics, log it).

Interceptors are registered by name with :func:`register`; third-party packages add
more through the ``pytest_nel.interceptors`` entry-point group (loaded lazily, once).
Each interceptor's ``Config`` is a pydantic model with ``extra="forbid"`` so a wrong key
is named in the error.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pytest_nel.exceptions import ConfigError

ENTRY_POINT_GROUP = "pytest_nel.interceptors"
STRICT = ConfigDict(extra="forbid", frozen=True)

# Built-in name -> module; imported on first use so no implementation imports another.
BUILTINS = {
    name: f"pytest_nel.interceptors.{name}"
    for name in (
        "endpoint",
        "caching",
        "drop_params",
        "system_message",
        "payload_modifier",
        "turn_counter",
        "logging",
        "response_stats",
        "modify_tools",
        "log_tokens",
        "reasoning",
        "progress_tracking",
        "raise_client_errors",
    )
}


class NoConfig(BaseModel):
    """The config of an interceptor that takes none."""

    model_config = STRICT


@dataclass(slots=True)
class ProxyStats:
    """What the proxy counted (served at ``GET /_stats``, written at shutdown)."""

    requests: int = 0
    upstream_calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rate_limit_wait_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ProxySettings:
    """The service behind one proxy.

    Attributes:
        service: The service's name in the config.
        upstream: The upstream base URL (``http://host/v1``).
        api_key: Sent upstream as a bearer token; never logged.
        request_timeout: Seconds one upstream attempt may take.
        max_retries: Upstream attempts after the first one.
        output_dir: Where file-writing interceptors put their files.
        verbose: Log every request at INFO (the ``logging`` interceptor's default).
    """

    service: str
    upstream: str
    api_key: str | None = None
    request_timeout: float = 600.0
    max_retries: int = 5
    output_dir: Path = Path(".")
    verbose: bool = False


@dataclass(slots=True)
class ProxyRequest:
    """One client request as the chain sees it.

    Attributes:
        path: The OpenAI path without the session prefix (``/v1/chat/completions``).
        body: The decoded JSON body (empty for GET).
        headers: Extra headers to send upstream (interceptors may add some).
        session: The per-sample session id from ``/s/<session>/v1/...``, or None.
        meta: Scratch space shared by the stages of one request (e.g. a cache key).
    """

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    session: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def stream(self) -> bool:
        """True when the client asked for server-sent events."""
        return bool(self.body.get("stream"))


@dataclass(slots=True)
class ProxyResponse:
    """An answer: a JSON body, or ``chunks`` of server-sent events when streaming."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: AsyncIterator[bytes] | None = None
    source: str = "upstream"


def error_response(
    status: int, message: str, kind: str = "invalid_request_error", code: str = ""
) -> ProxyResponse:
    """An OpenAI-style error answer."""
    error = {"message": message, "type": kind, "param": None, "code": code or None}
    return ProxyResponse(status, {"error": error}, source="proxy")


def sse_summary(tail: bytes) -> dict[str, Any]:
    """The usage (and finish reasons) from the last SSE events of a stream."""
    body: dict[str, Any] = {"choices": []}
    for line in tail.decode(errors="replace").splitlines():
        if not line.startswith("data: {"):
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        if event.get("usage"):
            body["usage"] = event["usage"]
        for choice in event.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                body["choices"].append(choice)
    return body


@dataclass(slots=True)
class Context:
    """What an interceptor may use besides the request: the service and the stats."""

    settings: ProxySettings
    stats: ProxyStats

    def open_append(self, path: str | None) -> IO[str] | None:
        """Open a log file to append to (relative paths: in the results folder)."""
        if not path:
            return None
        target = Path(path)
        if not target.is_absolute():
            target = self.settings.output_dir / target
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "a", encoding="utf-8")  # noqa: SIM115 - the caller closes it


class Interceptor:
    """Base class: every stage does nothing; override the ones you need.

    Subclasses set ``name`` and, when they take options, ``Config`` (a pydantic model
    with ``extra="forbid"``); ``__init__`` receives the validated config.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = NoConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx

    async def on_request(self, request: ProxyRequest) -> ProxyRequest:
        """Stage 1: return the (possibly rewritten) request."""
        return request

    async def respond(self, request: ProxyRequest) -> ProxyResponse | None:
        """Stage 2: answer the request, or None to let the next interceptor try."""
        return None

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Stage 3: return the (possibly rewritten) response."""
        return response

    async def aclose(self) -> None:
        """Release what the interceptor holds (connections, files)."""


_REGISTRY: dict[str, type[Interceptor]] = {}
_ENTRY_POINTS_LOADED = False


def register(name: str) -> Callable[[type[Interceptor]], type[Interceptor]]:
    """Class decorator: make an interceptor available under ``name``."""

    def add(cls: type[Interceptor]) -> type[Interceptor]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED  # noqa: PLW0603 - a load-once cache of entry points
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if ep.name not in _REGISTRY:
            register(ep.name)(cls)


def known_names() -> list[str]:
    """Every interceptor name: built-ins, registered ones and entry points."""
    _load_entry_points()
    return sorted(set(BUILTINS) | set(_REGISTRY))


def lookup(name: str) -> type[Interceptor]:
    """The interceptor class registered under ``name``.

    Raises:
        ConfigError: No such interceptor; the message lists the known names.
    """
    if name not in _REGISTRY and name in BUILTINS:
        importlib.import_module(BUILTINS[name])
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown interceptor {name!r}; known: {', '.join(known_names())}"
        )
    return _REGISTRY[name]


def validate_config(name: str, config: dict[str, Any] | None) -> BaseModel:
    """Validate one interceptor's config.

    Raises:
        ConfigError: Naming the interceptor and the bad key.
    """
    cls = lookup(name)
    try:
        return cls.Config.model_validate(config or {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "config"
            what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {what}")
        raise ConfigError(
            f"interceptor {name!r}: bad config: {'; '.join(problems)}"
        ) from None


def build_chain(
    specs: list[tuple[str, dict[str, Any] | None]], ctx: Context
) -> list[Interceptor]:
    """Build the configured chain; ``endpoint`` is appended when it is missing."""
    names = [name for name, _ in specs]
    if "endpoint" not in names:
        specs = [*specs, ("endpoint", None)]
    return [lookup(name)(validate_config(name, cfg), ctx) for name, cfg in specs]
