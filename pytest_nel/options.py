"""Command-line options (``--nel-*``) and how they become a configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_nel.exceptions import ConfigError

if TYPE_CHECKING:
    from pytest_nel.config import NelConfig


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``--nel-*`` options (they mirror ``nel eval run``)."""
    group = parser.getgroup("nel", "LLM evaluation (pytest-nel)")
    add = group.addoption
    add(
        "--nel-config",
        metavar="FILE",
        help="run the evaluation described by this YAML config",
    )
    add(
        "--nel-bench",
        action="append",
        default=[],
        metavar="NAME",
        help="benchmark to run: a built-in name, ./file.py or ./file.py:name "
        "(repeatable); "
        "with --nel-config, selects benchmarks from it",
    )
    add(
        "--nel-model-url",
        metavar="URL",
        help="endpoint: a base URL (http://host:8000/v1) or a full endpoint URL",
    )
    add("--nel-model-id", metavar="ID", help="model name sent with each request")
    add(
        "--nel-api-key",
        metavar="KEY",
        help="API key (prefer api_key: ${VAR} in the config)",
    )
    add(
        "--nel-protocol",
        choices=["chat_completions", "completions"],
        default=None,
        help="endpoint protocol for --nel-model-url (default chat_completions)",
    )
    add("--nel-repeats", type=int, metavar="N", help="samples per problem")
    add("--nel-max-problems", type=int, metavar="N", help="evaluate at most N problems")
    add(
        "--nel-max-concurrent", type=int, metavar="N", help="requests in flight (total)"
    )
    add("--nel-system-prompt", metavar="TEXT", help="system prompt for every benchmark")
    add("--nel-temperature", type=float, metavar="T", help="sampling temperature")
    add("--nel-max-tokens", type=int, metavar="N", help="max tokens per response")
    add(
        "--nel-seed",
        type=int,
        metavar="N",
        help="sampling seed (repeat k sends seed + k)",
    )
    add(
        "--nel-output",
        metavar="DIR",
        help="results folder (default: output.dir, nel-results)",
    )
    add(
        "--nel-resume",
        action="store_true",
        help="continue a run in a non-empty results folder",
    )
    add("--nel-overwrite", action="store_true", help="replace an earlier run's results")
    add(
        "--nel-override",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value (repeatable), e.g. benchmarks.0.repeats=4",
    )
    add(
        "--nel-no-preflight",
        action="store_true",
        help="skip the endpoint check before items run",
    )
    add(
        "--nel-progress-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="print a progress line this often on long runs (0: never)",
    )
    add(
        "--nel-baseline",
        metavar="DIR",
        help="gate this run against the results folder DIR: one <bench>::gate item "
        "per benchmark",
    )
    add(
        "--nel-gate-policy",
        metavar="FILE",
        help="gate policy YAML for --nel-baseline (default: every benchmark "
        "supporting, max_drop 0.015)",
    )
    add(
        "--nel-strict",
        action="store_true",
        help="gate items with insufficient evidence fail instead of skipping",
    )


def is_active(config: pytest.Config) -> bool:
    """True when this pytest run is an evaluation."""
    return bool(config.getoption("nel_config") or config.getoption("nel_bench"))


def build_config(config: pytest.Config) -> NelConfig:
    """Read ``--nel-config`` and the quick options into one validated configuration."""
    from pytest_nel.config import resolve_config

    opt = config.getoption
    path = Path(opt("nel_config")) if opt("nel_config") else None
    base: dict[str, Any] = {}
    overrides: list[str] = list(opt("nel_override"))
    if path is None:
        base = _quick_config(config)
    overrides = [*_quick_overrides(config, path is not None), *overrides]
    env = dict(os.environ)
    cfg = resolve_config(path, base, overrides, env)
    needs_model = any(b.solver.type != "oracle" for b in cfg.benchmarks)
    if path is None and not cfg.services and needs_model:
        raise ConfigError(_NEEDS_MODEL)
    return _select_benchmarks(cfg, opt("nel_bench") if path is not None else [])


_NEEDS_MODEL = (
    "--nel-bench without --nel-config needs --nel-model-url and --nel-model-id "
    "(or put the model in a config file: --nel-config FILE)"
)


def _quick_config(config: pytest.Config) -> dict[str, Any]:
    opt = config.getoption
    url, model = opt("nel_model_url"), opt("nel_model_id")
    benchmarks = [{"name": name} for name in opt("nel_bench")]
    if not url and not model:
        return {"benchmarks": benchmarks}  # oracle solvers only; checked once resolved
    if not url or not model:
        raise ConfigError(_NEEDS_MODEL)
    service: dict[str, Any] = {"type": "api", "url": url, "model": model}
    if opt("nel_protocol"):
        service["protocol"] = opt("nel_protocol")
    if opt("nel_api_key"):
        service["api_key"] = opt("nel_api_key")
    return {"services": {"model": service}, "benchmarks": benchmarks}


def _quick_overrides(config: pytest.Config, with_file: bool) -> list[str]:
    """Quick options as ``-O`` overrides applied to every benchmark / service."""
    opt = config.getoption
    out: list[str] = []
    per_bench = {
        "repeats": opt("nel_repeats"),
        "max_problems": opt("nel_max_problems"),
        "max_concurrent": opt("nel_max_concurrent"),
        "solver.system_prompt": opt("nel_system_prompt"),
        "solver.generation.temperature": opt("nel_temperature"),
        "solver.generation.max_tokens": opt("nel_max_tokens"),
        "solver.generation.seed": opt("nel_seed"),
    }
    for key, value in per_bench.items():
        if value is not None:
            out.append(f"__all_benchmarks__.{key}={_yaml_scalar(value)}")
    if with_file:
        for key, name in (
            ("url", "nel_model_url"),
            ("model", "nel_model_id"),
            ("api_key", "nel_api_key"),
            ("protocol", "nel_protocol"),
        ):
            if opt(name):
                out.append(f"__all_services__.{key}={_yaml_scalar(opt(name))}")
    if opt("nel_output"):
        out.append(f"output.dir={_yaml_scalar(opt('nel_output'))}")
    return out


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _select_benchmarks(cfg: NelConfig, names: list[str]) -> NelConfig:
    if not names:
        return cfg
    known = [b.name for b in cfg.benchmarks]
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(
            f"--nel-bench {', '.join(missing)}: not in the config; it has: {known}"
        )
    chosen = [b for b in cfg.benchmarks if b.name in names]
    return cfg.model_copy(update={"benchmarks": chosen})
