"""caching: answers repeated requests from an SQLite (WAL) file, with no upstream call.

The key is a SHA-256 of the canonical JSON of everything that affects the output: the
path, the whole body (model, messages, tools, every sampling parameter) and the repeat
index (from an ``X-Nel-Repeat`` header or a session id ending in ``-r<k>``), so repeats
are not collapsed into one sample. Only successful (200) non-streamed answers are
stored. The file is shared by every process and run that names it: WAL mode lets many
readers work beside one writer.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from pydantic import BaseModel
from pytest_nel.interceptors.protocol import (
    STRICT,
    Context,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    register,
)

_SCHEMA = "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, body TEXT NOT NULL)"
_REPEAT = re.compile(r"-r(\d+)$")


class CachingConfig(BaseModel):
    """Options of the caching interceptor.

    Attributes:
        path: The SQLite file; default ``proxy-cache.sqlite`` in the output folder.
    """

    model_config = STRICT
    path: str | None = None


def cache_key(request: ProxyRequest) -> str:
    """The canonical hash of what decides the answer."""
    repeat = request.meta.get("repeat")
    if repeat is None and request.session:
        match = _REPEAT.search(request.session)
        repeat = int(match.group(1)) if match else None
    canonical = json.dumps(
        {"path": request.path, "body": request.body, "repeat": repeat},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@register("caching")
class Caching(Interceptor):
    """A hit answers in stage 2; a fresh success is stored in stage 3."""

    Config = CachingConfig

    def __init__(self, config: BaseModel, ctx: Context) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, CachingConfig)
        path = Path(config.path or ctx.settings.output_dir / "proxy-cache.sqlite")
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = path.expanduser()
        self._conn: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, opened on first use (in the proxy's event-loop thread)."""
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    async def respond(self, request: ProxyRequest) -> ProxyResponse | None:
        """A stored answer, or None."""
        if request.stream or not request.body:
            return None
        key = request.meta["cache_key"] = cache_key(request)
        row = self.db.execute("SELECT body FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.ctx.stats.cache_hits += 1
        return ProxyResponse(200, json.loads(row[0]), source="cache")

    async def on_response(
        self, request: ProxyRequest, response: ProxyResponse
    ) -> ProxyResponse:
        """Store a successful upstream answer."""
        key = request.meta.get("cache_key")
        if key and response.status == 200 and response.source == "upstream":
            self.db.execute(
                "INSERT OR REPLACE INTO cache (key, body) VALUES (?, ?)",
                (key, json.dumps(response.body)),
            )
        return response

    async def aclose(self) -> None:
        """Close the database."""
        if self._conn is not None:
            self._conn.close()
