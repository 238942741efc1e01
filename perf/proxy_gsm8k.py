"""Time a whole gsm8k run without and with the interceptor proxy, and a cached re-run.

Against the fake model (0 ms latency unless ``--latency-ms``, real gsm8k answers), runs
``pytest --nel-config`` in a subprocess four ways: no proxy; a proxy with the default
chain (``endpoint``); a proxy with ``caching`` (fills the cache); the same again (every
answer from the cache, no upstream call). Prints the wall seconds of each.

    NEL_DATASETS_DIR=../shared/datasets python perf/proxy_gsm8k.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_nel.testing.fake_model import FakeModel

CONFIG = """
services:
  fake: {{type: api, url: "{url}", model: fake{proxy}}}
benchmarks:
  - {{name: gsm8k, max_concurrent: 64{limit}}}
output: {{dir: out}}
"""


def one_run(folder: Path, url: str, proxy: str, problems: int) -> float:
    """Run the evaluation once in ``folder``; wall seconds."""
    limit = f", max_problems: {problems}" if problems else ""
    proxy_block = f", proxy: {proxy}" if proxy else ""
    (folder / "eval.yaml").write_text(
        CONFIG.format(url=url, proxy=proxy_block, limit=limit)
    )
    cmd = [sys.executable, "-m", "pytest", "--nel-config", "eval.yaml", "-q",
           "-p", "no:cacheprovider", "--nel-overwrite"]  # fmt: skip
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
    }
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=folder, capture_output=True, text=True, check=False, env=env
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return wall


def main() -> None:
    """Run the four variants and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--problems", type=int, default=0, help="0 = all 1319")
    args = parser.parse_args()
    datasets = os.environ.get("NEL_DATASETS_DIR")
    if not datasets:
        sys.exit("set NEL_DATASETS_DIR to the offline mirror (../shared/datasets)")
    answers = Path(datasets) / "openai" / "gsm8k" / "main" / "test.jsonl"
    with (
        FakeModel(latency_ms=args.latency_ms, gsm8k_answers=str(answers)) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        fake.control(record=False)
        folder = Path(tmp)
        cache = json.dumps(str(folder / "cache.sqlite"))
        caching = f"{{interceptors: [{{name: caching, config: {{path: {cache}}}}}]}}"
        walls = {
            "no_proxy_s": one_run(folder, fake.base_url, "", args.problems),
            "proxy_s": one_run(folder, fake.base_url, "{}", args.problems),
            "proxy_cache_fill_s": one_run(
                folder, fake.base_url, caching, args.problems
            ),
            "proxy_cached_rerun_s": one_run(
                folder, fake.base_url, caching, args.problems
            ),
        }
    walls["proxy_over_no_proxy"] = walls["proxy_s"] / walls["no_proxy_s"]
    print(json.dumps({k: round(v, 3) for k, v in walls.items()}, indent=2))


if __name__ == "__main__":
    main()
