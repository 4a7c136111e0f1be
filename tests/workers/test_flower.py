"""Flower shows the fleet: node tasks named `node <graph>.<node> thread=<id> step=<n>`, with
the run in their kwargs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from relaygraph.persistence.redis_server import free_port
from relaygraph.workers.client import Client

from .fleet import ROOT, Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _tasks(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as answer:
        return json.load(answer)


def test_flower_lists_node_tasks_with_thread_run_and_step(
    fleet: Fleet, client: Client, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "relaygraph.workers.app",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        env={**fleet.env, "FLOWER_UNAUTHENTICATED_API": "true"},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        fleet.start("w1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _tasks(port)
                break
            except OSError:
                time.sleep(0.3)
        run = client.submit("linear", {"items": [], "total": 0}, thread_id="flower-thread")
        assert run.wait(timeout=60) == "success", run.error
        deadline = time.monotonic() + 30
        nodes: list[dict[str, Any]] = []
        # The run's status is written by the last node before its task returns, so
        # Flower may still be waiting for that task's task-succeeded event.
        while time.monotonic() < deadline:
            nodes = [t for t in _tasks(port).values() if str(t.get("name", "")).startswith("node ")]
            if len(nodes) >= 4 and all(t["state"] == "SUCCESS" for t in nodes):
                break
            time.sleep(0.5)
        names = sorted(t["name"] for t in nodes)
        # the list shows names (not kwargs): thread and step are in them
        assert names == [
            f"node linear.{node} thread=flower-thread step={step}"
            for node, step in (("__start__", 0), ("a", 1), ("b", 2), ("c", 3))
        ]
        for task in nodes:
            kwargs = str(task.get("kwargs"))
            assert "flower-thread" in kwargs and run.id in kwargs and "'step'" in kwargs
            assert task["state"] == "SUCCESS"
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(20)
