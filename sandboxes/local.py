"""The ``local`` sandbox: each command runs under bubblewrap on this machine.

Every ``exec`` starts a fresh ``bwrap`` with:

- a read-only root that holds only ``/usr`` (and its ``/bin``, ``/lib`` links) and a
  few files of ``/etc``: no home folders, no project files, no host secrets;
- no network (a private network namespace with only ``lo``), private pid, ipc and uts
  namespaces, a new session, and death with its parent;
- the workdir ``/box``: a size-capped tmpfs (``workdir_size``) owned by the sandbox
  user, which persists between the sandbox's commands until ``stop``; ``/tmp`` is a
  size-capped tmpfs of each command;
- a real unprivileged user: as root, ``bwrap --uid`` would still be root to the
  kernel, so privileges are dropped with ``setpriv`` inside, to a uid of the sandbox's
  own (100000 and up, held by a lock file while the sandbox lives, so no two live
  sandboxes of this machine share one and their process limits do not add up);
  as another user, bwrap's user namespace runs the command as that (unprivileged)
  user, shown as 65534;
- an empty environment: bwrap itself is started with only PATH, HOME, TMPDIR, LANG
  and PYTHONDONTWRITEBYTECODE, which is all its command inherits;
- rlimits through ``prlimit``: address space (``memory``), CPU seconds (``cpus`` x the
  exec's timeout, + 1), file size (``file_size``), processes (``pids``, counted per
  uid), open files, no core dumps;
- a wall-clock timeout and a cap on captured output (``_process.run_captured``).

bubblewrap comes from the ``bubblewrap`` package (``apt-get install -y bubblewrap``);
``setpriv`` and ``prlimit`` from util-linux. Without root, the workdir is a plain
temporary folder (no size cap beyond ``file_size``) since only root can mount a tmpfs
that outlives one command.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import itertools
import json
import math
import os
import shutil
import stat
import subprocess
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_nel.sandboxes import _cgroups
from pytest_nel.sandboxes._process import run_captured
from pytest_nel.sandboxes.protocol import (
    WORKDIR,
    BaseSandbox,
    ExecResult,
    SandboxError,
    SandboxSettings,
    SandboxUnavailable,
    sandbox_backend,
)

SANDBOX_UID = 65534  # the uid commands see without root (user namespace)
UID_BASE, UID_SPAN = 100_000, 800_000  # as root: one real uid per sandbox
UID_LOCKS = "/run/pytest-nel-uids"  # a lock file per uid in use (see _UidLease)
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/alternatives",
)
TOOLS = {
    "bwrap": "apt-get install -y bubblewrap (Debian/Ubuntu) or dnf install bubblewrap",
    "setpriv": "apt-get install -y util-linux",
    "prlimit": "apt-get install -y util-linux",
}
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
_checked: set[str] = set()
_serial = itertools.count()


@sandbox_backend("local")
class LocalSandbox(BaseSandbox):
    """A bubblewrap sandbox on this machine (see the module docstring)."""

    setting_names = frozenset(
        {
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
        self.host_dir: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None
        self._root = os.geteuid() == 0
        # Process limits count per uid: a uid of its own keeps one sandbox's fork bomb
        # from starving another's (xdist workers run theirs at the same time).
        self._group: _cgroups.Group | None = None
        self._group_tried = False
        self._lease = _UidLease() if self._root else None
        self.uid = self._lease.uid if self._lease else SANDBOX_UID
        if self._lease is not None:
            weakref.finalize(self, self._lease.release)

    @classmethod
    def check(cls, settings: SandboxSettings) -> None:
        """Check that bubblewrap and util-linux are there and that bwrap can run."""
        for tool, install in TOOLS.items():
            if shutil.which(tool) is None:
                raise SandboxUnavailable(
                    f"sandbox {settings.name!r} (type local) needs {tool!r}, "
                    f"which is not installed: {install}"
                )
        bwrap = shutil.which("bwrap") or "bwrap"
        if bwrap in _checked:
            return
        probe = [bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid"]
        if os.geteuid() != 0:
            probe.append("--unshare-user")
        done = subprocess.run([*probe, "--", "true"], capture_output=True, check=False)
        if done.returncode != 0:
            raise SandboxUnavailable(
                f"sandbox {settings.name!r} (type local): bubblewrap cannot create "
                f"namespaces here: {done.stderr.decode(errors='replace').strip()} "
                "(run as root, or allow unprivileged user namespaces: "
                "sysctl kernel.unprivileged_userns_clone=1)"
            )
        cls.probe(settings)
        _checked.add(bwrap)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the workdir (as root: a size-capped tmpfs mounted for it)."""
        if self.host_dir is not None:
            return
        host = Path(tempfile.mkdtemp(prefix="nel-box-"))
        mounted = False
        if self._root:
            _mount_tmpfs(host, self.settings, self.uid)
            mounted = True
        self.host_dir = host
        # Also removed at interpreter exit if stop() never runs (a crash in between).
        self._cleanup = weakref.finalize(self, _remove_workdir, host, mounted)

    def stop(self) -> None:
        """Unmount and remove the workdir (a verifier leaves it to its owner)."""
        self.host_dir = None
        if self._cleanup is not None:
            self._cleanup()
        if self._lease is not None:
            self._lease.release()
        if self._group is not None:
            self._group.remove()
            self._group, self._group_tried = None, False

    def _cgroup(self) -> _cgroups.Group | None:
        """This sandbox's cgroup (as root, where the hierarchy is writable), made on
        first use and removed with the sandbox; None: rlimits only."""
        if self._group is None and self._root and not self._group_tried:
            self._group_tried = True
            s = self.settings
            name = f"box-{os.getpid()}-{next(_serial)}-{self.uid}"
            self._group = _cgroups.make_group(
                name, memory=s.memory, pids=s.pids, cpus=s.cpus
            )
            if self._group is not None:
                weakref.finalize(self, self._group.remove)
        return self._group

    def _adopt_workdir(self, owner: BaseSandbox) -> None:
        assert isinstance(owner, LocalSandbox)
        self.host_dir = owner._started()
        if self._lease is not None:
            self._lease.release()
        self.uid = owner.uid  # the workdir and its files belong to the owner's uid

    # ------------------------------------------------------------------ commands
    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in ``/box`` under bubblewrap (see the module docstring)."""
        host = self._started()
        limit = self.timeout_of(timeout)
        argv = [*self._bwrap_args(host), *self._drop_privileges(limit)]
        argv += ["/bin/sh", "-c", command] if isinstance(command, str) else command
        if isinstance(stdin, str):
            stdin = stdin.encode()
        status_r, status_w = os.pipe()
        argv = [*argv[:1], "--json-status-fd", str(status_w), *argv[1:]]
        group = self._cgroup()
        try:
            run = run_captured(
                group.join_argv(argv) if group is not None else argv,
                stdin=stdin,
                timeout=limit,
                max_output=self.settings.max_output,
                env=ENV,
                pass_fds=(status_w,),
            )
        except OSError as exc:
            raise SandboxError(f"sandbox {self.settings.name!r}: {exc}") from exc
        finally:
            os.close(status_w)
            with os.fdopen(status_r, "rb") as status_file:
                status = status_file.read()
        stderr = run.stderr.decode(errors="replace")
        killed = run.timed_out or run.truncated
        if not killed and b'"exit-code"' not in status:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: bubblewrap failed to set up "
                f"(exit {run.exit_code}): {stderr.strip()[-500:]}"
            )
        return ExecResult(
            exit_code=137 if killed else _exit_code(status, run.exit_code),
            stdout=run.stdout.decode(errors="replace"),
            stderr=stderr,
            timed_out=run.timed_out,
            truncated=run.truncated,
            duration=run.duration,
        )

    def _bwrap_args(self, host: Path) -> list[str]:
        s = self.settings
        args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session"]
        if self._root:
            args += ["--unshare-net", "--unshare-pid", "--unshare-ipc"]
            args += ["--unshare-uts", "--unshare-cgroup-try"]
        else:
            args += ["--unshare-all", "--uid", str(SANDBOX_UID)]
            args += ["--gid", str(SANDBOX_UID)]
        args += ["--hostname", "sandbox", "--tmpfs", "/", *_usr_args()]
        args += ["--perms", "0755", "--dir", "/etc"]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(s.workdir_size), "--tmpfs", "/tmp"]
        args += ["--bind", str(host), WORKDIR, "--chdir", WORKDIR, "--remount-ro", "/"]
        return [*args, "--"]

    def _drop_privileges(self, timeout: float) -> list[str]:
        s = self.settings
        args: list[str] = []
        if self._root:
            ids = str(self.uid)
            args += ["setpriv", f"--reuid={ids}", f"--regid={ids}", "--clear-groups"]
            args += ["--"]
        cpu = math.ceil(timeout * s.cpus) + 1
        return [
            *args,
            "prlimit",
            f"--as={s.memory}",
            f"--cpu={cpu}",
            f"--fsize={s.file_size}",
            f"--nproc={s.pids}",
            "--nofile=256",
            "--core=0",
            "--",
        ]

    # ------------------------------------------------------------------ files
    def write_file(self, path: str, data: str | bytes) -> None:
        """Write a file in the workdir, owned by the sandbox user (folders too)."""
        payload = data.encode() if isinstance(data, str) else data
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            fd = self._open_inside(path, flags, make_folders=True)
            with os.fdopen(fd, "wb") as handle:
                if self._root:
                    os.fchown(handle.fileno(), self.uid, self.uid)
                handle.write(payload)
        except OSError as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot write {path!r}: {exc}"
            ) from exc

    def read_file(self, path: str) -> bytes:
        """Read a regular file from the workdir (links are not followed)."""
        try:
            fd = self._open_inside(path, os.O_RDONLY, make_folders=False)
            with os.fdopen(fd, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot read {path!r}: {exc}"
            ) from exc

    def _open_inside(self, path: str, flags: int, *, make_folders: bool) -> int:
        """Open a regular file of the workdir, one component at a time.

        No component may be a link (``O_NOFOLLOW`` at every step, so a link the
        sandboxed code swaps in cannot lead outside), and the file must be a regular
        one (opened non-blocking first: a FIFO left there cannot hang us).

        Raises:
            SandboxError: The path leaves the workdir.
            OSError: A component is a link, missing, or not a regular file.
        """
        parts = self._relative(path).parts
        folder = os.open(self._started(), os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in parts[:-1]:
                if make_folders:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=folder)
                        if self._root:
                            os.chown(
                                name,
                                self.uid,
                                self.uid,
                                dir_fd=folder,
                                follow_symlinks=False,
                            )
                inner = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder
                )
                os.close(folder)
                folder = inner
            fd = os.open(
                parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=folder
            )
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
        return fd

    def _started(self) -> Path:
        if self.host_dir is None:
            raise SandboxError(
                f"sandbox {self.settings.name!r} is not started (call start())"
            )
        return self.host_dir


def _usr_args() -> list[str]:
    """Bind /usr read-only, and /bin, /lib, ... as the host has them (links or dirs)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


def _exit_code(status: bytes, fallback: int) -> int:
    """The command's exit code from bwrap's JSON status lines."""
    for line in status.splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if "exit-code" in data:
                return int(data["exit-code"])
    return fallback


def _mount_tmpfs(host: Path, settings: SandboxSettings, uid: int) -> None:
    """Mount a size-capped tmpfs owned by ``uid`` on ``host`` (needs root)."""
    options = f"size={settings.workdir_size},uid={uid},gid={uid},mode=0700"
    flags = _MS_NOSUID | _MS_NODEV
    if _libc().mount(b"tmpfs", bytes(host), b"tmpfs", flags, options.encode()):
        err = ctypes.get_errno()
        host.rmdir()
        raise SandboxError(
            f"sandbox {settings.name!r}: cannot mount its tmpfs workdir: "
            f"{os.strerror(err)}"
        )


def _remove_workdir(host: Path, mounted: bool) -> None:
    if mounted:
        _libc().umount2(bytes(host), _MNT_DETACH)
    shutil.rmtree(host, ignore_errors=True)


class _UidLease:
    """An unprivileged uid held by one live sandbox of this machine (as root).

    Process limits count per uid, so no two live sandboxes may share one, whichever
    process (xdist worker, other run) they belong to: the uid is held by an exclusive
    lock on ``UID_LOCKS/<uid>``, released by ``release`` or when the process dies.
    """

    def __init__(self) -> None:
        os.makedirs(UID_LOCKS, mode=0o700, exist_ok=True)
        start = (os.getpid() * 64 + next(_serial)) % UID_SPAN
        for step in range(UID_SPAN):
            uid = UID_BASE + (start + step) % UID_SPAN
            fd = os.open(f"{UID_LOCKS}/{uid}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise SandboxError("no free sandbox uid")  # pragma: no cover

    def release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library of this process (for mount and umount2)."""
    return ctypes.CDLL(None, use_errno=True)
