"""The distributed executor against bare Celery on the same broker, in one run.

    python bench/distributed.py [--quick]

1. hop latency: per node, on one worker process, for a 50-node linear graph and for an
   agent's loop (two nodes taking turns 50 times), next to a bare Celery task that
   enqueues itself 50 times (the floor for "one task per node"), once with Celery's
   defaults and once with the Celery settings relaygraph's workers use (task events for
   Flower, late acks, reject on worker loss, JSON): that difference is Celery's, the rest
   is relaygraph's;
2. throughput: nodes per second with 1, 2 and 4 worker processes, 3-node runs on many
   threads at once;
3. recovery: time from SIGKILL of a whole worker mid-node to the thread's next committed
   step, next to Celery's own redelivery of an acks_late task with default settings
   (visibility timeout 3600 s) watched for a fixed window.

Everything runs on a private embedded Redis; medians over repeats (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._fixtures import GRAPHS  # noqa: E402
from bench._results import Plot, Table, print_table, save  # noqa: E402
from relaygraph.persistence.base import make_config  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedRedis  # noqa: E402
from relaygraph.workers.client import Client  # noqa: E402
from relaygraph.workers.keys import ThreadKeys  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402
from relaygraph.workers.settings import WorkerSettings  # noqa: E402

BARE_QUEUES = {"defaults": "bare", "relaygraph's settings": "bare-rg"}
HOP_GRAPHS = {"50-node linear graph": "chain50", "agent loop, 2 nodes x 25": "loop50"}
NODE_TASKS = 51  # the start task and 50 node tasks
BARE_TASKS = 50


class Workers(LocalFleet):
    """relaygraph workers and bare Celery workers on the benchmark's Redis."""

    def __init__(self, url: str, logs: Path, **env: str) -> None:
        super().__init__(
            {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "RELAYGRAPH_REDIS_URL": url,
                "RELAYGRAPH_GRAPHS": GRAPHS,
                "BENCH_BROKER": url,
                **env,
            },
            logs,
            cwd=ROOT,
        )

    @property
    def procs(self) -> dict[str, Any]:
        return self.processes

    def relaygraph(self, name: str, concurrency: int = 1) -> None:
        self.start_worker(name, concurrency=concurrency)

    def bare(self, name: str, queue: str = "bare", settings: str = "defaults") -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench._fixtures:bare", "worker",
                "--queues", queue, "--concurrency", "1", "--hostname", f"{name}@%h",
                "--loglevel", "info"]  # fmt: skip
        env = {"BENCH_BARE_SETTINGS": "relaygraph"} if settings != "defaults" else {}
        self.start(name, argv, env=env)
        self.wait_for(name, b"ready.")


def _ours(client: Client, graph: str, thread: str) -> float:
    """Seconds per Celery task of one run, from submit to the run's final status."""
    started = time.time()
    run = client.submit(graph, {"n": 0}, thread_id=thread, config={"recursion_limit": 100})
    assert run.wait(timeout=300, poll=0.005) == "success", run.error
    finished = int(client.redis.hget(ThreadKeys(thread).run(run.id), "updated")) / 1000
    return (finished - started) / NODE_TASKS


def _bare(client: Client, queue: str) -> float:
    """Seconds per task of a bare Celery task enqueueing itself, from send to its last end."""
    from bench._fixtures import hop

    key = f"bench:bare:{uuid.uuid4()}"
    started = time.time()
    hop.apply_async(args=[BARE_TASKS - 1, key, queue], queue=queue)
    while not client.redis.get(key):
        time.sleep(0.002)
    return (float(client.redis.get(key)) - started) / BARE_TASKS


def hop_latency(url: str, logs: Path, repeats: int) -> dict[str, list[float]]:
    """Per-task seconds of each relaygraph graph and each bare baseline, alternated."""
    from bench._fixtures import bare

    workers = Workers(url, logs)
    samples: dict[str, list[float]] = {name: [] for name in [*HOP_GRAPHS, *BARE_QUEUES]}
    try:
        workers.relaygraph("hop")
        for settings, queue in BARE_QUEUES.items():
            workers.bare(queue, queue, settings)
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        bare.conf.broker_url = url
        for i in range(repeats + 1):  # the first round warms every process up, untimed
            for label, graph in HOP_GRAPHS.items():
                value = _ours(client, graph, f"hop-{graph}-{i}")
                if i:
                    samples[label].append(value)
            for label, queue in BARE_QUEUES.items():
                value = _bare(client, queue)
                if i:
                    samples[label].append(value)
    finally:
        workers.stop()
    return samples


def throughput(url: str, logs: Path, processes: int, runs: int) -> float:
    workers = Workers(url, logs)
    try:
        workers.relaygraph(f"tp{processes}", concurrency=processes)
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        tag = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        submitted = [
            client.submit("short3", {"n": 0}, thread_id=f"tp-{tag}-{i}") for i in range(runs)
        ]
        for run in submitted:
            assert run.wait(timeout=600) == "success", run.error
        return runs * 4 / (time.perf_counter() - started)  # start + 3 nodes per run
    finally:
        workers.stop()


def recovery(url: str, logs: Path, repeats: int) -> list[float]:
    times = []
    for i in range(repeats):
        marker = logs / f"slow-{i}.pid"
        workers = Workers(url, logs, BENCH_MARKER=str(marker), BENCH_SLOW="2")
        try:
            workers.relaygraph(f"a{i}")
            workers.relaygraph(f"b{i}")
            client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
            thread = f"rec-{i}"
            run = client.submit("slow", {"n": 0}, thread_id=thread)
            while not (marker.exists() and marker.read_text()):
                time.sleep(0.01)
            pid = int(marker.read_text())
            holder = next(n for n, p in workers.procs.items() if os.getpgid(pid) == p.pid)
            head = client.saver.get_tuple(make_config(thread, "", ""))
            killed = time.perf_counter()
            workers.kill(holder)
            while True:  # the next committed step: the slow node's, re-run elsewhere
                now = client.saver.get_tuple(make_config(thread, "", ""))
                if now.checkpoint["id"] != head.checkpoint["id"]:
                    break
                time.sleep(0.01)
            times.append(time.perf_counter() - killed - 2.0)  # minus the node's own 2 s
            assert run.wait(timeout=60) == "success"
        finally:
            workers.stop()
    return times


def celery_redelivery(url: str, logs: Path, window: float) -> float | None:
    """Seconds until Celery alone redelivers a killed worker's acks_late task, or None."""
    import redis

    from bench._fixtures import bare, sleep_task

    bare.conf.broker_url = url
    workers = Workers(url, logs)
    client = redis.Redis.from_url(url)
    try:
        workers.bare("victim")
        key = f"bench:sleep:{uuid.uuid4()}"
        sleep_task.apply_async(args=[2.0, key], queue="bare")
        while not client.get(key + ":started"):
            time.sleep(0.01)
        workers.kill("victim")
        killed = time.perf_counter()
        workers.bare("rescuer")
        while time.perf_counter() - killed < window:
            if client.get(key):
                return time.perf_counter() - killed
            time.sleep(0.1)
        return None
    finally:
        workers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    hop_repeats = 5 if args.quick else 25  # one run is under a second: many, for a steady median
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(modules=False) as server:
        logs = Path(tmp)
        hops = hop_latency(server.url, logs, hop_repeats)
        rates = {n: throughput(server.url, logs, n, 20 if args.quick else 60) for n in (1, 2, 4)}
        recovered = recovery(server.url, logs, 2 if args.quick else 5)
        window = 30.0 if args.quick else 60.0
        redelivered = celery_redelivery(server.url, logs, window)
    tables = [
        hop_table(hops),
        throughput_table(rates),
        recovery_table(recovered, redelivered, window),
    ]
    for table in tables:
        print_table(table)
    command = "python bench/distributed.py" + (" --quick" if args.quick else "")
    print(f"\nsaved {save('distributed', tables, command)}")


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def hop_table(hops: dict[str, list[float]]) -> Table:
    """Per-node latency of each graph against both bare Celery baselines."""
    defaults, same = (_ms(hops[label]) for label in BARE_QUEUES)
    table = Table(
        "Hop latency per node, one worker process (ms, median)",
        [
            "graph",
            "relaygraph",
            "bare Celery, relaygraph's settings",
            "ratio",
            "bare Celery, defaults",
            "ratio to defaults",
        ],
        notes=[
            "a run's time from submit to its final status, over its start task and 50 node "
            "tasks; bare Celery: a task that enqueues itself 50 times, from send to its end",
            "relaygraph's settings: task events on (Flower), late acks, reject on worker "
            "loss, JSON; the gap between the two baselines is what those cost Celery",
            f"medians of {len(next(iter(hops.values())))} runs each, alternated, after a "
            "warm-up run",
        ],
        plot=Plot(
            "bar",
            x="graph",
            y=["relaygraph", "bare Celery, relaygraph's settings", "bare Celery, defaults"],
            ylabel="ms per node (median)",
        ),
    )
    for label in HOP_GRAPHS:
        ours = _ms(hops[label])
        table.add(label, ours, same, ours / same, defaults, ours / defaults)
    return table


def throughput_table(rates: dict[int, float]) -> Table:
    """Nodes per second with 1, 2 and 4 worker processes."""
    table = Table(
        "Throughput of 3-node runs on many threads at once (nodes/s)",
        ["worker processes", "relaygraph", "ratio to 1 process"],
        notes=["the Redis server and the benchmark share the machine's 2 cores"],
        plot=Plot("bar", x="worker processes", y=["relaygraph"], ylabel="nodes per second"),
    )
    for n, rate in rates.items():
        table.add(str(n), rate, rate / rates[1])
    return table


def recovery_table(recovered: list[float], redelivered: float | None, window: float) -> Table:
    """SIGKILL of a whole worker mid-node to the thread's next committed step."""
    table = Table(
        "Recovery after SIGKILL of a whole worker mid-node (s)",
        ["measure", "relaygraph", "Celery alone"],
        notes=[
            "relaygraph: lease TTL 5 s, sweep every 1 s (the defaults); the node's own 2 s "
            "are subtracted",
            "Celery alone: an acks_late task of a killed worker is redelivered only after "
            "its visibility timeout (3600 s by default)",
        ],
    )
    celery = round(redelivered, 1) if redelivered is not None else f"not within {window:.0f} s"
    table.add("to the thread's next committed step", statistics.median(recovered), celery)
    return table


if __name__ == "__main__":
    main()
