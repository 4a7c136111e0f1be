"""Hardening of the distributed executor: a poisoned thread never kills a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis

from relaygraph.workers.client import Client

from .fleet import Fleet
from .test_protocol_scripts import Inline, _chain

INPUT = {"items": [], "total": 0}


def poisoned_blob(depth: int = 400) -> bytes:
    """A full blob whose payload nests ``depth`` tuple extensions (1.9 KB at 400): before
    the serializer capped nesting, reading it killed the process with SIGSEGV."""
    data = msgpack.packb(0)
    for _ in range(depth):
        data = msgpack.packb(msgpack.ExtType(2, b"\x91" + data))
    return b"F" + data


def poison_thread(url: str, thread_id: str) -> int:
    """Overwrite every stored channel value of a thread with :func:`poisoned_blob`."""
    client = redis.Redis.from_url(url)
    key = f"rg:{{{thread_id}}}:blob"
    fields = client.hkeys(key)
    client.hset(key, mapping={field: poisoned_blob() for field in fields})
    client.close()
    return len(fields)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_meeting_a_corrupt_thread_fails_that_run_and_keeps_serving(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    fleet = Fleet(redis_server.url, tmp_path)
    try:
        worker = fleet.start("w1")
        assert client.submit("linear", INPUT, thread_id="bad").wait(timeout=60) == "success"
        assert poison_thread(redis_server.url, "bad") > 0
        poisoned = client.submit("linear", INPUT, thread_id="bad")
        assert poisoned.wait(timeout=60) == "error"
        assert "'bad'" in (poisoned.error or "")
        assert "nested more than 16 deep" in (poisoned.error or "")
        # The same worker process serves the next thread.
        good = client.submit("linear", INPUT, thread_id="good")
        assert good.wait(timeout=60) == "success", good.error
        assert client.get_state("linear", "good").values["total"] == 3
        assert worker.poll() is None
        assert "WorkerLostError" not in fleet.log("w1")
        assert "SIGSEGV" not in fleet.log("w1")
    finally:
        fleet.stop()


def test_a_node_task_on_a_corrupt_checkpoint_fails_the_run(tmp_path: Path) -> None:
    from relaygraph.persistence.redis_server import EmbeddedRedis

    with EmbeddedRedis(modules=False) as server:
        inline = Inline(server.url, {"chain": _chain("a", "b")})
        run = inline.submit("chain", "bad")
        assert poison_thread(server.url, "bad") > 0
        message = inline.queue.popleft()
        assert inline.engine.run_node(message) == "unreadable"
        assert inline.status(run) == "error"
        error = inline.coordinator.run_info("bad", run.id)["error"].decode()
        assert "CorruptCheckpointError" in error and "'bad'" in error
        assert inline.coordinator.step_info(message.step)["state"] == "failed"
        # A redelivery of the same message does nothing: the run is over.
        assert inline.engine.run_node(message) in ("cancelled", "unreadable")
        other = inline.submit("chain", "good")
        inline.drain()
        assert inline.status(other) == "success"
