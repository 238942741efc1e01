"""A fake OpenAI-compatible model server, run as its own process, for tests and perf.

``python -m pytest_nel.testing.fake_model [--port 0] [--latency-ms 0]
[--gsm8k-answers PATH] [--accuracy 1.0]`` listens on 127.0.0.1 only, prints one line
``READY http://127.0.0.1:<port>`` and serves until SIGTERM or SIGINT.
:class:`FakeModel` does the same from Python.

The prompt is the last user message (chat) or ``prompt`` (completions). Directives,
each alone on a line anywhere in the prompt, choose the reply::

    SAY: <text>        reply <text>, the two characters \\n made a newline; several
                       SAY lines are joined with newlines
    FINISH: <reason>   the finish_reason (default "stop")
    FAULT: <kind>[xN][ retry-after=S]
        kind           400 401 404 408 429 500 502 503: that status, OpenAI error body
                       timeout: answer after an hour; reset: drop the connection;
                       malformed: 200, not JSON; nochoices: 200, "choices": [];
                       garbage: 200, JSON without "choices"
        xN             only the first N requests with this exact prompt fail
        retry-after=S  a Retry-After header (429 and 503)

Without directives, a GSM8K question (``--gsm8k-answers``) that starts a line of the
prompt, or follows a short ``Label:`` there, gets a short chain of thought ending in
``The answer is N.``, right for a fraction ``--accuracy`` of the questions; any other
prompt gets ``The answer is 42.``

Test control: ``POST /_control`` {"latency_ms", "record"}, ``GET /_requests``,
``GET /_stats``, ``POST /_reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

_MODULE = "pytest_nel.testing.fake_model"
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout_error", "request_timeout"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}
_KINDS = [*map(str, _ERRORS), "timeout", "reset", "malformed", "nochoices", "garbage"]
_DIRECTIVE = re.compile(r"^[ \t]*(SAY|FINISH|FAULT):[ \t]?(.*?)[ \t\r]*$", re.M)
_FAULT = re.compile(rf"({'|'.join(_KINDS)})(?:x(\d+))?(?:[ \t]+retry-after=([\d.]+))?")
# A question starts a line, maybe after a short label such as "Question: ".
_LINE_START = re.compile(r"^(?:[^\n:]{1,24}:[ \t]+)?", re.M)
_PREFIX = 40
_DEFAULT_REPLY = "The answer is 42."


@dataclass
class Fault:
    """A failure a prompt asks for: its kind, how many times, a Retry-After value."""

    kind: str
    times: int | None = None
    retry_after: str | None = None


@dataclass
class Reply:
    """What the server answers to one prompt."""

    content: str = _DEFAULT_REPLY
    finish_reason: str = "stop"
    fault: Fault | None = None


@dataclass
class Settings:
    """The settings ``POST /_control`` may change while the server runs."""

    latency_ms: float = 0.0
    record: bool = True


@dataclass
class Stats:
    """Counters over the two completion endpoints, served by ``GET /_stats``."""

    total: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def parse_directives(prompt: str) -> Reply | None:
    """Return the reply the SAY, FINISH and FAULT lines ask for, or None if none.

    Raises:
        ValueError: A FAULT line names no known kind.
    """
    if "SAY:" not in prompt and "FINISH:" not in prompt and "FAULT:" not in prompt:
        return None
    directives = _DIRECTIVE.findall(prompt)
    if not directives:
        return None
    reply, said = Reply(), []
    for name, value in directives:
        if name == "SAY":
            said.append(value.replace("\\n", "\n"))
        elif name == "FINISH":
            reply.finish_reason = value
        elif match := _FAULT.fullmatch(value):
            kind, times, retry_after = match.groups()
            reply.fault = Fault(kind, int(times) if times else None, retry_after)
        else:
            raise ValueError(f"unknown FAULT {value!r}; kinds: {', '.join(_KINDS)}")
    if said:
        reply.content = "\n".join(said)
    return reply


class Gsm8kAnswers:
    """GSM8K questions, indexed by their first 40 characters, and our replies."""

    def __init__(self, path: str | os.PathLike[str], accuracy: float) -> None:
        """Load an openai/gsm8k JSONL file; ``accuracy`` of its replies are right."""
        self._replies: dict[str, str] = {}
        self._by_prefix: dict[str, list[str]] = {}
        self._short: list[str] = []
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    row = json.loads(line)
                    self._add(row["question"], row["answer"], accuracy)

    def _add(self, question: str, answer: str, accuracy: float) -> None:
        gold = answer.rsplit("####", 1)[-1].strip().replace(",", "")
        digest = int(hashlib.sha1(question.encode()).hexdigest(), 16)
        said = gold if digest % 10000 < accuracy * 10000 else _plus_one(gold)
        self._replies[question] = (
            "Let me work through the problem step by step.\n"
            f"Putting the numbers together gives {said}.\nThe answer is {said}."
        )
        if len(question) < _PREFIX:
            self._short.append(question)
        elif question not in self._by_prefix.get(question[:_PREFIX], []):
            self._by_prefix.setdefault(question[:_PREFIX], []).append(question)

    def reply(self, prompt: str) -> str | None:
        """Return the reply to the prompt's last known question, or None."""
        starts = [(m.start(), m.end()) for m in _LINE_START.finditer(prompt)]
        for line_start, label_end in reversed(starts):
            for start in {label_end, line_start}:
                key = prompt[start : start + _PREFIX]
                for question in self._by_prefix.get(key, ()):
                    if prompt.startswith(question, start):
                        return self._replies[question]
        for question in self._short:
            if question in prompt:
                return self._replies[question]
        return None


def _plus_one(number: str) -> str:
    try:
        return str(Decimal(number) + 1)
    except InvalidOperation:
        return number + "1"


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _read_prompt(body: dict[str, Any], chat: bool) -> tuple[str, int]:
    """Return the prompt and how many characters of text the client sent."""
    if not chat:
        prompt = body.get("prompt", "")
        prompt = "\n".join(prompt) if isinstance(prompt, list) else str(prompt)
        return prompt, len(prompt)
    messages = body["messages"]
    texts = [_text(m.get("content")) for m in messages]
    users = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
    return (users[-1] if users else ""), sum(map(len, texts))


class _Dropped(web.Response):
    """The answer to a request whose connection we aborted: never sent."""


def _json(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(payload).encode()
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers
    )


def _error(status: int, message: str, retry_after: str | None = None) -> web.Response:
    kind, code = _ERRORS.get(status, ("server_error", "error"))
    error = {"message": message, "type": kind, "param": None, "code": code}
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return _json(status, {"error": error}, headers)


class FakeServer:
    """The server's state and its aiohttp handlers."""

    def __init__(self, settings: Settings, answers: Gsm8kAnswers | None) -> None:
        """Create the state; ``POST /_reset`` restores these ``settings``."""
        self._startup = settings
        self._answers = answers
        self._ids = itertools.count(1)
        self.settings = replace(settings)
        self.requests: list[dict[str, Any]] = []
        self.stats = Stats()
        self.fault_counts: dict[str, int] = {}

    def app(self) -> web.Application:
        """Build the aiohttp application with every route."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", partial(self._counted, chat=True))
        app.router.add_post("/v1/completions", partial(self._counted, chat=False))
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_requests", self._requests)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    async def _counted(self, request: web.Request, chat: bool) -> web.Response:
        stats = self.stats
        stats.total += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status = "cancelled"  # stays so when the client leaves while we wait
        try:
            response = await self._answer(request, chat)
            status = "reset" if isinstance(response, _Dropped) else str(response.status)
            return response
        finally:
            self.stats.in_flight -= 1  # a live gauge, kept across /_reset
            stats.by_status[status] = stats.by_status.get(status, 0) + 1

    async def _answer(self, request: web.Request, chat: bool) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return _error(400, f"the request body is not JSON: {exc}")
        if self.settings.record:
            auth = "Authorization" in request.headers
            entry = {"path": request.path, "authorization": auth, "body": body}
            self.requests.append(entry)
        try:
            prompt, prompt_chars = _read_prompt(body, chat)
            reply = parse_directives(prompt) or self._plain_reply(prompt)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _error(400, f"cannot serve this request: {exc!r}")
        if self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        payload = self._completion(body, reply, chat, prompt_chars)
        if reply.fault is not None and self._fault_applies(prompt, reply.fault):
            return await self._fail(request, reply.fault, payload)
        return _json(200, payload)

    def _plain_reply(self, prompt: str) -> Reply:
        answer = self._answers.reply(prompt) if self._answers is not None else None
        return Reply(answer or _DEFAULT_REPLY)

    def _fault_applies(self, prompt: str, fault: Fault) -> bool:
        if fault.times is None:
            return True
        key = hashlib.sha1(prompt.encode()).hexdigest()
        count = self.fault_counts[key] = self.fault_counts.get(key, 0) + 1
        return count <= fault.times

    async def _fail(
        self, request: web.Request, fault: Fault, payload: dict[str, Any]
    ) -> web.Response:
        if fault.kind.isdigit():
            status = int(fault.kind)
            return _error(status, f"fake fault {status}", fault.retry_after)
        if fault.kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            return _Dropped()
        if fault.kind == "malformed":
            body = json.dumps(payload)[:40].encode()
            return web.Response(body=body, content_type="application/json")
        if fault.kind == "nochoices":
            return _json(200, {**payload, "choices": []})
        if fault.kind == "garbage":
            return _json(200, {"hello": "world"})
        await asyncio.sleep(3600)  # "timeout": the client gives up first
        return _json(200, payload)

    def _completion(
        self, body: dict[str, Any], reply: Reply, chat: bool, prompt_chars: int
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": reply.content}
        else:
            choice["text"] = reply.content
        choice["finish_reason"] = reply.finish_reason
        asked, said = -(-prompt_chars // 4), -(-len(reply.content) // 4)  # ceil
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(self._ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [choice],
            "usage": {"prompt_tokens": asked, "completion_tokens": said,
                      "total_tokens": asked + said},
        }  # fmt: skip

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": "fake", "object": "model", "created": 0, "owned_by": "nel"}
        return _json(200, {"object": "list", "data": [model]})

    async def _health(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def _control(self, request: web.Request) -> web.Response:
        changes = await request.json()
        unknown = set(changes) - {"latency_ms", "record"}
        if unknown:
            return _error(400, f"unknown {sorted(unknown)}; use latency_ms, record")
        if "latency_ms" in changes:
            self.settings.latency_ms = float(changes["latency_ms"])
        if "record" in changes:
            self.settings.record = bool(changes["record"])
        return _json(200, asdict(self.settings))

    async def _requests(self, request: web.Request) -> web.Response:
        return _json(200, self.requests)

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(200, asdict(self.stats))

    async def _reset(self, request: web.Request) -> web.Response:
        self.requests = []
        self.stats = Stats(in_flight=self.stats.in_flight)  # a gauge: keep what's live
        self.fault_counts = {}
        self.settings = replace(self._startup)
        return _json(200, {"status": "ok"})


async def serve(args: argparse.Namespace) -> None:
    """Serve on 127.0.0.1 until SIGTERM, SIGINT or (if asked) EOF on stdin."""
    answers = None
    if args.gsm8k_answers is not None:
        answers = Gsm8kAnswers(args.gsm8k_answers, args.accuracy)
    server = FakeServer(Settings(latency_ms=args.latency_ms), answers)
    # handler_cancellation: a request whose client gave up stops being in flight.
    runner = web.AppRunner(
        server.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.exit_with_stdin:  # FakeModel's parent died: do not linger as an orphan
        loop.add_reader(0, lambda: None if os.read(0, 4096) else stop.set())
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _accuracy(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"accuracy must be in [0, 1], not {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Serve with the options in ``argv`` (``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {_MODULE}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--gsm8k-answers", metavar="JSONL", default=None)
    parser.add_argument("--accuracy", type=_accuracy, default=1.0)
    parser.add_argument("--exit-with-stdin", action="store_true", help="for FakeModel")
    asyncio.run(serve(parser.parse_args(argv)))


class FakeModel:
    """The fake model server in a subprocess, with calls to inspect and steer it.

    A context manager. The server has its own process, so it never competes for the
    GIL with the code under test.

    Attributes:
        url: The server root, ``http://127.0.0.1:PORT``.
        base_url: The OpenAI base URL, ``http://127.0.0.1:PORT/v1``.
        port: The port the server listens on.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        gsm8k_answers: str | None = None,
        accuracy: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start the server and wait up to 20 s for its READY line.

        Args:
            latency_ms: The delay before every completion reply.
            gsm8k_answers: A GSM8K JSONL file whose questions get real answers.
            accuracy: The fraction of those answers that are right.
            env: Variables added to the server's environment.

        Raises:
            RuntimeError: The server failed to start; the message holds its stderr.
        """
        command = [sys.executable, "-m", _MODULE, "--exit-with-stdin"]
        command += ["--latency-ms", str(latency_ms), "--accuracy", str(accuracy)]
        if gsm8k_answers is not None:
            command += ["--gsm8k-answers", str(gsm8k_answers)]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_env(env),
            text=True,
        )
        self.url = self._wait_ready(timeout=20.0)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.base_url = self.url + "/v1"
        self._client = httpx.Client(base_url=self.url, trust_env=False, timeout=30.0)

    def _wait_ready(self, timeout: float) -> str:
        stdout = self._proc.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if readable else ""  # READY comes in one write
        if line.startswith("READY "):
            return line.split()[1]
        self._stop()
        self._stderr.seek(0)
        stderr = self._stderr.read().decode(errors="replace")
        self._stderr.close()
        raise RuntimeError(
            f"the fake model server ({_MODULE}) printed no READY line within "
            f"{timeout:g} s (exit code {self._proc.returncode}); stderr:\n{stderr}"
        )

    def requests(self) -> Any:
        """Return the completion requests received, oldest first.

        Each is ``{"path": str, "authorization": bool, "body": dict}``: whether an
        Authorization header came (never its value) and the JSON body as received.
        """
        return self._call("GET", "/_requests")

    def stats(self) -> Any:
        """Return ``{"total", "in_flight", "max_in_flight", "by_status"}``."""
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        """Forget requests, stats and fault counters; restore the startup settings."""
        self._call("POST", "/_reset")

    def control(self, **settings: Any) -> None:
        """Change settings live: ``latency_ms`` (float), ``record`` (bool)."""
        self._call("POST", "/_control", settings)

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        response = self._client.request(method, path, json=payload)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s."""
        self._stop()
        self._client.close()
        self._stderr.close()

    def _stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> FakeModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """Return our environment plus ``extra``, able to import this package."""
    env = {**os.environ, **(extra or {})}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


if __name__ == "__main__":
    main()
