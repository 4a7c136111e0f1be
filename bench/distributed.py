"""The distributed executor against bare Celery on the same broker, in one run.

    python bench/distributed.py [--quick]

1. hop latency: a 50-node linear graph on one worker process, per node, next to a bare
   Celery task that enqueues itself 50 times (the floor for "one task per node");
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
from relaygraph.persistence.base import make_config  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedRedis  # noqa: E402
from relaygraph.workers.client import Client  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402
from relaygraph.workers.settings import WorkerSettings  # noqa: E402


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

    def bare(self, name: str) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench._fixtures:bare", "worker",
                "--queues", "bare", "--concurrency", "1", "--hostname", f"{name}@%h",
                "--loglevel", "info"]  # fmt: skip
        self.start(name, argv)
        self.wait_for(name, b"ready.")


def hop_latency(url: str, logs: Path, repeats: int) -> tuple[list[float], list[float]]:
    from bench._fixtures import bare, hop

    workers = Workers(url, logs)
    ours, theirs = [], []
    try:
        workers.relaygraph("hop")
        workers.bare("bare")
        client = Client(settings=WorkerSettings(redis_url=url, graphs=GRAPHS))
        bare.conf.broker_url = url
        for i in range(repeats):
            started = time.perf_counter()
            run = client.submit(
                "chain50", {"n": 0}, thread_id=f"hop-{i}", config={"recursion_limit": 100}
            )
            assert run.wait(timeout=300) == "success", run.error
            ours.append((time.perf_counter() - started) / 52)  # input, start, 50 nodes
            key = f"bench:bare:{uuid.uuid4()}"
            started_wall = time.time()
            hop.apply_async(args=[49, key], queue="bare")
            while not client.redis.get(key):
                time.sleep(0.002)
            theirs.append((float(client.redis.get(key)) - started_wall) / 50)
    finally:
        workers.stop()
    return ours, theirs


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
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(modules=False) as server:
        logs = Path(tmp)
        ours, theirs = hop_latency(server.url, logs, repeats)
        rates = {n: throughput(server.url, logs, n, 20 if args.quick else 60) for n in (1, 2, 4)}
        recovered = recovery(server.url, logs, 2 if args.quick else 5)
        window = 30.0 if args.quick else 60.0
        redelivered = celery_redelivery(server.url, logs, window)
    hop_ours, hop_bare = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"{'measure (median)':<44}{'relaygraph':>12}{'baseline':>12}{'ratio':>8}")
    print(
        f"{'hop latency per node (ms), vs bare Celery':<44}{hop_ours:>12.2f}{hop_bare:>12.2f}"
        f"{hop_ours / hop_bare:>8.2f}"
    )
    for n, rate in rates.items():
        print(
            f"{f'throughput, {n} worker process(es) (nodes/s)':<44}{rate:>12.1f}"
            f"{rates[1]:>12.1f}{rate / rates[1]:>8.2f}"
        )
    rec = statistics.median(recovered)
    celery_text = f"{redelivered:.1f}" if redelivered is not None else f">{window:.0f}"
    print(
        f"{'SIGKILL -> next committed step (s), vs Celery':<44}{rec:>12.1f}{celery_text:>12}{'':>8}"
    )
    print(
        "(throughput baseline: 1 process; Celery redelivers a killed worker's task only "
        "after its visibility timeout, 3600 s by default)"
    )


if __name__ == "__main__":
    main()
