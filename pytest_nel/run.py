"""The run's state: the resolved benchmarks, their services and output folders.

One :class:`NelRun` is built in ``pytest_configure`` and kept in ``config.stash``;
nothing about the run lives in module globals or environment variables, so the plugin
behaves the same in-process, under pytester and under xdist.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pytest_nel.benchmark import BenchmarkSpec, resolve
from pytest_nel.config import (
    ApiService,
    BenchmarkConfig,
    GenerationConfig,
    LlamaCppService,
    NelConfig,
    endpoint_url,
)
from pytest_nel.exceptions import ConfigError, OutputDirError
from pytest_nel.results import FINGERPRINT, RESULTS, RUN_MARKER, fingerprint_diff
from pytest_nel.sandbox_config import sandbox_settings
from pytest_nel.sandboxes.protocol import SandboxSettings
from pytest_nel.scoring import get_scorer

#: The service name of benchmarks whose solver is ``oracle`` (no config key is this).
ORACLE_SERVICE = "<oracle>"


@dataclass(frozen=True)
class OracleService:
    """The stand-in service of a benchmark whose solver is ``oracle``: no model.

    It gives the fingerprint an honest model identity (``oracle``); nothing ever
    connects to it, so there is no endpoint, preflight or managed server.
    """

    type: str = "oracle"
    model: str = "oracle"
    protocol: str = "chat_completions"
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    request_timeout: float = 1.0
    max_retries: int = 0


ServiceConfig = ApiService | LlamaCppService | OracleService


def package_version() -> str:
    """The installed pytest-nel version."""
    try:
        return version("pytest-nel")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def short_hash(text: str | None) -> str | None:
    """A short sha256 of a text (None stays None)."""
    if text is None:
        return None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class BenchmarkRun:
    """One benchmark of the run, resolved against its service."""

    name: str
    spec: BenchmarkSpec
    config: BenchmarkConfig
    service_name: str
    service: ServiceConfig
    dir: Path
    generation: GenerationConfig
    system_prompt: str | None
    protocol: str
    done: set[tuple[int, int]] = field(default_factory=set)
    dataset_fingerprint: str | None = None
    sandbox: SandboxSettings | None = None  # each item gets a fresh one when set
    # Stateless mode: verification runs in a fresh sandbox of these settings that
    # shares the item's sandbox's workdir; None: in the item's sandbox (stateful).
    verifier_sandbox: SandboxSettings | None = None

    @property
    def is_oracle(self) -> bool:
        """True when the solver answers with the reference answer (no model call)."""
        return self.config.solver.type == "oracle"

    def fingerprint(self, endpoint: str | None) -> dict[str, Any]:
        """The run fingerprint.

        The task part decides comparability, the model part identity.
        """
        model = self.service.model
        task: dict[str, Any] = {
            "benchmark": self.spec.name,
            "dataset": self.spec.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
            "prompt_template": self.spec.prompt_fingerprint(),
            "system_prompt": short_hash(self.system_prompt),
            "scorer_version": self.spec.scorer_version,
            "protocol": self.protocol,
            "generation": self.generation.request_params(),
            "repeats": self.config.repeats,
            "params": self.config.params,
        }
        parts: dict[str, Any] = {"task": task}
        if self.sandbox is not None:
            # Limits change scores (a timeout, a memory cap): they decide
            # comparability; the backend and image are only reported.
            task["sandbox"] = _sandbox_limits(self.sandbox, self.verifier_sandbox)
            parts["sandbox_backend"] = {
                "type": self.sandbox.type,
                "image": self.sandbox.image,
            }
        return {
            **parts,
            "model": {"model": model, "service_type": self.service.type},
            "endpoint": endpoint,
            "package_version": package_version(),
        }


def _sandbox_limits(
    sandbox: SandboxSettings, verifier: SandboxSettings | None
) -> dict[str, Any]:
    """The settings of the sandbox that verifies, and the mode."""
    checks = verifier or sandbox
    return {
        "mode": "stateless" if verifier is not None else "stateful",
        "verify_timeout": checks.verify_timeout,
        "memory": checks.memory,
        "cpus": checks.cpus,
        "pids": checks.pids,
        "file_size": checks.file_size,
        "max_output": checks.max_output,
    }


@dataclass
class NelRun:
    """Everything the plugin knows about the evaluation being run."""

    config: NelConfig
    output: Path
    benchmarks: list[BenchmarkRun]
    resume: bool
    mirror_dir: Path | None
    endpoints: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def by_name(self, name: str) -> BenchmarkRun:
        """The benchmark run called ``name``."""
        for bench in self.benchmarks:
            if bench.name == name:
                return bench
        raise KeyError(name)


def build_run(
    config: NelConfig, *, base_dir: Path, resume: bool, mirror_dir: Path | None
) -> NelRun:
    """Resolve every benchmark of ``config`` (names, services, prompts, folders)."""
    output = Path(config.output.dir).expanduser()
    if not output.is_absolute():
        output = Path.cwd() / output
    seen: set[str] = set()
    benches = []
    for bench_cfg in config.benchmarks:
        spec = resolve(bench_cfg.name, base_dir)
        if spec.name in seen:
            raise ConfigError(f"benchmarks: {spec.name!r} is listed twice")
        seen.add(spec.name)
        spec = _scored_by(spec, bench_cfg)
        service_name: str
        service: ServiceConfig
        if bench_cfg.solver.type == "oracle":
            service_name, service = ORACLE_SERVICE, OracleService()
        else:
            service_name, service = config.service_for(bench_cfg)
        benches.append(_bench_run(spec, bench_cfg, service_name, service, output))
        named = config.sandbox_for(bench_cfg)
        benches[-1].sandbox = sandbox_settings(
            named, needed=spec.needs_sandbox, bench=spec.name
        )
        benches[-1].verifier_sandbox = sandbox_settings(
            config.verifier_for(named), needed=False, bench=spec.name
        )
    return NelRun(config, output, benches, resume, mirror_dir)


def _scored_by(spec: BenchmarkSpec, cfg: BenchmarkConfig) -> BenchmarkSpec:
    """The spec, its scorer replaced by the config's named scorer when it names one."""
    if cfg.scoring is None:
        return spec
    name = cfg.scoring.metrics[0].name
    try:
        named = get_scorer(name)
    except ConfigError as exc:
        raise ConfigError(
            f"benchmarks[{cfg.name}].scoring.metrics[0].name: {exc}"
        ) from None
    return replace(spec, scorer=named, scorer_version=f"scorer:{name}")


def _bench_run(
    spec: BenchmarkSpec,
    cfg: BenchmarkConfig,
    service_name: str,
    service: ServiceConfig,
    output: Path,
) -> BenchmarkRun:
    protocol = service.protocol
    if spec.endpoint_type == "chat":
        protocol = "chat_completions"
    elif spec.endpoint_type == "completions":
        protocol = "completions"
    return BenchmarkRun(
        name=spec.name,
        spec=spec,
        config=cfg,
        service_name=service_name,
        service=service,
        dir=output / spec.name,
        generation=service.generation.merged(cfg.solver.generation),
        system_prompt=cfg.solver.system_prompt
        if cfg.solver.system_prompt is not None
        else spec.system_prompt,
        protocol=protocol,
    )


def api_endpoint(service: ServiceConfig) -> str | None:
    """The full endpoint URL of a remote service.

    None for managed ones before they start.
    """
    if isinstance(service, ApiService):
        return endpoint_url(service.url, service.protocol)
    return None


# ---------------------------------------------------------------------- output folder


def prepare_output(run: NelRun, *, overwrite: bool) -> None:
    """Check the output folder against --resume/--overwrite and mark it as ours.

    Raises:
        OutputDirError: A non-empty folder without --resume/--overwrite, an
            --overwrite of a folder that is not a pytest-nel results folder, or both
            flags together.
    """
    out = run.output
    if run.resume and overwrite:
        raise OutputDirError("--resume and --overwrite exclude each other")
    nonempty = out.is_dir() and any(out.iterdir())
    if nonempty and not run.resume:
        if not overwrite:
            raise OutputDirError(
                f"output folder {out} is not empty: "
                "pass --resume to continue that run, "
                "--overwrite to replace it, or choose another folder (-o DIR)"
            )
        if not (out / RUN_MARKER).is_file():
            raise OutputDirError(
                f"--overwrite: {out} is not a pytest-nel results folder "
                f"(no {RUN_MARKER}); "
                "refusing to delete it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = {
        "tool": "pytest-nel",
        "version": package_version(),
        "started": run.started,
    }
    (out / RUN_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def check_resume(bench: BenchmarkRun, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume into results made with a different task or model.

    Raises:
        OutputDirError: The stored fingerprint differs; the message lists what changed.
    """
    path = bench.dir / FINGERPRINT
    if not path.is_file():
        if (bench.dir / RESULTS).is_file():
            raise OutputDirError(
                f"--resume: {bench.dir} has results but no {FINGERPRINT}"
            )
        return
    stored = json.loads(path.read_text(encoding="utf-8"))
    keys = ("task", "model")
    changes = fingerprint_diff(
        {k: stored.get(k) for k in keys}, {k: fingerprint.get(k) for k in keys}
    )
    if changes:
        raise OutputDirError(
            f"--resume refused for {bench.name}: the run's fingerprint changed:\n  "
            + "\n  ".join(changes)
            + "\nUse a new output folder (-o DIR) or --overwrite."
        )
