"""bench/capacity.py's arithmetic and bench/_topology.py's counters, without servers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _topology, capacity  # noqa: E402
from bench._topology import Cost, ShardStats, Snapshot  # noqa: E402


def _shard(cpu: float, **calls: int) -> ShardStats:
    return ShardStats(cpu, dict(calls), {k: 10 * v for k, v in calls.items()}, 100, 50, 0)


def test_snapshot_differences_add_up_over_the_shards() -> None:
    before = Snapshot([_shard(1.0, hset=10, evalsha=2), _shard(2.0, get=1)], 5.0, at=10.0)
    after = Snapshot([_shard(1.5, hset=30, evalsha=6), _shard(2.25, get=1, zadd=4)], 6.0, at=12.0)
    delta = after - before
    assert delta.at == 2.0 and delta.broker_cpu == 1.0
    assert delta.cpu == pytest.approx(0.75)
    assert delta.commands == 20 + 4 + 4 and delta.scripts == 4
    assert delta.calls() == {"hset": 20, "evalsha": 4, "zadd": 4}  # unchanged ones dropped
    assert delta.calls("usec")["hset"] == 200


def test_a_cost_is_per_task_and_leaves_out_the_benchmarks_own_reads() -> None:
    redis = Snapshot([_shard(0.5, hset=1000, evalsha=100)], 0.25, at=2.0)
    cost = Cost(tasks=100, seconds=2.0, redis=redis, worker_cpu=1.0, polls=50, client_cpu=0.1)
    assert cost.rate == 50
    assert cost.redis_us == 5000 and cost.broker_us == 2500 and cost.worker_us == 10_000
    assert cost.commands == (1100 - 50) / 100 and cost.scripts == 1.0
    assert cost.client_us == pytest.approx(1000)


def test_the_model_sizes_primaries_workers_and_broker_from_the_costs() -> None:
    redis = Snapshot([_shard(0.1, get=8000)], 0.1, at=1.0)  # 1000 us Redis, 1000 us broker
    cost = Cost(tasks=100, seconds=1.0, redis=redis, worker_cpu=0.7, polls=0)  # 7000 us
    idle = Snapshot([_shard(0.002, get=100)], None, at=1.0)  # 2 ms/s, 100 cmds/s
    found = capacity.model(cost, idle)
    assert found["per primary nodes/s"] == pytest.approx(500)  # half of one core
    rows = {row["nodes/s"]: row for row in found["rows"]}
    assert rows[1_000]["Redis primaries"] == 3  # never fewer than a cluster's 3
    ten = rows[10_000]
    assert ten["worker cores"] == 100 and ten["workers"] == 25  # 70 cores at 70%, 4 a worker
    # 10,000 x 1 ms + 25 workers x 2 ms/s = 10.05 s of CPU a second, at 0.5 a primary
    assert ten["Redis primaries"] == math.ceil(10.05 / 0.5)
    assert ten["broker cores"] == math.ceil(10 / 0.7)
    assert ten["sweeper cmds/s"] == 25 * 100


def test_the_index_buckets_land_on_every_shard() -> None:
    counts = capacity.index_buckets()
    assert sum(counts) == 16 and all(counts)


def test_topology_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown topology"):
        with _topology.started("kafka"):
            pass
