"""Worker and Flower processes on this machine: for the demo, the tests and the benchmarks.

Each process gets its own process group, so :meth:`LocalFleet.kill` takes a whole worker
(the Celery main process and its pool children) down with SIGKILL, as a crashed machine
would; :meth:`LocalFleet.stop` stops whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["LocalFleet"]


class LocalFleet:
    """Subprocesses sharing one environment, their logs in ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path, cwd: Path | None = None) -> None:
        self.env, self.logs, self.cwd = env, logs, cwd
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as process ``name`` (its output in ``logs/<name>.log``); ``env``
        adds to the fleet's environment for this process."""
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                argv, env={**self.env, **(env or {})}, cwd=self.cwd, stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def start_worker(
        self,
        name: str,
        *,
        concurrency: int = 1,
        queues: str = "",
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``relaygraph worker`` as ``name``; by default wait until it consumes.
        ``env`` adds settings (``RELAYGRAPH_*``) for this worker."""
        argv = [sys.executable, "-m", "relaygraph.cli", "worker", "--concurrency",
                str(concurrency), "--hostname", f"{name}@%h", "--loglevel", "info"]  # fmt: skip
        if queues:
            argv += ["--queues", queues]
        process = self.start(name, argv, env=env)
        if wait:
            self.wait_for(name, b"ready.")
        return process

    def start_flower(self, port: int, name: str = "flower") -> subprocess.Popen[bytes]:
        """Start Flower for the fleet's broker on ``port``."""
        return self.start(
            name,
            [sys.executable, "-m", "celery", "-A", "relaygraph.workers.app", "flower",
             f"--port={port}", "--address=127.0.0.1"],
        )  # fmt: skip

    def log(self, name: str) -> str:
        """What process ``name`` printed so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name: str, text: bytes, timeout: float = 120) -> None:
        """Wait until process ``name`` printed ``text``; a clear error when it died."""
        deadline = time.monotonic() + timeout
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            if text in path.read_bytes():
                return
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start; its log:\n{path.read_text()[-3000:]}")

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group of ``name``."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def holder_of(self, pid: int) -> str | None:
        """The name of the fleet process whose group ``pid`` (a pool child) belongs to."""
        for name, process in self.processes.items():
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == process.pid:
                    return name
        return None

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM everything (Celery's warm shutdown), SIGKILL what does not exit in time."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
