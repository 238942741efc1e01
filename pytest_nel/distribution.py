"""Static, deterministic sharding of items across xdist workers (and SLURM shards).

Every sample of one problem stays in one shard (its repeats together); problems are
dealt round-robin in collection order. The controller's scheduler and each worker's
engine call the same :func:`shard_of_items`, so a worker prefetches exactly the items it
will be sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_SAMPLE = re.compile(r"^(?P<group>.+::\d+)-r\d+$")


def group_key(nodeid: str) -> str:
    """Items with the same key stay in one shard: ``bench::17-r0`` -> ``bench::17``."""
    match = _SAMPLE.match(nodeid)
    return match.group("group") if match else nodeid


def shard_of_items(nodeids: Sequence[str], count: int) -> list[list[int]]:
    """Split item positions into ``count`` shards, keeping each group whole.

    Evaluation samples and other tests are dealt with separate counters, so a sample's
    shard depends only on the evaluation items before it (a worker can plan its samples
    before collection, from the benchmark's problems alone).
    """
    shards: list[list[int]] = [[] for _ in range(max(count, 1))]
    assigned: dict[str, int] = {}
    dealt = {True: 0, False: 0}
    for index, nodeid in enumerate(nodeids):
        key = group_key(nodeid)
        shard = assigned.get(key)
        if shard is None:
            is_sample = key != nodeid
            shard = assigned[key] = dealt[is_sample] % len(shards)
            dealt[is_sample] += 1
        shards[shard].append(index)
    return shards


def worker_index(worker_id: str) -> int:
    """``gw3`` -> 3."""
    digits = re.sub(r"\D", "", worker_id)
    return int(digits) if digits else 0


def make_static_scheduler(config: Any, log: Any) -> Any:
    """An xdist scheduler that sends each worker its static shard, then shuts it down.

    A crashed worker's remaining items go to the others through xdist's load balancing
    (those workers generate them on demand).
    """
    from xdist.scheduler import LoadScheduling

    class StaticShardScheduling(LoadScheduling):  # type: ignore[misc]
        def schedule(self) -> None:
            if self.collection is not None:  # type: ignore[has-type]
                super().schedule()
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            collection: list[str] = next(iter(self.node2collection.values()))
            self.collection = collection
            # LoadScheduling sets this in its own first schedule(), skipped here.
            if self.maxschedchunk is None:  # type: ignore[has-type]
                self.maxschedchunk = len(collection)
            nodes = sorted(self.nodes, key=lambda n: worker_index(n.gateway.id))
            shards = shard_of_items(collection, len(nodes))
            self.pending[:] = []
            for node, shard in zip(nodes, shards, strict=True):
                if shard:
                    self.node2pending[node].extend(shard)
                    node.send_runtest_some(shard)
            for node in nodes:
                node.shutdown()

    return StaticShardScheduling(config, log)
