"""Control groups for the process-based sandboxes (``local``; as root only).

rlimits are per process: 64 processes of 512 MiB each are 32 GiB, and CPU seconds
do not cap cores. A cgroup per sandbox caps the sandbox as a whole: memory (no
extra swap where the kernel accounts it), process count and CPU bandwidth
(``cpus`` x the period). Both layouts are handled:

- cgroup v1: one folder per controller,
  ``/sys/fs/cgroup/{memory,pids,cpu}/pytest-nel/<name>``;
- cgroup v2: one folder, ``/sys/fs/cgroup/pytest-nel/<name>`` with ``memory.max``,
  ``pids.max`` and ``cpu.max`` (the controllers are enabled for ``pytest-nel``).

A command joins its sandbox's groups through :func:`join_argv` (a tiny ``sh`` that
writes its own pid into each ``cgroup.procs`` and then execs the command), so
everything it starts is inside. Where cgroups cannot be written (not root, a
read-only or absent hierarchy) :func:`make_group` returns None and the sandbox keeps
its rlimits only.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "pytest-nel"
PERIOD_US = 100_000


@dataclass
class Group:
    """The cgroup folders of one sandbox."""

    folders: list[Path] = field(default_factory=list)

    def join_argv(self, argv: list[str]) -> list[str]:
        """``argv`` started inside the group."""
        writes = " && ".join(
            f"echo $$ > '{folder / 'cgroup.procs'}'" for folder in self.folders
        )
        return ["/bin/sh", "-c", f'{writes} && exec "$@"', "sh", *argv]

    def remove(self) -> None:
        """Remove the folders (their processes are gone; retried briefly)."""
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy: a process is being torn down
                    time.sleep(0.01)
        self.folders = []


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").is_file()


def make_group(name: str, *, memory: int, pids: int, cpus: float) -> Group | None:
    """A cgroup for one sandbox with its limits set; None where cgroups are unusable."""
    if os.geteuid() != 0:
        return None
    group = Group()
    try:
        if _v2():
            parent = ROOT / PARENT
            parent.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                _write(ROOT / "cgroup.subtree_control", "+memory +pids +cpu")
            _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
            folder = parent / name
            folder.mkdir()
            group.folders.append(folder)
            _write(folder / "memory.max", str(memory))
            with contextlib.suppress(OSError):
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(pids))
            _write(folder / "cpu.max", f"{int(cpus * PERIOD_US)} {PERIOD_US}")
        else:
            limits = {
                "memory": {"memory.limit_in_bytes": str(memory)},
                "pids": {"pids.max": str(pids)},
                "cpu": {
                    "cpu.cfs_period_us": str(PERIOD_US),
                    "cpu.cfs_quota_us": str(int(cpus * PERIOD_US)),
                },
            }
            for controller, settings in limits.items():
                folder = ROOT / controller / PARENT / name
                folder.mkdir(parents=True)
                group.folders.append(folder)
                for key, value in settings.items():
                    _write(folder / key, value)
                if controller == "memory":
                    with contextlib.suppress(OSError):  # where swap is accounted
                        _write(folder / "memory.memsw.limit_in_bytes", str(memory))
    except OSError:
        group.remove()
        return None
    return group
