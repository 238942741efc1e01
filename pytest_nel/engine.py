"""The generation engine: model calls run ahead of pytest's item loop, in their own
process.

pytest runs one item at a time. The engine works through the run's *plan* (the samples
this process will run, in the order it will run them), keeping up to each benchmark's
concurrency limit in flight, and an item takes its finished sample with
:meth:`Engine.wait`.

The HTTP work runs in a child process (:mod:`pytest_nel.engine_process`) rather than a
thread: pytest's loop and an event loop sharing one GIL slowed each other down (every
write to the terminal or a results file gave the GIL away for up to 5 ms), and a second
process uses the second core. The parent feeds the child only ``window`` samples ahead
of the item pytest is on, so memory and wasted calls after ``-x`` stay bounded on both
sides.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pytest_nel.exceptions import EngineDied, SampleError
from pytest_nel.solvers.protocol import SolveTask

FRAME_HEADER = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class SolverSetup:
    """How the engine reaches one benchmark's model (sent to the engine process)."""

    endpoint: str
    api_key: str | None = field(repr=False)
    model: str
    protocol: str
    params: dict[str, Any]
    system_prompt: str | None
    max_retries: int
    request_timeout: float
    limit: int


@dataclass(frozen=True, slots=True)
class Request:
    """One planned sample: its key (the node id), its group (benchmark) and task."""

    key: str
    group: str
    task: SolveTask


def write_frame(stream: IO[bytes], message: object) -> None:
    """Write one length-prefixed pickle frame and flush it."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> object | None:
    """Read one frame; None at end of stream."""
    head = stream.read(FRAME_HEADER.size)
    if len(head) < FRAME_HEADER.size:
        return None
    size = FRAME_HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    message: object = pickle.loads(data)
    return message


@dataclass(slots=True)
class EngineStats:
    """What the engine process reports when it stops."""

    values: dict[str, Any] = field(default_factory=dict)


class Engine:
    """The parent side: starts the engine process, feeds it the plan, hands out results.

    Args:
        window: How many plan positions ahead of the current item the engine may run
            (by default four times the total concurrency, at least 64).
    """

    def __init__(self, *, window: int | None = None) -> None:
        self._fixed_window = window
        self.window = window or 64
        self.stats = EngineStats()
        self._plan: list[Request] = []
        self._positions: dict[str, int] = {}
        self._sent = 0
        self._keys: set[str] = set()
        self._results: dict[str, tuple[bool, Any]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dead: str | None = None
        self._stop_sent = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the engine process.

        It imports its HTTP stack while pytest starts up.
        """
        # Kept open for the engine's lifetime: the child writes its stderr to it and
        # _log_tail reads it back; it is closed when the engine is stopped.
        self._log = tempfile.TemporaryFile(prefix="nel-engine-")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_nel.engine_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )

    def setup(self, solvers: dict[str, SolverSetup]) -> None:
        """Tell the engine how to reach each group's model (before any plan)."""
        total = sum(s.limit for s in solvers.values())
        self.window = self._fixed_window or max(64, 4 * total)
        self._send(("setup", solvers))

    def submit(self, plan: list[Request]) -> None:
        """Set (or replace) the plan and send its first window.

        A sample already sent under an earlier plan is not sent again, so a plan made
        before collection can be corrected once the items are known.
        """
        self._plan = plan
        self._positions = {r.key: i for i, r in enumerate(plan)}
        self._sent = 0
        self._top_up(0)

    def request_stop(self) -> None:
        """Ask the engine process to cancel what is in flight and exit.

        Returns at once.
        """
        if self._proc is not None and not self._stop_sent:
            self._stop_sent = True
            with contextlib.suppress(OSError):
                self._send_to(self._proc, ("stop",))

    def stop(self) -> None:
        """Stop the engine process and collect its statistics (idempotent)."""
        self.request_stop()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            for message in self._frames(proc):
                if isinstance(message, tuple) and message[0] == "stats":
                    self.stats.values = message[1]
        except OSError:
            pass
        finally:
            _reap(proc)
            if self._log is not None:
                self._log.close()

    # ------------------------------------------------------------------ consumer side
    def knows(self, key: str) -> bool:
        """True when sample ``key`` is in the plan or was already sent."""
        return key in self._positions or key in self._keys

    def wait(self, key: str, request: Request | None = None) -> Any:
        """Block until sample ``key`` is done and return its result.

        A key not in the plan (an item moved here from a crashed xdist worker) is sent
        now, as ``request``.

        Raises:
            SampleError: The sample failed; EngineDied when the engine process is gone.
        """
        position = self._positions.get(key)
        if position is None:
            if request is None:
                raise EngineDied(f"sample {key} was not planned")
            if key not in self._keys:
                self._keys.add(key)
                self._send(("plan", [request]))
        else:
            self._top_up(position)
        while key not in self._results:
            self._receive_one()
        ok, value = self._results.pop(key)
        if ok:
            return value
        raise value

    def _top_up(self, position: int) -> None:
        limit = min(len(self._plan), position + 1 + self.window)
        if limit - self._sent >= min(16, self.window) or (
            limit == len(self._plan) and limit > self._sent
        ):
            batch = [
                r for r in self._plan[self._sent : limit] if r.key not in self._keys
            ]
            self._sent = limit
            if batch:
                self._keys.update(r.key for r in batch)
                self._send(("plan", batch))

    def _receive_one(self) -> None:
        if self._dead is not None or self._proc is None:
            raise EngineDied(self._dead or "the generation engine is not running")
        assert self._proc.stdout is not None
        message = read_frame(self._proc.stdout)
        if message is None:
            self._dead = f"the generation engine process exited: {self._log_tail()}"
            raise EngineDied(self._dead)
        assert isinstance(message, tuple)
        if message[0] == "result":
            _, key, ok, value = message
            self._results[key] = (ok, value)
        elif message[0] == "stats":
            self.stats.values = message[1]

    # ------------------------------------------------------------------ plumbing
    def _send(self, message: object) -> None:
        if self._proc is None:
            raise EngineDied(self._dead or "the generation engine is not running")
        try:
            self._send_to(self._proc, message)
        except (BrokenPipeError, OSError) as exc:
            self._dead = (
                f"the generation engine process exited: {self._log_tail() or exc}"
            )
            raise EngineDied(self._dead) from None

    @staticmethod
    def _send_to(proc: subprocess.Popen[bytes], message: object) -> None:
        assert proc.stdin is not None
        write_frame(proc.stdin, message)

    @staticmethod
    def _frames(proc: subprocess.Popen[bytes]) -> Iterator[object]:
        assert proc.stdout is not None
        while (message := read_frame(proc.stdout)) is not None:
            yield message

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-1500:].strip()


def _reap(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


__all__ = [
    "Engine",
    "EngineStats",
    "Request",
    "SampleError",
    "SolverSetup",
    "read_frame",
    "write_frame",
]
