"""Sandboxes for model-written code (``pytest_nel.sandboxes``).

The protocol, settings, results and the backend registry are in
:mod:`pytest_nel.sandboxes.protocol`; each backend has its own module (``local``:
bubblewrap, ``none``: no isolation).
"""

from __future__ import annotations

from pytest_nel.sandboxes.protocol import (
    BaseSandbox,
    ExecResult,
    Sandbox,
    SandboxSettings,
    get_backend,
    known_backends,
    make_sandbox,
    parse_size,
    sandbox_backend,
)

__all__ = [
    "BaseSandbox",
    "ExecResult",
    "Sandbox",
    "SandboxSettings",
    "get_backend",
    "known_backends",
    "make_sandbox",
    "parse_size",
    "sandbox_backend",
]
