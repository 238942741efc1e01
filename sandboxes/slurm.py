"""The ``slurm`` sandbox: each command runs under bubblewrap on a SLURM compute node.

Every ``exec`` is one SLURM job started with ``srun`` (``--ntasks=1 --nodes=1``, the
settings' CPUs and memory, a time limit of the exec's timeout rounded up to minutes,
plus one): on the node it runs the very ``bwrap`` command of the ``local`` backend
(same read-only root, namespaces, unprivileged user, empty environment and rlimits;
see :mod:`pytest_nel.sandboxes.local`), with standard input passed through.

The cluster must let this machine submit jobs (``srun`` and ``sinfo`` installed,
``SLURM_CONF`` or the default config naming a controller that answers), and its
nodes need what ``local`` needs (bubblewrap, util-linux's ``setpriv`` and ``prlimit``,
``/usr/bin/python3``) and the same OS layout as this machine (the ``/usr``, ``/bin``,
``/lib`` links are read here). Jobs run as this user; as root, privileges are dropped
inside the sandbox exactly as ``local`` does.

Differences from ``local``:

- The workdir is a plain folder under ``shared_dir`` (default: the system's temporary
  folder, right for a single-node cluster; on several nodes, a folder that all of them
  and this machine see at the same path, such as an NFS share), owned by the sandbox
  user: no tmpfs mounted here could be seen from a node. So ``workdir_size`` caps the
  sandbox's ``/tmp`` only; what the command writes in ``/box`` is capped file by file
  (``file_size``), not in total.
- bwrap's JSON status (the command's exact exit code, or nothing when bubblewrap
  failed to set up) cannot cross ``srun``: the job writes it to a file beside the
  workdir (not in it, out of the command's reach), read back once ``srun`` returns.
  The job itself always exits 0, so ``srun`` adds no "task exited" line to stderr.
- The wall-clock ``timeout`` is applied on the node (coreutils ``timeout -s KILL``
  around bwrap), from the moment the command starts: time waiting in the queue is
  not the command's. Here, ``srun`` gets the timeout plus ``QUEUE_GRACE`` (30 s); a
  job that has not run its course by then is a ``SandboxError`` (the cluster failed,
  not the command), never a timed-out result. A node-side kill after the whole limit
  is reported as ``timed_out``. When the output cap (or the grace) kills ``srun``,
  the job is cancelled first (``scancel`` by its unique name) so nothing keeps
  running on the node and its CPUs are free at once; ``--time`` is a backstop.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from pytest_nel.sandboxes._process import run_captured
from pytest_nel.sandboxes.local import ENV, LocalSandbox, _exit_code
from pytest_nel.sandboxes.protocol import (
    MIB,
    BaseSandbox,
    ExecResult,
    SandboxError,
    SandboxSettings,
    SandboxUnavailable,
    sandbox_backend,
)

TOOLS = {
    "srun": "apt-get install -y slurm-client (Debian/Ubuntu)",
    "sinfo": "apt-get install -y slurm-client (Debian/Ubuntu)",
    "scancel": "apt-get install -y slurm-client (Debian/Ubuntu)",
}
#: Variables of this process that ``srun`` is given (it gets no other, so no API key
#: reaches the job; and none of an enclosing job's, so each exec is a job of its own).
PASSED_ENV = ("SLURM_CONF", "SLURM_ACCOUNT", "SLURM_QOS", "SLURM_RESERVATION")
#: Node states in which nothing runs (``sinfo -h -o %T``, flags such as ``*`` removed).
DEAD_STATES = frozenset(
    {"down", "drained", "draining", "fail", "failing", "inval", "not_responding"}
)
#: Seconds ``check`` waits for ``sinfo`` (a controller that is not there makes it retry
#: for 9 s, a missing config for 60 s).
CHECK_TIMEOUT = 5.0
#: Seconds a killed exec waits for ``scancel``, then for ``srun`` to see the job end.
CANCEL_TIMEOUT = 5.0
END_WAIT = 2.0
#: Run on the node: bwrap (the rest of the arguments) writes its JSON status to fd 3,
#: the file named by $1; the wrapper's own exit code is appended and the job exits 0.
NODE_SCRIPT = (
    "status=$1; limit=$2; shift 2; start=$(date +%s%N); "
    'timeout -s KILL "$limit" "$@" 3>"$status"; code=$?; end=$(date +%s%N); '
    'printf \'{"wrapper-exit": %d, "ran-ms": %d}\\n\' "$code" '
    '"$(( (end - start) / 1000000 ))" >>"$status"; exit 0'
)
#: Seconds a job may wait in the queue on top of the exec's timeout: the timeout
#: itself is applied on the node, from the moment the command starts.
QUEUE_GRACE = 30.0
_checked: set[tuple[str, str, float, int]] = set()
_serial = itertools.count()


@sandbox_backend("slurm")
class SlurmSandbox(LocalSandbox):
    """A bubblewrap sandbox on a SLURM compute node (see the module docstring)."""

    setting_names = LocalSandbox.setting_names | {"partition", "shared_dir"}

    @classmethod
    def check(cls, settings: SandboxSettings) -> None:
        """Check that the SLURM client tools are here, the controller answers, its
        partition has a live node, and bubblewrap runs there with these cpus and
        memory (one probe job, once per config, partition, cpus and memory)."""
        name = f"sandbox {settings.name!r} (type slurm)"
        for tool, install in TOOLS.items():
            if shutil.which(tool) is None:
                raise SandboxUnavailable(
                    f"{name} needs {tool!r}, which is not installed: {install}, and "
                    "a SLURM cluster this machine can submit jobs to"
                )
        conf = os.environ.get("SLURM_CONF", "")
        key = (conf, settings.partition or "", settings.cpus, settings.memory)
        if key in _checked:
            return
        where = f"SLURM_CONF={conf}" if conf else "the default slurm.conf"
        if conf and not Path(conf).is_file():
            raise SandboxUnavailable(f"{name}: {where} does not exist")
        _check_nodes(settings, name, where)
        _check_bwrap_on_node(settings, name)
        _checked.add(key)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the workdir: a folder under ``shared_dir`` owned by the sandbox
        user, inside a private folder that also holds the jobs' status files."""
        if self.host_dir is not None:
            return
        shared = self.settings.shared_dir or tempfile.gettempdir()
        try:
            base = Path(tempfile.mkdtemp(prefix="nel-slurmbox-", dir=shared))
        except OSError as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot make its workdir in "
                f"{shared}: {exc}"
            ) from exc
        # Also removed at interpreter exit if stop() never runs (a crash in between).
        self._cleanup = weakref.finalize(self, shutil.rmtree, base, ignore_errors=True)
        host = base / "box"
        host.mkdir(mode=0o700)
        if self._root:
            os.chown(host, self.uid, self.uid)
        self.host_dir = host

    def _adopt_workdir(self, owner: BaseSandbox) -> None:
        """Share ``owner``'s workdir and status folder; its ``stop`` removes them."""
        assert isinstance(owner, SlurmSandbox)
        super()._adopt_workdir(owner)

    # ------------------------------------------------------------------ commands
    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in ``/box`` under bubblewrap, as a SLURM job."""
        host = self._started()
        limit = self.timeout_of(timeout)
        job = f"nel-box-{os.getpid()}-{next(_serial)}-{secrets.token_hex(3)}"
        status_path = host.parent / f"{job}.status"
        bwrap = ["bwrap", "--json-status-fd", "3", *self._bwrap_args(host)[1:]]
        env_pairs = [f"{key}={value}" for key, value in ENV.items()]
        argv = [*_srun_args(self.settings, job, limit, host.parent)]
        argv += [
            "/bin/sh",
            "-c",
            NODE_SCRIPT,
            "nel-box",
            str(status_path),
            f"{limit:g}",
        ]
        argv += ["env", "-i", *env_pairs, *bwrap, *self._drop_privileges(limit)]
        argv += ["/bin/sh", "-c", command] if isinstance(command, str) else command
        if isinstance(stdin, str):
            stdin = stdin.encode()
        try:
            run = run_captured(
                argv,
                stdin=stdin,
                timeout=limit + QUEUE_GRACE,
                max_output=self.settings.max_output,
                env=_srun_env(),
                before_kill=functools.partial(_end_job, job),
            )
        except OSError as exc:
            raise SandboxError(f"sandbox {self.settings.name!r}: {exc}") from exc
        killed = run.timed_out or run.truncated
        try:
            status: bytes | None = status_path.read_bytes()
            status_path.unlink()
        except OSError:
            status = None  # the job never started: its shell makes the file first
        stderr = run.stderr.decode(errors="replace")
        if run.timed_out:  # the node applies the timeout: the job started too late
            raise SandboxError(
                f"sandbox {self.settings.name!r}: the SLURM job did not run its "
                f"{limit:g} s within {limit + QUEUE_GRACE:g} s (the cluster is busy "
                "or its controller does not answer): "
                f"{stderr.strip()[-500:] or 'srun said nothing'}"
            )
        status = status or b""
        node_timeout = _node_timed_out(status, limit)
        if not killed and not node_timeout and b'"exit-code"' not in status:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: the job failed to start or "
                f"bubblewrap failed to set up (srun exit {run.exit_code}, "
                f"{_wrapper_exit(status)}): {stderr.strip()[-500:]}"
            )
        return ExecResult(
            exit_code=137
            if killed or node_timeout
            else _exit_code(status, run.exit_code),
            stdout=run.stdout.decode(errors="replace"),
            stderr=stderr,
            timed_out=node_timeout,
            truncated=run.truncated,
            duration=run.duration,
        )


def _srun_args(
    settings: SandboxSettings, job: str, timeout: float, chdir: Path
) -> list[str]:
    """``srun`` and its options for one exec (``--time`` in minutes, rounded up)."""
    args = [
        shutil.which("srun") or "srun",
        "--ntasks=1",
        "--nodes=1",
        f"--cpus-per-task={max(1, math.ceil(settings.cpus))}",
        f"--mem={max(1, math.ceil(settings.memory / MIB))}",
        f"--time={math.ceil(timeout / 60) + 1}",
        f"--job-name={job}",
        f"--chdir={chdir}",
        "--quiet",
    ]
    if settings.partition:
        args.append(f"--partition={settings.partition}")
    return args


def _srun_env() -> dict[str, str]:
    """The environment of ``srun`` (and so of the job, until ``env -i`` empties it)."""
    env = {"PATH": ENV["PATH"], "LANG": ENV["LANG"]}
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


def _end_job(job: str, srun: subprocess.Popen[bytes]) -> None:
    """Cancel the job of an ``srun`` about to be killed, and let ``srun`` see it end.

    Called by ``run_captured`` at a timeout or output overflow. A killed ``srun``
    alone leaves the job completing for seconds (its node retries telling ``srun``
    that the task ended), holding its CPUs; cancelled while ``srun`` still listens
    (its output drained meanwhile, so it is not stuck writing), it is gone in
    milliseconds. ``srun`` is killed after this in any case.
    """
    _cancel(job)
    deadline = time.monotonic() + END_WAIT
    fds = [s.fileno() for s in (srun.stdout, srun.stderr) if s and not s.closed]
    while fds and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(fds, [], [], left)
        for fd in ready:
            if not os.read(fd, 65536):
                fds.remove(fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        srun.wait(timeout=max(0.0, deadline - time.monotonic()))


def _cancel(job: str) -> None:
    """Cancel the job by its name. Its processes get SIGTERM, which ends bwrap and
    with it the sandbox's whole pid namespace (``--die-with-parent``), whatever the
    command itself ignores."""
    scancel = shutil.which("scancel") or "scancel"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [scancel, "--quiet", f"--name={job}"],
            env=_srun_env(),
            capture_output=True,
            timeout=CANCEL_TIMEOUT,
            check=False,
        )


def _node_timed_out(status: bytes, limit: float) -> bool:
    """The node's ``timeout`` killed the command: exit 137 after the whole limit."""
    for line in status.splitlines():
        if b"wrapper-exit" in line:
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                ran = report.get("ran-ms", 0) / 1000
                return bool(report["wrapper-exit"] == 137 and ran >= limit - 0.05)
    return False


def _wrapper_exit(status: bytes) -> str:
    """The node wrapper's report of bwrap's exit code, for error messages."""
    for line in status.splitlines():
        if b"wrapper-exit" in line:
            return f"bwrap exit {line.split(b':')[-1].strip(b' }').decode()}"
    return "no status file from the node"


def _check_nodes(settings: SandboxSettings, name: str, where: str) -> None:
    """Raise unless ``sinfo`` answers in time and shows a node that is not dead."""
    argv = [shutil.which("sinfo") or "sinfo", "-h", "-o", "%T"]
    if settings.partition:
        argv.append(f"--partition={settings.partition}")
    hint = (
        "start slurmctld and slurmd (pytest_nel.testing.slurm_cluster starts a "
        "one-node cluster here), or set SLURM_CONF to your cluster's slurm.conf"
    )
    try:
        done = subprocess.run(
            argv,
            env=_srun_env(),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        said = exc.stderr or b""  # bytes even with text=True (cut short)
        if isinstance(said, bytes):
            said = said.decode(errors="replace")
        raise SandboxUnavailable(
            f"{name}: the SLURM controller of {where} did not answer sinfo within "
            f"{CHECK_TIMEOUT:g} s ({said.strip()[-300:] or 'no output'}): {hint}"
        ) from None
    if done.returncode != 0:
        raise SandboxUnavailable(
            f"{name}: the SLURM controller of {where} does not answer "
            f"({done.stderr.strip()[-300:]}): {hint}"
        )
    states = [state.rstrip("*~#!%$@^-+") for state in done.stdout.split()]
    if not states or all(state in DEAD_STATES for state in states):
        partition = (
            f"partition {settings.partition!r}"
            if settings.partition
            else "the default partition"
        )
        raise SandboxUnavailable(
            f"{name}: {partition} has no node that can run jobs, or does not "
            f"exist (node states: {', '.join(states) or 'none'}): {hint}"
        )


def _check_bwrap_on_node(settings: SandboxSettings, name: str) -> None:
    """Raise unless bubblewrap can make its namespaces on a compute node."""
    probe = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid"]
    if os.geteuid() != 0:
        probe.append("--unshare-user")
    job = f"nel-check-{os.getpid()}-{secrets.token_hex(3)}"
    argv = [*_srun_args(settings, job, CHECK_TIMEOUT, Path("/"))]
    argv += [*probe, "--", "true"]
    try:
        done = subprocess.run(
            argv,
            env=_srun_env(),
            capture_output=True,
            text=True,
            timeout=max(CHECK_TIMEOUT, 30.0),
            check=False,
        )
    except subprocess.TimeoutExpired:
        _cancel(job)
        raise SandboxUnavailable(
            f"{name}: a probe job did not run within 30 s (is the cluster busy, or "
            "its nodes down?)"
        ) from None
    if done.returncode != 0:
        raise SandboxUnavailable(
            f"{name}: a probe job (bubblewrap on a compute node, with this "
            f"sandbox's cpus and memory) failed: {done.stderr.strip()[-300:]} "
            "(install bubblewrap and util-linux on every node, run as root or allow "
            "unprivileged user namespaces there, and ask for cpus and memory that "
            "a node has)"
        )
