"""The ``slurm`` sandbox on a real single-node SLURM cluster that these tests start.

The cluster (``pytest_nel.testing.slurm_cluster``) is started once per machine and
reused by every test process (xdist workers included); it is left running afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_nel.sandboxes import ExecResult, SandboxSettings, make_sandbox
from pytest_nel.sandboxes.protocol import BaseSandbox
from test_humaneval import (
    WRONG,
    humaneval_rows,
    records,
    run_say_bench,
    write_say_bench,
)
from test_sandbox_containment import ATTACKS, SECRET

from pytest_nel.exceptions import SandboxError, SandboxUnavailable
from pytest_nel.testing.fake_model import FakeModel
from pytest_nel.testing.slurm_cluster import cluster_dir, start_cluster, write_config

pytestmark = [
    pytest.mark.skipif(
        shutil.which("slurmctld") is None,
        reason="SLURM is not installed (apt-get install -y slurmctld slurmd "
        "slurm-client)",
    ),
    pytest.mark.skipif(
        shutil.which("bwrap") is None, reason="bubblewrap is not installed"
    ),
]


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[Path]:
    """A running one-node cluster; SLURM_CONF points at it for the whole session
    (so pytester runs, in-process or not, use it too)."""
    conf = start_cluster()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(conf))
        yield conf


@pytest.fixture
def box(slurm_conf: Path) -> Iterator[BaseSandbox]:
    settings = SandboxSettings(type="slurm", verify_timeout=10)
    make_sandbox(settings).check(settings)
    with make_sandbox(settings) as sandbox:
        yield sandbox


def our_jobs() -> list[str]:
    """The SLURM jobs of this process's sandboxes still in the queue (any state)."""
    done = subprocess.run(
        ["squeue", "-h", "-o", "%j %T"], capture_output=True, text=True, check=True
    )
    mine = f"nel-box-{os.getpid()}-"
    return [line for line in done.stdout.splitlines() if line.startswith(mine)]


def wait_no_jobs(limit: float = 5.0) -> list[str]:
    """Our jobs left in the queue once it has emptied, or after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while (left := our_jobs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_exec_files_stdin_and_exit_codes(box: BaseSandbox) -> None:
    box.write_file("sub/main.py", "import sys\nprint(sys.stdin.read().upper())\n")
    result = box.exec(["python3", "-I", "sub/main.py"], stdin="hello")
    assert result == ExecResult(0, "HELLO\n", "", duration=result.duration)
    failed = box.exec("echo oops >&2; echo made > made.txt; exit 3")
    assert (failed.exit_code, failed.stderr, failed.ok) == (3, "oops\n", False)
    assert box.read_file("made.txt") == b"made\n"
    killed = box.exec("kill -9 $$")
    assert killed.exit_code == 137 and not killed.timed_out
    who = box.exec("id -u; pwd; env | sort").stdout.split("\n")
    assert int(who[0]) >= 65534 and who[1] == "/box"
    assert not any(line.startswith("SLURM") for line in who)  # an empty environment
    assert wait_no_jobs() == []


def test_bubblewrap_failure_is_a_sandbox_error_not_a_result(box: BaseSandbox) -> None:
    assert box.exec(["/no/such/program"]).exit_code == 127  # the command's own failure
    shutil.rmtree(box.host_dir)  # type: ignore[attr-defined]  # nothing to bind
    with pytest.raises(SandboxError, match="bubblewrap failed to set up.*bwrap exit"):
        box.exec("true")


def test_timeout_kills_the_job_and_leaves_nothing_running(box: BaseSandbox) -> None:
    # 2 s: time enough for the job to start even when it waits for a CPU (-n 2).
    slow = box.exec("trap '' TERM; sleep 31.25", timeout=2)  # deaf to SIGTERM
    assert slow.timed_out and not slow.ok and slow.exit_code == 137
    assert slow.duration < 5
    assert wait_no_jobs() == []
    sleepers = [
        p for p in Path("/proc").glob("[0-9]*/cmdline") if _reads(p) == "sleep31.25"
    ]
    assert sleepers == []
    assert box.exec("true").ok  # the node is free again at once


def test_a_job_that_never_starts_is_a_sandbox_error(
    box: BaseSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_nel.sandboxes.slurm as slurm

    monkeypatch.setattr(slurm, "CANCEL_TIMEOUT", 0.5)
    monkeypatch.setattr(slurm, "END_WAIT", 0.5)
    monkeypatch.setattr(slurm, "QUEUE_GRACE", 1.0)
    monkeypatch.setenv("SLURM_CONF", str(write_config(tmp_path, ctld_port=_free())))
    with pytest.raises(SandboxError, match="did not run its 1 s within 2 s"):
        box.exec("true", timeout=1)


def test_time_waiting_in_the_queue_is_not_the_commands(box: BaseSandbox) -> None:
    """The timeout runs on the node from the command's start, not from srun's."""
    hog = subprocess.Popen(
        [
            "srun",
            f"--cpus-per-task={os.cpu_count()}",
            "--job-name=nel-hog",
            "sleep",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while (
            "R"
            not in subprocess.run(
                ["squeue", "-h", "-n", "nel-hog", "-o", "%t"],
                capture_output=True,
                text=True,
            ).stdout
        ):
            assert time.monotonic() < deadline, "the hog job never ran"
            time.sleep(0.1)
        result = box.exec("sleep 1", timeout=2.5)  # ~3 s in the queue, 1 s running
        assert result.ok and not result.timed_out, result
        assert result.duration > 2.5
    finally:
        hog.kill()
        hog.wait()


def test_output_cap_kills_the_job(box: BaseSandbox) -> None:
    loud = box.exec(["python3", "-c", "print('x' * 50_000_000)"])
    assert loud.truncated and not loud.timed_out and not loud.ok
    assert len(loud.stdout) == box.settings.max_output
    assert wait_no_jobs() == []


def test_network_is_contained(box: BaseSandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # from here
        inside = box.exec(
            [
                "python3",
                "-I",
                "-c",
                f"import socket; socket.create_connection("
                f"('127.0.0.1', {port}), timeout=2)",
            ]
        )
    assert inside.exit_code == 1
    assert "ConnectionRefusedError" in inside.stderr


def test_verifier_shares_the_workdir_and_leaves_it_to_its_owner(
    box: BaseSandbox,
) -> None:
    assert box.exec("echo answer > out.txt").ok
    with box.verifier(SandboxSettings(type="slurm", verify_timeout=5)) as verifier:
        assert verifier.exec("cat out.txt").stdout == "answer\n"
        verifier.write_file("graded.txt", "1")
    assert box.read_file("graded.txt") == b"1"
    host = box.host_dir  # type: ignore[attr-defined]
    box.stop()
    assert not host.exists() and not host.parent.exists()  # status files gone too


def test_workdir_is_a_plain_folder_under_shared_dir(
    slurm_conf: Path, tmp_path: Path
) -> None:
    settings = SandboxSettings(
        type="slurm", shared_dir=str(tmp_path), partition="debug"
    )
    with make_sandbox(settings) as sandbox:
        host = sandbox.host_dir  # type: ignore[attr-defined]
        assert host.parent.parent == tmp_path
        assert sandbox.exec("echo x > a.txt").ok
        assert (host / "a.txt").read_text() == "x\n"
        assert os.stat(host).st_uid == sandbox.uid  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == []


def test_check_names_what_is_missing(
    slurm_conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_nel.sandboxes.slurm as slurm

    settings = SandboxSettings(type="slurm", name="he")
    with pytest.raises(SandboxUnavailable, match="partition 'nope' has no node"):
        slurm.SlurmSandbox.check(replace(settings, partition="nope"))
    with pytest.raises(SandboxUnavailable, match="Memory specification can not be"):
        slurm.SlurmSandbox.check(replace(settings, memory=2**50))
    dead = write_config(tmp_path / "dead", ctld_port=_free(), slurmd_port=_free())
    monkeypatch.setenv("SLURM_CONF", str(dead))
    monkeypatch.setattr(slurm, "CHECK_TIMEOUT", 1.0)
    with pytest.raises(SandboxUnavailable) as info:
        slurm.SlurmSandbox.check(settings)
    message = str(info.value)
    assert "sandbox 'he' (type slurm)" in message and str(dead) in message
    assert "did not answer sinfo within 1 s" in message
    assert "start slurmctld and slurmd" in message
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "none.conf"))
    with pytest.raises(SandboxUnavailable, match="none.conf does not exist"):
        slurm.SlurmSandbox.check(settings)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match="needs 'srun'.*slurm-client"):
        slurm.SlurmSandbox.check(settings)


def test_humaneval_oracle_scores_one_through_the_plugin(
    slurm_conf: Path,
    pytester: pytest.Pytester,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))
    log = cluster_dir() / "slurmctld.log"
    jobs_before = _reads(log).count("_slurm_rpc_allocate_resources")
    result = pytester.runpytest(
        "--nel-bench",
        "humaneval",
        "--nel-override",
        "__all_benchmarks__.solver.type=oracle",
        "--nel-override",
        "__all_benchmarks__.sandbox.type=slurm",
        "--nel-max-problems",
        "10",
        "--nel-output",
        "out",
    )
    result.assert_outcomes(passed=10)
    recs = records(pytester, "humaneval")
    assert len(recs) == 10 and all(r["reward"] == 1.0 for r in recs.values())
    assert {r["scoring_details"]["reason"] for r in recs.values()} == {"passed"}
    assert "type: slurm" in (pytester.path / "out" / "config.yaml").read_text()
    jobs = _reads(log).count("_slurm_rpc_allocate_resources") - jobs_before
    assert jobs >= 10  # each verification was a SLURM job


def test_wrong_solutions_score_zero_and_right_ones_one(
    slurm_conf: Path, pytester: pytest.Pytester, fake: FakeModel, datasets_dir: Path
) -> None:
    rows = humaneval_rows(datasets_dir)[:8]
    for row in rows:
        row["say"] = WRONG.get(row["task_id"], row["canonical_solution"]).replace(
            "%%", "%"
        )
    write_say_bench(pytester, rows)
    result = run_say_bench(
        pytester, fake, "--nel-override", "__all_benchmarks__.sandbox.type=slurm"
    )
    result.assert_outcomes(passed=8)
    rewards = {k: r["reward"] for k, r in records(pytester, "he").items()}
    assert {k for k, v in rewards.items() if v == 0.0} == set(WRONG)
    assert {k for k, v in rewards.items() if v == 1.0} == {"HumanEval/6"}
    details = {k: r["scoring_details"] for k, r in records(pytester, "he").items()}
    assert details["HumanEval/0"]["error"] == "AssertionError"
    assert details["HumanEval/3"]["error"] == "ValueError: no idea"


def test_hostile_completions_are_contained_and_scored_zero(
    slurm_conf: Path,
    pytester: pytest.Pytester,
    fake: FakeModel,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """test_sandbox_containment's attacks, on a compute node (the job's SLURM_*
    variables and srun's environment must not reach the program either)."""
    monkeypatch.setenv("NEL_TEST_API_KEY", SECRET)
    host_file = pytester.path / "escaped.txt"
    port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
    base = humaneval_rows(datasets_dir)[0]
    rows: list[dict[str, Any]] = []
    for name, attack in ATTACKS.items():
        tail = SECRET.removeprefix("sk-nel-")
        body = attack.format(port=port, host_file=host_file, secret_tail=tail)
        rows.append({**base, "task_id": name, "say": body.lstrip("\n")})
    leak = "    import os\n    assert not [k for k in os.environ if 'SLURM' in k]\n"
    rows.append({**base, "task_id": "slurm_env", "say": leak})
    rows = [{**r, "say": r["say"] + base["canonical_solution"]} for r in rows]
    write_say_bench(pytester, rows)
    result = run_say_bench(
        pytester,
        fake,
        "--nel-override",
        "__all_benchmarks__.sandbox.type=slurm",
        "--nel-override",
        "__all_benchmarks__.sandbox.verify_timeout=3",
        "--nel-override",
        "__all_benchmarks__.max_concurrent=1",
    )
    result.assert_outcomes(passed=len(rows))
    recs = records(pytester, "he")
    assert recs.pop("slurm_env")["reward"] == 1.0  # no SLURM variable inside
    assert {k: r["reward"] for k, r in recs.items()} == dict.fromkeys(ATTACKS, 0.0)
    details = {k: r["scoring_details"] for k, r in recs.items()}
    assert "ConnectionRefusedError" in details["network"]["error"]
    assert "Read-only file system" in details["write_usr"]["error"]
    assert "No such file or directory" in details["write_host"]["error"]
    assert not host_file.exists() and not Path("/usr/nel_escape").exists()
    assert "no secret visible" in details["secrets"]["error"]
    assert SECRET not in json.dumps(recs)
    assert details["fork_bomb"]["reason"] in ("failed", "timeout")
    assert details["memory_bomb"]["error"] == "MemoryError"  # prlimit, as local
    assert details["infinite_loop"]["reason"] == "timeout"
    assert details["output_flood"]["reason"] == "output_limit"
    assert wait_no_jobs() == []


def _free() -> int:
    """A port of 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reads(path: Path) -> str:
    """A file's text (``/proc/*/cmdline`` with its NULs removed); "" if unreadable."""
    try:
        return path.read_bytes().replace(b"\0", b"").decode(errors="replace")
    except OSError:
        return ""


def test_write_config_starts_nothing_and_gives_the_node_our_cpus(
    tmp_path: Path,
) -> None:
    conf = write_config(tmp_path, ctld_port=1, slurmd_port=2)
    text = conf.read_text()
    assert f"CPUs={os.cpu_count()} " in text and "SlurmctldPort=1\n" in text
    assert f"StateSaveLocation={tmp_path.resolve()}/state\n" in text
    assert not (tmp_path / "slurmctld.pid").exists()
