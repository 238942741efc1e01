"""A Docker engine for tests and perf scripts, started on demand (no systemd needed).

:func:`ensure_engine` returns a ``DOCKER_HOST`` that answers: the caller's own
``DOCKER_HOST`` when it does, else a ``dockerd`` of our own with its data, exec root
and socket under ``root`` (default ``/tmp/nel-dockerd``), started detached so it
outlives the calling process and is shared by pytest-xdist workers (a file lock makes
one of them start it; the others wait and reuse it). Its data root persists, so the
image that :func:`ensure_image` builds once (``nel sandbox build-image``, ~40 s) is
there for later runs. The engine has no bridge network (``--bridge=none``): sandboxes
only use ``network_mode: none``.

Needs root and Debian's ``docker.io`` (plus ``debootstrap`` for the image).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_ROOT = Path(os.environ.get("NEL_TEST_DOCKER_DIR", "/tmp/nel-dockerd"))
START_TIMEOUT = 30.0

__all__ = ["EngineError", "ensure_engine", "ensure_image", "stop_engine"]


class EngineError(RuntimeError):
    """No engine could be reached or started; the message says why."""


def _answers(host: str) -> bool:
    import docker

    from pytest_nel.sandboxes.docker import reachable

    if reachable(host) is not None:
        return False
    try:
        engine = docker.DockerClient(base_url=host, timeout=5)
        try:
            return bool(engine.ping())
        finally:
            engine.close()
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.is_symlink() or root.stat().st_uid != os.getuid():
        raise EngineError(f"{root} is not a folder of ours: refusing to use it")
    with open(root / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_engine(root: Path = DEFAULT_ROOT) -> str:
    """A ``DOCKER_HOST`` whose engine answers (see the module docstring).

    Raises:
        EngineError: dockerd is not installed or did not come up.
    """
    own = os.environ.get("DOCKER_HOST")
    if own and _answers(own):
        return own
    host = f"unix://{root}/docker.sock"
    if _answers(host):
        return host
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError(
            "dockerd is not installed: apt-get install -y --no-install-recommends "
            "docker.io busybox-static debootstrap"
        )
    with _locked(root):
        if _answers(host):
            return host
        with contextlib.suppress(FileNotFoundError):
            (root / "docker.sock").unlink()
        command = [
            dockerd,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host={host}",
        ]
        # A short-lived sh starts it in the background: dockerd is not our child
        # (no Popen left to reap or to warn about) and lives in its own session.
        subprocess.run(
            [
                "/bin/sh",
                "-c",
                'exec "$@" </dev/null >>"$NEL_LOG" 2>&1 &',
                "sh",
                *command,
            ],
            env={**os.environ, "NEL_LOG": str(root / "dockerd.log")},
            start_new_session=True,
            check=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(host):
            if time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise EngineError(
                    f"dockerd did not come up in {START_TIMEOUT:.0f} s:\n{tail}"
                )
            time.sleep(0.1)
    return host


def ensure_image(
    host: str, tag: str = "nel/python:3.11", root: Path = DEFAULT_ROOT
) -> None:
    """Build ``tag`` with ``nel sandbox build-image`` unless the engine has it.

    Raises:
        EngineError: The build failed (its output is in the message).
    """
    env = {**os.environ, "DOCKER_HOST": host}
    with _locked(root):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_nel.cli",
                "sandbox",
                "build-image",
                "--tag",
                tag,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise EngineError(
            f"nel sandbox build-image failed:\n{done.stdout}{done.stderr}"
        )


def stop_engine(root: Path = DEFAULT_ROOT) -> None:
    """Stop the dockerd started under ``root`` (by its pid file), if running."""
    pidfile = root / "dockerd.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pidfile.read_text().strip()), 15)
