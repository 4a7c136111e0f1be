"""A Redis Cluster failover under running threads, for the failover test and its benchmark.

A 3-primary + 3-replica cluster holds the state (a short ``cluster-node-timeout``), a
single Redis is the broker (Celery's Redis transport cannot run on a cluster; a separate
one keeps RabbitMQ out of the measurement), a worker runs ``loop`` threads, and one
primary is SIGKILLed mid-flight so that its replica takes over.

Lost commits are counted two ways. From the servers: right before the kill, every
checkpoint id the doomed primary holds (each thread's ``ixt`` index) is read, and after the
promotion the same indexes are read from the new primary; a checkpoint the replica never
received is lost (commits in the few milliseconds between the read and the kill are not
seen: ``window_ms``). From the workers: every node execution logs its task id (the
``loop`` graph's ``RELAYGRAPH_TEST_RAN``); a task id that no checkpoint of the thread's
final history planned ran from a commit that was acknowledged to its worker (the worker
scheduled the task after the commit returned) and then lost.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.cluster import key_slot

from relaygraph import MemorySaver
from relaygraph.persistence.redis import thread_tag
from relaygraph.persistence.redis_server import EmbeddedCluster, EmbeddedRedis
from relaygraph.workers.client import Client
from relaygraph.workers.settings import WorkerSettings

from . import graphs
from .fleet import Fleet

__all__ = ["FailoverResult", "run_failover"]

INPUT = {"items": [], "total": 0}
#: Index of the primary that is killed (not node 0, whose address the clients start from).
VICTIM = 1


@dataclass
class FailoverResult:
    """What one failover did to the runs in flight."""

    runs: int  # threads submitted
    on_victim: int  # of them, threads whose slot the killed primary served
    committed: int  # checkpoints the killed primary held at the kill
    lost: list[str]  # of them, checkpoint ids the promoted replica does not have
    orphans: list[str]  # task ids that ran from an acknowledged commit that was then lost
    window_ms: float  # from the start of the read to the kill
    failover_s: float  # from the kill to the replica serving the slots
    finished: dict[str, str]  # thread -> final status
    wrong: list[str]  # threads whose final values differ from the local executor's
    seconds: float  # from the first submit to the last run's end


def _ixt(thread: str) -> str:
    return f"rg:{{{thread_tag(thread)}}}:ixt"


def _checkpoints(node: EmbeddedRedis, threads: list[str]) -> set[tuple[str, bytes]]:
    """(thread, ``id\\0ns``) of every checkpoint of ``threads`` that ``node`` holds."""
    with node.client(socket_timeout=5) as client:
        pipe = client.pipeline(transaction=False)
        for thread in threads:
            pipe.zrange(_ixt(thread), 0, -1)
        replies = pipe.execute()
    return {(t, member) for t, members in zip(threads, replies, strict=True) for member in members}


def _wait_for_commits(node: EmbeddedRedis, threads: list[str], hops: int) -> None:
    """Until each of ``threads`` has ``hops`` checkpoints on ``node`` (mid-run: a loop run
    makes ``LOOP_HOPS`` + 2)."""
    deadline = time.monotonic() + 60
    while len(_checkpoints(node, threads)) < hops * len(threads):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the threads did not reach {hops} checkpoints on {node}")
        time.sleep(0.01)


def run_failover(
    tmp: Path,
    *,
    commit_replicas: int = 0,
    threads: int = 6,
    kill_after: int = 5,
    lag: float = 0.0,
) -> FailoverResult:
    """Run ``threads`` loop threads, kill the primary of some of them once those made
    ``kill_after`` checkpoints each (on average), wait for every run to end (the cluster,
    broker and worker are started and stopped here). ``lag`` > 0: the replica is stopped
    (SIGSTOP) and its link dropped that many seconds before the kill, and resumed after
    it: a replica that fell behind, as a busy or distant one does."""
    with (
        EmbeddedCluster(3, replicas=1, node_timeout=1000) as cluster,
        EmbeddedRedis(modules=False) as broker,
    ):
        fleet = Fleet(
            cluster.url,
            tmp,
            RELAYGRAPH_BROKER_URL=broker.url,
            RELAYGRAPH_COMMIT_REPLICAS=str(commit_replicas),
            RELAYGRAPH_TEST_RAN=str(tmp / "ran.log"),
        )
        settings = WorkerSettings(
            redis_url=cluster.url, broker_url=broker.url, graphs=graphs.REGISTRY, lease_ttl=2
        )
        try:
            fleet.start("w1", concurrency=3)  # one start: a start is most of the cost
            victim = cluster.nodes[VICTIM]
            with Client(settings=settings) as client:
                started = time.monotonic()
                runs = [client.submit("loop", INPUT, thread_id=f"t{i}") for i in range(threads)]
                ids = [run.thread_id for run in runs]
                mine = [t for t in ids if key_slot(_ixt(t).encode()) in cluster._own_slots(victim)]
                _wait_for_commits(victim, mine, kill_after)
                replica = cluster.replicas_of(VICTIM)[0]
                if lag:
                    # Stopped, the replica could still take the stream into its socket
                    # buffer: the primary also drops the link, so nothing reaches it.
                    os.kill(replica.pid, signal.SIGSTOP)
                    with victim.client() as primary:
                        primary.client_kill_filter(_type="replica")
                    time.sleep(lag)
                read = time.monotonic()
                before = _checkpoints(victim, mine)
                victim.kill()
                if lag:
                    os.kill(replica.pid, signal.SIGCONT)
                window_ms = (time.monotonic() - read) * 1000
                killed = time.monotonic()
                promoted = cluster.wait_for_failover(_ixt(mine[0]) if mine else "x")
                failover_s = time.monotonic() - killed
                after = _checkpoints(promoted, mine)
                finished = {run.thread_id: run.wait(timeout=60, poll=0.05) for run in runs}
                seconds = time.monotonic() - started
                expected = local_values()
                wrong = [
                    t
                    for t in ids
                    if finished[t] != "success" or client.get_state("loop", t).values != expected
                ]
                planned = {
                    task.id
                    for t in ids
                    for snapshot in client.get_state_history("loop", t)
                    for task in snapshot.tasks
                }
        finally:
            fleet.stop()
    return FailoverResult(
        runs=threads,
        on_victim=len(mine),
        committed=len(before),
        lost=sorted(f"{t}/{m.decode(errors='replace')}" for t, m in before - after),
        orphans=sorted(set((tmp / "ran.log").read_text().split()) - planned),
        window_ms=window_ms,
        failover_s=failover_s,
        finished=finished,
        wrong=wrong,
        seconds=seconds,
    )


def local_values() -> dict[str, Any]:
    """The local executor's final values of a ``loop`` thread."""
    compiled = graphs.loop.builder.compile(checkpointer=MemorySaver())
    return compiled.invoke(INPUT, {"configurable": {"thread_id": "oracle"}})
