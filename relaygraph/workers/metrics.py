"""Prometheus metrics of the workers.

Counters and histograms live in this process; with Celery's prefork pool set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory shared by a worker's processes) so the pool
children's numbers are merged, and ``RELAYGRAPH_METRICS_PORT`` to serve them from the
worker's main process (see docs/operations.md for queries).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = [
    "count_duplicate",
    "count_lease_expiry",
    "count_recovery",
    "count_replica_shortfall",
    "count_run",
    "count_step_committed",
    "observe_node",
    "set_queue_depth",
    "start_metrics_server",
]

RUNS = Counter("relaygraph_runs_total", "Runs that ended, by status", ["status"])
NODE_SECONDS = Histogram(
    "relaygraph_node_duration_seconds",
    "Time a node took on a worker",
    ["graph", "node", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STEPS = Counter("relaygraph_steps_committed_total", "Supersteps committed", ["graph"])
LEASE_EXPIRIES = Counter(
    "relaygraph_lease_expiries_total", "Task leases that expired (their worker died)"
)
RECOVERIES = Counter(
    "relaygraph_recoveries_total", "Work the sweeper handed to another worker", ["kind"]
)
DUPLICATES = Counter(
    "relaygraph_duplicate_deliveries_total",
    "Node messages absorbed as duplicates (already finished, running elsewhere, or stale)",
    ["reason"],
)
REPLICA_SHORTFALLS = Counter(
    "relaygraph_commit_replica_shortfalls_total",
    "Commits fewer replicas acknowledged than RELAYGRAPH_COMMIT_REPLICAS asked in time",
)
QUEUE_DEPTH = Gauge(
    "relaygraph_queue_depth", "Messages waiting in a queue", ["queue"], multiprocess_mode="max"
)


def observe_node(graph: str, node: str, seconds: float, status: str) -> None:
    """A node ran for ``seconds`` and ended ``status`` (done, error, interrupted, retry)."""
    NODE_SECONDS.labels(graph, node, status).observe(seconds)


def count_run(status: str) -> None:
    """A run ended with ``status``."""
    RUNS.labels(status).inc()


def count_step_committed(graph: str) -> None:
    """A superstep of ``graph`` was committed."""
    STEPS.labels(graph).inc()


def count_lease_expiry() -> None:
    """A running task's lease expired."""
    LEASE_EXPIRIES.inc()


def count_recovery(kind: str) -> None:
    """The sweeper recovered something: ``task``, ``barrier`` or ``run``."""
    RECOVERIES.labels(kind).inc()


def count_duplicate(reason: str) -> None:
    """A node message was absorbed without running (``finished``, ``busy``, ``stale``)."""
    DUPLICATES.labels(reason).inc()


def count_replica_shortfall() -> None:
    """A commit's WAIT returned fewer replicas than ``RELAYGRAPH_COMMIT_REPLICAS``."""
    REPLICA_SHORTFALLS.inc()


def set_queue_depth(queue: str, depth: int) -> None:
    """How many messages wait in ``queue``."""
    QUEUE_DEPTH.labels(queue).set(depth)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` on ``port`` (merging prefork children with PROMETHEUS_MULTIPROC_DIR)."""
    registry = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return (
        start_http_server(port, addr=addr, registry=registry)
        if registry
        else start_http_server(port, addr=addr)
    )
