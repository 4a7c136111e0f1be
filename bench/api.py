"""The HTTP API against the Python Client, on the same fleet, side by side.

    python bench/api.py [--quick]

1. throughput: one-node runs per second, each submitted and waited for (``runs.wait``
   of langgraph-sdk through ``relaygraph serve`` vs ``Client.submit`` + following the
   run's events to its end), with 1 and 4 callers at once;
2. first-event latency: from the request to the first streamed event of the run (its
   input's ``values``), via the SDK's ``runs.stream`` vs ``Client.submit`` + ``Run.stream``.

Both paths drive the same worker process on a private embedded Redis; medians over
repeats (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import Table, print_table, save  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedRedis  # noqa: E402
from relaygraph.workers.client import Client  # noqa: E402
from relaygraph.workers.local_fleet import LocalFleet  # noqa: E402
from relaygraph.workers.settings import WorkerSettings  # noqa: E402

GRAPHS = "one=bench._api_graphs:one"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ok(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer /ok")


class Paths:
    """The two ways to run the one-node graph: the SDK over HTTP, and the Python Client."""

    def __init__(self, url: str, client: Client) -> None:
        from langgraph_sdk import get_sync_client

        self.sdk = get_sync_client(url=url, api_key=None, timeout=60)
        self.client = client

    def api_wait(self) -> None:
        result = self.sdk.runs.wait(None, "one", input={"text": "hi"})
        assert result == {"text": "hi!"}, result

    def client_wait(self) -> None:
        run = self.client.submit("one", {"text": "hi"}, thread_id=str(uuid.uuid4()))
        for event in run.stream(timeout=60):
            if event.mode == "status":
                assert event.data["status"] == "success", event.data

    def api_first_event(self) -> float:
        start = time.perf_counter()
        parts = self.sdk.runs.stream(None, "one", input={"text": "hi"}, stream_mode="values")
        first = None
        for part in parts:
            if first is None and part.event == "values":
                first = time.perf_counter() - start
        assert first is not None
        return first

    def client_first_event(self) -> float:
        start = time.perf_counter()
        run = self.client.submit(
            "one", {"text": "hi"}, thread_id=str(uuid.uuid4()), stream_mode="values"
        )
        first = None
        for event in run.stream(timeout=60):
            if first is None and event.mode == "values":
                first = time.perf_counter() - start
        assert first is not None
        return first


def throughput(call: Any, callers: int, runs: int) -> float:
    """Runs per second of ``call`` with ``callers`` threads doing ``runs`` in all."""
    start = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(lambda _: call(), range(runs)))
    return runs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and repeats")
    args = parser.parse_args()
    runs, repeats, latencies = (20, 3, 20) if args.quick else (60, 5, 50)
    with EmbeddedRedis(modules=False) as redis, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELAYGRAPH_REDIS_URL": redis.url,
            "RELAYGRAPH_GRAPHS": GRAPHS,
            "RELAYGRAPH_TASK_EVENTS": "false",
        }
        env.pop("RELAYGRAPH_API_KEY", None)
        with LocalFleet(env, Path(tmp), cwd=ROOT) as fleet:
            fleet.start_worker("worker", concurrency=2)
            port = _free_port()
            argv = [sys.executable, "-m", "relaygraph.cli", "serve", "--port", str(port),
                    "--loglevel", "warning"]  # fmt: skip
            fleet.start("api", argv)
            url = f"http://127.0.0.1:{port}"
            _wait_ok(url)
            settings = WorkerSettings(redis_url=redis.url, graphs=GRAPHS, task_events=False)
            with Client(settings=settings) as client:
                paths = Paths(url, client)
                for _ in range(5):  # warm both paths (imports, connections, scripts)
                    paths.api_wait()
                    paths.client_wait()
                rates = Table(
                    "One-node runs per second (submit + wait), same fleet",
                    ["callers", "HTTP API (langgraph-sdk)", "Python Client", "API / Client"],
                    notes=[f"medians of {repeats} rounds of {runs} runs; 1 worker, 2 processes"],
                )
                for callers in (1, 4):
                    api = [throughput(paths.api_wait, callers, runs) for _ in range(repeats)]
                    py = [throughput(paths.client_wait, callers, runs) for _ in range(repeats)]
                    a, p = statistics.median(api), statistics.median(py)
                    rates.add(callers, a, p, a / p)
                first = Table(
                    "First streamed event (ms), one-node run",
                    ["path", "median", "p90", "vs Client"],
                    notes=[f"{latencies} runs each; from the request to the input's values"],
                )
                api_ms = sorted(paths.api_first_event() * 1000 for _ in range(latencies))
                py_ms = sorted(paths.client_first_event() * 1000 for _ in range(latencies))
                p90 = int(len(api_ms) * 0.9)
                first.add("HTTP API (runs.stream)", statistics.median(api_ms), api_ms[p90],
                          statistics.median(api_ms) / statistics.median(py_ms))  # fmt: skip
                first.add("Python Client (submit + stream)", statistics.median(py_ms),
                          py_ms[p90], 1.0)  # fmt: skip
    for table in (rates, first):
        print_table(table)
    command = "python bench/api.py" + (" --quick" if args.quick else "")
    print(f"\nsaved {save('api', [rates, first], command)}")


if __name__ == "__main__":
    main()
