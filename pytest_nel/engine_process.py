"""The engine process: one asyncio loop making the model calls the parent plans.

Started by :class:`pytest_nel.engine.Engine` as ``python -m pytest_nel.engine_process``.
It reads frames from stdin (``setup``, ``plan``, ``stop``) and writes one ``result``
frame per sample to stdout, then ``stats`` when it stops. It ignores SIGINT: the parent
decides when to stop it, so Ctrl-C reaches pytest first and finished samples are kept.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
from typing import Any

from pytest_nel.client import ModelClient, RetryPolicy
from pytest_nel.engine import FRAME_HEADER, Request, SolverSetup
from pytest_nel.exceptions import HarnessError, SampleError
from pytest_nel.solvers.simple import SimpleSolver


class EngineLoop:
    """Runs requests as they arrive, bounded per group, and streams results back."""

    def __init__(
        self, solvers: dict[str, SolverSetup], out: asyncio.WriteTransport
    ) -> None:
        self.out = out
        self.clients: dict[str, ModelClient] = {}
        self.solvers: dict[str, SimpleSolver] = {}
        self.limits = {g: asyncio.Semaphore(s.limit) for g, s in solvers.items()}
        for group, setup in solvers.items():
            client = self.clients.get(setup.endpoint)
            if client is None:
                policy = RetryPolicy(
                    max_retries=setup.max_retries, request_timeout=setup.request_timeout
                )
                connections = sum(
                    s.limit for s in solvers.values() if s.endpoint == setup.endpoint
                )
                client = self.clients[setup.endpoint] = ModelClient(
                    setup.endpoint,
                    api_key=setup.api_key,
                    policy=policy,
                    max_connections=max(connections, 1),
                )
            self.solvers[group] = SimpleSolver(
                client,
                model=setup.model,
                protocol=setup.protocol,
                params=setup.params,
                system_prompt=setup.system_prompt,
            )
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.done = 0

    def submit(self, requests: list[Request]) -> None:
        """Start a task per request; each waits for its group's slot."""
        for request in requests:
            task = asyncio.get_running_loop().create_task(self._run(request))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(self, request: Request) -> None:
        async with self.limits[request.group]:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                result: tuple[bool, Any] = (
                    True,
                    await self.solvers[request.group].solve(request.task),
                )
            except SampleError as exc:
                result = (False, exc)
            except Exception as exc:  # noqa: BLE001 - task boundary: becomes the item's error
                result = (False, HarnessError(f"{type(exc).__name__}: {exc}"))
            finally:
                self.in_flight -= 1
        self.done += 1
        self._write(("result", request.key, *result))

    def _write(self, message: object) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.out.write(FRAME_HEADER.pack(len(data)) + data)

    async def close(self) -> None:
        """Cancel what is in flight, close clients, report statistics."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        stats: dict[str, Any] = {
            "completed": self.done,
            "max_in_flight": self.max_in_flight,
        }
        for client in self.clients.values():
            s = client.stats
            stats.setdefault("requests", 0)
            for name in ("requests", "attempts", "retries", "failures"):
                stats[name] = stats.get(name, 0) + getattr(s, name)
            await client.aclose()
        self._write(("stats", stats))


async def _read_frames(reader: asyncio.StreamReader) -> Any:
    while True:
        try:
            head = await reader.readexactly(FRAME_HEADER.size)
            data = await reader.readexactly(FRAME_HEADER.unpack(head)[0])
        except asyncio.IncompleteReadError:
            return
        yield pickle.loads(data)


async def serve() -> None:
    """Read frames from stdin until ``stop`` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
    )
    # Frames go to the real stdout; anything a library prints goes to stderr instead.
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, frames)
    engine: EngineLoop | None = None
    async for message in _read_frames(reader):
        kind = message[0]
        if kind == "setup":
            engine = EngineLoop(message[1], out)
        elif kind == "plan" and engine is not None:
            engine.submit(message[1])
        elif kind == "stop":
            break
    if engine is not None:
        await engine.close()
    out.close()


def main() -> None:
    """Entry point of the engine process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
