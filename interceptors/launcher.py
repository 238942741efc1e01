"""Starts and stops one proxy process per service (like the managed llama.cpp server).

The proxy runs in its own process so its event loop never waits on pytest's GIL.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pytest_nel.interceptors.protocol import validate_config

from pytest_nel.config import ApiService, LlamaCppService
from pytest_nel.exceptions import NelUsageError
from pytest_nel.processes import stop_process


class ProxyStartError(NelUsageError):
    """The proxy process did not start."""


def check_chain(interceptors: list[dict[str, Any]]) -> None:
    """Validate every interceptor's name and config before anything starts.

    Raises:
        ConfigError: Naming the interceptor and the bad key.
    """
    for spec in interceptors:
        validate_config(spec["name"], spec.get("config"))


def upstream_base(url: str) -> str:
    """The base URL (``http://host/v1``) of a service URL that may name an endpoint."""
    stripped = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if stripped.endswith(suffix):
            return stripped[: -len(suffix)]
    return stripped


def proxy_spec(
    name: str, service: ApiService | LlamaCppService, upstream: str, output_dir: Path
) -> dict[str, Any]:
    """The spec file contents for the proxy of one service (no secret in it)."""
    assert service.proxy is not None
    proxy = service.proxy
    return {
        "service": name,
        "upstream": upstream_base(upstream),
        "request_timeout": proxy.request_timeout or service.request_timeout,
        "max_retries": service.max_retries,
        "output_dir": str(output_dir),
        "verbose": proxy.verbose,
        "interceptors": [i.model_dump() for i in proxy.interceptors],
    }


class ManagedProxy:
    """``python -m pytest_nel.interceptors.server`` for one service."""

    def __init__(
        self, spec: dict[str, Any], api_key: str | None, log_dir: Path
    ) -> None:
        self.spec = spec
        self.api_key = api_key
        self.log_dir = log_dir
        self.log_path = log_dir / f"proxy-{spec['service']}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.ready = False

    def start(self, timeout: float = 30.0) -> str:
        """Start the proxy and return its base URL (``http://127.0.0.1:N/v1``)."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> str:
        """Start the process without waiting for it; returns the URL it will serve.

        The listening socket is bound here and inherited by the process, so the URL is
        known at once and requests sent before the proxy serves wait in the socket's
        backlog instead of being refused; :meth:`wait_ready` reports a failed start.
        """
        check_chain(self.spec.get("interceptors", []))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        port = listener.getsockname()[1]
        spec = {**self.spec, "listen_fd": listener.fileno()}
        spec_path = self.log_dir / f"proxy-{self.spec['service']}.spec.json"
        spec_path.write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if k != "NEL_PROXY_API_KEY"}
        if self.api_key:
            env["NEL_PROXY_API_KEY"] = self.api_key
        module = "pytest_nel.interceptors.server"
        with listener, open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(spec_path)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                pass_fds=(listener.fileno(),),
            )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Wait until the launched proxy serves; returns its base URL.

        Raises:
            ProxyStartError: It exited or did not answer within ``timeout``; the
                message holds the end of its log.
        """
        if not self.ready:
            self._wait_ready(timeout)
            self.ready = True
        return self.base_url

    def _wait_ready(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline().decode()
                if line.startswith("READY "):
                    return line.split()[1]
            if self.proc.poll() is not None:
                break
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-800:]
        raise ProxyStartError(
            f"proxy for service {self.spec['service']!r} did not start "
            f"(log {self.log_path}):\n{tail}"
        )

    def stats(self) -> dict[str, Any] | None:
        """The running proxy's counters (``GET /_stats``), or None if it cannot say."""
        if self.proc is None:
            return None
        root = self.base_url.removesuffix("/v1")
        try:
            response = httpx.get(root + "/_stats", timeout=10.0, trust_env=False)
            response.raise_for_status()
        except httpx.HTTPError:
            return None
        data: dict[str, Any] = response.json()
        return data

    def stop(self) -> None:
        """Stop the proxy (idempotent); it writes its statistics on the way out."""
        proc, self.proc = self.proc, None
        stop_process(proc)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ManagedProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
