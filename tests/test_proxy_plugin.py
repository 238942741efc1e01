"""A benchmark run through a proxied service (pytester against the fake model)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from conftest import toy_rows
from pytest_nel.testing.fake_model import FakeModel


def write_config(
    pytester: pytest.Pytester, fake: FakeModel, chain: str, repeats: int = 2
) -> str:
    """An eval config whose one service has a proxy with ``chain``."""
    config = pytester.path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            services:
              model:
                type: api
                url: {fake.base_url}/chat/completions
                model: fake
                api_key: sk-proxy-test-key
                max_retries: 2
                proxy:
                  request_timeout: 30
                  interceptors: {chain}
            benchmarks:
              - name: ./toy_bench.py
                repeats: {repeats}
            output: {{dir: out}}
            """
        )
    )
    return str(config)


def test_second_run_is_served_from_the_cache(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(6, wrong={2}, extra={4: "FAULT: 503x1"}))
    cache = pytester.path / "cache.sqlite"
    chain = json.dumps(
        [
            {"name": "caching", "config": {"path": str(cache)}},
            {"name": "drop_params", "config": {"params": ["seed"]}},
            {"name": "response_stats"},
        ]
    )
    config = write_config(pytester, fake, chain)
    first = pytester.runpytest("--nel-config", config, "-p", "no:randomly")
    first.assert_outcomes(passed=12)
    calls = len(fake.requests())
    assert calls == 12 + 1 + 1  # 6 problems x 2 repeats, one retried 503, preflight
    stats = json.loads((pytester.path / "out" / "proxy-model.json").read_text())
    assert stats["retries"] == 1 and stats["upstream_calls"] == 13
    # Under xdist: the controller's proxy serves both workers from the cache.
    second = pytester.runpytest_subprocess(
        "--nel-config", config, "-p", "no:randomly", "--nel-overwrite", "-n", "2"
    )
    second.assert_outcomes(passed=12)
    assert len(fake.requests()) == calls + 1  # only the preflight went upstream
    stats = json.loads((pytester.path / "out" / "proxy-model.json").read_text())
    # No seed is set: the repeats are kept apart by the X-Nel-Repeat header.
    assert stats["cache_hits"] == 12 and stats["upstream_calls"] == 0
    assert (pytester.path / "out" / "response_stats-model.json").is_file()
    in_summary = json.loads(
        (pytester.path / "out" / "toy" / "summary.json").read_text()
    )
    assert in_summary["proxy"]["cache_hits"] == 12


def test_bad_interceptor_config_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(2))
    chain = '[{"name": "drop_params", "config": {"parms": ["seed"]}}]'
    result = pytester.runpytest("--nel-config", write_config(pytester, fake, chain))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*interceptor 'drop_params'*parms: unknown key*"])


def test_the_engine_does_not_retry_behind_the_proxy(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(2, extra={1: "FAULT: 503"}))
    chain = '[{"name": "endpoint", "config": {"backoff_base": 0.01}}]'
    config = write_config(pytester, fake, chain, repeats=1)
    result = pytester.runpytest("--nel-config", config, "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*model_error*503*"])
    # One preflight, one good sample, and the proxy's 1 + max_retries (2) attempts.
    assert len(fake.requests()) == 1 + 1 + 3


def test_fatal_client_error_stops_the_run(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    # A revoked key: the upstream refuses every request; the first failure stops all.
    toy_bench(toy_rows(20, extra={i: "FAULT: 401" for i in range(20)}))
    chain = '[{"name": "raise_client_errors"}]'
    config = write_config(pytester, fake, chain, repeats=1)
    result = pytester.runpytest("--nel-config", config, "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*stopping, fatal client error*HTTP 401: upstream answered 401*"]
    )
    results = (pytester.path / "out" / "toy" / "results.jsonl").read_text()
    assert '"category": "model_error"' in results


def test_a_proxy_that_cannot_start_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeModel, toy_bench: Any
) -> None:
    toy_bench(toy_rows(2))
    (pytester.path / "file").write_text("not a folder")
    cache = json.dumps(str(pytester.path / "file" / "cache.sqlite"))
    chain = f'[{{"name": "caching", "config": {{"path": {cache}}}}}]'
    result = pytester.runpytest("--nel-config", write_config(pytester, fake, chain))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*proxy for service 'model' did not start*"])
