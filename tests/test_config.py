"""Config loading: schema, interpolation, defaults composition, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_nel.config import (
    GenerationConfig,
    apply_override,
    endpoint_url,
    interpolate,
    redacted,
    resolve_config,
)
from pytest_nel.exceptions import ConfigError

BASE = """
services:
  local:
    type: api
    url: http://127.0.0.1:8000/v1/chat/completions
    model: m
    api_key: ${NEL_TEST_KEY:-sk-default}
    generation: {temperature: 0.5, max_tokens: 64, seed: 1}
benchmarks:
  - name: gsm8k
    repeats: 2
    solver: {generation: {max_tokens: 32}}
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_config_and_generation_merge(tmp_path: Path) -> None:
    cfg = resolve_config(write(tmp_path, BASE), env={})
    bench = cfg.benchmarks[0]
    assert (
        bench.repeats == 2 and bench.shuffle_seed == 42 and bench.max_concurrent == 32
    )
    _, service = cfg.service_for(bench)
    merged = service.generation.merged(bench.solver.generation)
    assert merged.request_params() == {"temperature": 0.5, "max_tokens": 32, "seed": 1}
    assert (
        service.api_key is not None
        and service.api_key.get_secret_value() == "sk-default"
    )


def test_env_interpolation_and_missing_variable(tmp_path: Path) -> None:
    cfg = resolve_config(write(tmp_path, BASE), env={"NEL_TEST_KEY": "sk-real"})
    key = cfg.services["local"].api_key
    assert key is not None and key.get_secret_value() == "sk-real"
    with pytest.raises(
        ConfigError, match=r"services\.local\.url: environment variable \$\{NOPE\}"
    ):
        interpolate({"services": {"local": {"url": "${NOPE}"}}}, {})
    assert interpolate({"a": "cost $$5 ${X:-}"}, {}) == {"a": "cost $5 "}


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    text = BASE + "    solver_typo: 1\n"
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.solver_typo: unknown key"):
        resolve_config(write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "benchmarks.0.repeats=0",
            r"benchmarks\[0\]\.repeats: .*greater than or equal to 1",
        ),
        (
            "services.local.protocol=grpc",
            r"protocol: .*'chat_completions' or 'completions'",
        ),
        ("services.local.url=localhost:8000", r"url: .*http\(s\) URL"),
        ("cluster.type=slurm", r"cluster: unknown key"),
        (
            "services.local.proxy.verbos=true",
            r"proxy\.verbos: unknown key",
        ),
        ("benchmarks.0.solver.type=agent", r"solver\.type: .*'simple'"),
        ("output.report_formats=[pdf]", r"report_formats\[0\]: .*'markdown'"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(write(tmp_path, BASE), overrides=[override], env={})


def test_overrides_by_index_and_by_name(tmp_path: Path) -> None:
    cfg = resolve_config(
        write(tmp_path, BASE),
        overrides=["benchmarks.gsm8k.max_problems=5", "benchmarks.0.shuffle_seed=null"],
        env={},
    )
    assert (
        cfg.benchmarks[0].max_problems == 5 and cfg.benchmarks[0].shuffle_seed is None
    )
    with pytest.raises(ConfigError, match="no list item named 'mmlu'"):
        apply_override({"benchmarks": [{"name": "gsm8k"}]}, "benchmarks.mmlu.repeats=2")
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_override({}, "benchmarks")


def test_defaults_composition(tmp_path: Path) -> None:
    write(tmp_path, BASE, "base.yaml")
    top = write(tmp_path, "defaults: [base.yaml]\noutput: {dir: out}\n", "top.yaml")
    cfg = resolve_config(top, env={})
    assert cfg.output.dir == "out" and cfg.benchmarks[0].name == "gsm8k"
    write(tmp_path, "defaults: [b.yaml]\n", "a.yaml")
    write(tmp_path, "defaults: [a.yaml]\n", "b.yaml")
    with pytest.raises(ConfigError, match="cycle"):
        resolve_config(tmp_path / "a.yaml", env={})


def test_malformed_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"malformed YAML: .*line 2"):
        resolve_config(write(tmp_path, "services:\n  a: b: c\n"), env={})


def test_secrets_are_redacted(tmp_path: Path) -> None:
    cfg = resolve_config(write(tmp_path, BASE), env={"NEL_TEST_KEY": "sk-secret-123"})
    assert "sk-secret-123" not in str(redacted(cfg))


def test_endpoint_url_accepts_base_and_full_urls() -> None:
    assert (
        endpoint_url("http://h:8/v1", "chat_completions")
        == "http://h:8/v1/chat/completions"
    )
    assert endpoint_url("http://h:8/v1/", "completions") == "http://h:8/v1/completions"
    assert endpoint_url("http://h/v1/chat/completions", "completions").endswith(
        "/chat/completions"
    )


def test_generation_extra_body_merges() -> None:
    a = GenerationConfig(temperature=0.1, extra_body={"top_k": 5})
    b = GenerationConfig(extra_body={"min_p": 0.1})
    assert a.merged(b).request_params() == {
        "temperature": 0.1,
        "top_k": 5,
        "min_p": 0.1,
    }
