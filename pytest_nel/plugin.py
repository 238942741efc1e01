"""pytest-nel's pytest11 entry point: names the internal plugins in one place.

Without ``--nel-*`` options only the option declarations are active, so an ordinary test
suite runs exactly as before. With them, :class:`pytest_nel.session.NelSession` is built
and registered in ``pytest_configure``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_nel.engine import Engine

from pytest_nel import options
from pytest_nel.exceptions import NelUsageError


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``--nel-*`` options."""
    options.pytest_addoption(parser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, args: list[str]
) -> Generator[None, None, None]:
    """Evaluation runs capture output at the sys level unless the user chose a method.

    fd-level capture reads and truncates two temporary files for every phase of every
    item; on a 1319-sample run that alone costs over a second.
    """
    namespace = early_config.known_args_namespace
    evaluating = any(a.startswith(("--nel-config", "--nel-bench")) for a in args)
    if evaluating and not _capture_chosen(args) and namespace.capture == "fd":
        namespace.capture = "sys"
    return (yield)


def _capture_chosen(args: list[str]) -> bool:
    for arg in args:
        if arg.startswith("--capture") or arg == "-s":
            return True
        if (
            arg.startswith("-")
            and not arg.startswith("--")
            and arg[1:].isalpha()
            and "s" in arg
        ):
            return True
    return False


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Build the evaluation run when ``--nel-config`` or ``--nel-bench`` is given."""
    config.addinivalue_line(
        "markers", "nel: an evaluation sample collected by pytest-nel"
    )
    config.addinivalue_line(
        "markers",
        "nel_sandbox(**settings): settings of the nel_sandbox fixture "
        "(type, memory, cpus, verify_timeout, ...; as a config sandbox: block)",
    )
    if not options.is_active(config):
        return
    engine = _early_engine(config)
    from pytest_nel.run import build_run
    from pytest_nel.session import RUN_KEY, NelSession, XdistHooks

    try:
        cfg = options.build_config(config)
        base_dir = Path(config.getoption("nel_config") or ".").resolve()
        base_dir = base_dir.parent if base_dir.is_file() else Path.cwd()
        mirror = os.environ.get("NEL_DATASETS_DIR")
        run = build_run(
            cfg,
            base_dir=base_dir,
            resume=config.getoption("nel_resume"),
            mirror_dir=Path(mirror) if mirror else None,
        )
        session = NelSession(
            config, run, engine, overwrite=config.getoption("nel_overwrite")
        )
    except BaseException as exc:
        if engine is not None:
            engine.stop()
        if isinstance(exc, NelUsageError):
            raise pytest.UsageError(f"nel: {exc}") from None
        raise
    config.stash[RUN_KEY] = run
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = []
    config.pluginmanager.register(session, "nel-session")
    if config.pluginmanager.has_plugin("xdist"):
        config.pluginmanager.register(XdistHooks(run), "nel-xdist")


def _early_engine(config: pytest.Config) -> Engine | None:
    """Start the engine process first thing, so its imports overlap everything else.

    Not in the xdist controller (it runs no items) nor for --collect-only.
    """
    controller = not hasattr(config, "workerinput") and (
        getattr(config.option, "dist", "no") != "no"
    )
    if controller or config.getoption("collectonly"):
        return None
    from pytest_nel.engine import Engine

    engine = Engine()
    engine.start()
    return engine


@pytest.fixture(scope="session")
def nel_run(request: pytest.FixtureRequest) -> object:
    """The evaluation run (config, benchmarks, output folder) of this session."""
    from pytest_nel.session import RUN_KEY

    return request.config.stash[RUN_KEY]


@pytest.fixture
def nel_sandbox(request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh sandbox for this item or test, stopped after it.

    Evaluation items get their benchmark's sandbox; other tests configure it with
    ``@pytest.mark.nel_sandbox(type=..., memory=...)`` (default ``type: local``).
    """
    from pytest_nel.sandbox_fixture import sandbox_for

    yield from sandbox_for(request)
