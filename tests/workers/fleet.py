"""Real worker processes for the distributed tests: start, kill (SIGKILL), stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .graphs import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """Worker subprocesses serving one private Redis, each a whole ``relaygraph worker``."""

    def __init__(self, redis_url: str, tmp: Path, **env: str) -> None:
        self.redis_url = redis_url
        self.tmp = tmp
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELAYGRAPH_REDIS_URL": redis_url,
            "RELAYGRAPH_GRAPHS": REGISTRY,
            "RELAYGRAPH_LEASE_TTL": "2",
            "RELAYGRAPH_SWEEP_INTERVAL": "0.5",
            "RELAYGRAPH_QUEUED_GRACE": "5",
            **env,
        }
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *, queues: str = "relaygraph", concurrency: int = 1) -> Any:
        """Start worker ``name`` and wait until it is consuming."""
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "relaygraph.cli",
                "worker",
                "--concurrency",
                str(concurrency),
                "--queues",
                queues,
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "info",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[name] = process
        self._wait_ready(name)
        return process

    def _wait_ready(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        path = self.tmp / f"{name}.log"
        while time.monotonic() < deadline:
            if b"ready." in path.read_bytes():
                return
            if self.workers[name].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not start:\n{path.read_text()[-3000:]}")

    def kill(self, name: str) -> None:
        """SIGKILL the whole worker: the main process and its pool children."""
        process = self.workers.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.workers.clear()
