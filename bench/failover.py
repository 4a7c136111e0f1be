"""What ``RELAYGRAPH_COMMIT_REPLICAS`` costs a hop and what it saves in a failover.

    python bench/failover.py [--rounds N] [--failovers K]

1. hop latency on a 3-primary + 3-replica Redis Cluster (a single Redis as the broker):
   one worker with ``RELAYGRAPH_COMMIT_REPLICAS=0`` and one with ``=1``, each on its own
   queue, runs of a 50-node linear graph alternated between them; seconds per task
   (submit to the run's end, over 51 tasks), medians over ``--rounds`` runs each;
2. failover: ``--failovers`` times per setting, a fresh cluster, loop threads running, the
   primary of some of them SIGKILLed and its replica promoted (``tests/workers/failover``):
   checkpoints the primary held at the kill that the promoted replica lacks (lost
   commits), the failover time, and whether every run still ended with the local
   executor's values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._fixtures import GRAPHS  # noqa: E402
from bench._results import Table, print_table, save  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedCluster, EmbeddedRedis  # noqa: E402
from relaygraph.workers.client import Client  # noqa: E402
from relaygraph.workers.keys import ThreadKeys  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402
from relaygraph.workers.settings import WorkerSettings  # noqa: E402
from tests.workers.failover import run_failover  # noqa: E402

SETTINGS = (0, 1)
NODE_TASKS = 51  # the start task and 50 node tasks


def _per_task(client: Client, thread: str) -> float:
    started = time.time()
    run = client.submit("chain50", {"n": 0}, thread_id=thread, config={"recursion_limit": 100})
    assert run.wait(timeout=300, poll=0.02) == "success", run.error
    finished = int(client.redis.hget(ThreadKeys(thread).run(run.id), "updated")) / 1000
    return (finished - started) / NODE_TASKS


def hop_latency(logs: Path, rounds: int) -> dict[int, list[float]]:
    """Seconds per task with each setting, alternated (the first round untimed)."""
    samples: dict[int, list[float]] = {n: [] for n in SETTINGS}
    with (
        EmbeddedCluster(3, replicas=1, node_timeout=1000) as cluster,
        EmbeddedRedis(modules=False) as broker,
    ):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELAYGRAPH_REDIS_URL": cluster.url,
            "RELAYGRAPH_BROKER_URL": broker.url,
            "RELAYGRAPH_GRAPHS": GRAPHS,
        }
        clients = {}
        with LocalFleet(env, logs, cwd=ROOT) as fleet:
            for n in SETTINGS:
                queue = f"replicas-{n}"
                fleet.start_worker(
                    f"r{n}",
                    queues=queue,
                    env={"RELAYGRAPH_COMMIT_REPLICAS": str(n), "RELAYGRAPH_DEFAULT_QUEUE": queue},
                )
                clients[n] = Client(
                    settings=WorkerSettings(
                        redis_url=cluster.url,
                        broker_url=broker.url,
                        graphs=GRAPHS,
                        default_queue=queue,
                    )
                )
            for i in range(rounds + 1):
                for n in SETTINGS:
                    value = _per_task(clients[n], f"hop-{n}-{i}")
                    if i:
                        samples[n].append(value)
            for client in clients.values():
                client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--lag", type=float, default=0.3, help="seconds the replica lags")
    args = parser.parse_args()
    command = "python bench/failover.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        hops = hop_latency(logs, args.rounds)
        latency = Table(
            "Hop latency on a 3+3 Redis Cluster, by RELAYGRAPH_COMMIT_REPLICAS (ms per task)",
            ["COMMIT_REPLICAS", "median", "p90", "vs 0"],
            notes=[
                f"50-node linear graph, one worker process each, medians of {args.rounds} "
                "runs alternated between the two settings in one process."
            ],
        )
        base = statistics.median(hops[0])
        for n in SETTINGS:
            values = sorted(hops[n])
            p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
            median = statistics.median(values)
            latency.add(str(n), median * 1000, p90 * 1000, f"{median / base:.2f}x")
        print_table(latency)
        loss = Table(
            "A primary SIGKILLed under running threads, by RELAYGRAPH_COMMIT_REPLICAS",
            [
                "COMMIT_REPLICAS",
                "replica",
                "commits on it",
                "lost",
                "acked+lost",
                "runs ok",
                "failover s",
                "run s",
            ],
            notes=[
                "9 loop threads (20 hops each), one worker of 3 processes, a single Redis "
                "as the broker; sums over the failovers of each row. 'commits on it': "
                "checkpoints the killed primary held at the kill (read just before it); "
                "'lost': of them, missing on the promoted replica; 'acked+lost': nodes that "
                "ran from a commit the final history lacks (the commit had returned to its "
                "worker, which scheduled them); 'runs ok': runs that ended 'success' with "
                f"the local executor's values; 'lagging': {args.lag} s before the kill the "
                "replica was stopped (SIGSTOP) and its link dropped by the primary, then "
                "resumed after the kill. Times are medians.",
            ],
        )
        for n in SETTINGS:
            for lag in (0.0, args.lag):
                results = []
                for k in range(args.failovers):
                    folder = logs / f"failover-{n}-{lag}-{k}"
                    folder.mkdir()
                    result = run_failover(folder, commit_replicas=n, lag=lag, threads=9)
                    print(f"replicas={n} lag={lag} #{k + 1}: {result}", flush=True)
                    results.append(result)
                runs = sum(r.runs for r in results)
                ok = runs - sum(len(r.wrong) for r in results)
                loss.add(
                    str(n),
                    "lagging" if lag else "in sync",
                    sum(r.committed for r in results),
                    sum(len(r.lost) for r in results),
                    sum(len(r.orphans) for r in results),
                    f"{ok}/{runs}",
                    statistics.median(r.failover_s for r in results),
                    statistics.median(r.seconds for r in results),
                )
        print_table(loss)
    print(f"\nsaved {save('failover', [latency, loss], command)}")


if __name__ == "__main__":
    main()
