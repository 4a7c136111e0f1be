"""The inputs of docs/scaling.md's capacity model, measured on this machine with one command.

    python bench/capacity.py [--quick] [--topologies single rabbitmq cluster] [--threads N]

1. per node hop, on each topology side by side (bench/_topology.py): Redis server CPU time
   (INFO cpu over every primary), Redis commands and Lua scripts (INFO commandstats), the
   broker's and the workers' CPU time, and the nodes/s reached;
2. bytes per thread at rest: MEMORY USAGE over every key of a thread (its checkpoints and
   its executor keys: run record, steps, event stream) after an agent conversation of N
   node steps on the workers, and what stays once the run records expire;
3. 10,000 threads on a 3-primary cluster: keys, memory and threads per shard (how even the
   hash-tag spread is);
4. the arithmetic from those to the Redis shards, worker cores and broker cores for 1,000 /
   10,000 / 100,000 nodes/s, checked against the cluster throughput run of (1).

Prints the tables and saves them to bench/results/capacity.json (the per-command
breakdown beside them in bench/results/capacity/breakdown.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _topology  # noqa: E402
from bench._capacity_graphs import GRAPHS as CHAT_GRAPHS  # noqa: E402
from bench._fixtures import GRAPHS, Hops, _hop  # noqa: E402
from bench._results import RESULTS, Plot, Table, print_table, save  # noqa: E402
from bench._topology import median_cost  # noqa: E402
from relaygraph import START, StateGraph  # noqa: E402
from relaygraph.persistence.redis import thread_tag  # noqa: E402
from relaygraph.persistence.redis_server import CLUSTER_SLOTS, EmbeddedCluster  # noqa: E402

ALL_GRAPHS = f"{GRAPHS},{CHAT_GRAPHS}"
TARGETS = (1_000, 10_000, 100_000)
#: A Redis primary runs commands on one core: plan it at half of that (headroom for a
#: failover, when a replica's promotion briefly doubles a survivor's share, and bursts).
REDIS_BUSY = 0.5
#: Worker and broker cores planned at 70% busy.
CORE_BUSY = 0.7
#: Pool processes per worker (one main process, one sweeper, per worker).
PROCESSES_PER_WORKER = 4


# -- 2. bytes per thread at rest ---------------------------------------------------------------


def thread_memory(client: Any, thread_id: str) -> dict[str, int]:
    """Bytes (MEMORY USAGE, exact) and keys of one thread, checkpoints (rg:) vs executor (rgw:)."""
    tag = "{" + thread_tag(thread_id) + "}"
    found = {"checkpoint bytes": 0, "executor bytes": 0, "keys": 0, "expiring bytes": 0}
    kinds: dict[str, int] = {}
    for key in client.scan_iter(match=f"*{tag}*", count=1000):
        size = int(client.memory_usage(key, samples=0) or 0)
        kind = key.decode().split(tag, 1)[1].lstrip(":").split(":", 1)[0] or "head"
        kinds[f"{key.decode().split(':', 1)[0]}:{kind}"] = (
            kinds.get(f"{key.decode().split(':', 1)[0]}:{kind}", 0) + size
        )
        kind = "executor bytes" if key.startswith(b"rgw:") else "checkpoint bytes"
        found[kind] += size
        found["keys"] += 1
        if client.ttl(key) > 0:  # run records, steps, streams: gone after their TTL
            found["expiring bytes"] += size
    return {**found, "by kind": kinds}


def at_rest(steps: list[int], logs: Path) -> list[dict[str, Any]]:
    """An agent conversation of each N node steps on the workers, then its thread's bytes."""
    from relaygraph.workers.client import Client

    rows = []
    with _topology.started("rabbitmq") as top, _topology.Fleet(top, logs, ALL_GRAPHS) as fleet:
        fleet.start_worker("rest", concurrency=1)
        import redis

        host, port = top.primaries[0]
        client = redis.Redis(host=host, port=port)
        with Client(settings=top.settings(ALL_GRAPHS)) as rg:
            for n in steps:
                thread = f"rest-{n}-{uuid.uuid4().hex[:6]}"
                turns = (n + 1) // 2
                run = rg.submit(
                    "chatloop",
                    {"messages": [{"role": "user", "content": "Plan my week."}], "turns": turns},
                    thread_id=thread,
                    config={"recursion_limit": 4 * n + 10},
                )
                assert run.wait(timeout=300) == "success", run.error
                found = thread_memory(client, thread)
                payload = len(rg.get_state("chatloop", thread).values["messages"])
                rows.append({"steps": 2 * turns - 1, "messages": payload, **found})
    return rows


# -- 3. 10,000 threads on 3 shards ---------------------------------------------------------------


def _slot_owner(cluster: EmbeddedCluster) -> list[int]:
    """Shard index of every slot."""
    owner = [0] * CLUSTER_SLOTS
    for index, node in enumerate(cluster.nodes):
        with node.client(decode_responses=True) as client:
            for first, last, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if _[0][1] == node.port:
                    for slot in range(first, last + 1):
                        owner[slot] = index
    return owner


def spread(threads: int) -> dict[str, Any]:
    """``threads`` threads of a 3-node graph (4 checkpoints each) saved by RedisSaver on a
    3-primary cluster; keys, memory and threads per shard."""
    from redis.cluster import key_slot

    from relaygraph.persistence.redis import RedisSaver

    with EmbeddedCluster(masters=3) as cluster:
        base = []
        for node in cluster.nodes:
            with node.client() as client:
                base.append(int(client.info("memory")["used_memory"]))
        saver = RedisSaver.from_conn_string(cluster.url)
        builder = StateGraph(Hops).add_node("a", _hop).add_node("b", _hop).add_node("c", _hop)
        builder.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c")
        graph = builder.compile(checkpointer=saver)
        tag = uuid.uuid4().hex[:6]
        ids = [f"spread-{tag}-{i}" for i in range(threads)]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(lambda t: graph.invoke({"n": 0}, {"configurable": {"thread_id": t}}), ids)
            )
        seconds = time.perf_counter() - started
        owner = _slot_owner(cluster)
        per_shard_threads = [0] * len(cluster.nodes)
        for thread in ids:
            per_shard_threads[owner[key_slot(("{" + thread_tag(thread) + "}").encode())]] += 1
        shards = []
        for index, node in enumerate(cluster.nodes):
            with node.client() as client:
                memory = int(client.info("memory")["used_memory"]) - base[index]
                shards.append(
                    {
                        "shard": index,
                        "slots": owner.count(index),
                        "threads": per_shard_threads[index],
                        "keys": int(client.dbsize()),
                        "memory bytes": memory,
                    }
                )
    return {"threads": threads, "seconds": seconds, "shards": shards}


def index_buckets() -> list[int]:
    """How many of the sweeper's index buckets (``RELAYGRAPH_INDEX_BUCKETS``, default 16;
    one hash tag each) each shard of a 3-primary cluster (even slot ranges) holds."""
    from redis.cluster import key_slot

    from relaygraph.workers.keys import DEFAULT_BUCKETS, Indexes

    per = CLUSTER_SLOTS // 3
    counts = [0, 0, 0]
    for key in Indexes(DEFAULT_BUCKETS).all("leases"):
        counts[min(2, key_slot(key.encode()) // per)] += 1
    return counts


# -- 4. the arithmetic ---------------------------------------------------------------------------


def model(cost: _topology.Cost, idle: _topology.Snapshot) -> dict[str, Any]:
    """Shards, worker cores and broker cores for each target rate from one measured cost.

    Redis load = nodes/s x CPU per node + workers x what an idle worker's sweeper and
    heartbeats cost (``idle``, one worker); a worker is planned with
    :data:`PROCESSES_PER_WORKER` pool processes (one sweeper each worker).
    """
    per_shard = REDIS_BUSY * 1e6 / cost.redis_us
    idle_us = idle.cpu / idle.at * 1e6  # Redis CPU us per second, per idle worker
    idle_cmds = idle.commands / idle.at
    rows = []
    for rate in TARGETS:
        cores = math.ceil(rate * cost.worker_us / 1e6 / CORE_BUSY)
        workers = math.ceil(cores / PROCESSES_PER_WORKER)
        redis_us = rate * cost.redis_us + workers * idle_us
        shards = max(3, math.ceil(redis_us / (REDIS_BUSY * 1e6)))
        rows.append(
            {
                "nodes/s": rate,
                "Redis primaries": shards,
                "Redis cmds/s per primary": (rate * cost.commands + workers * idle_cmds) / shards,
                "worker cores": cores,
                "workers": workers,
                "sweeper cmds/s": workers * idle_cmds,
                "broker cores": math.ceil(rate * (cost.broker_us or 0) / 1e6 / CORE_BUSY),
                "node slots for 1 s nodes": rate,
            }
        )
    total = cost.redis_us + cost.worker_us + (cost.broker_us or 0) + cost.client_us
    return {
        "per primary nodes/s": per_shard,
        "rows": rows,
        "cpu us per node": total,
        "idle us": idle_us,
        "idle cmds": idle_cmds,
    }


# -- tables ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--topologies", nargs="+", choices=_topology.NAMES,
                        default=list(_topology.NAMES))  # fmt: skip
    parser.add_argument("--threads", type=int, help="threads of the spread (default 10,000)")
    args = parser.parse_args()
    threads = args.threads or (2_000 if args.quick else 10_000)
    processes = 2
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        measured = _topology.measure(
            args.topologies, logs, ALL_GRAPHS,
            hop_repeats=3 if args.quick else 8,
            tp_runs=30 if args.quick else 120,
            tp_rounds=1 if args.quick else 3,
            processes=processes,
        )  # fmt: skip
        load = max(load, os.getloadavg()[0])
        rest = at_rest([9, 49], logs)
    shard_spread = spread(threads)
    buckets = index_buckets()
    basis = "cluster" if "cluster" in measured else args.topologies[-1]
    cost = measured[basis].best()
    idle = measured[basis].idle
    assert idle is not None
    arithmetic = model(cost, idle)
    tables = _topology.tables(measured, processes)
    tables += [rest_table(rest), spread_table(shard_spread, buckets)]
    tables += [model_table(arithmetic, cost, basis), check_table(measured[basis], arithmetic, load)]
    for table in tables:
        print_table(table)
    command = "python bench/capacity.py" + (" --quick" if args.quick else "")
    if args.topologies != list(_topology.NAMES):
        command += " --topologies " + " ".join(args.topologies)
    path = save("capacity", tables, command)
    extra = {
        name: {
            "hop calls per task": {
                k: v / sum(c.tasks for c in r.hop_costs)
                for k, v in _sum_calls(r.hop_costs, "calls").items()
            },
            "hop usec per task": {
                k: v / sum(c.tasks for c in r.hop_costs)
                for k, v in _sum_calls(r.hop_costs, "usec").items()
            },
            "idle calls per second": {k: v / r.idle.at for k, v in r.idle.calls().items()}
            if r.idle
            else {},
            "throughput per shard": [
                {"cpu s": s.cpu, "commands": s.commands} for s in r.best().redis.shards
            ],
        }
        for name, r in measured.items()
    }
    breakdown = RESULTS / "capacity" / "breakdown.json"  # beside, not read by report.py
    breakdown.parent.mkdir(exist_ok=True)
    breakdown.write_text(
        json.dumps({"command": command, "topologies": extra, "spread": shard_spread,
                    "at rest": rest, "buckets": buckets}, indent=1) + "\n"
    )  # fmt: skip
    print(f"\nsaved {path} and {breakdown}")


def _sum_calls(costs: list[_topology.Cost], what: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for cost in costs:
        for name, n in cost.redis.calls(what).items():
            total[name] = total.get(name, 0) + n
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def rest_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "Bytes per thread at rest, after an agent conversation of N node steps",
        ["node steps", "messages", "keys", "checkpoint KiB", "executor KiB", "total KiB",
         "KiB after the run TTL"],
        notes=[
            "MEMORY USAGE (SAMPLES 0) over every key with the thread's hash tag once its run "
            "ended: checkpoints (rg:) and executor keys (rgw:: run record, step hashes, "
            "event stream, event keys); a model and a tool node taking turns, ~300 and ~220 "
            "characters a message",
            "after the run TTL (RELAYGRAPH_RUN_TTL, 7 days by default) the run record, steps "
            "and streams expire: what stays is the checkpoint history",
        ],
    )  # fmt: skip
    for row in rows:
        total = row["checkpoint bytes"] + row["executor bytes"]
        table.add(row["steps"], row["messages"], row["keys"], row["checkpoint bytes"] / 1024,
                  row["executor bytes"] / 1024, total / 1024,
                  (total - row["expiring bytes"]) / 1024)  # fmt: skip
    return table


def spread_table(found: dict[str, Any], buckets: list[int]) -> Table:
    shards = found["shards"]
    mean = sum(s["threads"] for s in shards) / len(shards)
    table = Table(
        f"{found['threads']:,} threads on a 3-primary cluster: the spread over the shards",
        ["shard", "slots", "threads", "keys", "memory MiB", "threads / mean"],
        notes=[
            f"RedisSaver on the embedded 3-primary cluster, a 3-node graph per thread (4 "
            f"checkpoints each), {found['seconds']:.0f} s to write; every key of a thread "
            "carries its hash tag, so a thread's keys (checkpoints and executor keys alike) "
            "sit on the shard owning its tag's slot",
            "memory: used_memory growth of each primary",
        ],
    )
    for s in shards:
        table.add(str(s["shard"]), s["slots"], s["threads"], s["keys"],
                  s["memory bytes"] / 2**20, s["threads"] / mean)  # fmt: skip
    table.notes.append(
        f"the sweeper's indexes: {sum(buckets)} buckets (RELAYGRAPH_INDEX_BUCKETS), one slot "
        f"each, per shard {buckets}; a thread's index entries sit in the bucket of its id"
    )
    return table


def model_table(arithmetic: dict[str, Any], cost: _topology.Cost, basis: str) -> Table:
    per_shard = arithmetic["per primary nodes/s"]
    table = Table(
        "Capacity model: what 1,000 / 10,000 / 100,000 nodes/s need",
        ["nodes/s", "Redis primaries", "cmds/s per primary", "worker cores", "workers",
         "sweeper cmds/s", "broker cores", "node slots (1 s nodes)"],
        notes=[
            f"from the {_topology.LABELS[basis]} throughput run: {cost.redis_us:.0f} us of "
            f"Redis CPU, {cost.commands:.0f} commands, {cost.worker_us:.0f} us of worker "
            f"CPU and {cost.broker_us or 0:.0f} us of broker CPU per node (trivial nodes); "
            f"an idle worker: {arithmetic['idle cmds']:.0f} commands and "
            f"{arithmetic['idle us'] / 1000:.1f} ms of Redis CPU a second (sweeps, "
            "heartbeats), counted per worker in the primaries",
            f"a primary planned at {REDIS_BUSY:.0%} of its one command core: "
            f"{per_shard:,.0f} nodes/s per primary, at least 3 primaries; worker and broker "
            f"cores at {CORE_BUSY:.0%}, {PROCESSES_PER_WORKER} pool processes a worker; add "
            "a replica per primary on top",
            "worker cores cover relaygraph's own work per node; a node's own CPU adds to "
            "them, and a node that waits (a model call) needs a slot for as long as it "
            "runs: slots = nodes/s x seconds per node (Little's law)",
        ],
        plot=Plot("bar", x="nodes/s", y=["Redis primaries", "worker cores"], ylabel="count",
                  log=True),
        formats={"cmds/s per primary": ".0f", "sweeper cmds/s": ".0f"},
    )  # fmt: skip
    for row in arithmetic["rows"]:
        table.add(
            f"{row['nodes/s']:,}",
            row["Redis primaries"],
            row["Redis cmds/s per primary"],
            row["worker cores"],
            row["workers"],
            row["sweeper cmds/s"],
            row["broker cores"],
            row["node slots for 1 s nodes"],
        )
    return table


def check_table(result: _topology.Result, arithmetic: dict[str, Any], load: float) -> Table:
    """The throughput run on the cluster against what the model's inputs predict for it."""
    cost = result.best()
    ceiling = 2 * 1e6 / arithmetic["cpu us per node"]
    shards = cost.redis.shards
    table = Table(
        "Check: the model against the throughput run on the cluster, this machine",
        ["figure", "model", "measured"],
        notes=[
            "nodes/s: this machine's 2 cores divided by the CPU a node costs all the "
            "processes together (Redis, workers, broker, the submitting client), against "
            "the rate reached; the run shares the cores with other work, so the measured "
            f"rate sits under it (1-minute load average around the runs: up to {load:.1f})",
            "Redis CPU and commands per node: the model's figures come from the 50-node "
            "chains on one worker; measured: the throughput run (many threads at once, "
            "3-node runs with their submit and end)",
            "shares: each primary's part of the commands and of the Redis CPU in the "
            "throughput run; the model (even hash-tag spread) says a third each",
        ],
        formats={"model": ".3g", "measured": ".3g"},
    )
    table.add("nodes/s on 2 cores", ceiling, cost.rate)
    table.add("Redis CPU us per node", median_cost(result.hop_costs, "redis_us"), cost.redis_us)
    table.add("Redis commands per node", median_cost(result.hop_costs, "commands"), cost.commands)
    total_commands = sum(s.commands for s in shards) or 1
    total_cpu = sum(s.cpu for s in shards) or 1.0
    for index, shard in enumerate(shards):
        table.add(f"primary {index}: share of commands", 1 / len(shards),
                  shard.commands / total_commands)  # fmt: skip
        table.add(f"primary {index}: share of Redis CPU", 1 / len(shards), shard.cpu / total_cpu)
    return table


if __name__ == "__main__":
    main()
