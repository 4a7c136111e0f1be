"""The `relaygraph` command: a dev fleet on one machine, and the client commands against it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relaygraph.persistence.redis_server import free_port
from relaygraph.workers.client import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = "linear=tests.workers.graphs:linear,assistant=relaygraph.examples.assistant:graph"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaygraph.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dev_fleet_runs_a_graph_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    log = tmp_path / "dev.log"
    port, api_port = free_port(), free_port()
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relaygraph.cli",
            "dev",
            "--workers",
            "1",
            "--flower-port",
            str(port),
            "--graphs",
            GRAPHS,
            "--api-port",
            str(api_port),
        ],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        url = None
        while url is None and time.monotonic() < deadline:
            found = re.search(r"redis (redis://\S+)", log.read_text(errors="replace"))
            url = found.group(1) if found else None
            time.sleep(0.2)
        assert url, log.read_text()
        assert f"api http://127.0.0.1:{api_port}" in log.read_text()
        client_env = {**env, "RELAYGRAPH_REDIS_URL": url, "RELAYGRAPH_GRAPHS": GRAPHS}
        submitted = _cli(
            "submit",
            "linear",
            "--thread",
            "t",
            "--input",
            '{"items": [], "total": 0}',
            env=client_env,
        )
        assert submitted.returncode == 0, submitted.stderr
        assert "status: success" in submitted.stdout, submitted.stdout
        history = _cli("threads", "history", "linear", "t", env=client_env)
        assert history.returncode == 0 and "loop" in history.stdout and "input" in history.stdout
        state = _cli("threads", "state", "linear", "t", env=client_env)
        assert "'a', 'b', 'c'" in state.stdout
        runs = _cli("runs", "t", env=client_env)
        assert "success" in runs.stdout
        for text in ("I love Python", "what do you know?"):  # the store on dev's Redis
            said = _cli(
                "submit",
                "assistant",
                "--thread",
                "chat",
                "--input",
                json.dumps({"messages": [["user", text]]}),
                env=client_env,
            )
            assert "status: success" in said.stdout, said.stdout + said.stderr
        with Client(url, graphs=GRAPHS) as client:
            answer = client.get_state("assistant", "chat").values["messages"][-1].content
        assert answer == "I know: i love python"
        api = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the API child may still be importing
            try:
                found = httpx.post(f"{api}/assistants/search", json={}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert {a["graph_id"] for a in found.json()} == {"linear", "assistant"}
        recovered = _cli("recover", "--once", env=client_env)
        assert recovered.returncode == 0 and "requeued 0" in recovered.stdout
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
    children = subprocess.run(["pgrep", "-f", f"flower --port={port}"], capture_output=True)
    assert children.returncode == 1, "flower outlived `relaygraph dev`"


def test_submit_names_a_bad_stream_mode_before_anything_is_sent() -> None:
    from typer.testing import CliRunner

    from relaygraph.cli import app as cli

    env = {"RELAYGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens: nothing sent
    result = CliRunner().invoke(
        cli, ["submit", "linear", "--thread", "t", "--stream-mode", "values,everything"], env=env
    )
    assert result.exit_code == 2
    assert "stream_mode must be one or more of" in result.output
