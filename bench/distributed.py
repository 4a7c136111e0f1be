"""The distributed executor against bare Celery on the same broker, in one run.

    python bench/distributed.py [--quick] [--recovery-only] [--kills N]
    python bench/distributed.py --topology single rabbitmq cluster  (bench/_topology.py)

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
3. recovery: a thread's stall (SIGKILL to its next committed checkpoint), p50 / p99 / max
   over many kills of each kind: a pool process mid-node, a whole worker mid-node, a whole
   worker holding a received-but-unstarted message, a whole worker killed as it receives
   one (bench/_recovery.py); next to Celery's own redelivery of an acks_late task with
   default settings (visibility timeout 3600 s) watched for a fixed window.

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

from bench import _first_token, _recovery, _topology  # noqa: E402
from bench._fixtures import GRAPHS  # noqa: E402
from bench._results import Plot, Table, print_table, save  # noqa: E402
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
    parser.add_argument(
        "--recovery-only", action="store_true", help="only the recovery section (3)"
    )
    parser.add_argument("--kills", type=int, help="kills of each kind (default 3, 20 in full)")
    parser.add_argument(
        "--first-token-only", action="store_true", help="only an agent's time to first token (0)"
    )
    parser.add_argument(
        "--topology",
        nargs="+",
        choices=_topology.NAMES,
        help="only the deployments side by side (bench/_topology.py): hop latency, nodes/s, "
        "Redis CPU and commands per hop",
    )
    args = parser.parse_args()
    if args.topology:
        _topology_main(args.topology, args.quick)
        return
    hop_repeats = 5 if args.quick else 25  # one run is under a second: many, for a steady median
    kills = args.kills or (3 if args.quick else 20)
    tables = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(modules=False) as server:
        logs = Path(tmp)
        if not args.recovery_only and not args.first_token_only:
            hops = hop_latency(server.url, logs, hop_repeats)
            rates = {
                n: throughput(server.url, logs, n, 20 if args.quick else 60) for n in (1, 2, 4)
            }
            tables += [hop_table(hops), throughput_table(rates)]
        if not args.recovery_only:
            first_tokens = first_token(server.url, logs, 10 if args.quick else 40)
            tables.append(first_token_table(*first_tokens))
        if not args.first_token_only:
            stalls = _recovery.measure(
                server.url, logs, Workers(server.url, logs).env, ROOT, kills
            )
            window = 30.0 if args.quick else 60.0
            redelivered = celery_redelivery(server.url, logs, window)
            tables.append(recovery_table(stalls, redelivered, window))
    for table in tables:
        print_table(table)
    command = "python bench/distributed.py" + (" --quick" if args.quick else "")
    if args.recovery_only:  # a partial run: saved beside the full results, not over them
        command += f" --recovery-only --kills {kills}"
        print(f"\nsaved {save('recovery', tables, command)}")
        return
    if args.first_token_only:
        command += " --first-token-only"
        print(f"\nsaved {save('first_token', tables, command)}")
        return
    print(f"\nsaved {save('distributed', tables, command)}")


def _topology_main(names: list[str], quick: bool) -> None:
    tables = _topology.run(names, quick)
    for table in tables:
        print_table(table)
    command = "python bench/distributed.py" + (" --quick" if quick else "")
    command += " --topology " + " ".join(names)
    print(f"\nsaved {save('topologies', tables, command)}")


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
            "an agent loop: the model node calls a tool, a ToolNode runs it, the model "
            "streams a 40-word answer (stream_mode='messages'); the time to the answer's "
            "first token covers three nodes (three hops on the fleet); in-process from "
            "graph.stream, on the fleet from Client.submit to that token's event in "
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


def recovery_table(
    stalls: dict[str, list[float]], redelivered: float | None, window: float
) -> Table:
    """A thread's stall after each kind of SIGKILL: p50 / p99 / max over many kills."""
    table = Table(
        "Recovery: a thread's stall after a SIGKILL (s)",
        ["kill", "kills", "p50", "p99", "max"],
        notes=[
            "stall: from the SIGKILL to the thread's next committed checkpoint (the killed "
            "node's step, run again elsewhere); lease TTL 5 s, sweep every 1 s, queued grace "
            "30 s (the defaults)",
            "a message a worker received but never started has no lease: the worker's "
            "reservation mark and liveness (renewed every lease TTL / 3) let the sweeper "
            "re-enqueue it; before them it waited out the 30 s queued grace",
            "p99 by linear interpolation between the sorted samples",
            "Celery alone: an acks_late task of a killed worker is redelivered only after "
            "its visibility timeout (3600 s by default): "
            + (f"{redelivered:.1f} s" if redelivered is not None else f"not within {window:.0f} s"),
        ],
        plot=Plot("bar", x="kill", y=["p50", "p99", "max"], ylabel="seconds"),
    )
    for kind, label in _recovery.KINDS.items():
        values = stalls[kind]
        table.add(
            label,
            len(values),
            statistics.median(values),
            _recovery.percentile(values, 0.99),
            max(values),
        )
    return table


if __name__ == "__main__":
    main()
