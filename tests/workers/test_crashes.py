"""Crash tests: a worker process dies at each point of the protocol; every thread finishes
with the local executor's result and no reducer applied twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from relaygraph import MemorySaver
from relaygraph.workers.client import Client

from . import graphs
from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

INPUT = {"items": [], "total": 0}


def local_values(graph: Any) -> dict[str, Any]:
    compiled = graph.builder.compile(checkpointer=MemorySaver())
    return compiled.invoke(INPUT, {"configurable": {"thread_id": "oracle"}})


@pytest.mark.parametrize(
    ("point", "outbox"),
    [
        ("node_running", "true"),
        ("after_register", "true"),
        ("before_barrier", "true"),
        ("after_commit", "true"),
        # Without the outbox a hop's next tasks are published after its commit: a crash
        # between the two leaves them 'queued', for the sweeper.
        ("after_register", "false"),
        ("after_commit", "false"),
    ],
)
def test_a_pool_child_dying_at_each_protocol_point(
    point: str, outbox: str, redis_server: Any, tmp_path: Path, client: Client
) -> None:
    flag = tmp_path / "crashed"
    fleet = Fleet(
        redis_server.url,
        tmp_path,
        RELAYGRAPH_CRASH_AT=point,
        RELAYGRAPH_CRASH_FLAG=str(flag),
        RELAYGRAPH_OUTBOX=outbox,
    )
    try:
        fleet.start("w1")
        fleet.start("w2")
        started = time.monotonic()
        run = client.submit("fanout", INPUT, thread_id="t")
        assert run.wait(timeout=90) == "success", run.error
        assert flag.exists(), f"no process crashed at {point}"
        values = client.get_state("fanout", "t").values
        assert values == local_values(graphs.fanout)
        assert values["total"] == 6  # split + 4 workers + join, each applied exactly once
        # One crash costs at most a lease TTL (2 s) + a sweep (0.5 s) on top of the run's
        # own second or two, whichever point it hit (a published-but-lost message, the
        # one case that waits for the queued grace, cannot happen here); wide margin for
        # a loaded machine.
        assert time.monotonic() - started < 25
    finally:
        fleet.stop()


def test_many_threads_in_flight_survive_a_killed_worker(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    fleet = Fleet(redis_server.url, tmp_path)
    try:
        fleet.start("w1", concurrency=2)
        fleet.start("w2", concurrency=2)
        runs = [client.submit("fanout", INPUT, thread_id=f"t{i}") for i in range(8)]
        time.sleep(1.0)
        fleet.kill("w1")
        fleet.start("w3", concurrency=2)
        expected = local_values(graphs.fanout)
        for run in runs:
            assert run.wait(timeout=120) == "success", run.error
            assert client.get_state("fanout", run.thread_id).values == expected
    finally:
        fleet.stop()


def test_redis_restarted_mid_run_with_aof(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="2"
    )
    try:
        fleet.start("w1")
        run = client.submit("slow", INPUT, thread_id="t")
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists()
        time.sleep(1.2)  # appendfsync everysec: let the last second reach the disk
        redis_server.restart()  # same port, same directory: the AOF brings the data back
        assert run.wait(timeout=90) == "success", run.error
        assert client.get_state("slow", "t").values == local_values(graphs.slow)
    finally:
        fleet.stop()
