"""`relaygraph worker` exits non-zero whenever Celery's worker fails, so a supervisor that
restarts only on failure (systemd ``Restart=on-failure``) brings it back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]

# Imported by every Python process started with this directory first on its path: the
# worker's pool processes then die while starting, as when they cannot be created.
DYING_POOL = """
import os
from celery import signals

def _die(**_):
    os._exit(3)

signals.worker_process_init.connect(_die, weak=False)
"""


def _worker(redis_url: str, path: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": path, "RELAYGRAPH_REDIS_URL": redis_url}
    argv = [sys.executable, "-m", "relaygraph.cli", "worker", "--concurrency", "1"]
    return subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def test_a_worker_whose_pool_cannot_start_exits_non_zero(redis_server: Any, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(DYING_POOL)
    log = tmp_path / "worker.log"
    process = _worker(redis_server.url, f"{tmp_path}{os.pathsep}{ROOT}", log)
    code = process.wait(90)
    output = log.read_text(errors="replace")
    assert "Could not start worker processes" in output, output[-3000:]
    assert code != 0, output[-3000:]


def test_a_worker_stopped_by_sigterm_exits_zero(redis_server: Any, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    process = _worker(redis_server.url, str(ROOT), log)
    try:
        deadline = time.monotonic() + 90
        while b"ready." not in log.read_bytes():
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)  # a warm shutdown: not a failure
        assert process.wait(60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
