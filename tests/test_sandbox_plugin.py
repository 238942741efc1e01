"""Sandboxes in the plugin: config blocks, the nel_sandbox fixture, errors and -n."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)

#: A third-party backend whose sandbox never starts (an engine that is down).
BROKEN_BACKEND = """
from pytest_nel.exceptions import SandboxError
from pytest_nel.sandboxes import BaseSandbox, sandbox_backend

@sandbox_backend("broken")
class Broken(BaseSandbox):
    setting_names = frozenset({"verify_timeout"})

    def start(self):
        raise SandboxError("engine is down: start it and retry")

    def stop(self):
        pass
"""


@pytest.fixture(autouse=True)
def _mirror(monkeypatch: pytest.MonkeyPatch, datasets_dir: Path) -> None:
    monkeypatch.setenv("NEL_DATASETS_DIR", str(datasets_dir))


def oracle_run(
    pytester: pytest.Pytester, datasets_dir: Path, *args: str
) -> pytest.RunResult:
    """humaneval's canonical solutions (no model) with extra options."""
    return pytester.runpytest(
        "--nel-bench",
        "humaneval",
        "--nel-override",
        "__all_benchmarks__.solver.type=oracle",
        "--nel-override",
        "__all_benchmarks__.max_problems=6",
        "--nel-output",
        "out",
        *args,
    )


def results(pytester: pytest.Pytester) -> list[dict[str, object]]:
    path = pytester.path / "out" / "humaneval" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_sandbox_that_cannot_start_is_an_error_not_a_zero(
    pytester: pytest.Pytester, datasets_dir: Path
) -> None:
    pytester.makeconftest(BROKEN_BACKEND)
    result = oracle_run(
        pytester,
        datasets_dir,
        "--nel-override",
        "__all_benchmarks__.sandbox.type=broken",
    )
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(["*[[]sandbox_error[]] engine is down*"])
    recs = results(pytester)
    assert len(recs) == 6
    assert all(r["status"] == "error" and r["reward"] is None for r in recs)
    assert {r["error"]["category"] for r in recs} == {"sandbox_error"}  # type: ignore[index]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sandbox.type=dockr", "*sandbox: *unknown sandbox type 'dockr'; known: *"),
        ("sandbox.memory=lots", "*benchmarks[[]0[]].sandbox.memory: *512m*"),
        ("sandbox.cpus=-1", "*benchmarks[[]0[]].sandbox.cpus: *greater than 0*"),
        ("sandbox.image=x", "*image: not a setting of sandbox type 'local'*"),
        ("sandbox=strict", "*unknown sandbox 'strict'; defined in sandboxes: none*"),
        ("sandbox.verifier=v", "*sandbox: *verifier: only with mode: stateless*"),
        ("sandbox.mode=stateful-ish", "*sandbox.mode: *'stateful' or 'stateless'*"),
    ],
)
def test_bad_sandbox_config_stops_the_run_before_any_item(
    pytester: pytest.Pytester, datasets_dir: Path, override: str, message: str
) -> None:
    result = oracle_run(
        pytester, datasets_dir, "--nel-override", f"__all_benchmarks__.{override}"
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])


def test_missing_bubblewrap_names_what_to_install(
    pytester: pytest.Pytester, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(pytester.path))  # no bwrap on it
    result = oracle_run(pytester, datasets_dir)
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*sandbox 'humaneval (default)' (type local) needs 'bwrap'*bubblewrap*"]
    )
    assert not (pytester.path / "out" / "humaneval" / "results.jsonl").exists()


@needs_bwrap
def test_named_sandbox_from_the_config_file_and_xdist(
    pytester: pytest.Pytester, datasets_dir: Path
) -> None:
    config = pytester.path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            """
            sandboxes:
              strict: {type: local, memory: 256m, cpus: 1, verify_timeout: 20}
            benchmarks:
              - name: humaneval
                solver: {type: oracle}
                max_problems: 12
                sandbox: strict
            output: {dir: out}
            """
        )
    )
    result = pytester.runpytest_subprocess("--nel-config", str(config), "-n", "2")
    result.assert_outcomes(passed=12)
    assert [r["reward"] for r in results(pytester)] == [1.0] * 12
    saved = (pytester.path / "out" / "config.yaml").read_text()
    assert "strict" in saved and "268435456" in saved


def test_users_own_test_gets_a_fresh_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.nel_sandbox(type="none", verify_timeout=5)
        def test_runs_python(nel_sandbox):
            nel_sandbox.write_file("a.py", "print(6 * 7)")
            result = nel_sandbox.exec(["python3", "a.py"])
            assert result.ok and result.stdout == "42\\n"

        @pytest.mark.nel_sandbox(type="none")
        def test_fresh_per_test(nel_sandbox):
            assert nel_sandbox.exec("ls").stdout == ""

        @pytest.mark.nel_sandbox(type="none", memory="1g")
        def test_bad_marker(nel_sandbox):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*nel_sandbox on *test_bad_marker*memory: not a setting of sandbox type*"]
    )


@needs_bwrap
def test_users_own_test_defaults_to_the_local_sandbox(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_isolated(nel_sandbox):
            result = nel_sandbox.exec("id -u; ls /")
            uid, *top = result.stdout.split()
            assert int(uid) != 0 and "root" not in top and "box" in top
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        ("verifier: missing", "*verifier: unknown sandbox 'missing'; defined in *"),
        (
            "verifier: {type: none}",
            "*type 'none' cannot share the workdir of a 'local'*",
        ),
    ],
)
def test_bad_stateless_verifier_stops_the_run_before_any_item(
    pytester: pytest.Pytester, verifier: str, message: str
) -> None:
    config = pytester.path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            sandboxes:
              other: {{type: local}}
            benchmarks:
              - name: humaneval
                solver: {{type: oracle}}
                sandbox: {{type: local, mode: stateless, {verifier}}}
            output: {{dir: out}}
            """
        )
    )
    result = pytester.runpytest("--nel-config", str(config))
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])


@needs_bwrap
def test_stateless_mode_verifies_in_a_fresh_sandbox(pytester: pytest.Pytester) -> None:
    config = pytester.path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            """
            benchmarks:
              - name: humaneval
                solver: {type: oracle}
                max_problems: 5
                sandbox:
                  type: local
                  mode: stateless
                  verifier: {type: local, memory: 1g}
            output: {dir: out}
            """
        )
    )
    result = pytester.runpytest("--nel-config", str(config))
    result.assert_outcomes(passed=5)
    assert [r["reward"] for r in results(pytester)] == [1.0] * 5


@needs_bwrap
def test_sandbox_limits_are_in_the_fingerprint_resume_refuses_a_change(
    pytester: pytest.Pytester, datasets_dir: Path
) -> None:
    limit = "__all_benchmarks__.sandbox.verify_timeout"
    oracle_run(pytester, datasets_dir, "--nel-override", f"{limit}=10")
    saved = json.loads((pytester.path / "out/humaneval/fingerprint.json").read_text())
    assert saved["task"]["sandbox"]["verify_timeout"] == 10
    assert saved["task"]["sandbox"]["mode"] == "stateful"
    assert saved["sandbox_backend"] == {"type": "local", "image": None}
    result = oracle_run(
        pytester, datasets_dir, "--nel-resume", "--nel-override", f"{limit}=20"
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*task.sandbox.verify_timeout: 10.0 -> 20.0*"])
