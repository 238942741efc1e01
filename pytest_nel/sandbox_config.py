"""The ``sandbox:`` config block: a benchmark's sandbox, inline or named.

::

    sandboxes:                      # named sandboxes, referenced by benchmarks
      strict: {type: local, memory: 256m, verify_timeout: 5}
    benchmarks:
      - name: humaneval
        sandbox: strict             # by name, or an inline block:
        # sandbox: {type: local, memory: 512m, cpus: 1, verify_timeout: 10}

A benchmark that declares ``needs_sandbox`` and has no ``sandbox:`` gets the default
block (``type: local``). Each backend accepts only the settings it really applies
(``BaseSandbox.setting_names``); any other key is an error naming the key and the
sandbox type.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from pytest_nel.sandboxes.protocol import SandboxSettings, get_backend, parse_size

__all__ = ["SandboxConfig", "SandboxRef", "sandbox_settings"]

_DEFAULTS = SandboxSettings()
_SIZES = ("memory", "workdir_size", "file_size", "max_output")
_NOT_BACKEND = frozenset({"type", "mode", "verifier"})  # not settings of a backend


class SandboxConfig(BaseModel):
    """One sandbox: its backend and limits (sizes such as ``512m``, times in s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str = "local"
    image: str | None = Field(None, min_length=1)
    memory: int = _DEFAULTS.memory
    cpus: float = Field(_DEFAULTS.cpus, gt=0, le=1024)
    network: Literal["none"] = "none"
    verify_timeout: float = Field(_DEFAULTS.verify_timeout, gt=0, le=86_400)
    workdir_size: int = _DEFAULTS.workdir_size
    file_size: int = _DEFAULTS.file_size
    pids: int = Field(_DEFAULTS.pids, ge=1, le=100_000)
    max_output: int = _DEFAULTS.max_output
    partition: str | None = Field(None, min_length=1)
    shared_dir: str | None = Field(None, min_length=1)
    mode: Literal["stateful", "stateless"] = "stateful"
    verifier: SandboxRef | None = None

    @field_validator(*_SIZES, mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        if isinstance(value, str | int | float):
            return int(parse_size(value))  # (mypy cannot see into sandboxes/)
        raise ValueError(f"expected a size such as 512m or 4g, got {value!r}")

    @model_validator(mode="after")
    def _backend_applies_every_setting(self) -> SandboxConfig:
        try:
            backend = get_backend(self.type)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        if self.verifier is not None and self.mode != "stateless":
            raise ValueError("verifier: only with mode: stateless")
        unused = sorted(self.model_fields_set - backend.setting_names - _NOT_BACKEND)
        if unused:
            raise ValueError(
                f"{', '.join(unused)}: not a setting of sandbox type {self.type!r} "
                f"(its settings: {', '.join(sorted(backend.setting_names))})"
            )
        return self

    def settings(self, name: str) -> SandboxSettings:
        """The backend settings of this block; ``name`` is shown in errors."""
        data = self.model_dump(exclude=_NOT_BACKEND - {"type"})
        return SandboxSettings(name=name, **data)


def _tag(value: Any) -> str:
    """Which form a benchmark's ``sandbox:`` takes: a name or an inline block."""
    return (
        "sandbox-block" if isinstance(value, dict | SandboxConfig) else "sandbox-name"
    )


#: A benchmark's ``sandbox:``: the name of an entry of ``sandboxes:``, or a block.
SandboxRef = Annotated[
    Annotated[str, Tag("sandbox-name")]
    | Annotated[SandboxConfig, Tag("sandbox-block")],
    Discriminator(_tag),
]
SandboxConfig.model_rebuild()


def sandbox_settings(
    named: tuple[str, SandboxConfig] | None, *, needed: bool, bench: str
) -> SandboxSettings | None:
    """The settings of a benchmark's sandbox, checked to run here; None without one.

    Args:
        named: ``NelConfig.sandbox_for`` of the benchmark.
        needed: The benchmark declares ``needs_sandbox`` (it then gets the default
            block when the config gives none).
        bench: The benchmark's name, for errors.

    Raises:
        SandboxUnavailable: The backend cannot run on this machine (the message says
            what to install).
    """
    if named is None:
        if not needed:
            return None
        named = (f"{bench} (default)", SandboxConfig())
    name, block = named
    settings = block.settings(name)
    get_backend(settings.type).check(settings)
    return settings
