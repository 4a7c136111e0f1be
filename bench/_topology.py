"""The deployments the distributed benchmarks compare, and what each costs its servers.

    single    one Redis: the checkpoints, the coordination and Celery's broker (the outbox)
    rabbitmq  RabbitMQ as the broker (publish, then confirm) + one Redis for the state
    cluster   RabbitMQ + a 3-primary Redis Cluster (the embedded one the tests use)

Each Redis is a private embedded server (``relaygraph.persistence.redis_server``); the
RabbitMQ is the one at ``$RELAYGRAPH_BENCH_AMQP_URL`` (default ``amqp://guest:guest@
127.0.0.1:5672//``), where the benchmark gets a private vhost when ``rabbitmqctl`` may make
one, else a queue of its own. :func:`started` brings a topology up, :func:`measure` runs the
same workload on several side by side and reads, from every shard's ``INFO cpu`` /
``commandstats`` / ``stats``, the broker's and the workers' ``/proc`` CPU time, what a hop
costs each server (bench/distributed.py --topology, bench/capacity.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relaygraph.persistence.redis_server import EmbeddedCluster, EmbeddedRedis  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402

NAMES = ("single", "rabbitmq", "cluster")
AMQP_VARIABLE = "RELAYGRAPH_BENCH_AMQP_URL"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672//"
SCRIPT_COMMANDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
CLOCK = os.sysconf("SC_CLK_TCK")


@dataclass
class ShardStats:
    """One Redis server's counters at one moment (or the difference of two)."""

    cpu: float  # seconds, user + system, every thread of the server
    calls: dict[str, int]  # commandstats: command -> calls (commands run by scripts included)
    usec: dict[str, int]  # commandstats: command -> microseconds inside it
    net_in: int
    net_out: int
    keys: int

    def __sub__(self, other: ShardStats) -> ShardStats:
        calls = {k: v - other.calls.get(k, 0) for k, v in self.calls.items()}
        usec = {k: v - other.usec.get(k, 0) for k, v in self.usec.items()}
        return ShardStats(
            self.cpu - other.cpu,
            {k: v for k, v in calls.items() if v},
            {k: v for k, v in usec.items() if v},
            self.net_in - other.net_in,
            self.net_out - other.net_out,
            self.keys - other.keys,
        )

    @property
    def commands(self) -> int:
        return sum(self.calls.values())

    @property
    def scripts(self) -> int:
        return sum(self.calls.get(name, 0) for name in SCRIPT_COMMANDS)


@dataclass
class Snapshot:
    """Every shard's counters, the broker's CPU seconds and the clock."""

    shards: list[ShardStats]
    broker_cpu: float | None
    at: float = field(default_factory=time.perf_counter)

    def __sub__(self, other: Snapshot) -> Snapshot:
        broker = None
        if self.broker_cpu is not None and other.broker_cpu is not None:
            broker = self.broker_cpu - other.broker_cpu
        shards = [a - b for a, b in zip(self.shards, other.shards, strict=True)]
        return Snapshot(shards, broker, self.at - other.at)

    @property
    def cpu(self) -> float:
        return sum(s.cpu for s in self.shards)

    @property
    def commands(self) -> int:
        return sum(s.commands for s in self.shards)

    @property
    def scripts(self) -> int:
        return sum(s.scripts for s in self.shards)

    @property
    def net(self) -> int:
        return sum(s.net_in + s.net_out for s in self.shards)

    def calls(self, what: str = "calls") -> dict[str, int]:
        """Per command, over every shard: ``calls`` or ``usec`` (time inside it)."""
        total: dict[str, int] = {}
        for shard in self.shards:
            for name, n in getattr(shard, what).items():
                total[name] = total.get(name, 0) + n
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))


@dataclass
class Topology:
    """A running topology: where the state and the broker are, and how to read them."""

    name: str
    redis_url: str
    broker_url: str
    primaries: list[tuple[str, int]]
    queue: str
    broker_pid: int | None = None

    @property
    def env(self) -> dict[str, str]:
        """The worker environment of this topology (its own default queue)."""
        env = {"RELAYGRAPH_REDIS_URL": self.redis_url, "RELAYGRAPH_DEFAULT_QUEUE": self.queue}
        if self.broker_url != self.redis_url:
            env["RELAYGRAPH_BROKER_URL"] = self.broker_url
        return env

    def settings(self, graphs: str) -> Any:
        from relaygraph.workers.settings import WorkerSettings

        broker = self.broker_url if self.broker_url != self.redis_url else None
        return WorkerSettings(
            redis_url=self.redis_url, broker_url=broker, default_queue=self.queue, graphs=graphs
        )

    def snapshot(self) -> Snapshot:
        """Every primary's INFO cpu / commandstats / stats / keyspace, and the broker's CPU."""
        import redis

        shards = []
        for host, port in self.primaries:
            with redis.Redis(host=host, port=port, decode_responses=True) as client:
                info = client.info("everything")
            calls = {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in info.items()
                if name.startswith("cmdstat_")
            }
            usec = {
                name.removeprefix("cmdstat_"): int(value["usec"])
                for name, value in info.items()
                if name.startswith("cmdstat_")
            }
            keys = sum(v["keys"] for k, v in info.items() if k.startswith("db") and "keys" in v)
            shards.append(
                ShardStats(
                    float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
                    calls,
                    usec,
                    int(info["total_net_input_bytes"]),
                    int(info["total_net_output_bytes"]),
                    keys,
                )
            )
        broker = process_cpu(self.broker_pid) if self.broker_pid else None
        return Snapshot(shards, broker)


# -- /proc CPU time ------------------------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process (None when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in process group ``pgid`` (a worker and its pool)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / CLOCK
    return total


def _beam_pid(host: str) -> int | None:
    """The local RabbitMQ server process (Erlang's beam.smp), to read its CPU time."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
    return None


# -- bringing topologies up ------------------------------------------------------------------


@contextlib.contextmanager
def _rabbitmq(tag: str) -> Iterator[tuple[str, int | None]]:
    """(the AMQP URL of a vhost of our own if rabbitmqctl may make one, the server's pid)."""
    url = os.environ.get(AMQP_VARIABLE, DEFAULT_AMQP)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        raise RuntimeError(
            f"no RabbitMQ at {host}:{port} ({exc}); start one or set {AMQP_VARIABLE}"
        ) from exc
    vhost = None
    ctl = shutil.which("rabbitmqctl")
    if ctl and host in ("127.0.0.1", "localhost") and AMQP_VARIABLE not in os.environ:
        name = f"relaygraph-bench-{tag}"
        user = parts.username or "guest"
        made = subprocess.run([ctl, "add_vhost", name], capture_output=True, timeout=60)
        if made.returncode == 0:
            vhost = name
            subprocess.run(
                [ctl, "set_permissions", "-p", name, user, ".*", ".*", ".*"],
                capture_output=True,
                timeout=60,
            )
            url = f"{parts.scheme}://{parts.netloc}/{name}"
    try:
        yield url, _beam_pid(host)
    finally:
        if vhost and ctl:
            subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@contextlib.contextmanager
def started(name: str) -> Iterator[Topology]:
    """Bring topology ``name`` (one of :data:`NAMES`) up; stop what it started on exit."""
    if name not in NAMES:
        raise ValueError(f"unknown topology {name!r}; known: {', '.join(NAMES)}")
    tag = uuid.uuid4().hex[:8]
    queue = f"bench-{name}-{tag}"
    with contextlib.ExitStack() as stack:
        if name == "cluster":
            cluster = stack.enter_context(EmbeddedCluster(masters=3))
            redis_url, primaries = cluster.url, cluster.startup_nodes
        else:
            server = stack.enter_context(EmbeddedRedis(modules=False))
            redis_url, primaries = server.url, [(server.host, server.port)]
        broker, pid = redis_url, None
        if name != "single":
            broker, pid = stack.enter_context(_rabbitmq(tag))
        yield Topology(name, redis_url, broker, primaries, queue, pid)


# -- the workload ----------------------------------------------------------------------------


@dataclass
class Cost:
    """What a workload cost, per task (a start task or a node: one Celery message each)."""

    tasks: int
    seconds: float
    redis: Snapshot
    worker_cpu: float
    polls: int  # the benchmark's own status reads (one HGETALL each), taken off the counts
    client_cpu: float = 0.0  # the submitting (benchmark) process's CPU seconds

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    @property
    def redis_us(self) -> float:
        return self.redis.cpu / self.tasks * 1e6

    @property
    def commands(self) -> float:
        return (self.redis.commands - self.polls) / self.tasks

    @property
    def scripts(self) -> float:
        return self.redis.scripts / self.tasks

    @property
    def broker_us(self) -> float | None:
        cpu = self.redis.broker_cpu
        return None if cpu is None else cpu / self.tasks * 1e6

    @property
    def worker_us(self) -> float:
        return self.worker_cpu / self.tasks * 1e6

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.tasks * 1e6

    @property
    def net_bytes(self) -> float:
        return self.redis.net / self.tasks


@dataclass
class Result:
    """One topology's measurements: hop latencies (s per task) and two costs."""

    name: str
    hops: list[float] = field(default_factory=list)
    hop_costs: list[Cost] = field(default_factory=list)
    throughput: list[Cost] = field(default_factory=list)
    idle: Snapshot | None = None
    idle_workers: int = 0

    @property
    def hop_ms(self) -> float:
        return statistics.median(self.hops) * 1000

    def best(self) -> Cost:
        """The median-rate throughput round."""
        return sorted(self.throughput, key=lambda c: c.rate)[len(self.throughput) // 2]


class Fleet(LocalFleet):
    """A topology's worker processes."""

    def __init__(self, topology: Topology, logs: Path, graphs: str) -> None:
        super().__init__(
            {**os.environ, "PYTHONPATH": str(ROOT), "RELAYGRAPH_GRAPHS": graphs, **topology.env},
            logs,
            cwd=ROOT,
        )
        self.topology = topology

    def cpu(self) -> float:
        return sum(group_cpu(p.pid) for p in self.processes.values())


def _wait(client: Any, runs: list[Any], poll: float) -> int:
    """Wait for every run to succeed; returns how many status reads it took."""
    polls = 0
    for run in runs:
        while True:
            polls += 1
            status = run.status
            if status == "success":
                break
            if status in ("error", "cancelled", "missing"):
                raise RuntimeError(f"{run!r}: {status} {run.error}")
            time.sleep(poll)
    return polls


def _run_cost(fleet: Fleet, client: Any, graph: str, runs: int, tasks: int, poll: float) -> Cost:
    """``runs`` runs of ``graph`` submitted at once; the rate from the first submit to the
    last run's own end stamp (not when the polling noticed it), the counters around it."""
    tag = uuid.uuid4().hex[:8]
    before, worker_before, own = fleet.topology.snapshot(), fleet.cpu(), time.process_time()
    started = time.time()
    submitted = [
        client.submit(
            graph, {"n": 0}, thread_id=f"{graph}-{tag}-{i}", config={"recursion_limit": 200}
        )
        for i in range(runs)
    ]
    polls = _wait(client, submitted, poll)
    delta = fleet.topology.snapshot() - before
    own = time.process_time() - own
    worker_cpu = fleet.cpu() - worker_before
    finished = max(
        int(client.coordinator.run_info(run.thread_id, run.id)["updated"]) / 1000
        for run in submitted
    )
    return Cost(runs * tasks, finished - started, delta, worker_cpu, polls, own)


def _hop_latency(client: Any, graph: str, tasks: int) -> tuple[float, int]:
    """Seconds per task of one run, submit to the run's own final stamp, and status reads."""
    started = time.time()
    run = client.submit(graph, {"n": 0}, thread_id=f"hop-{uuid.uuid4().hex[:8]}",
                        config={"recursion_limit": 200})  # fmt: skip
    polls = _wait(client, [run], 0.02)
    finished = int(client.coordinator.run_info(run.thread_id, run.id)["updated"]) / 1000
    return (finished - started) / tasks, polls + 1


def measure(
    names: list[str],
    logs: Path,
    graphs: str,
    *,
    hop_graph: tuple[str, int] = ("chain50", 51),
    tp_graph: tuple[str, int] = ("short3", 4),
    hop_repeats: int = 10,
    tp_runs: int = 60,
    tp_rounds: int = 3,
    processes: int = 2,
    idle_seconds: float = 3.0,
) -> dict[str, Result]:
    """Every topology in ``names`` up at once, each with its own workers; the runs alternate.

    1. hop latency: one worker process, ``hop_graph`` (name, tasks per run) run after run,
       alternating topologies (their other workers idle);
    2. throughput: ``processes`` worker processes, ``tp_runs`` runs of ``tp_graph`` at once,
       ``tp_rounds`` rounds alternating topologies;
    3. idle: what the idle workers cost each topology's Redis over ``idle_seconds``.
    """
    from relaygraph.workers.client import Client

    results = {name: Result(name) for name in names}
    with contextlib.ExitStack() as stack:
        fleets, clients = {}, {}
        for name in names:
            topology = stack.enter_context(started(name))
            fleet = stack.enter_context(Fleet(topology, logs, graphs))
            fleets[name] = fleet
            clients[name] = stack.enter_context(Client(settings=topology.settings(graphs)))
            fleet.start_worker(f"{name}-hop", concurrency=1)
        for i in range(hop_repeats + 1):  # the first round warms every process up, untimed
            for name in names:
                graph, tasks = hop_graph
                before, cpu = fleets[name].topology.snapshot(), fleets[name].cpu()
                seconds, polls = _hop_latency(clients[name], graph, tasks)
                delta = fleets[name].topology.snapshot() - before
                if i:
                    results[name].hops.append(seconds)
                    cost = Cost(tasks, delta.at, delta, fleets[name].cpu() - cpu, polls)
                    results[name].hop_costs.append(cost)
        for name in names:
            before = fleets[name].topology.snapshot()
            time.sleep(idle_seconds)
            results[name].idle = fleets[name].topology.snapshot() - before
            results[name].idle_workers = 1
        for name in names:  # the throughput workers replace the hop worker
            fleets[name].stop()
            fleets[name].start_worker(f"{name}-tp", concurrency=processes)
        for i in range(tp_rounds + 1):
            for name in names:
                graph, tasks = tp_graph
                runs = max(4, tp_runs // 4) if i == 0 else tp_runs
                cost = _run_cost(fleets[name], clients[name], graph, runs, tasks, 0.1)
                if i:
                    results[name].throughput.append(cost)
    return results


def median_cost(costs: list[Cost], attr: str) -> float:
    """The median of one per-task figure over several measured costs."""
    values = [getattr(c, attr) for c in costs if getattr(c, attr) is not None]
    return statistics.median(values) if values else float("nan")


LABELS = {
    "single": "Redis (state + broker)",
    "rabbitmq": "RabbitMQ + Redis",
    "cluster": "RabbitMQ + 3-primary Redis Cluster",
}


def tables(results: dict[str, Result], processes: int) -> list[Any]:
    """The side-by-side tables of :func:`measure`'s results."""
    from bench._results import Plot, Table

    first = next(iter(results.values()))
    side = Table(
        "Topologies side by side: latency, throughput and what a hop costs the servers",
        [
            "topology",
            "hop ms",
            "nodes/s",
            "Redis CPU us/node",
            "Redis cmds/hop",
            "Lua scripts/hop",
            "Redis CPU us/hop",
            "broker CPU us/node",
            "worker CPU us/node",
        ],
        notes=[
            f"hop ms: a 50-node linear graph on one worker process, submit to the run's end "
            f"over its 51 tasks, median of {len(first.hops)} runs alternating topologies",
            f"nodes/s: {first.best().tasks // 4} runs of a 3-node graph at once on "
            f"{processes} worker processes (start task + 3 nodes = 4 tasks a run), the "
            f"median of {len(first.throughput)} rounds; Redis / broker / worker CPU per node "
            "are from those runs: user + system time of every Redis primary (INFO cpu), of "
            "the RabbitMQ server (beam.smp) and of the worker processes, divided by the tasks",
            "cmds/hop and scripts/hop: INFO commandstats deltas over every primary during "
            "the 50-node runs (commands a Lua script runs are counted; the benchmark's own "
            "status reads are taken off), per task",
            "single: Celery's Redis transport is the broker, so its Redis also does the "
            "queueing (the outbox: a hop's commit script pushes the next tasks)",
        ],
        plot=Plot("bar", x="topology", y=["hop ms"], ylabel="ms per node"),
        formats={"Redis cmds/hop": ".1f", "Lua scripts/hop": ".2f"},
    )
    for name, result in results.items():
        cost = result.best()
        side.add(
            LABELS[name],
            result.hop_ms,
            cost.rate,
            cost.redis_us,
            median_cost(result.hop_costs, "commands"),
            median_cost(result.hop_costs, "scripts"),
            median_cost(result.hop_costs, "redis_us"),
            cost.broker_us,
            cost.worker_us,
        )
    idle = Table(
        "Idle workers: what one idle worker costs its Redis (sweeper, heartbeat, polling)",
        ["topology", "Redis cmds/s", "Redis CPU ms/s"],
        notes=["one worker process (its main process and one pool process), no runs"],
    )
    for name, result in results.items():
        assert result.idle is not None
        seconds = result.idle.at
        idle.add(LABELS[name], result.idle.commands / seconds, result.idle.cpu / seconds * 1000)
    return [side, idle]


def run(names: list[str], quick: bool) -> list[Any]:
    """``bench/distributed.py --topology``: measure ``names`` side by side, return tables."""
    import tempfile

    from bench._fixtures import GRAPHS

    processes = 2
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(
            names,
            Path(tmp),
            GRAPHS,
            hop_repeats=3 if quick else 10,
            tp_runs=20 if quick else 60,
            tp_rounds=1 if quick else 3,
            processes=processes,
        )
    return tables(results, processes)
