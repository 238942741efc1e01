"""The run configuration: pydantic models, YAML loading, ``${VAR}``, ``defaults:`` and
``-O``.

The schema follows NeMo Evaluator's (``services``, ``benchmarks``, ``output``). Every
model forbids unknown keys, and every accepted key is used somewhere: a key that is not
built yet is an error that names its path, never silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pytest_nel.exceptions import ConfigError
from pytest_nel.sandbox_config import SandboxConfig, SandboxRef

_STRICT = ConfigDict(extra="forbid", frozen=True)
Protocol = Literal["chat_completions", "completions"]
ReportFormat = Literal["markdown", "json", "csv", "html", "latex"]


class GenerationConfig(BaseModel):
    """Sampling parameters sent with every request (unset ones are not sent)."""

    model_config = _STRICT
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, gt=0)
    seed: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    def merged(self, override: GenerationConfig) -> GenerationConfig:
        """Return these parameters, overridden by ``override``.

        Every parameter set in ``override`` replaces ours.
        """
        data = self.model_dump(exclude_none=True)
        extra = {**data.pop("extra_body", {}), **override.extra_body}
        data.update(override.model_dump(exclude_none=True, exclude={"extra_body"}))
        return GenerationConfig(**data, extra_body=extra)

    def request_params(self) -> dict[str, Any]:
        """The JSON body fields these parameters add to a request."""
        body = self.model_dump(exclude_none=True, exclude={"extra_body"})
        body.update(self.extra_body)
        return body


class InterceptorSpec(BaseModel):
    """One interceptor in a proxy chain: its registered name and its options."""

    model_config = _STRICT
    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class ProxyConfig(BaseModel):
    """The interceptor proxy in front of a service (``pytest_nel.interceptors``).

    Its endpoint interceptor then applies the service's ``max_retries`` and
    ``request_timeout`` (this ``request_timeout`` wins when set); the engine does not
    retry on top.
    """

    model_config = _STRICT
    request_timeout: float | None = Field(None, gt=0)
    interceptors: list[InterceptorSpec] = Field(default_factory=list)
    verbose: bool = False


class ApiService(BaseModel):
    """A remote OpenAI-compatible endpoint."""

    model_config = _STRICT
    type: Literal["api"]
    url: str
    protocol: Protocol = "chat_completions"
    model: str
    api_key: SecretStr | None = None
    generation: GenerationConfig = GenerationConfig()
    request_timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(5, ge=0, le=100)
    proxy: ProxyConfig | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://host:8000/v1")
        return value


class LlamaCppService(BaseModel):
    """A local GGUF model served by llama-cpp-python, started and stopped by the run."""

    model_config = _STRICT
    type: Literal["llama_cpp"]
    model: str = "smollm2"
    protocol: Protocol = "chat_completions"
    n_ctx: int = Field(2048, ge=128)
    n_threads: int | None = Field(None, ge=1)
    generation: GenerationConfig = GenerationConfig()
    request_timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(2, ge=0, le=100)
    startup_timeout: float = Field(120.0, gt=0)
    proxy: ProxyConfig | None = None


ServiceConfig = Annotated[ApiService | LlamaCppService, Field(discriminator="type")]


class SolverConfig(BaseModel):
    """How a benchmark's problems are put to the model.

    ``type: oracle`` calls no model: every problem is answered with its reference
    answer (the benchmark's oracle response), which checks that the benchmark's own
    scoring accepts it (``nel validate``).
    """

    model_config = _STRICT
    type: Literal["simple", "oracle"] = "simple"
    service: str | None = None
    system_prompt: str | None = None
    generation: GenerationConfig = GenerationConfig()

    @model_validator(mode="after")
    def _oracle_calls_no_model(self) -> SolverConfig:
        model_keys = self.model_fields_set & {"service", "system_prompt", "generation"}
        if self.type == "oracle" and model_keys:
            raise ValueError(
                "a solver of type oracle calls no model; remove "
                + ", ".join(sorted(model_keys))
            )
        return self


class MetricConfig(BaseModel):
    """One metric of a benchmark: a named scorer (``nel list`` and README list them)."""

    model_config = _STRICT
    type: Literal["scorer"]
    name: str = Field(min_length=1)


class ScoringConfig(BaseModel):
    """How a benchmark is scored: replaces the benchmark's own scorer by a named one."""

    model_config = _STRICT
    metrics: list[MetricConfig] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _one_scorer(cls, metrics: list[MetricConfig]) -> list[MetricConfig]:
        if len(metrics) > 1:
            raise ValueError(
                "one scorer per benchmark (each sample has one reward); "
                f"got {len(metrics)}"
            )
        return metrics


class BenchmarkConfig(BaseModel):
    """One benchmark to run."""

    model_config = _STRICT
    name: str = Field(min_length=1)
    solver: SolverConfig = SolverConfig()
    repeats: int = Field(1, ge=1, le=10_000)
    max_problems: int | None = Field(None, ge=1)
    max_concurrent: int = Field(32, ge=1, le=4096)
    shuffle_seed: int | None = 42
    error_budget: float | None = Field(None, ge=0, le=1)
    params: dict[str, Any] = Field(default_factory=dict)
    scoring: ScoringConfig | None = None
    sandbox: SandboxRef | None = None


def _default_formats() -> list[ReportFormat]:
    return ["markdown", "json"]


class OutputConfig(BaseModel):
    """Where results go and which reports are written."""

    model_config = _STRICT
    dir: str = "nel-results"
    report_formats: list[ReportFormat] = Field(default_factory=_default_formats)


class NelConfig(BaseModel):
    """The whole run configuration."""

    model_config = _STRICT
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    sandboxes: dict[str, SandboxConfig] = Field(default_factory=dict)
    benchmarks: list[BenchmarkConfig] = Field(min_length=1)
    output: OutputConfig = OutputConfig()

    def sandbox_for(self, bench: BenchmarkConfig) -> tuple[str, SandboxConfig] | None:
        """The (name, block) of a benchmark's ``sandbox:``, or None without one."""
        ref = bench.sandbox
        if ref is None:
            return None
        if isinstance(ref, SandboxConfig):
            return f"benchmarks[{bench.name}].sandbox", ref
        if ref not in self.sandboxes:
            raise ConfigError(
                f"benchmarks[{bench.name}].sandbox: unknown sandbox {ref!r}; "
                f"defined in sandboxes: {sorted(self.sandboxes) or 'none'}"
            )
        return ref, self.sandboxes[ref]

    def verifier_for(
        self, named: tuple[str, SandboxConfig] | None
    ) -> tuple[str, SandboxConfig] | None:
        """The (name, block) of a stateless sandbox's verifier; None when stateful.

        A stateless sandbox without ``verifier:`` is verified in a fresh sandbox of
        its own settings.
        """
        if named is None or named[1].mode != "stateless":
            return None
        name, block = named
        ref = block.verifier
        if ref is None:
            return f"{name}.verifier", block.model_copy(update={"mode": "stateful"})
        if isinstance(ref, SandboxConfig):
            verifier: tuple[str, SandboxConfig] = (f"{name}.verifier", ref)
        elif ref in self.sandboxes:
            verifier = (ref, self.sandboxes[ref])
        else:
            raise ConfigError(
                f"{name}.verifier: unknown sandbox {ref!r}; "
                f"defined in sandboxes: {sorted(self.sandboxes) or 'none'}"
            )
        if verifier[1].type != block.type:
            raise ConfigError(
                f"{name}.verifier: type {verifier[1].type!r} cannot share the workdir "
                f"of a {block.type!r} sandbox; use type {block.type!r}"
            )
        return verifier

    def service_for(
        self, bench: BenchmarkConfig
    ) -> tuple[str, ApiService | LlamaCppService]:
        """The (name, service) a benchmark's solver talks to."""
        name = bench.solver.service
        if name is None:
            if len(self.services) != 1:
                raise ConfigError(
                    f"benchmarks[{bench.name}].solver.service: "
                    "required when there is not "
                    f"exactly one service (services: {sorted(self.services) or 'none'})"
                )
            name = next(iter(self.services))
        if name not in self.services:
            raise ConfigError(
                f"benchmarks[{bench.name}].solver.service: unknown service {name!r}; "
                f"defined: {sorted(self.services) or 'none'}"
            )
        return name, self.services[name]


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML file into a mapping, composing its ``defaults:`` files first."""
    return _load_composed(path.resolve(), ())


def _load_composed(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"defaults: cycle {cycle}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping, got {type(data).__name__}"
        )
    defaults = data.pop("defaults", [])
    if isinstance(defaults, str):
        defaults = [defaults]
    if not isinstance(defaults, list) or not all(isinstance(d, str) for d in defaults):
        raise ConfigError(f"{path}: defaults: must be a list of YAML file paths")
    merged: dict[str, Any] = {}
    for item in defaults:
        base = _load_composed((path.parent / item).resolve(), (*chain, path))
        merged = deep_merge(merged, base)
    return deep_merge(merged, data)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; values in ``top`` win, lists are replaced whole."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(data: dict[str, Any], spec: str) -> None:
    """Apply one ``key.path=value`` override in place (value parsed as YAML).

    A list is indexed by position (``benchmarks.0.repeats``) or, for lists of mappings
    with a ``name``, by name (``benchmarks.gsm8k.repeats``).
    """
    path, sep, raw = spec.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"-O {spec!r}: expected key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"-O {spec!r}: value is not valid YAML: {_yaml_problem(exc)}"
        ) from exc
    keys = path.strip().split(".")
    if keys[0] in _BROADCAST:
        for concrete in _broadcast(data, keys[0]):
            apply_override(data, ".".join([concrete, *keys[1:]]) + "=" + raw)
        return
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, key, where)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError(f"-O {spec!r}: {where} is inside a {type(node).__name__}")


_BROADCAST = ("__all_benchmarks__", "__all_services__")


def _broadcast(data: dict[str, Any], key: str) -> list[str]:
    """Expand the quick options' pseudo-paths to every benchmark or the one service."""
    if key == "__all_benchmarks__":
        return [f"benchmarks.{i}" for i in range(len(data.get("benchmarks") or []))]
    services = data.get("services") or {}
    if len(services) != 1:
        raise ConfigError(
            "--nel-model-url/--nel-model-id/--nel-api-key apply to a config "
            "with exactly one "
            f"service; it has {sorted(services)}: use -O services.NAME.url=... instead"
        )
    return [f"services.{next(iter(services))}"]


def _list_index(node: list[Any], key: str, where: str) -> int:
    if key.lstrip("-").isdigit():
        index = int(key)
        if -len(node) <= index < len(node):
            return index
        raise ConfigError(
            f"-O {where}: index out of range (the list has {len(node)} items)"
        )
    names = [item.get("name") for item in node if isinstance(item, dict)]
    if key in names:
        return names.index(key)
    raise ConfigError(f"-O {where}: no list item named {key!r}; names: {names}")


def interpolate(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string.

    ``$$`` is a literal ``$``.
    """
    if isinstance(data, dict):
        return {
            k: interpolate(v, env, f"{path}.{k}" if path else str(k))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str) or "$" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: environment variable ${{{name}}} is not set "
            f"(set it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(replace, data)


def validate(data: Mapping[str, Any], source: str = "config") -> NelConfig:
    """Validate a composed, interpolated mapping into a :class:`NelConfig`."""
    try:
        return NelConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(err) for err in exc.errors()[:10]]
        more = len(exc.errors()) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        raise ConfigError(
            f"{source}: invalid configuration:\n  " + "\n  ".join(lines)
        ) from None


def _describe_error(err: Mapping[str, Any]) -> str:
    tags = ("api", "llama_cpp", "sandbox-name", "sandbox-block")
    loc = [p for p in err["loc"] if p not in tags]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if err["type"] == "extra_forbidden":
        return (
            f"{path}: unknown key (not a setting of this version; check the spelling)"
        )
    value = err.get("input")
    shown = (
        "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    )
    return f"{path or '<top>'}: {err['msg']}{shown}"


def resolve_config(
    path: Path | None,
    base: Mapping[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> NelConfig:
    """Load, compose, override, interpolate and validate the run configuration."""
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    if base:
        data = deep_merge(data, base)
    for spec in overrides:
        apply_override(data, spec)
    data = interpolate(data, os.environ if env is None else env)
    return validate(data, str(path) if path is not None else "options")


def endpoint_url(url: str, protocol: str) -> str:
    """Turn a base URL (``http://host/v1``) into the protocol's endpoint.

    Full URLs are kept as they are.
    """
    stripped = url.rstrip("/")
    if stripped.endswith(("/chat/completions", "/completions")):
        return stripped
    suffix = "/chat/completions" if protocol == "chat_completions" else "/completions"
    return stripped + suffix


def redacted(config: NelConfig) -> dict[str, Any]:
    """The config as plain data with every secret removed, for files the run writes."""
    data = config.model_dump(mode="json", exclude_none=True)
    for service in data.get("services", {}).values():
        if "api_key" in service:
            service["api_key"] = "<redacted>"
    return data
