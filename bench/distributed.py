"""The distributed executor against bare Celery on the same broker, in one run.

    python bench/distributed.py [--quick] [--recovery-only] [--kills N] [--results DIR]
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
   threads at once; with 1 process, next to a bare Celery worker with relaygraph's
   Celery settings running as many 4-task chains at once (the start task and 3 nodes of a
   run), alternated round by round;
3. recovery: a thread's stall (SIGKILL to its next committed checkpoint), p50 / p99 / max
   over many kills of each kind: a pool process mid-node, a whole worker mid-node, a whole
   worker holding a received-but-unstarted message, a whole worker killed as it receives
   one (bench/_recovery.py); next to Celery's own redelivery of an acks_late task with
   default settings (visibility timeout 3600 s) watched for a fixed window.

Everything runs on a private embedded Redis; medians over repeats (the machine is shared).
The last table, "Targets", checks the targets of issues 4, 17 and 14 that the run measured
(bench/_targets.py); the last line printed is "N of M targets met".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _first_token, _recovery, _results, _topology  # noqa: E402
from bench._fixtures import GRAPHS  # noqa: E402
from bench._results import Plot, Table, print_table, save  # noqa: E402
from bench._targets import Target, met_line, targets_table, title  # noqa: E402
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
RUN_TASKS = 4  # a 3-node run: its start task and 3 node tasks (a bare chain as long)
SAME = "relaygraph's settings"  # the bare baseline the targets compare against


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
        while not client.llen(key):
            time.sleep(0.02)  # the end time is the task's own, not when we look
    return (float(client.lindex(key, 0)) - started) / BARE_TASKS


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


def _runs_rate(client: Client, runs: int) -> float:
    """Tasks per second of ``runs`` 3-node runs at once: first submit to the last run's end."""
    tag = uuid.uuid4().hex[:6]
    started = time.time()
    submitted = [client.submit("short3", {"n": 0}, thread_id=f"tp-{tag}-{i}") for i in range(runs)]
    for run in submitted:
        assert run.wait(timeout=600, poll=0.02) == "success", run.error
    # Each run's end as its last node recorded it in Redis, not when we polled.
    ends = [
        int(client.redis.hget(ThreadKeys(run.thread_id).run(run.id), "updated")) / 1000
        for run in submitted
    ]
    return runs * RUN_TASKS / (max(ends) - started)


def _chains_rate(url: str, chains: int) -> float:
    """Tasks per second of ``chains`` bare Celery chains of RUN_TASKS tasks at once, on the
    worker with relaygraph's Celery settings: first send to the last chain's end."""
    import redis

    from bench._fixtures import bare, hop

    queue = BARE_QUEUES[SAME]
    broker = _database(url, BARE_DBS[queue])
    client = redis.Redis.from_url(broker)
    key = f"bench:chains:{uuid.uuid4()}"
    with bare.connection_for_write(broker) as connection:
        started = time.time()
        for _ in range(chains):
            hop.apply_async(args=[RUN_TASKS - 1, key, queue], queue=queue, connection=connection)
        deadline = time.monotonic() + 600
        while client.llen(key) < chains:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{client.llen(key)} of {chains} bare chains ended in 600 s")
            time.sleep(0.02)  # the end times are the tasks' own, not when we look
    return chains * RUN_TASKS / (max(float(end) for end in client.lrange(key, 0, -1)) - started)


CPU_ROLES = {
    "main": "worker main process (receives, acks, task events)",
    "pool": "pool process (runs the task)",
    "redis": "Redis server (broker and state)",
    "client": "the benchmark (submits, sends, polls)",
}
CPU_SYSTEMS = {"relaygraph": "tp", "bare Celery": "tp-bare-rg"}


def _cpu_seconds(workers: Workers, name: str, redis_pid: int | None) -> dict[str, float]:
    """User + system CPU seconds so far of worker ``name``'s main and pool processes, the
    Redis server and this process (see CPU_ROLES)."""
    import psutil

    def used(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    main = psutil.Process(workers.procs[name].pid)
    out = {
        "main": used(main),
        "pool": sum(used(child) for child in main.children(recursive=True)),
        "client": used(psutil.Process()),
    }
    if redis_pid is not None:
        out["redis"] = used(psutil.Process(redis_pid))
    return out


def _measured(
    workers: Workers, name: str, redis_pid: int | None, rate: Callable[[], float]
) -> tuple[float, dict[str, float]]:
    """``rate()`` and the CPU seconds each role (CPU_ROLES) spent while it ran."""
    before = _cpu_seconds(workers, name, redis_pid)
    value = rate()
    after = _cpu_seconds(workers, name, redis_pid)
    return value, {role: after[role] - before[role] for role in after}


def throughput(
    url: str,
    logs: Path,
    processes: int,
    runs: int,
    rounds: int = 1,
    baseline: bool = False,
    redis_pid: int | None = None,
) -> dict[str, list[float]]:
    """Tasks per second of ``runs`` 3-node runs at once on one worker with ``processes``
    processes, ``rounds`` times after an untimed warm-up round; with ``baseline``, each
    round is followed by the bare Celery chains (as many, as long, same Celery settings)
    on a bare worker of one process. Samples under "relaygraph" and "bare Celery"; with
    ``baseline``, also each role's CPU milliseconds per task (CPU_ROLES) under
    "cpu:<system>:<role>" (the Redis server's when ``redis_pid`` is given)."""
    workers = Workers(url, logs)
    samples: dict[str, list[float]] = {"relaygraph": [], "bare Celery": []}
    tasks = runs * RUN_TASKS
    try:
        ours_name = f"tp{processes}"
        workers.relaygraph(ours_name, concurrency=processes)
        if baseline:
            queue = BARE_QUEUES[SAME]
            workers.bare(f"tp-{queue}", queue, SAME, broker=_database(url, BARE_DBS[queue]))
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        for i in range(rounds + 1):  # the first round warms every process up, untimed
            measured = {"relaygraph": _measured(
                workers, ours_name, redis_pid, lambda: _runs_rate(client, runs)
            )}  # fmt: skip
            if baseline:
                measured["bare Celery"] = _measured(
                    workers, f"tp-{BARE_QUEUES[SAME]}", redis_pid, lambda: _chains_rate(url, runs)
                )
            if not i:
                continue
            for system, (rate, cpu) in measured.items():
                samples[system].append(rate)
                if baseline:
                    for role, seconds in cpu.items():
                        samples.setdefault(f"cpu:{system}:{role}", []).append(
                            seconds * 1000 / tasks
                        )
        return samples
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


def main(argv: list[str] | None = None) -> None:
    """Run the sections asked for, print their tables and the targets, save the results."""
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
    parser.add_argument("--results", help="save the results file in this directory instead")
    args = parser.parse_args(argv)
    if args.results:  # not part of how the numbers were made: left out of the command
        _results.RESULTS = Path(args.results)
    if args.topology:
        _topology_main(args.topology, args.quick)
        return
    hop_repeats = 5 if args.quick else 25  # one run is under a second: many, for a steady median
    kills = args.kills or (3 if args.quick else 20)
    runs = 20 if args.quick else 60  # 3-node runs at once per throughput round
    rounds = 3 if args.quick else 7  # per process count; with 1, bare Celery's alternated
    tables = []
    hops = rates = stalls = None  # a section a partial run leaves out: no targets for it
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(modules=False) as server:
        logs = Path(tmp)
        if not args.recovery_only and not args.first_token_only:
            hops = hop_latency(server.url, logs, hop_repeats)
            rates = {
                1: throughput(
                    server.url, logs, 1, runs, rounds, baseline=True, redis_pid=server.pid
                )
            }
            for n in (2, 4):
                rates[n] = throughput(server.url, logs, n, runs, rounds)
            tables += [hop_table(hops), throughput_table(rates)]
            if any(key.startswith("cpu:") for key in rates[1]):
                tables.append(cpu_table(rates[1]))
        if not args.recovery_only:
            first_tokens = first_token(server.url, logs, 10 if args.quick else 40)
            tables.append(first_token_table(*first_tokens))
        if not args.first_token_only:
            stalls = _recovery.measure(server.url, logs, Workers(server.url, logs).env, ROOT, kills)
            window = 30.0 if args.quick else 60.0
            redelivered = celery_redelivery(server.url, logs, window)
            tables.append(recovery_table(stalls, redelivered, window))
    found = targets(hops, rates, stalls)
    if found:  # a first-token run measures no target: no empty table in the docs
        tables.append(targets_table(found, targets_title(found)))
    for table in tables:
        print_table(table)
    command = "python bench/distributed.py" + (" --quick" if args.quick else "")
    name = "distributed"
    if args.recovery_only:  # a partial run: saved beside the full results, not over them
        command += f" --recovery-only --kills {kills}"
        name = "recovery"
    elif args.first_token_only:
        command += " --first-token-only"
        name = "first_token"
    print(f"\nsaved {save(name, tables, command)}")
    print(met_line(found))


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


def _hop_ratios(hops: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """Per hop graph: (relaygraph ms, bare Celery ms with the same settings, their ratio),
    medians; a graph without samples (or no baseline) is left out."""
    same = hops.get(SAME)
    if not same:
        return {}
    bare = _ms(same)
    return {
        label: (_ms(hops[label]), bare, _ms(hops[label]) / bare)
        for label in HOP_GRAPHS
        if hops.get(label)
    }


def hop_table(hops: dict[str, list[float]]) -> Table:
    """Per-node latency of each case next to the bare Celery chain with the same settings."""
    defaults = _ms(hops["defaults"])
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
    for label, (ours, bare, over) in _hop_ratios(hops).items():
        table.add(label, ours, bare, "same Celery settings", over)
    ours = _ms(hops[QUIET_LABEL])
    table.add(QUIET_LABEL, ours, defaults, "Celery defaults", ours / defaults)
    loop = _ms(hops["agent loop, 2 nodes x 25"])
    table.add("agent loop (task events on)", loop, defaults, "Celery defaults", loop / defaults)
    return table


def throughput_table(rates: dict[int, dict[str, list[float]]]) -> Table:
    """Nodes per second with 1, 2 and 4 worker processes; with 1, the bare Celery chains'
    tasks per second beside it, when the run measured them (an older run did not)."""
    first = _median(rates[1]["relaygraph"])
    rounds = max(len(r["relaygraph"]) for r in rates.values())
    table = Table(
        "Throughput of 3-node runs on many threads at once (nodes/s)",
        ["worker processes", "relaygraph", "bare Celery", "ratio to bare", "ratio to 1 process"],
        notes=[
            "tasks per second (a run's start task and its 3 nodes) from the first submit to "
            "the last run's end as recorded in Redis; medians of "
            f"{rounds} rounds after an untimed warm-up round",
            "bare Celery: one worker process with relaygraph's Celery settings, as many "
            f"chains at once as relaygraph's runs, each {RUN_TASKS} tasks long (a task "
            "sending the next), from the first send to the last chain's end; measured in "
            "the same rounds as relaygraph's 1 process, alternated",
            "the Redis server and the benchmark share the machine's 2 cores",
        ],
        plot=Plot(
            "bar", x="worker processes", y=["relaygraph", "bare Celery"], ylabel="tasks per second"
        ),
    )
    for n, samples in rates.items():
        rate = _median(samples["relaygraph"])
        bare = _median(samples.get("bare Celery", []))
        over = rate / bare if rate is not None and bare else None
        ratio_one = rate / first if rate is not None and first else None
        table.add(str(n), rate, bare, over, ratio_one)
    return table


def cpu_table(samples: dict[str, list[float]]) -> Table:
    """Where a task's time goes with one worker process: the CPU each process spent per
    task in the throughput rounds, relaygraph's runs beside the bare Celery chains."""
    table = Table(
        "CPU per task by process, 1 worker process (ms, median over rounds)",
        ["process", "relaygraph", "bare Celery", "difference"],
        notes=[
            "user + system CPU time each process spent during a throughput round, divided "
            f"by the round's tasks ({RUN_TASKS} per run or chain); the same rounds as the "
            "throughput table's 1 process",
            "the processes share the machine's 2 cores: a round's wall time is close to "
            "the sum of these, so the total is what the throughput ratio follows",
        ],
        plot=Plot("bar", x="process", y=["relaygraph", "bare Celery"], ylabel="CPU ms per task"),
    )
    totals = {"relaygraph": 0.0, "bare Celery": 0.0}
    for role, label in CPU_ROLES.items():
        ours = _median(samples.get(f"cpu:relaygraph:{role}", []))
        bare = _median(samples.get(f"cpu:bare Celery:{role}", []))
        if ours is None or bare is None:
            continue
        totals["relaygraph"] += ours
        totals["bare Celery"] += bare
        table.add(label, ours, bare, ours - bare)
    ours, bare = totals["relaygraph"], totals["bare Celery"]
    table.add("total", ours, bare, ours - bare)
    table.formats = {"relaygraph": ".2f", "bare Celery": ".2f", "difference": "+.2f"}
    return table


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


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


# -- targets -------------------------------------------------------------------------------

HOP_LIMITS = {4: 1.5, 14: 1.25}  # issue: a node's hop at most this times the bare chain's
RECOVERY_LIMIT = 10.0  # s: issues 4 and 17 (lease TTL + sweep interval, at most 10 s)
THROUGHPUT_SHARE = 0.8  # issue 14: 1 process's nodes/s at least this share of bare Celery's
ISSUES = (4, 17, 14)
TARGETS_TITLE = title(ISSUES)


def targets_title(found: list[Target]) -> str:
    """The Targets table's title, naming only the issues whose targets the run checked
    (a recovery-only run: issues 4 and 17)."""
    return title([issue for issue in ISSUES if any(t.issue == issue for t in found)])


def _kills(n: int) -> str:
    return f"{n} kill" + ("" if n == 1 else "s")


def targets(
    hops: dict[str, list[float]] | None = None,
    rates: dict[int, dict[str, list[float]]] | None = None,
    stalls: dict[str, list[float]] | None = None,
) -> list[Target]:
    """Check the targets of issues 4, 17 and 14 on this run's numbers, in issue order.

    A section the run did not measure is None (a partial run): its targets are left out.
    A target whose numbers are missing from a measured section is returned unmeasured
    (``met=None``): bench/_targets.py counts it neither met nor missed.
    """
    out: list[Target] = []
    if hops is not None:
        out += hop_targets(hops, 4)
    if stalls is not None:
        out += recovery_targets(stalls)
    if hops is not None:
        out += hop_targets(hops, 14)
    if rates is not None:
        out.append(throughput_target(rates))
    return out


def hop_targets(hops: dict[str, list[float]], issue: int) -> list[Target]:
    """Issue 4's (1.5x) or 14's (1.25x) hop target for each hop graph."""
    limit, ratios, out = HOP_LIMITS[issue], _hop_ratios(hops), []
    for label in HOP_GRAPHS:
        found = ratios.get(label)
        out.append(
            Target(
                f"hop per node, {label}, at most {limit:g}x a bare Celery chain with the "
                "same Celery settings",
                "-" if found is None else f"{found[2]:.2f}x ({found[0]:.2f} vs {found[1]:.2f} ms)",
                None if found is None else found[2] <= limit,
                issue,
            )
        )
    return out


def recovery_targets(stalls: dict[str, list[float]]) -> list[Target]:
    """Issue 4's (a whole worker killed mid-node: every kill) and issue 17's (every kind of
    kill: the 99th percentile) recovery targets."""
    settings = WorkerSettings()
    bound = settings.lease_ttl + settings.sweep_interval
    worker = stalls.get("worker", [])
    out = [
        Target(
            "a whole worker SIGKILLed mid-node: the thread's next step within lease TTL + "
            f"sweep interval ({bound:g} s by default), at most {RECOVERY_LIMIT:g} s",
            f"max {max(worker):.2f} s over {_kills(len(worker))}" if worker else "-",
            max(worker) <= RECOVERY_LIMIT if worker else None,
            4,
        )
    ]
    for kind, label in _recovery.KINDS.items():
        values = stalls.get(kind, [])
        p99 = _recovery.percentile(values, 0.99) if values else None
        out.append(
            Target(
                f"{label}: the thread continues within lease TTL + sweep interval, at most "
                f"{RECOVERY_LIMIT:g} s at the 99th percentile",
                "-"
                if p99 is None
                else f"p99 {p99:.2f} s (max {max(values):.2f} s, {_kills(len(values))})",
                None if p99 is None else p99 <= RECOVERY_LIMIT,
                17,
            )
        )
    return out


def throughput_target(rates: dict[int, dict[str, list[float]]]) -> Target:
    """Issue 14's throughput target: 1 process's tasks/s against the bare chains' in the
    same rounds (unmeasured when the run has no baseline)."""
    one = rates.get(1, {})
    ours, bare = _median(one.get("relaygraph", [])), _median(one.get("bare Celery", []))
    share = ours / bare if ours is not None and bare else None
    return Target(
        "throughput, 1 worker process, 3-node runs: at least "
        f"{THROUGHPUT_SHARE:g}x a bare Celery task chain's tasks/s in the same run",
        "-" if share is None else f"{share:.2f}x ({ours:.1f} vs {bare:.1f} tasks/s)",
        None if share is None else share >= THROUGHPUT_SHARE,
        14,
    )


if __name__ == "__main__":
    main()
