"""The docker sandbox on a real engine (started by the ``docker_host`` fixture)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pytest_nel.sandboxes import SandboxSettings, make_sandbox
from pytest_nel.sandboxes import docker as docker_backend

from pytest_nel.exceptions import SandboxError, SandboxUnavailable

pytestmark = pytest.mark.usefixtures("docker_host")

MIB = 2**20


def labelled(owner_pid: int | None = None) -> tuple[list[dict], list[dict]]:
    """Containers and volumes of pytest-nel sandboxes (of one owner process)."""
    api = docker_backend.client().api
    label = docker_backend.LABEL
    containers = api.containers(all=True, filters={"label": label})
    volumes = api.volumes(filters={"label": label}).get("Volumes") or []
    if owner_pid is not None:
        mine = f"{docker_backend._owner().rpartition(':')[0]}:{owner_pid}"
        containers = [
            c for c in containers if c["Labels"][docker_backend.OWNER] == mine
        ]
        volumes = [v for v in volumes if v["Labels"][docker_backend.OWNER] == mine]
    return containers, volumes


def test_isolation_user_root_network_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEL_TEST_API_KEY", "sk-nel-secret")
    with make_sandbox(SandboxSettings(type="docker")) as box:
        out = box.exec("id -u; pwd; hostname; env | sort; ls /; cat /proc/net/dev")
        lines = out.stdout.splitlines()
        assert lines[:3] == ["65534", "/box", "sandbox"]
        assert "work" not in lines and not any("sk-nel" in x for x in lines)
        assert sorted(x.split("=")[0] for x in lines if "=" in x) == [
            "HOME", "HOSTNAME", "LANG", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE",
            "TMPDIR",
        ]  # fmt: skip
        interfaces = [x.split(":")[0].strip() for x in lines if ":" in x]
        assert interfaces[-1] == "lo" and "eth0" not in interfaces
        assert "Read-only file system" in box.exec("touch /usr/x").stderr
        assert box.exec("touch /tmp/x && touch /box/x").ok


def test_limits_are_set_on_the_container_and_enforced() -> None:
    settings = SandboxSettings(
        type="docker", memory=128 * MIB, cpus=0.5, pids=16, file_size=MIB
    )
    with make_sandbox(settings) as box:
        host = docker_backend.client().api.inspect_container(box.container_id)
        config = host["HostConfig"]
        assert (config["Memory"], config["MemorySwap"]) == (128 * MIB, 128 * MIB)
        assert (config["NanoCpus"], config["PidsLimit"]) == (5 * 10**8, 16)
        assert config["ReadonlyRootfs"] and config["NetworkMode"] == "none"
        assert config["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in config["SecurityOpt"]
        hog = box.exec(["python3", "-c", "x = bytearray(400 * 2**20)"])
        assert hog.exit_code == 137  # the kernel's OOM killer
        forks = box.exec("for i in $(seq 40); do sleep 5 & done; wait", timeout=8)
        assert "fork" in forks.stderr.lower()  # sh: Cannot fork, past pids=16
        big = box.exec(["python3", "-c", "open('f', 'wb').write(b'x' * 2**21)"])
        assert "File too large" in big.stderr
        assert box.exec("echo still alive").stdout == "still alive\n"


def test_stop_removes_the_container_and_its_volume() -> None:
    box = make_sandbox(SandboxSettings(type="docker"))
    box.start()
    containers, volumes = labelled(os.getpid())
    assert box.container_id in {c["Id"] for c in containers}
    assert box.volume in {v["Name"] for v in volumes}
    box.stop()
    box.stop()
    containers, volumes = labelled(os.getpid())
    assert box.container_id is None
    assert not containers and not volumes


SCRIPT = """
import os, signal, sys, time
from pytest_nel.sandboxes import SandboxSettings, make_sandbox
box = make_sandbox(SandboxSettings(type="docker"))
box.start()
print(box.container_id, os.getpid(), flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
raise KeyboardInterrupt
"""


def test_an_interrupted_process_removes_its_sandbox(tmp_path: Path) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), "interrupt"], capture_output=True, text=True
    )
    assert "KeyboardInterrupt" in done.stderr
    containers, _ = labelled()
    assert done.stdout.split()[0] not in {c["Id"] for c in containers}


def test_a_killed_process_leaves_orphans_that_the_next_check_removes(
    tmp_path: Path,
) -> None:
    script = tmp_path / "killed.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), "kill"], capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL
    container = proc.stdout.split()[0]
    assert container in {c["Id"] for c in labelled()[0]}
    docker_backend.remove_orphans()  # (another xdist worker's check may be first)
    containers, volumes = labelled(int(proc.stdout.split()[1]))
    assert container not in {c["Id"] for c in labelled()[0]}
    assert (containers, volumes) == ([], [])


def test_a_pytest_run_stopped_by_ctrl_c_leaves_no_container(tmp_path: Path) -> None:
    (tmp_path / "test_slow.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.nel_sandbox(type="docker", verify_timeout=60)
            def test_slow(nel_sandbox):
                open("started", "w").close()
                nel_sandbox.exec("sleep 60")
            """
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-p",
            "no:cacheprovider",
            "test_slow.py",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the sandbox never started"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in out
    assert labelled(proc.pid) == ([], [])


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    settings = SandboxSettings(type="docker", name="coder")
    with pytest.raises(SandboxUnavailable) as caught:
        docker_backend.DockerSandbox.check(settings)
    message = str(caught.value)
    assert "sandbox 'coder' (type docker): no Docker engine answers at " in message
    assert "unix:///nonexistent/docker.sock" in message and "dockerd" in message


def test_a_missing_image_names_how_to_build_it() -> None:
    settings = SandboxSettings(type="docker", image="nel/absent:1")
    with pytest.raises(SandboxUnavailable, match="'nel/absent:1' is not in the engine"):
        docker_backend.DockerSandbox.check(settings)


def test_an_engine_that_refuses_the_container_is_a_sandbox_error() -> None:
    box = make_sandbox(SandboxSettings(type="docker", cpus=512))
    with pytest.raises(SandboxError, match="cannot start a container"):
        box.start()
    assert labelled(os.getpid()) == ([], [])


def _oracle(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--nel-bench",
        "humaneval",
        "--nel-override",
        "__all_benchmarks__.solver.type=oracle",
        "--nel-output",
        "out",
        *args,
    )


def _rewards(pytester: pytest.Pytester) -> dict[str, float | None]:
    path = pytester.path / "out" / "humaneval" / "results.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return {r["problem_id"]: r["reward"] for r in lines}


def test_all_164_canonical_solutions_pass_in_docker(
    pytester: pytest.Pytester, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    result = _oracle(
        pytester, "--nel-override", "__all_benchmarks__.sandbox.type=docker", "-n", "2"
    )
    result.assert_outcomes(passed=164)
    rewards = _rewards(pytester)
    assert len(rewards) == 164 and set(rewards.values()) == {1.0}


def test_stateless_mode_verifies_in_a_second_container(
    pytester: pytest.Pytester, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    config = pytester.path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            """
            sandboxes:
              verifier: {type: docker, memory: 256m, verify_timeout: 30}
            benchmarks:
              - name: humaneval
                solver: {type: oracle}
                max_problems: 4
                sandbox: {type: docker, mode: stateless, verifier: verifier}
            output: {dir: out}
            """
        )
    )
    result = pytester.runpytest_subprocess("--nel-config", str(config))
    result.assert_outcomes(passed=4)
    assert set(_rewards(pytester).values()) == {1.0}


def test_build_image_keeps_an_existing_image(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_nel.cli import main

    assert main(["sandbox", "build-image"]) == 0
    assert "nel/python:3.11 is already in the engine" in capsys.readouterr().out


def test_build_image_names_what_is_missing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from pytest_nel.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no debootstrap on it
    assert main(["sandbox", "build-image", "--tag", "nel/never:1", "--rebuild"]) == 1
    assert "debootstrap is not installed: apt-get install" in capsys.readouterr().err
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert main(["sandbox", "build-image"]) == 1
    err = capsys.readouterr().err
    assert f"no Docker engine answers at unix://{tmp_path}/docker.sock" in err


def test_apt_mirror_is_read_from_both_source_formats(tmp_path: Path) -> None:
    from pytest_nel.sandbox_image import DEFAULT_MIRROR, apt_mirror

    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: x\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n"
    )
    assert apt_mirror([deb822]) == "http://mirror.example/debian"
    assert apt_mirror([one_line]) == "http://old.example/debian"
    assert apt_mirror([tmp_path / "absent"]) == DEFAULT_MIRROR


@pytest.mark.parametrize(
    ("override", "env", "message"),
    [
        (
            "image=nel/absent:1",
            {},
            "*image 'nel/absent:1' is not in the engine at *build or load it*",
        ),
        (
            "memory=4g",
            {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
            "*(type docker): no Docker engine answers at unix:///nonexistent/*",
        ),
    ],
)
def test_engine_or_image_problems_stop_the_run_before_any_item(
    pytester: pytest.Pytester,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    override: str,
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = _oracle(
        pytester,
        "--nel-override",
        "__all_benchmarks__.sandbox.type=docker",
        "--nel-override",
        f"__all_benchmarks__.sandbox.{override}",
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
    assert not (pytester.path / "out" / "humaneval" / "results.jsonl").exists()


def test_an_image_that_cannot_run_a_command_fails_the_check() -> None:
    import io
    import tarfile

    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w") as tar:
        folder = tarfile.TarInfo("box")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    api = docker_backend.client().api
    api.import_image_from_data(empty.getvalue(), repository="nel/empty", tag="1")
    settings = SandboxSettings(type="docker", image="nel/empty:1", name="hollow")
    with pytest.raises(
        SandboxUnavailable, match="'hollow' .type docker. does not work"
    ):
        docker_backend.DockerSandbox.check(settings)
    assert labelled(os.getpid()) == ([], [])  # the failed probe left nothing
