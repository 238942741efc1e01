"""Measure what the interceptor proxy adds: latency at low load, rps at 64 clients.

Starts the fake model (0 ms latency) and the proxy process (``ManagedProxy``, the
default chain: ``endpoint`` only, or ``--chain`` as JSON) on 127.0.0.1, then with a raw
aiohttp client:

1. low load: ``--sequential`` requests one at a time, directly and through the proxy,
   interleaved; the added latency is the difference of the percentiles;
2. load: ``--requests`` requests from 64 concurrent clients through the proxy (and
   directly, for comparison); requests/s.

    python perf/proxy_latency.py
    python perf/proxy_latency.py --chain '[{"name": "response_stats"}]'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from pytest_nel.interceptors.launcher import ManagedProxy

from pytest_nel.testing.fake_model import FakeModel

BODY = {"model": "fake", "messages": [{"role": "user", "content": "SAY: ok"}]}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def one(session: aiohttp.ClientSession, url: str) -> float:
    """One request; its latency in ms (raises on a non-200)."""
    start = time.perf_counter()
    async with session.post(url, json=BODY) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: status {response.status}")
    return (time.perf_counter() - start) * 1000


async def low_load(direct: str, proxied: str, n: int) -> dict[str, float]:
    """Interleaved sequential requests; percentiles of each and their difference."""
    base: list[float] = []
    via: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # warm both paths up
            await one(session, direct)
            await one(session, proxied)
        for _ in range(n):
            base.append(await one(session, direct))
            via.append(await one(session, proxied))
    out = {}
    for q in (50, 99):
        out[f"direct_p{q}_ms"] = pct(base, q)
        out[f"proxy_p{q}_ms"] = pct(via, q)
        out[f"added_p{q}_ms"] = pct(via, q) - pct(base, q)
    return out


async def load(url: str, total: int, clients: int = 64) -> float:
    """Requests/s with ``clients`` concurrent clients sending ``total`` requests."""
    remaining = iter(range(total))
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                await one(session, url)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return total / (time.perf_counter() - start)


def main() -> None:
    """Run both measurements and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--chain", default="[]", help="interceptors as JSON")
    args = parser.parse_args()
    with FakeModel() as fake, tempfile.TemporaryDirectory() as tmp:
        fake.control(record=False)
        spec = {"service": "perf", "upstream": fake.base_url, "output_dir": tmp,
                "interceptors": json.loads(args.chain)}  # fmt: skip
        with ManagedProxy(spec, None, Path(tmp)) as proxy:
            direct = fake.base_url + "/chat/completions"
            proxied = proxy.base_url + "/chat/completions"
            result = asyncio.run(low_load(direct, proxied, args.sequential))
            result["proxy_rps_64"] = asyncio.run(load(proxied, args.requests))
            result["direct_rps_64"] = asyncio.run(load(direct, args.requests))
    print(json.dumps({k: round(v, 3) for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
