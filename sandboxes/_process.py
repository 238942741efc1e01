"""Running one host process with a wall-clock limit and a cap on captured output.

A helper of the backends that start a process per command (``local``, ``none``); not a
backend itself. The process gets its own session, so a timeout or an output overflow
kills its whole process group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_CHUNK = 65536


@dataclass
class Captured:
    """What a process left behind: status, output (bytes), and why it was stopped."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    truncated: bool
    duration: float


@dataclass
class _Pump:
    """The state of one process's pipes while they are read and written."""

    stdin: bytes
    max_output: int
    kept: int = 0
    truncated: bool = False

    def __post_init__(self) -> None:
        self.out: dict[int, bytearray] = {}


def run_captured(
    argv: Sequence[str],
    *,
    stdin: bytes | None,
    timeout: float,
    max_output: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
    before_kill: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Captured:
    """Run ``argv`` to its end, its deadline or its output cap, whichever comes first.

    Args:
        argv: The command.
        stdin: Bytes written to its standard input (None: ``/dev/null``).
        timeout: Wall-clock seconds before the process group is killed.
        max_output: Bytes of stdout + stderr kept; past them the group is killed.
        env: The environment (None inherits ours).
        cwd: The working directory.
        pass_fds: File descriptors the process inherits.
        before_kill: Called with the process before its group is killed (deadline,
            output cap, or an exception here), e.g. to end what it started
            elsewhere while it can still hear of it; the group is killed after.

    Raises:
        OSError: The command could not be started.
    """
    start = time.monotonic()
    deadline = start + timeout
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=None if env is None else dict(env),
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
    )
    pump = _Pump(stdin or b"", max_output)
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    try:
        timed_out = not _pump(proc, pump, deadline)
        if not timed_out and not pump.truncated:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if proc.returncode is None:
            try:
                if before_kill is not None:
                    before_kill(proc)
            finally:
                _kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    return Captured(
        exit_code=proc.returncode,
        stdout=bytes(pump.out.get(out_fd, b"")),
        stderr=bytes(pump.out.get(err_fd, b"")),
        timed_out=timed_out,
        truncated=pump.truncated,
        duration=time.monotonic() - start,
    )


def _pump(proc: subprocess.Popen[bytes], pump: _Pump, deadline: float) -> bool:
    """Feed stdin and read stdout/stderr until both close.

    Returns False at the deadline.
    """
    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        pump.out[stream.fileno()] = bytearray()
        selector.register(stream, selectors.EVENT_READ)
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        selector.register(proc.stdin, selectors.EVENT_WRITE)
    with selector:
        while len(selector.get_map()) > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in selector.select(left):
                if key.fileobj is proc.stdin:
                    _write_some(selector, proc, pump)
                elif not _read_some(selector, key.fileobj, pump):
                    return True
    return True


def _write_some(
    selector: selectors.BaseSelector, proc: subprocess.Popen[bytes], pump: _Pump
) -> None:
    assert proc.stdin is not None
    try:
        written = os.write(proc.stdin.fileno(), pump.stdin[:_CHUNK])
    except BlockingIOError:
        return
    except BrokenPipeError:
        written = len(pump.stdin)
    pump.stdin = pump.stdin[written:]
    if not pump.stdin:
        selector.unregister(proc.stdin)
        proc.stdin.close()


def _read_some(selector: selectors.BaseSelector, stream: object, pump: _Pump) -> bool:
    """Read one chunk; False once the output cap is passed."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    data = os.read(fd, _CHUNK)
    if not data:
        selector.unregister(stream)  # type: ignore[arg-type]
        return True
    room = pump.max_output - pump.kept
    pump.out[fd] += data[:room]
    pump.kept += min(len(data), room)
    if len(data) > room:
        pump.truncated = True
        return False
    return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
