"""Workers serve Prometheus metrics: runs by status, node durations, steps, queue depth."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from relaygraph.persistence.redis_server import free_port
from relaygraph.workers.client import Client

from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_worker_exposes_its_fleet_metrics(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    port = free_port()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    fleet = Fleet(
        redis_server.url,
        tmp_path,
        RELAYGRAPH_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        fleet.start("w1")
        run = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
        assert run.wait(timeout=60) == "success", run.error
        deadline, text = time.monotonic() + 20, ""
        wanted = ('relaygraph_runs_total{status="success"}', "relaygraph_queue_depth{")
        while time.monotonic() < deadline and not all(w in text for w in wanted):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                text = page.read().decode()
            time.sleep(0.3)
        assert 'relaygraph_runs_total{status="success"} 1.0' in text
        for node in ("a", "b", "c"):
            assert (
                f'relaygraph_node_duration_seconds_count{{graph="linear",node="{node}",'
                'status="done"} 1.0'
            ) in text
        assert 'relaygraph_steps_committed_total{graph="linear"} 4.0' in text
        assert 'relaygraph_queue_depth{queue="relaygraph"} 0.0' in text
    finally:
        fleet.stop()


def test_structured_logs_carry_the_context() -> None:
    import io
    import json
    import logging

    from relaygraph.workers.logs import JsonFormatter, log_context

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("relaygraph.test-logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    with log_context(thread_id="t", run_id="r"), log_context(node="n", step=3):
        log.info("hello")
    log.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["thread_id"], first["run_id"], first["node"], first["step"]) == ("t", "r", "n", 3)
    assert "thread_id" not in second
