"""The ``docker`` sandbox: a container per sandbox, on a real Docker engine.

``start`` creates two things, both labelled ``org.pytest-nel.sandbox`` with the owning
host and process:

- a volume for the workdir ``/box``: a size-capped tmpfs (``workdir_size``) owned by
  the sandbox user, so a verifier container can mount it too (stateless mode);
- a container of ``image`` (default ``nel/python:3.11``, built by
  ``nel sandbox build-image``) that only keeps the sandbox alive (``sleep infinity``
  under docker's init, which reaps orphans), with no network (``network_mode: none``),
  a read-only root, a size-capped ``/tmp``, memory (swap included), CPU and process
  limits, file-size and open-file rlimits, no capabilities and ``no-new-privileges``.

Every ``exec`` runs as the unprivileged user 65534 in ``/box`` with a minimal
environment (PATH, HOME, LANG only: nothing of the caller's, so no API key). Its output
is read from the exec's stream as it comes, with a wall-clock deadline and a cap on
what is kept; past either, every process of the sandbox user is killed
(``kill -KILL -1`` as that user: the keeper runs as root and survives) and the result
is marked ``timed_out`` or ``truncated``. Files go in and out with the engine's archive
API.

``stop`` removes the container and the volume. A process that exits without calling
it (an exception, Ctrl-C) removes them at interpreter exit; one that is killed leaves
them behind, and the next ``check`` in a process of the same host removes those whose
owner is gone.

The engine is found as the docker SDK finds it (``DOCKER_HOST``, else
``/var/run/docker.sock``). Nothing is pulled: the image must be in the engine.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import secrets
import socket
import tarfile
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_nel.sandboxes._docker_stream import ExecStream
from pytest_nel.sandboxes.protocol import (
    WORKDIR,
    BaseSandbox,
    ExecResult,
    SandboxError,
    SandboxSettings,
    SandboxUnavailable,
    sandbox_backend,
)

if TYPE_CHECKING:  # pragma: no cover
    import docker

DEFAULT_IMAGE = "nel/python:3.11"
LABEL = "org.pytest-nel.sandbox"
OWNER = f"{LABEL}.owner"
USER = "65534:65534"
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}
API_TIMEOUT = 60  # seconds per engine call
API_VERSION = "1.41"
_checked: set[tuple[str, str]] = set()
_serial = itertools.count()


def engine_address() -> str:
    """Where the docker SDK looks for the engine (for messages)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


_client_cache: dict[str, docker.DockerClient] = {}


def client() -> docker.DockerClient:
    """The process's docker client for the current ``DOCKER_HOST``.

    Raises:
        SandboxUnavailable: The docker SDK is not installed.
    """
    address = engine_address()
    cached = _client_cache.get(address)
    if cached is not None:
        return cached
    try:
        import docker
    except ImportError:  # pragma: no cover - a core dependency
        raise SandboxUnavailable(
            "the docker sandbox needs the docker SDK: pip install docker"
        ) from None
    # A fixed API version (that of Docker 20.10, which newer engines serve too):
    # "auto" would ask the engine at once, and leak a socket when it is down.
    made = docker.from_env(version=API_VERSION, timeout=API_TIMEOUT)
    _client_cache[address] = made
    return made


def reachable(address: str | None = None) -> str | None:
    """None when the engine's unix socket accepts a connection, else why not.

    Checked by hand first: the SDK leaks the socket of a failed unix connection.
    Other addresses (tcp, ssh) are left to the SDK.
    """
    address = address or engine_address()
    if not address.startswith("unix://"):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(5)
        probe.connect(address.removeprefix("unix://"))
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        probe.close()
    return None


def _engine_errors() -> tuple[type[BaseException], ...]:
    """What a failed engine call raises (SDK errors, HTTP and socket errors)."""
    import docker.errors
    import requests

    return (docker.errors.DockerException, requests.RequestException, OSError)


@sandbox_backend("docker")
class DockerSandbox(BaseSandbox):
    """A container on a Docker engine (see the module docstring)."""

    setting_names = frozenset(
        {
            "image",
            "memory",
            "cpus",
            "network",
            "verify_timeout",
            "workdir_size",
            "file_size",
            "pids",
            "max_output",
        }
    )

    def __init__(self, settings: SandboxSettings) -> None:
        super().__init__(settings)
        self.image = settings.image or DEFAULT_IMAGE
        self.volume: str | None = None
        self.container_id: str | None = None
        self._owns_volume = True
        self._engine: docker.DockerClient | None = None  # the engine it runs on
        self._address = engine_address()
        self._cleanup: weakref.finalize[Any, Any] | None = None

    # ------------------------------------------------------------------ checks
    @classmethod
    def check(cls, settings: SandboxSettings) -> None:
        """The engine answers and has the image; leftovers of dead runs are removed."""
        image = settings.image or DEFAULT_IMAGE
        where = f"sandbox {settings.name!r} (type docker)"
        key = (engine_address(), image)
        if key in _checked:
            return
        try:
            problem = reachable()
            if problem is not None:
                raise OSError(problem)
            engine = client()
            engine.ping()
        except _engine_errors() as exc:
            raise SandboxUnavailable(
                f"{where}: no Docker engine answers at {engine_address()} ({exc}); "
                "install docker.io and start dockerd, or set DOCKER_HOST "
                "(docs/sandboxes.md shows how)"
            ) from None
        try:
            engine.images.get(image)
        except _engine_errors() as exc:
            if getattr(exc, "status_code", None) != 404:
                raise SandboxUnavailable(
                    f"{where}: cannot inspect {image!r}: {exc}"
                ) from None
            hint = (
                "build it with `nel sandbox build-image`"
                if image == DEFAULT_IMAGE
                else "build or load it into this engine (nothing is pulled)"
            )
            raise SandboxUnavailable(
                f"{where}: image {image!r} is not in the engine at "
                f"{engine_address()}: {hint}"
            ) from None
        remove_orphans()
        cls.probe(settings)
        _checked.add(key)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the workdir volume (unless adopted) and the container."""
        if self.container_id is not None:
            return
        name = f"nel-sbx-{os.getpid()}-{next(_serial)}-{secrets.token_hex(3)}"
        labels = {LABEL: "1", OWNER: _owner()}
        s = self.settings
        try:
            if self._engine is None:
                self._engine, self._address = client(), engine_address()
            engine = self._engine
            if self.volume is None:
                engine.volumes.create(
                    name=name,
                    driver="local",
                    driver_opts={
                        "type": "tmpfs",
                        "device": "tmpfs",
                        "o": f"size={s.workdir_size},uid=65534,gid=65534,mode=0700",
                    },
                    labels=labels,
                )
                self.volume = name
                self._cleanup = weakref.finalize(self, _remove, engine, None, name)
            container = engine.containers.run(
                self.image,
                ["sleep", "infinity"],
                name=name,
                detach=True,
                init=True,
                hostname="sandbox",
                labels=labels,
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={s.workdir_size},mode=1777"},
                volumes={self.volume: {"bind": WORKDIR, "mode": "rw"}},
                working_dir=WORKDIR,
                mem_limit=s.memory,
                memswap_limit=s.memory,
                nano_cpus=int(s.cpus * 1e9),
                pids_limit=s.pids,
                ulimits=_ulimits(s),
                environment=ENV,
            )
        except _engine_errors() as exc:
            if self._engine is not None:  # created but not started: remove by name
                _remove(self._engine, name, None)
            self.stop()
            raise SandboxError(
                f"sandbox {s.name!r} (type docker) cannot start a container of "
                f"{self.image!r} at {engine_address()}: {exc}"
            ) from exc
        self.container_id = container.id
        if self._cleanup is not None:
            self._cleanup.detach()
        volume = self.volume if self._owns_volume else None
        self._cleanup = weakref.finalize(self, _remove, engine, container.id, volume)

    def stop(self) -> None:
        """Remove the container and (unless a verifier's) the volume."""
        self.container_id = None
        self.volume = None
        if self._cleanup is not None:
            self._cleanup()

    def _end_processes(self) -> None:
        """Kill the sandbox user's processes; the container stays until ``stop``.

        It must: the workdir volume is a tmpfs that lives while a container mounts it.
        """
        if self.container_id is not None and not self._kill_all(self.container_id):
            raise SandboxError(
                f"sandbox {self.settings.name!r} (type docker): cannot end its "
                "processes before verification"
            )

    def _adopt_workdir(self, owner: BaseSandbox) -> None:
        assert isinstance(owner, DockerSandbox)
        if owner.volume is None:
            raise SandboxError(
                f"sandbox {owner.settings.name!r} is not started (call start())"
            )
        self.volume = owner.volume
        self._engine, self._address = owner._engine, owner._address
        self._owns_volume = False

    # ------------------------------------------------------------------ commands
    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in ``/box`` as the sandbox user (module docstring)."""
        container = self._started()
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        limit = self.timeout_of(timeout)
        started = time.monotonic()
        try:
            api = self._api()
            exec_id = api.exec_create(
                container,
                argv,
                stdin=data is not None,
                user=USER,
                workdir=WORKDIR,
                environment=ENV,
            )["Id"]
            raw, early = self._start_stream(exec_id)
        except _engine_errors() as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r} (type docker): cannot run "
                f"{argv[0]!r}: {exc}"
            ) from exc
        deadline = started + limit
        try:
            pump = ExecStream(raw, data, self.settings.max_output)
            if early and not pump._take(early):
                ended = None  # already past the output cap
            else:
                ended = pump.run(deadline, lambda: self._state(exec_id)[0])
        finally:
            with contextlib.suppress(OSError):
                raw.close()
        exit_code = None if ended is None else self._exit_code(exec_id, deadline)
        if exit_code is None or ended == "exited":
            # Past the deadline or the cap, or the command ended while something it
            # started still holds its output: nothing of it may outlive the exec.
            self._kill_all(container)
        return ExecResult(
            exit_code=137 if exit_code is None else exit_code,
            stdout=bytes(pump.out[1]).decode(errors="replace"),
            stderr=bytes(pump.out[2]).decode(errors="replace"),
            timed_out=exit_code is None and not pump.truncated,
            truncated=pump.truncated,
            duration=time.monotonic() - started,
        )

    def _start_stream(self, exec_id: str) -> tuple[socket.socket, bytes]:
        """Start an exec and return its raw stream socket and the first bytes of it.

        On a unix socket the HTTP upgrade is done here, by hand: the SDK's
        ``exec_start(socket=True)`` reads the response through a buffer and hands
        over the socket behind it, so output that arrived with the response head is
        lost (docker-py issue 3332). Other transports go through the SDK.
        """
        address = self._address
        if not address.startswith("unix://"):
            stream = self._api().exec_start(exec_id, socket=True)
            return getattr(stream, "_sock", stream), b""
        body = json.dumps({"Detach": False, "Tty": False}).encode()
        head = (
            f"POST /v{API_VERSION}/exec/{exec_id}/start HTTP/1.1\r\n"
            "Host: docker\r\nContent-Type: application/json\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(API_TIMEOUT)
            sock.connect(address.removeprefix("unix://"))
            sock.sendall(head + body)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("the engine closed the exec stream")
                received += chunk
            response, _, early = received.partition(b"\r\n\r\n")
            status = response.split(b"\r\n", 1)[0].split(b" ")
            if len(status) < 2 or status[1] not in (b"101", b"200"):
                raise OSError(f"the engine refused the exec: {response[:200]!r}")
        except BaseException:
            sock.close()
            raise
        return sock, early

    def _state(self, exec_id: str) -> tuple[bool, int | None]:
        """(running, exit code) of an exec, as the engine reports it."""
        try:
            state = self._api().exec_inspect(exec_id)
        except _engine_errors() as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r} (type docker): {exc}"
            ) from exc
        code = state.get("ExitCode")
        return bool(state.get("Running")), None if code is None else int(code)

    def _exit_code(self, exec_id: str, deadline: float) -> int | None:
        """The exec's exit code; None when it still runs at the deadline (a command
        that closed its output and went on)."""
        while True:
            running, code = self._state(exec_id)
            if not running and code is not None:
                return code
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    def _kill_all(self, container: str) -> bool:
        """SIGKILL every process of the sandbox user in the container; False when
        the engine could not be asked to."""
        try:
            api = self._api()
            kill = api.exec_create(
                container, ["/bin/sh", "-c", "kill -KILL -1"], user=USER
            )
            api.exec_start(kill["Id"])
        except _engine_errors():
            return False
        return True

    # ------------------------------------------------------------------ files
    def write_file(self, path: str, data: str | bytes) -> None:
        """Write a file (and its folders) in the workdir, owned by the sandbox user."""
        container = self._started()
        relative = self._relative(path)
        payload = data.encode() if isinstance(data, str) else data
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for parent in reversed(relative.parents[:-1]):
                folder = _member(str(parent), tarfile.DIRTYPE, 0o755)
                tar.addfile(folder)
            member = _member(str(relative), tarfile.REGTYPE, 0o644)
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        try:
            self._api().put_archive(container, WORKDIR, archive.getvalue())
        except _engine_errors() as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot write {path!r}: {exc}"
            ) from exc

    def read_file(self, path: str) -> bytes:
        """Read a regular file from the workdir."""
        container = self._started()
        relative = self._relative(path)
        try:
            chunks, _ = self._api().get_archive(container, f"{WORKDIR}/{relative}")
            archive = io.BytesIO(b"".join(chunks))
            with tarfile.open(fileobj=archive) as tar:
                member = tar.next()
                handle = tar.extractfile(member) if member is not None else None
                if member is None or handle is None or not member.isreg():
                    raise SandboxError(
                        f"sandbox {self.settings.name!r}: cannot read {path!r}: "
                        "not a regular file"
                    )
                return handle.read()
        except _engine_errors() as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot read {path!r}: {exc}"
            ) from exc

    def _api(self) -> docker.APIClient:
        assert self._engine is not None
        return self._engine.api

    def _started(self) -> str:
        if self.container_id is None:
            raise SandboxError(
                f"sandbox {self.settings.name!r} is not started (call start())"
            )
        return self.container_id


def _member(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 65534
    info.mtime = int(time.time())
    return info


def _ulimits(settings: SandboxSettings) -> list[Any]:
    from docker.types import Ulimit

    return [
        Ulimit(name="fsize", soft=settings.file_size, hard=settings.file_size),
        Ulimit(name="nofile", soft=256, hard=256),
        Ulimit(name="core", soft=0, hard=0),
    ]


def _owner() -> str:
    """``host:pid-namespace:pid``: which process made a sandbox (pids are only
    comparable within one host and one pid namespace)."""
    return f"{_namespace()}:{os.getpid()}"


def _namespace() -> str:
    try:
        pidns = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        pidns = "?"
    return f"{socket.gethostname()}:{pidns}"


def _remove(
    engine: docker.DockerClient, container: str | None, volume: str | None
) -> None:
    """Remove a container and a volume, whichever exist (errors ignored)."""
    errors = _engine_errors()
    if container is not None:
        with contextlib.suppress(*errors):
            engine.api.remove_container(container, force=True, v=False)
    if volume is not None:
        with contextlib.suppress(*errors):
            engine.api.remove_volume(volume, force=True)


def remove_orphans() -> int:
    """Remove sandboxes of this host and pid namespace whose owner is gone; how many."""
    here = _namespace()
    removed = 0
    with contextlib.suppress(*_engine_errors()):
        engine = client()
        listed = engine.api.containers(all=True, filters={"label": LABEL})
        volumes = engine.api.volumes(filters={"label": LABEL}).get("Volumes") or []
        for item in [*listed, *volumes]:
            labels = item.get("Labels") or {}
            owner_space, _, pid = labels.get(OWNER, "").rpartition(":")
            if owner_space != here or not pid.isdigit() or _alive(int(pid)):
                continue
            if "Id" in item:
                _remove(engine, item["Id"], None)
            else:
                _remove(engine, None, item["Name"])
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
