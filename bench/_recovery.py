"""The recovery section of bench/distributed.py: a thread's stall over many kills of each kind.

A stall is the time from a SIGKILL to the affected thread's next committed checkpoint (the
killed node's step, run again elsewhere; the node itself then takes no time). Kinds:

* a pool process killed mid-node (its worker lives on);
* a whole worker (process group) killed mid-node;
* a whole worker killed while it holds a received-but-unstarted message (one process
  busy with another thread's long node, prefetch 2): no lease was ever taken;
* a whole worker killed as it receives a node message (``RELAYGRAPH_CRASH_AT=received``,
  before the pool gets it; what a worker killed while starting up leaves).

Everything runs with the default lease TTL (5 s), sweep interval (1 s) and queued grace
(30 s), the graph ``held`` of bench/_fixtures.py.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relaygraph.persistence.base import make_config
from relaygraph.workers.client import Client
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.local_fleet import LocalFleet
from relaygraph.workers.settings import WorkerSettings

KINDS = {
    "pool": "pool process killed mid-node",
    "worker": "whole worker killed mid-node",
    "reserved": "whole worker killed holding a received message",
    "received": "whole worker killed as it receives a message",
}
HOLD = 120.0  # a held node's first attempt: far longer than any recovery


def _wait(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


class _Round:
    """One thread of the graph ``held`` and how to see its next commit."""

    def __init__(self, client: Client, markers: Path, hold: float) -> None:
        self.client, self.markers = client, markers
        self.thread = f"rec-{uuid.uuid4().hex[:10]}"
        self.marker = markers / self.thread
        self.run = client.submit(
            "held", {"n": 0, "hold": hold, "tag": self.thread}, thread_id=self.thread
        )

    def head(self) -> str | None:
        saved = self.client.saver.get_tuple(make_config(self.thread, "", ""))
        return saved.checkpoint["id"] if saved is not None else None

    def pid(self) -> int:
        text = _wait(lambda: self.marker.exists() and self.marker.read_text(), "the held node")
        return int(text)

    def reserved(self) -> bool:
        """Whether this thread's 'held' message carries a worker's reservation mark."""
        redis = self.client.redis
        for key in redis.scan_iter(match=ThreadKeys(self.thread).base + ":step:*"):
            info = {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
            for field, value in info.items():
                if field.startswith("n:") and value == "held" and info.get(f"r:{field[2:]}"):
                    return True
        return False

    def stall_after(self, killed: float, before: str) -> float:
        """Seconds from ``killed`` (perf_counter) to the first commit after ``before``."""
        _wait(lambda: self.head() not in (None, before), "the next commit", timeout=120)
        return time.perf_counter() - killed


def _worker(fleet: LocalFleet, name: str, queues: str, concurrency: int = 1, **env: str) -> None:
    fleet.start_worker(name, queues=queues, concurrency=concurrency, env=env or None)


def _holder(fleet: LocalFleet, name: str) -> None:
    """One process prefetching two: it keeps a second message while the first runs."""
    argv = [sys.executable, "-m", "celery", "-A", "relaygraph.workers.app", "worker",
            "--concurrency", "1", "--prefetch-multiplier", "2", "--queues", "side",
            "--hostname", f"{name}@%h", "--loglevel", "info"]  # fmt: skip
    fleet.start(name, argv)
    fleet.wait_for(name, b"ready.")


def mid_node(fleet: LocalFleet, client: Client, markers: Path, kills: int, whole: bool) -> list:
    """Kill the process running a held node (or its whole worker), ``kills`` times."""
    stalls = []
    names = ["w1", "w2"]
    for name in names:
        _worker(fleet, name, "relaygraph,side", concurrency=2)
    for i in range(kills):
        round_ = _Round(client, markers, HOLD)
        pid = round_.pid()
        before = round_.head()  # the step running 'held': nothing commits until it ends
        holder = fleet.holder_of(pid) if whole else None
        killed = time.perf_counter()
        if holder is not None:
            fleet.kill(holder)
        else:
            os.kill(pid, signal.SIGKILL)
        stalls.append(round_.stall_after(killed, before))
        assert round_.run.wait(timeout=120) == "success", round_.run.error
        if holder is not None:  # back to two workers for the next round
            _worker(fleet, f"{holder.split('-')[0]}-{i}", "relaygraph,side", concurrency=2)
    return stalls


def reserved(fleet: LocalFleet, client: Client, markers: Path, kills: int) -> list[float]:
    """Kill a worker holding a received-but-unstarted message, ``kills`` times."""
    stalls = []
    _worker(fleet, "main", "relaygraph", concurrency=2)  # 'before', 'after', a sweeper
    for i in range(kills):
        _holder(fleet, f"holder{i}")
        busy = _Round(client, markers, HOLD)  # holds the holder's only process
        busy.pid()
        victim = _Round(client, markers, 0.0)
        _wait(victim.reserved, "the holder to reserve the victim's message")
        before = victim.head()
        _worker(fleet, f"rescuer{i}", "side", concurrency=2)  # cannot take it: reserved
        killed = time.perf_counter()
        fleet.kill(f"holder{i}")
        stalls.append(victim.stall_after(killed, before))
        for done in (victim, busy):
            assert done.run.wait(timeout=120) == "success", done.run.error
        _stop(fleet, f"rescuer{i}")
    return stalls


def received(fleet: LocalFleet, client: Client, markers: Path, kills: int) -> list[float]:
    """Kill a worker as it receives a node message, ``kills`` times."""
    from relaygraph.workers.app import create_app

    stalls = []
    _worker(fleet, "main", "relaygraph", concurrency=2)
    # Ready before each kill, taking the queue only after it (else it might get the
    # message first): the stall is then recovery's, never a worker's start-up.
    _worker(fleet, "rescuer", "standby")
    control = create_app(client.settings).control
    rescuer = [f"rescuer@{socket.gethostname()}"]
    for i in range(kills):
        name = f"victim{i}"
        _worker(fleet, name, "side", RELAYGRAPH_CRASH_AT="received")
        victim = _Round(client, markers, 0.0)
        fleet.processes[name].wait(120)  # it SIGKILLs its own process group on receipt
        killed = time.perf_counter()
        fleet.processes.pop(name)
        before = victim.head()
        control.add_consumer("side", destination=rescuer, reply=True)
        stalls.append(victim.stall_after(killed, before))
        assert victim.run.wait(timeout=120) == "success", victim.run.error
        control.cancel_consumer("side", destination=rescuer, reply=True)
    return stalls


def _stop(fleet: LocalFleet, name: str) -> None:
    process = fleet.processes.pop(name)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(60)


def measure(
    url: str, logs: Path, env: dict[str, str], root: Path, kills: int
) -> dict[str, list[float]]:
    """Stalls (s) of each kind over ``kills`` kills, each kind on a fresh fleet."""
    out: dict[str, list[float]] = {}
    for kind in KINDS:
        markers = logs / f"markers-{kind}"
        markers.mkdir(exist_ok=True)
        fleet = LocalFleet({**env, "BENCH_MARKERS": str(markers)}, logs, cwd=root)
        client = Client(settings=WorkerSettings(redis_url=url, graphs=env["RELAYGRAPH_GRAPHS"]))
        try:
            if kind in ("pool", "worker"):
                out[kind] = mid_node(fleet, client, markers, kills, whole=kind == "worker")
            elif kind == "reserved":
                out[kind] = reserved(fleet, client, markers, kills)
            else:
                out[kind] = received(fleet, client, markers, kills)
        finally:
            fleet.stop()
            client.close()
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between the sorted samples."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
