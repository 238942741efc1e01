"""The Sandbox protocol, its settings and results, and the backend registry.

A sandbox runs untrusted commands (model-written code) where they can do no harm::

    with make_sandbox(SandboxSettings(type="local")) as box:
        box.write_file("main.py", "print(1 + 1)")
        result = box.exec(["python3", "-I", "main.py"], timeout=5)
        assert result.ok and result.stdout == "2\\n"

Backends register by name with :func:`sandbox_backend`; the built-in ones (``local``,
``none``) are imported only when first used, and third-party packages add more through
the ``pytest_nel.sandboxes`` entry-point group. :func:`get_backend` names the known
backends when a lookup fails.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import PurePosixPath
from types import TracebackType
from typing import ClassVar, Protocol, runtime_checkable

from pytest_nel.exceptions import SandboxError, SandboxUnavailable

__all__ = [
    "BUILTIN_BACKENDS",
    "BaseSandbox",
    "ExecResult",
    "Sandbox",
    "SandboxError",
    "SandboxSettings",
    "SandboxUnavailable",
    "get_backend",
    "known_backends",
    "make_sandbox",
    "parse_size",
    "sandbox_backend",
]

#: Built-in backends by name -> module; imported only when used.
BUILTIN_BACKENDS: dict[str, str] = {
    "docker": "pytest_nel.sandboxes.docker",
    "local": "pytest_nel.sandboxes.local",
    "none": "pytest_nel.sandboxes.none",
    "slurm": "pytest_nel.sandboxes.slurm",
}
ENTRY_POINT_GROUP = "pytest_nel.sandboxes"

MIB = 1024 * 1024
WORKDIR = "/box"  # where a sandbox's commands run and its files live


@dataclass(frozen=True)
class SandboxSettings:
    """What a sandbox is allowed to use; sizes are in bytes, times in seconds.

    Attributes:
        type: The backend's name (``local``, ``none``...).
        name: The sandbox's name in the config, or where it was declared (for errors).
        image: The image to run (container backends only).
        memory: Memory limit.
        cpus: CPU limit in cores.
        network: ``none``: no network at all.
        verify_timeout: Wall-clock limit of an ``exec`` that gives no ``timeout``.
        workdir_size: Size of the writable working directory.
        file_size: Largest file a command may write.
        pids: Most processes a command may run at once.
        max_output: Most bytes of stdout and stderr kept; a command that writes more
            is killed and its result marked ``truncated``.
        partition: The SLURM partition (``slurm`` only; None: the default one).
        shared_dir: A folder this machine and the compute nodes both see, where
            workdirs are made (``slurm`` only; None: the system's temporary folder,
            right for a single-node cluster).
    """

    type: str = "local"
    name: str = "sandbox"
    image: str | None = None
    memory: int = 512 * MIB
    cpus: float = 1.0
    network: str = "none"
    verify_timeout: float = 10.0
    workdir_size: int = 64 * MIB
    file_size: int = 16 * MIB
    pids: int = 64
    max_output: int = 1 * MIB
    partition: str | None = None
    shared_dir: str | None = None


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one command run in a sandbox.

    Attributes:
        exit_code: The command's exit status; 128 + the signal number when a signal
            ended it (137 after a timeout or an output overflow).
        stdout: Captured standard output (decoded, invalid bytes replaced).
        stderr: Captured standard error.
        timed_out: The wall-clock limit was reached and the command was killed.
        truncated: The command wrote more than ``max_output`` bytes and was killed.
        duration: Wall-clock seconds from start to exit.
    """

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the command exited 0 within its limits."""
        return self.exit_code == 0 and not self.timed_out and not self.truncated


@runtime_checkable
class Sandbox(Protocol):
    """An isolated place to run commands; fresh for each item, stopped after it."""

    settings: SandboxSettings

    def start(self) -> None:
        """Create the sandbox (raises ``SandboxError`` when it cannot)."""

    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` (argv, or a string for ``/bin/sh -c``) in the workdir.

        ``timeout`` defaults to the settings' ``verify_timeout``. A command that
        fails, times out or floods its output is a result, never an exception;
        ``SandboxError`` means the sandbox itself failed.
        """

    def write_file(self, path: str, data: str | bytes) -> None:
        """Write a file (a path relative to, or inside, the workdir)."""

    def read_file(self, path: str) -> bytes:
        """Read a file from the workdir."""

    def stop(self) -> None:
        """Remove the sandbox and everything in it (safe to call twice)."""

    def verifier(self, settings: SandboxSettings | None = None) -> Sandbox:
        """A new, unstarted sandbox that shares this one's workdir (stateless mode).

        The verifier sees the files this sandbox left in its workdir and nothing
        else: not its processes (they are ended first), its ``/tmp`` or its
        environment. ``settings`` (default: this sandbox's) must name the same
        backend. Stopping the verifier leaves the workdir to this sandbox's ``stop``.
        """

    def __enter__(self) -> Sandbox: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseSandbox:
    """Shared behaviour of the backends: settings, the context manager, checks.

    Subclasses set ``kind`` and ``setting_names`` (the settings the backend really
    applies; the config refuses the others) and implement the protocol's methods.
    """

    kind: ClassVar[str] = ""
    setting_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    @classmethod
    def check(cls, settings: SandboxSettings) -> None:
        """Raise :class:`SandboxUnavailable` when this backend cannot run here."""

    def start(self) -> None:  # pragma: no cover - every backend overrides
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every backend overrides
        raise NotImplementedError

    def verifier(self, settings: SandboxSettings | None = None) -> BaseSandbox:
        """A new sandbox on this one's workdir (see :meth:`Sandbox.verifier`)."""
        settings = settings or self.settings
        if settings.type != self.settings.type:
            raise SandboxError(
                f"sandbox {settings.name!r} (type {settings.type}) cannot verify in "
                f"the workdir of sandbox {self.settings.name!r} "
                f"(type {self.settings.type}): use the same type"
            )
        self._end_processes()
        box = type(self)(settings)
        box._adopt_workdir(self)
        return box

    def _end_processes(self) -> None:
        """End whatever this sandbox still runs (backends with long-lived processes)."""

    def _adopt_workdir(self, owner: BaseSandbox) -> None:  # pragma: no cover
        """Use ``owner``'s workdir instead of making one (every backend overrides)."""
        raise NotImplementedError

    @classmethod
    def probe(cls, settings: SandboxSettings) -> None:
        """Run ``true`` through a real sandbox of these settings, or raise.

        Backends call it from ``check``: a broken chain (a missing tool in an image,
        a helper that cannot start) would otherwise make every command fail and
        every item score 0.

        Raises:
            SandboxUnavailable: The sandbox did not start or ``true`` failed.
        """
        where = f"sandbox {settings.name!r} (type {settings.type})"
        box = cls(settings)
        try:
            box.start()
            result = box.exec(["true"], timeout=max(settings.verify_timeout, 30.0))
        except SandboxError as exc:
            raise SandboxUnavailable(f"{where} does not work here: {exc}") from None
        finally:
            box.stop()
        if not result.ok:
            raise SandboxUnavailable(
                f"{where} cannot run a command (`true` exited {result.exit_code}): "
                f"{result.stderr.strip()[-300:]}"
            )

    def _relative(self, path: str) -> PurePosixPath:
        """``path`` relative to the workdir ``/box`` (the sandboxes' workdir inside);
        it must not leave it."""
        pure = PurePosixPath(path)
        if pure.is_absolute():
            try:
                pure = pure.relative_to(WORKDIR)
            except ValueError:
                raise SandboxError(
                    f"sandbox {self.settings.name!r}: {path!r} is outside {WORKDIR}"
                ) from None
        if ".." in pure.parts or not pure.parts:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: {path!r} leaves the workdir"
            )
        return pure

    def timeout_of(self, timeout: float | None) -> float:
        """The wall-clock limit of one exec (the settings' default when None)."""
        return self.settings.verify_timeout if timeout is None else float(timeout)

    def __enter__(self) -> BaseSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[BaseSandbox]] = {}


def sandbox_backend(name: str) -> Callable[[type[BaseSandbox]], type[BaseSandbox]]:
    """Register a backend class under ``name`` (a class decorator)."""

    def register(cls: type[BaseSandbox]) -> type[BaseSandbox]:
        cls.kind = name
        _REGISTRY[name] = cls
        return cls

    return register


def known_backends() -> list[str]:
    """Names of the built-in and entry-point backends."""
    names = set(BUILTIN_BACKENDS) | set(_REGISTRY)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_backend(name: str) -> type[BaseSandbox]:
    """The backend class registered as ``name``.

    Raises:
        KeyError: Unknown name; the message lists the known backends.
    """
    if name not in _REGISTRY:
        if name in BUILTIN_BACKENDS:
            importlib.import_module(BUILTIN_BACKENDS[name])
        else:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.name == name:
                    ep.load()
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown sandbox type {name!r}; known: {', '.join(known_backends())}"
        )
    return _REGISTRY[name]


def make_sandbox(settings: SandboxSettings) -> BaseSandbox:
    """A new, not yet started sandbox of the settings' backend."""
    return get_backend(settings.type)(settings)


# --------------------------------------------------------------------------- sizes

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": 1024 * MIB, "t": 1024**4}


def parse_size(value: str | int | float) -> int:
    """Bytes from a Docker-style size (``512m``, ``4g``, ``64MiB``, or a number).

    Raises:
        ValueError: Not a size, or not positive.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512m or 4g, not a boolean")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(value)
        if match is None:
            raise ValueError("expected a size such as 512m, 4g or a number of bytes")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = number * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise ValueError("a size must be at least 1 byte")
    return int(size)
