"""The output stream of one ``docker exec``: stdin in, stdout/stderr out, with limits.

A helper of the ``docker`` backend. The engine multiplexes the command's stdout and
stderr on one socket in frames (an 8-byte header: stream id, three zero bytes, the
payload size, big-endian). :class:`ExecStream` writes stdin, splits the frames, stops
at a deadline or once ``max_output`` bytes are kept, and notices a command that has
ended while a process it left behind still holds the stream open.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Callable

from pytest_nel.sandboxes.protocol import SandboxError

IDLE_CHECK = 0.25  # seconds without output before asking whether the exec still runs
_HEADER = struct.Struct(">BxxxL")  # the exec stream's frame: stream id, size


class ExecStream:
    """Feeds an exec's stdin and splits its multiplexed output, with limits."""

    def __init__(self, sock: socket.socket, stdin: bytes | None, max_output: int):
        self.sock = sock
        self.stdin = stdin or b""
        self.want_write = stdin is not None
        self.max_output = max_output
        self.kept = 0
        self.truncated = False
        self.out = {1: bytearray(), 2: bytearray()}
        self._buffer = bytearray()

    def run(self, deadline: float, running: Callable[[], bool]) -> str | None:
        """Pump the exec's stream.

        Returns ``"eof"`` when the stream ends, ``"exited"`` when the command has
        ended but the stream is still held open (by a process it left behind), and
        None at the deadline or the output cap. ``running`` is asked after each
        quiet spell of ``IDLE_CHECK`` seconds.
        """
        self.sock.setblocking(False)
        if not self.want_write:
            self._close_stdin()
        with selectors.DefaultSelector() as selector:
            events = selectors.EVENT_READ
            if self.want_write:
                events |= selectors.EVENT_WRITE
            selector.register(self.sock, events)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                ready = selector.select(min(left, IDLE_CHECK))
                if not ready and not running():
                    return "exited"
                for _, mask in ready:
                    if mask & selectors.EVENT_WRITE and self._write_some():
                        selector.modify(self.sock, selectors.EVENT_READ)
                    if mask & selectors.EVENT_READ:
                        try:
                            chunk = self.sock.recv(65536)
                        except BlockingIOError:
                            continue
                        except ConnectionResetError:  # gone with stdin unread
                            return "eof"
                        if not chunk:
                            return "eof"
                        if not self._take(chunk):
                            return None

    def _write_some(self) -> bool:
        """Write stdin; True once all of it is written (and the side closed)."""
        try:
            sent = self.sock.send(self.stdin[:65536])
        except BlockingIOError:
            return False
        except OSError:  # the command does not read its stdin
            sent = len(self.stdin)
        self.stdin = self.stdin[sent:]
        if self.stdin:
            return False
        self._close_stdin()
        return True

    def _close_stdin(self) -> None:
        self.want_write = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def _take(self, chunk: bytes) -> bool:
        """Split frames into stdout/stderr; False once past the output cap."""
        self._buffer += chunk
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            if stream not in (0, 1, 2):  # not a frame header: bytes were lost
                raise SandboxError(f"the exec stream is corrupt (stream id {stream})")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                room = self.max_output - self.kept
                if len(self._buffer) - _HEADER.size > room:  # already past the cap
                    part = self._buffer[_HEADER.size : _HEADER.size + room]
                    self.out[2 if stream == 2 else 1] += part
                    self.kept += room
                    self.truncated = True
                    return False
                break
            payload = self._buffer[_HEADER.size : end]
            del self._buffer[:end]
            room = self.max_output - self.kept
            self.out[2 if stream == 2 else 1] += payload[:room]
            self.kept += min(len(payload), room)
            if len(payload) > room:
                self.truncated = True
                return False
        return True
