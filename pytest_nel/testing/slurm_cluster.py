"""A real single-node SLURM cluster on this machine, for tests and local runs.

::

    from pytest_nel.testing.slurm_cluster import start_cluster, stop_cluster

    conf = start_cluster()              # /tmp/nel-slurm-<uid>/slurm.conf
    os.environ["SLURM_CONF"] = str(conf)
    subprocess.run(["srun", "hostname"], check=True)
    stop_cluster()                      # only when nothing else still uses it

:func:`start_cluster` writes a ``slurm.conf`` (and keeps the controller's state, spool,
pid and log files) under one directory, starts ``slurmctld`` and ``slurmd`` as detached
daemons (their own session, so they outlive the calling process and serve later test
runs too) and returns once the node is idle. It needs no munge
(``AuthType=auth/none``, ``CredType=cred/none``), no systemd and no accounting
database; it runs as root (the daemons' ``SlurmUser``). The node gets this machine's
CPUs and most of its memory.

It is idempotent and safe to call from several processes at once (pytest-xdist
workers): an ``fcntl`` lock in the directory serializes the calls, and a cluster of
that directory that already answers ``sinfo`` is reused rather than started again.
:func:`stop_cluster` ends the daemons by their pid files.

The packages: ``apt-get install -y --no-install-recommends slurmctld slurmd
slurm-client`` (Debian/Ubuntu). Nothing else on the machine should listen on the
controller's and node's ports (6817 and 6818 unless given).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "SlurmClusterError",
    "cluster_dir",
    "is_running",
    "start_cluster",
    "stop_cluster",
    "write_config",
]

#: Node states in which jobs can run (``sinfo -h -o %T``).
USABLE_STATES = frozenset({"idle", "mixed", "allocated", "completing"})
DAEMONS = ("slurmctld", "slurmd")
INSTALL = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client"
LOG_TAIL_LINES = 15


class SlurmClusterError(RuntimeError):
    """The cluster could not be started (the message holds its logs' tails)."""


def cluster_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The cluster's directory: ``directory``, or ``/tmp/nel-slurm-<uid>``."""
    if directory is not None:
        return Path(directory)
    return Path("/tmp") / f"nel-slurm-{os.getuid()}"


def write_config(
    directory: str | os.PathLike[str] | None = None,
    *,
    ctld_port: int = 6817,
    slurmd_port: int = 6818,
    cpus: int | None = None,
    memory_mb: int | None = None,
) -> Path:
    """Write ``slurm.conf`` for a one-node cluster under ``directory``; its path.

    The settings are those of the project's ENVIRONMENT.md (no munge, no accounting,
    ``select/cons_tres`` by core), plus ``SchedulerParameters=batch_sched_delay=0``:
    a job that had to wait for a CPU starts within a second of one freeing, not
    three. Nothing is started: the config alone also serves as one of a controller
    that is not there (tests of clients that must fail clearly).

    Args:
        directory: Where the config, state, spool, pid and log files go (default:
            :func:`cluster_dir`).
        ctld_port: The controller's port (``SlurmctldPort``).
        slurmd_port: The node daemon's port (``SlurmdPort``).
        cpus: The node's CPUs (default: ``os.cpu_count()``).
        memory_mb: The node's memory in MiB (default: 90% of this machine's).
    """
    root = cluster_dir(directory).resolve()
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cpus = cpus or os.cpu_count() or 1
    memory_mb = memory_mb or _memory_mb()
    settings = {
        "ClusterName": "nel",
        "SlurmctldHost": "localhost(127.0.0.1)",
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "SlurmctldPort": ctld_port,
        "SlurmdPort": slurmd_port,
        "AuthType": "auth/none",
        "CredType": "cred/none",
        "StateSaveLocation": root / "state",
        "SlurmdSpoolDir": root / "spool",
        "SlurmctldPidFile": root / "slurmctld.pid",
        "SlurmdPidFile": root / "slurmd.pid",
        "SlurmctldLogFile": root / "slurmctld.log",
        "SlurmdLogFile": root / "slurmd.log",
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_Core",
        "MpiDefault": "none",
        "ReturnToService": 2,
        "MailProg": "/bin/true",
        "SchedulerParameters": "batch_sched_delay=0",
    }
    lines = [f"{key}={value}" for key, value in settings.items()]
    lines.append(
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} "
        f"RealMemory={memory_mb} State=UNKNOWN"
    )
    lines.append("PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
    conf = root / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def is_running(conf: str | os.PathLike[str], *, timeout: float = 5.0) -> bool:
    """True when the cluster of ``conf`` (written by :func:`write_config`) runs:
    its daemons, by the pid files beside ``conf``, are alive, its controller
    answers and is this one (not another cluster's on the same port), and its
    node can run jobs."""
    conf = Path(conf).resolve()
    if any(_pid_of(conf.parent, name) is None for name in DAEMONS):
        return False  # (asking a controller that is not there takes 9 s)
    return _node_state(conf.parent, conf, timeout) in USABLE_STATES


def start_cluster(
    directory: str | os.PathLike[str] | None = None,
    *,
    ctld_port: int = 6817,
    slurmd_port: int = 6818,
    cpus: int | None = None,
    memory_mb: int | None = None,
    timeout: float = 30.0,
) -> Path:
    """Start (or reuse) the single-node cluster of ``directory``; its ``slurm.conf``.

    Callers set ``SLURM_CONF`` to the returned path for ``srun``, ``sinfo``... A
    cluster of this directory that already answers is reused as it is (the other
    arguments then do not apply); otherwise stale daemons of the directory are
    ended, the config is rewritten and both daemons start afresh, with the
    controller's saved state cleared.

    Args:
        directory: The cluster's directory (default: :func:`cluster_dir`).
        ctld_port: The controller's port.
        slurmd_port: The node daemon's port.
        cpus: The node's CPUs (default: ``os.cpu_count()``).
        memory_mb: The node's memory in MiB (default: 90% of this machine's).
        timeout: Seconds to wait for the node to become idle.

    Raises:
        SlurmClusterError: The daemons are not installed, failed to start, or the
            node was not idle within ``timeout`` (with the tails of both logs).
    """
    needed = (*DAEMONS, "sinfo", "scontrol")
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        raise SlurmClusterError(
            f"cannot start a SLURM cluster: {', '.join(missing)} not installed "
            f"({INSTALL})"
        )
    root = cluster_dir(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        conf = root / "slurm.conf"
        if conf.is_file() and is_running(conf):
            return conf
        _stop_daemons(root)
        conf = write_config(
            root,
            ctld_port=ctld_port,
            slurmd_port=slurmd_port,
            cpus=cpus,
            memory_mb=memory_mb,
        )
        for name in DAEMONS:  # logs of this start only, for errors
            for suffix in ("log", "out"):
                (root / f"{name}.{suffix}").unlink(missing_ok=True)
        env = {**os.environ, "SLURM_CONF": str(conf)}
        _launch(root, ["slurmctld", "-D", "-c", "-f", str(conf)], "slurmctld", env)
        _launch(
            root, ["slurmd", "-D", "-N", "localhost", "-f", str(conf)], "slurmd", env
        )
        _wait_idle(root, conf, timeout)
        return conf


def stop_cluster(directory: str | os.PathLike[str] | None = None) -> None:
    """End the daemons of ``directory``'s cluster (by their pid files); keep its files.

    Safe when nothing runs. Jobs still running on the node are ended with it.
    """
    root = cluster_dir(directory).resolve()
    if not root.is_dir():
        return
    with _locked(root):
        _stop_daemons(root)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``root/lock`` (one starter at a time)."""
    with open(root / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _launch(root: Path, argv: list[str], name: str, env: dict[str, str]) -> None:
    """Start a daemon in the foreground mode (``-D``), detached from this process.

    A short-lived ``sh`` starts it in the background and exits, so the daemon is not
    our child (nothing for us to reap, no ``Popen`` left running) and lives in its
    own session; its output goes to ``<name>.out``, and its pid to ``<name>.pid``
    (which the daemon also writes itself).
    """
    out = root / f"{name}.out"
    script = 'exec "$@" </dev/null >>"$NEL_OUT" 2>&1 & echo $! > "$NEL_PID"'
    subprocess.run(
        ["/bin/sh", "-c", script, "sh", *argv],
        env={**env, "NEL_OUT": str(out), "NEL_PID": str(root / f"{name}.pid")},
        start_new_session=True,
        check=True,
    )


def _wait_idle(root: Path, conf: Path, timeout: float) -> None:
    """Poll ``sinfo`` until the node is idle; raise with the logs' tails as soon as
    a daemon has exited, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = _node_state(root, conf, 2.0)
        if state == "idle":
            return
        dead = [name for name in DAEMONS if _pid_of(root, name) is None]
        if dead:
            why = f"{' and '.join(dead)} exited"
            break
        if time.monotonic() > deadline:
            why = (
                f"the node was not idle within {timeout:g} s "
                f"(its state: {state or 'no answer from the controller'})"
            )
            break
        time.sleep(0.2)
    raise SlurmClusterError(
        f"the SLURM cluster in {root} did not start: {why}.\n{_log_tails(root)}"
    )


def _node_state(root: Path, conf: Path, timeout: float) -> str:
    """The node's state (``sinfo -h -o %T``); "" when the controller is silent or
    is not the one of ``root`` (its ``StateSaveLocation`` is elsewhere)."""
    config = _ask(["scontrol", "show", "config"], conf, timeout)
    ours = f"StateSaveLocation = {root / 'state'}"
    if not any(" ".join(line.split()) == ours for line in config.splitlines()):
        return ""
    states = _ask(["sinfo", "-h", "-o", "%T"], conf, timeout).split()
    return states[0].rstrip("*~#!%$@^-") if states else ""


def _ask(argv: list[str], conf: Path, timeout: float) -> str:
    """The output of a SLURM client command for ``conf``; "" when it fails."""
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, "SLURM_CONF": str(conf)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def _log_tails(root: Path) -> str:
    """The last lines of both daemons' logs (of their console output when a daemon
    stopped before opening its log), for error messages."""
    parts = []
    for name in DAEMONS:
        for suffix in ("log", "out"):
            path = root / f"{name}.{suffix}"
            if path.is_file() and path.stat().st_size:
                tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                parts.append(f"--- {path} (last lines):\n" + "\n".join(tail))
                break
    return "\n".join(parts) or "(the daemons wrote no logs)"


def _pid_of(root: Path, name: str) -> int | None:
    """The pid in ``<name>.pid`` when that process is alive and is ``name``."""
    try:
        pid = int((root / f"{name}.pid").read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, IndexError):
        return None
    # "pid (comm) state ...": a zombie (Z) or another program is not our daemon.
    comm, _, rest = stat.partition(") ")
    if comm.split("(", 1)[-1] != name or rest.startswith(("Z", "X")):
        return None
    return pid


def _stop_daemons(root: Path, wait: float = 10.0) -> None:
    """SIGTERM the daemons of ``root`` by pid file, SIGKILL those left after
    ``wait`` seconds, and return once they are gone (their ports free again)."""
    pids = {name: _pid_of(root, name) for name in DAEMONS}
    for pid in pids.values():
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    for name, pid in pids.items():
        while pid is not None and _pid_of(root, name) == pid:
            if time.monotonic() > deadline + 5:
                raise SlurmClusterError(f"{name} (pid {pid}) does not end")
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        (root / f"{name}.pid").unlink(missing_ok=True)


def _memory_mb() -> int:
    """90% of this machine's memory in MiB (slurmd drains a node that has less
    memory than its config claims)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, int(total * 0.9) // (1024 * 1024))
