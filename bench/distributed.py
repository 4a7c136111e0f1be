"""The distributed executor against bare Celery on the same broker, in one run.

    python bench/distributed.py [--quick]

0. an agent's time to first token, on a worker through the run's event stream vs
   in-process (bench/_first_token.py);
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

from bench import _first_token  # noqa: E402
from bench._fixtures import GRAPHS  # noqa: E402
from bench._results import Plot, Table, print_table, save  # noqa: E402
from relaygraph.persistence.base import make_config  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedRedis  # noqa: E402
from relaygraph.workers.client import Client  # noqa: E402
from relaygraph.workers.keys import ThreadKeys  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402
from relaygraph.workers.settings import WorkerSettings  # noqa: E402

BARE_QUEUES = {"defaults": "bare", "relaygraph's settings": "bare-rg"}
# relaygraph with task events off (no Flower) on its own database and queue, against
# bare Celery's defaults (which send no task events either).
QUIET = {"db": 3, "queue": "rg-quiet"}
# Each baseline's worker uses its own database of the benchmark's Redis: kombu names its
# event channels by database, so one worker's task events never wake the others (in a
# deployment, one Celery app owns its broker database).
BARE_DBS = {"bare": 1, "bare-rg": 2}
HOP_GRAPHS = {"50-node linear graph": "chain50", "agent loop, 2 nodes x 25": "loop50"}
QUIET_LABEL = "agent loop, task events off"
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

    def bare(
        self, name: str, queue: str = "bare", settings: str = "defaults", broker: str = ""
    ) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench._fixtures:bare", "worker",
                "--queues", queue, "--concurrency", "1", "--hostname", f"{name}@%h",
                "--loglevel", "info"]  # fmt: skip
        env = {"BENCH_BARE_SETTINGS": "relaygraph"} if settings != "defaults" else {}
        if broker:
            env["BENCH_BROKER"] = broker
        self.start(name, argv, env=env)
        self.wait_for(name, b"ready.")


def _ours(client: Client, graph: str, thread: str) -> float:
    """Seconds per Celery task of one run, from submit to the run's final status."""
    started = time.time()
    run = client.submit(graph, {"n": 0}, thread_id=thread, config={"recursion_limit": 100})
    assert run.wait(timeout=300, poll=0.02) == "success", run.error  # end time: from Redis
    finished = int(client.redis.hget(ThreadKeys(thread).run(run.id), "updated")) / 1000
    return (finished - started) / NODE_TASKS


def _database(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def _bare(url: str, queue: str) -> float:
    """Seconds per task of a bare Celery task enqueueing itself, from send to its last end."""
    import redis

    from bench._fixtures import bare, hop

    broker = _database(url, BARE_DBS[queue])
    client = redis.Redis.from_url(broker)
    key = f"bench:bare:{uuid.uuid4()}"
    with bare.connection_for_write(broker) as connection:
        started = time.time()
        hop.apply_async(args=[BARE_TASKS - 1, key, queue], queue=queue, connection=connection)
        while not client.get(key):
            time.sleep(0.02)  # the end time is the task's own, not when we look
    return (float(client.get(key)) - started) / BARE_TASKS


def hop_latency(url: str, logs: Path, repeats: int) -> dict[str, list[float]]:
    """Per-task seconds of each relaygraph case and each bare baseline, alternated."""
    workers = Workers(url, logs)
    samples: dict[str, list[float]] = {
        name: [] for name in [*HOP_GRAPHS, QUIET_LABEL, *BARE_QUEUES]
    }
    quiet_url = _database(url, QUIET["db"])
    quiet_settings = {"redis_url": quiet_url, "default_queue": QUIET["queue"]}
    try:
        workers.relaygraph("hop")
        workers.start_worker(
            "quiet",
            queues=QUIET["queue"],
            env={
                "RELAYGRAPH_REDIS_URL": quiet_url,
                "RELAYGRAPH_DEFAULT_QUEUE": QUIET["queue"],
                "RELAYGRAPH_TASK_EVENTS": "false",
            },
        )
        for settings, queue in BARE_QUEUES.items():
            workers.bare(queue, queue, settings, broker=_database(url, BARE_DBS[queue]))
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        quiet = Client(settings=WorkerSettings(graphs=GRAPHS, **quiet_settings))
        for i in range(repeats + 1):  # the first round warms every process up, untimed
            for label, graph in HOP_GRAPHS.items():
                value = _ours(client, graph, f"hop-{graph}-{i}")
                if i:
                    samples[label].append(value)
            value = _ours(quiet, "loop50", f"quiet-{i}")
            if i:
                samples[QUIET_LABEL].append(value)
            for label, queue in BARE_QUEUES.items():
                value = _bare(url, queue)
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
        first_tokens = first_token(server.url, logs, 10 if args.quick else 40)
        rates = {n: throughput(server.url, logs, n, 20 if args.quick else 60) for n in (1, 2, 4)}
        recovered = recovery(server.url, logs, 2 if args.quick else 5)
        window = 30.0 if args.quick else 60.0
        redelivered = celery_redelivery(server.url, logs, window)
    tables = [
        hop_table(hops),
        first_token_table(*first_tokens),
        throughput_table(rates),
        recovery_table(recovered, redelivered, window),
    ]
    for table in tables:
        print_table(table)
    command = "python bench/distributed.py" + (" --quick" if args.quick else "")
    print(f"\nsaved {save('distributed', tables, command)}")


def first_token(url: str, logs: Path, repeats: int) -> tuple[list[float], list[float]]:
    """An agent's time to first token in-process and through one worker, alternated."""
    workers = Workers(url, logs)
    try:
        workers.relaygraph("ttft")
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        _first_token.distributed(client, 2)  # warm-up: imports, the model's first call
        local_times: list[float] = []
        fleet_times: list[float] = []
        for _ in range(repeats):
            local_times += _first_token.local(1)
            fleet_times += _first_token.distributed(client, 1)
        return local_times, fleet_times
    finally:
        workers.stop()


def first_token_table(local_times: list[float], fleet_times: list[float]) -> Table:
    """Time to an agent's first token in-process and on a worker."""
    table = Table(
        "Agent: time to the first token (ms, median)",
        ["where the model node runs", "first token"],
        notes=[
            "a model node streaming a 40-word answer (stream_mode='messages'); in-process "
            "from graph.stream, on the fleet from Client.submit to the first event of "
            "Run.stream (the worker writes each token to the run's Redis stream as it comes)",
            f"medians of {len(local_times)} runs each, alternated",
        ],
        plot=Plot("bar", x="where the model node runs", y=["first token"], ylabel="ms"),
    )
    for label, value in _first_token.table_rows(local_times, fleet_times):
        table.add(label, value)
    return table


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def hop_table(hops: dict[str, list[float]]) -> Table:
    """Per-node latency of each case next to the bare Celery chain with the same settings."""
    defaults, same = (_ms(hops[label]) for label in BARE_QUEUES)
    table = Table(
        "Hop latency per node, one worker process (ms, median)",
        ["case", "relaygraph", "bare Celery", "baseline", "ratio"],
        notes=[
            "a run's time from submit to its final status over its start task and 50 node "
            "tasks; bare Celery: a task that enqueues itself 50 times, from send to its end",
            "relaygraph's Celery settings: task events on (Flower), late acks, reject on "
            "worker loss, prefetch 1, JSON; the defaults send no task events",
            f"medians of {len(next(iter(hops.values())))} runs each, alternated, after a "
            "warm-up run; each Celery app on its own Redis database (its own event bus)",
        ],
        plot=Plot("bar", x="case", y=["relaygraph", "bare Celery"], ylabel="ms per node"),
    )
    for label in HOP_GRAPHS:
        ours = _ms(hops[label])
        table.add(label, ours, same, "same Celery settings", ours / same)
    ours = _ms(hops[QUIET_LABEL])
    table.add(QUIET_LABEL, ours, defaults, "Celery defaults", ours / defaults)
    loop = _ms(hops["agent loop, 2 nodes x 25"])
    table.add("agent loop (task events on)", loop, defaults, "Celery defaults", loop / defaults)
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
