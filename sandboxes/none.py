"""The ``none`` sandbox: commands run directly on this machine, without isolation.

For trusted code and for debugging a benchmark: a temporary workdir, a wall-clock
timeout, a cap on captured output and a minimal environment (PATH, HOME, TMPDIR and
LANG only, so API keys in the caller's environment are not passed on). Nothing else is
contained: the command can read and write whatever this user can, and reach the
network. Use ``local`` or ``docker`` for model-written code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pytest_nel.sandboxes._process import run_captured
from pytest_nel.sandboxes.protocol import (
    BaseSandbox,
    ExecResult,
    SandboxError,
    SandboxSettings,
    sandbox_backend,
)


@sandbox_backend("none")
class NoSandbox(BaseSandbox):
    """Runs commands as plain subprocesses in a temporary folder (no isolation)."""

    setting_names = frozenset({"verify_timeout", "max_output"})

    def __init__(self, settings: SandboxSettings) -> None:
        super().__init__(settings)
        self.workdir: Path | None = None
        self._owns_workdir = True

    def start(self) -> None:
        """Create the temporary workdir."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="nel-nobox-"))

    def stop(self) -> None:
        """Remove the workdir (a verifier leaves it to its owner)."""
        workdir, self.workdir = self.workdir, None
        if workdir is not None and self._owns_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def _adopt_workdir(self, owner: BaseSandbox) -> None:
        assert isinstance(owner, NoSandbox)
        self.workdir = owner._started()
        self._owns_workdir = False

    def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in the workdir with a timeout and an output cap."""
        workdir = self._started()
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else command
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
        }
        try:
            run = run_captured(
                argv,
                stdin=stdin.encode() if isinstance(stdin, str) else stdin,
                timeout=self.timeout_of(timeout),
                max_output=self.settings.max_output,
                env=env,
                cwd=str(workdir),
            )
        except OSError as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot run {argv[0]!r}: {exc}"
            ) from exc
        code = run.exit_code
        return ExecResult(
            exit_code=128 - code if code < 0 else code,  # as a shell reports signals
            stdout=run.stdout.decode(errors="replace"),
            stderr=run.stderr.decode(errors="replace"),
            timed_out=run.timed_out,
            truncated=run.truncated,
            duration=run.duration,
        )

    def write_file(self, path: str, data: str | bytes) -> None:
        """Write a file in the workdir."""
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)

    def read_file(self, path: str) -> bytes:
        """Read a file from the workdir."""
        try:
            return self._path(path).read_bytes()
        except OSError as exc:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: cannot read {path!r}: {exc}"
            ) from exc

    def _path(self, path: str) -> Path:
        workdir = self._started()
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts:
            raise SandboxError(
                f"sandbox {self.settings.name!r}: {path!r} must be a relative path "
                "inside the workdir"
            )
        return workdir / os.fspath(pure)

    def _started(self) -> Path:
        if self.workdir is None:
            raise SandboxError(
                f"sandbox {self.settings.name!r} is not started (call start())"
            )
        return self.workdir
