"""The Sandbox protocol, the registry and the local (bubblewrap) and none backends."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from pytest_nel.sandboxes import (
    ExecResult,
    Sandbox,
    SandboxSettings,
    get_backend,
    known_backends,
    make_sandbox,
    parse_size,
)
from pytest_nel.sandboxes.protocol import BaseSandbox

from pytest_nel.exceptions import SandboxError

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)


@pytest.fixture(params=[pytest.param("local", marks=needs_bwrap), "none", "docker"])
def box(request: pytest.FixtureRequest) -> Iterator[BaseSandbox]:
    if request.param == "docker":
        request.getfixturevalue("docker_host")
    with make_sandbox(SandboxSettings(type=request.param, verify_timeout=5)) as sb:
        yield sb


def test_registry_lists_known_backends_on_a_bad_name() -> None:
    assert {"local", "none"} <= set(known_backends())
    assert get_backend("none").kind == "none"
    with pytest.raises(KeyError, match="unknown sandbox type 'dockr'; known: .*local"):
        get_backend("dockr")


@pytest.mark.parametrize(
    ("text", "size"),
    [("512m", 512 * 2**20), ("4g", 4 * 2**30), ("64MiB", 64 * 2**20), (1000, 1000)],
)
def test_sizes_are_docker_style(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1m", "0", "12q", True])
def test_bad_sizes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)  # type: ignore[arg-type]


def test_exec_files_stdin_and_exit_codes(box: BaseSandbox) -> None:
    assert isinstance(box, Sandbox)
    box.write_file("sub/main.py", "import sys\nprint(sys.stdin.read().upper())\n")
    result = box.exec(["python3", "-I", "sub/main.py"], stdin="hello")
    assert result == ExecResult(0, "HELLO\n", "", duration=result.duration)
    assert result.ok
    failed = box.exec("echo oops >&2; echo made > made.txt; exit 3")
    assert (failed.exit_code, failed.stderr, failed.ok) == (3, "oops\n", False)
    assert box.read_file("made.txt") == b"made\n"


def test_timeout_and_output_cap_kill_the_command(box: BaseSandbox) -> None:
    slow = box.exec("sleep 30", timeout=0.5)
    assert slow.timed_out and not slow.ok and slow.duration < 20
    loud = box.exec(["python3", "-c", "print('x' * 50_000_000)"])
    assert loud.truncated and not loud.timed_out and not loud.ok
    assert len(loud.stdout) == box.settings.max_output


def test_paths_must_stay_in_the_workdir(box: BaseSandbox) -> None:
    for bad in ("../escape", "/etc/passwd"):
        with pytest.raises(SandboxError, match="sandbox"):
            box.read_file(bad)
    with pytest.raises(SandboxError, match="cannot read"):
        box.read_file("missing.txt")


def test_stopped_sandbox_refuses_commands() -> None:
    sandbox = make_sandbox(SandboxSettings(type="none"))
    with pytest.raises(SandboxError, match="not started"):
        sandbox.exec("true")
    sandbox.stop()  # stopping twice, or before start, is harmless


@needs_bwrap
def test_local_sandbox_isolation_basics() -> None:
    with make_sandbox(SandboxSettings(type="local")) as sb:
        result = sb.exec("id -u; pwd; ls /; env | sort")
        uid, cwd, *rest = result.stdout.split("\n")
        assert int(uid) >= 65534 and cwd == "/box"
        assert "root" not in rest and "work" not in rest  # only /usr and a few others
        assert not any(line.startswith(("NEL", "OPENAI", "HF_")) for line in rest)
        sb.exec("ln -s /etc/passwd link; ln -s /etc dir")
        for escape in ("link", "dir/passwd"):
            with pytest.raises(SandboxError):
                sb.read_file(escape)
        with pytest.raises(SandboxError):
            sb.write_file("dir/evil", "x")
        assert sb.exec("touch /usr/x").exit_code != 0


@needs_bwrap
def test_local_workdir_is_removed_on_stop() -> None:
    sandbox = make_sandbox(SandboxSettings(type="local"))
    sandbox.start()
    host = sandbox.host_dir  # type: ignore[attr-defined]
    sandbox.write_file("a.txt", "a")
    sandbox.stop()
    assert host is not None and not host.exists()


def test_a_verifier_sees_the_files_and_nothing_else(box: BaseSandbox) -> None:
    box.write_file("answer.txt", "42")
    isolated = box.settings.type != "none"  # none shares the host's /tmp
    box.exec("echo made > made.txt" + ("; echo x > /tmp/scratch" if isolated else ""))
    verifier = box.verifier()
    with verifier:
        result = verifier.exec("cat answer.txt made.txt; ls /tmp; echo ok > verdict")
        assert result.stdout.startswith("42made\n")
        assert "scratch" not in result.stdout or not isolated
        assert verifier.read_file("verdict") == b"ok\n"
    assert box.read_file("verdict") == b"ok\n"  # the workdir outlives the verifier


def test_the_agents_processes_end_before_verification(box: BaseSandbox) -> None:
    if box.settings.type == "none":
        pytest.skip("the none backend does not contain processes")
    box.exec("(sleep 0.5; echo late > late.txt) >/dev/null 2>&1 &")
    with box.verifier() as verifier:
        time.sleep(1.0)
        assert verifier.exec("ls").stdout == ""


def test_a_verifier_must_be_of_the_same_backend(box: BaseSandbox) -> None:
    other = "none" if box.settings.type != "none" else "local"
    with pytest.raises(SandboxError, match="cannot verify in the workdir"):
        box.verifier(SandboxSettings(type=other))


def test_files_in_folders_belong_to_the_sandbox_and_fifos_do_not_hang(
    box: BaseSandbox,
) -> None:
    box.write_file("pkg/sub/mod.py", "x = 1\n")
    assert (
        box.exec("echo y > pkg/sub/other.py && cat pkg/sub/mod.py").stdout == "x = 1\n"
    )
    if box.settings.type == "none":
        return
    box.exec("mkfifo pipe")
    with pytest.raises(SandboxError):
        box.read_file("pipe")
    try:  # refused (local, slurm), or the FIFO replaced by a file (docker)
        box.write_file("pipe", "x")
    except SandboxError:
        return
    assert box.read_file("pipe") == b"x"


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="own uids are given only as root")
def test_live_sandboxes_never_share_a_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    from pytest_nel.sandboxes import local

    monkeypatch.setattr(local, "_serial", itertools.repeat(0))  # same first pick
    boxes = [make_sandbox(SandboxSettings(type="local")) for _ in range(3)]
    uids = [box.uid for box in boxes]  # type: ignore[attr-defined]
    assert len(set(uids)) == 3
    boxes[0].stop()
    again = make_sandbox(SandboxSettings(type="local"))
    assert again.uid == uids[0]  # type: ignore[attr-defined]  # freed on stop
    for box in [*boxes, again]:
        box.stop()


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are used only as root")
def test_local_limits_hold_for_the_sandbox_as_a_whole() -> None:
    """rlimits are per process; the sandbox's cgroup caps all its processes."""
    settings = SandboxSettings(type="local", memory=256 * 2**20, pids=16)
    with make_sandbox(settings) as box:
        if box._cgroup() is None:  # type: ignore[attr-defined]
            pytest.skip("no writable cgroup hierarchy here")
        hogs = box.exec(
            [
                "python3",
                "-c",
                "import os, time\nkids = []\nfor _ in range(6):\n"
                "    pid = os.fork()\n    if pid == 0:\n"
                "        x = b'x' * (100 * 2**20)\n        time.sleep(2)\n"
                "        os._exit(0)\n    kids.append(pid)\n"
                "print(sum(os.waitpid(k, 0)[1] == 9 for k in kids))",
            ]
        )
        assert int(hogs.stdout) >= 3  # 6 x 100 MB do not fit in 256 MB together
        forks = box.exec(
            [
                "python3",
                "-c",
                "import os, time\nn = 0\ntry:\n    while True:\n"
                "        if os.fork() == 0:\n            time.sleep(3)\n"
                "            os._exit(0)\n        n += 1\nexcept OSError:\n"
                "    print(n)",
            ]
        )
        assert int(forks.stdout) < 16
