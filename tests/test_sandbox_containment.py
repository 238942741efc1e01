"""Hostile completions run through the plugin in the real local and docker sandboxes.

Each hostile body runs before HumanEval/0's canonical solution, so the sample scores 1
only if the attack worked; 0 (with the reason in scoring_details) means it was
contained. The last row is the plain canonical solution: the run goes on and scores it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_humaneval import (
    humaneval_rows,
    records,
    run_say_bench,
    write_say_bench,
)

from pytest_nel.testing.fake_model import FakeModel

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)

SECRET = "sk-nel-test-0123456789"

ATTACKS = {
    "network": """
    import socket
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
""",
    "write_usr": """
    open("/usr/nel_escape", "w").write("x")
""",
    "write_host": """
    open("{host_file}", "w").write("x")
""",
    "secrets": """
    import glob, os
    leaked = os.environ.get("NEL_TEST_API_KEY")
    for path in glob.glob("/proc/*/environ"):
        try:
            leaked = leaked or "sk-nel-" + "{secret_tail}" in open(path).read()
        except OSError:
            pass
    assert leaked, "no secret visible"
""",
    "fork_bomb": """
    import os
    while True:
        os.fork()
""",
    "memory_bomb": """
    hog = []
    while True:
        hog.append(bytearray(50_000_000))
""",
    "infinite_loop": """
    while True:
        pass
""",
    "output_flood": """
    import sys
    for _ in range(100):
        sys.stdout.write("x" * 1_000_000)
""",
}


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_attacks_are_contained_scored_zero_and_the_run_goes_on(
    pytester: pytest.Pytester,
    fake: FakeModel,
    datasets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    if backend == "docker":
        request.getfixturevalue("docker_host")
    monkeypatch.setenv("NEL_TEST_API_KEY", SECRET)
    host_file = pytester.path / "escaped.txt"
    port = fake.base_url.rsplit(":", 1)[1].split("/")[0]
    base = humaneval_rows(datasets_dir)[0]
    rows: list[dict[str, Any]] = []
    for name, attack in ATTACKS.items():
        tail = SECRET.removeprefix("sk-nel-")  # the program must not hold the secret
        body = attack.format(port=port, host_file=host_file, secret_tail=tail)
        say = body.lstrip("\n") + base["canonical_solution"]
        rows.append({**base, "task_id": name, "say": say})
    rows.append({**base, "task_id": "canonical", "say": base["canonical_solution"]})
    write_say_bench(pytester, rows)
    result = run_say_bench(
        pytester,
        fake,
        "--nel-override",
        "__all_benchmarks__.sandbox.verify_timeout=3",
        "--nel-override",
        f"__all_benchmarks__.sandbox.type={backend}",
        "--nel-override",
        "__all_benchmarks__.max_concurrent=1",
    )
    result.assert_outcomes(passed=len(rows))
    recs = records(pytester, "he")
    assert recs.pop("canonical")["reward"] == 1.0
    assert {k: r["reward"] for k, r in recs.items()} == dict.fromkeys(ATTACKS, 0.0)
    details = {k: r["scoring_details"] for k, r in recs.items()}
    assert "ConnectionRefusedError" in details["network"]["error"]
    assert "Read-only file system" in details["write_usr"]["error"]
    assert "No such file or directory" in details["write_host"]["error"]
    assert not host_file.exists() and not Path("/usr/nel_escape").exists()
    assert "no secret visible" in details["secrets"]["error"]
    assert SECRET not in json.dumps(recs)
    assert details["fork_bomb"]["reason"] in ("failed", "timeout")
    if backend == "local":  # an address-space rlimit: Python's own MemoryError
        assert details["memory_bomb"]["error"] == "MemoryError"
    else:  # a cgroup limit: the kernel's OOM killer
        assert details["memory_bomb"]["reason"] == "signal 9"
    assert details["infinite_loop"]["reason"] == "timeout"
    assert details["output_flood"]["reason"] == "output_limit"
    assert details["output_flood"]["stdout_bytes"] <= 1024 * 1024
