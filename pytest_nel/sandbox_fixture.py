"""The ``nel_sandbox`` fixture: a fresh sandbox per item, stopped after it.

Evaluation items of a benchmark with a sandbox (``needs_sandbox`` or a ``sandbox:``
block) request it; their scorer gets it as ``ScorerInput.sandbox``. When it cannot
start, the item is not errored at setup: the failure is kept in the item's stash and
the sampler records the sample as a ``sandbox_error`` (never a 0), so results.jsonl
holds it like any other error.

A user's own test may request it too; its settings come from a marker, validated like
a config block (default: ``type: local``)::

    @pytest.mark.nel_sandbox(type="local", memory="256m", verify_timeout=5)
    def test_my_tool(nel_sandbox):
        assert nel_sandbox.exec(["python3", "-c", "print(1)"]).stdout == "1\\n"
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from pytest_nel.exceptions import ConfigError, SandboxError
from pytest_nel.sandbox_config import SandboxConfig
from pytest_nel.sandboxes.protocol import (
    BaseSandbox,
    SandboxSettings,
    get_backend,
    make_sandbox,
)

#: The error of an evaluation item's sandbox that could not start.
SANDBOX_FAILURE = pytest.StashKey[SandboxError]()
MARKER = "nel_sandbox"


def sandbox_for(request: pytest.FixtureRequest) -> Iterator[BaseSandbox | None]:
    """Start the requesting item's sandbox, yield it, stop it afterwards."""
    evaluation = _bench_settings(request.node)
    settings = evaluation or _marker_settings(request.node)
    if evaluation is None:
        get_backend(settings.type).check(settings)
    box = make_sandbox(settings)
    try:
        box.start()
    except SandboxError as exc:
        box.stop()
        if evaluation is None:
            raise
        request.node.stash[SANDBOX_FAILURE] = exc
        yield None
        return
    try:
        yield box
    finally:
        box.stop()


def _bench_settings(node: pytest.Item) -> SandboxSettings | None:
    bench = getattr(node, "bench", None)
    return getattr(bench, "sandbox", None)


def _marker_settings(node: pytest.Item) -> SandboxSettings:
    marker = node.get_closest_marker(MARKER)
    kwargs = dict(marker.kwargs) if marker is not None else {}
    try:
        block = SandboxConfig(**kwargs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"@pytest.mark.{MARKER} on {node.nodeid}: {problems}"
        ) from None
    return block.settings(node.nodeid)
