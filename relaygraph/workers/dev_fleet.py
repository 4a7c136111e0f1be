"""``relaygraph dev``: an embedded Redis with search, N workers, Flower and the HTTP API on
one machine.

It starts like a tool people trust: a taken Flower or API port is refused before anything
starts, and so is an address off loopback without Flower's login and the API's key;
"ready" is printed once every worker answers a ping and Flower and the API accept
connections, with the ``export`` lines for another shell; the other commands find the fleet
through a state file (:mod:`relaygraph.workers.dev_state`). It stops the same way on Ctrl-C,
SIGINT, SIGTERM or SIGHUP, whatever the signal dispositions it inherited: the API, then the
workers (a warm shutdown, so their sweepers never see Redis gone), then Flower, then Redis;
each child runs in a process group of its own, and whatever a group still holds at the end
is killed, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from relaygraph.persistence.errors import RelaygraphError
from relaygraph.persistence.redis_server import die_with_parent

__all__ = ["DevFleet", "DevFleetError"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DevFleetError(RelaygraphError, RuntimeError):
    """The dev fleet cannot start (a taken port, a process that died) or stopped on its own."""


class _Stop(BaseException):
    """A stop signal arrived (raised in the main thread by the signal handler)."""


class DevFleet:
    """One ``relaygraph dev`` run: :meth:`run` blocks until a stop signal, then cleans up."""

    def __init__(
        self,
        *,
        workers: int = 2,
        flower_port: int = 5555,
        flower_address: str = "127.0.0.1",
        api_port: int = 8123,
        graphs: str = "",
        store_embed: str = "",
        store_fields: str = "$",
        say: Callable[[str], None] = print,
        worker_grace: float = 10.0,
        ready_timeout: float = 600.0,
    ) -> None:
        self.workers = workers
        self.flower_port, self.flower_address = flower_port, flower_address
        self.api_port = api_port
        self.graphs = graphs or os.environ.get("RELAYGRAPH_GRAPHS", "")
        self.store_embed, self.store_fields = store_embed, store_fields
        self.say = say
        self.worker_grace = worker_grace
        self.ready_timeout = ready_timeout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False
        self._hurry = False

    # -- the whole life ------------------------------------------------------------------

    def run(self) -> None:
        """Start, print "ready", serve until a stop signal, stop everything in order."""
        from relaygraph.persistence.redis_server import EmbeddedRedis
        from relaygraph.workers.dev_state import DevState, clear_state, write_state

        if self.workers < 1:
            raise DevFleetError(f"--workers must be at least 1, got {self.workers}")
        if not self._loopback() and not os.environ.get("FLOWER_BASIC_AUTH"):
            raise DevFleetError(
                f"Flower on {self.flower_address} would be open to the network without a "
                "login: set FLOWER_BASIC_AUTH=user:password, or keep --flower-address 127.0.0.1"
            )
        if not self._loopback() and self.api_port and not os.environ.get("RELAYGRAPH_API_KEY"):
            raise DevFleetError(
                f"the HTTP API on {self.flower_address} would be open to the network without "
                "a key: set RELAYGRAPH_API_KEY, or give --api-port 0 (no API)"
            )
        self._check_port("Flower", self.flower_port, "--flower-port")
        if self.api_port:
            self._check_port("The HTTP API", self.api_port, "--api-port (0: no API)")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        server = EmbeddedRedis(new_session=True)
        try:
            server.start()
            env = self._env(server.url)
            for i in range(self.workers):
                self._start(f"worker{i}", self._worker_argv(i), env)
            flower_env = dict(env)
            if self._loopback():
                # Nobody else can reach it: let the documented /api/... work without login.
                flower_env["FLOWER_UNAUTHENTICATED_API"] = "true"
            self._start("flower", self._flower_argv(), flower_env)
            if self.api_port:
                self._start("api", self._api_argv(), env)
            api = f" | api {self._url(self.api_port)}" if self.api_port else ""
            self.say(
                f"redis {server.url} | {self.workers} workers | "
                f"flower {self._url(self.flower_port)}{api}"
            )
            self._wait_ready(server.url)
            shared = {
                k: v
                for k, v in env.items()
                if k in ("RELAYGRAPH_REDIS_URL", "RELAYGRAPH_GRAPHS") and v
            }
            try:
                write_state(DevState(os.getpid(), shared, self._flower_url()))
            except OSError as exc:  # the exports below still say what to set
                self.say(f"(no state file for the other commands: {exc})")
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in shared.items())
            self.say(f"export {exports}")
            self.say("ready: the fleet takes work; Ctrl-C stops it")
            self._serve()
        except _Stop:
            pass
        finally:
            self._stopping = True
            try:
                self._shutdown(server)
            finally:
                clear_state(os.getpid())
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    # -- starting ----------------------------------------------------------------------

    def _check_port(self, what: str, port: int, option: str) -> None:
        """Refuse a taken port before starting anything."""
        family = socket.AF_INET6 if ":" in self.flower_address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.flower_address, port))
            except OSError as exc:
                raise DevFleetError(
                    f"{what}'s port {self.flower_address}:{port} is not free "
                    f"({exc.strerror}); pick another with {option}"
                ) from exc

    def _loopback(self) -> bool:
        return self.flower_address in ("127.0.0.1", "localhost", "::1")

    def _flower_url(self) -> str:
        return self._url(self.flower_port)

    def _url(self, port: int) -> str:
        host = f"[{self.flower_address}]" if ":" in self.flower_address else self.flower_address
        return f"http://{host}:{port}"

    def _env(self, url: str) -> dict[str, str]:
        env = {
            **os.environ,
            "RELAYGRAPH_REDIS_URL": url,
            "RELAYGRAPH_STORE_URL": url,
            "RELAYGRAPH_STORE_FIELDS": self.store_fields,
        }
        if self.store_embed:
            env["RELAYGRAPH_STORE_EMBED"] = self.store_embed
        if self.graphs:
            env["RELAYGRAPH_GRAPHS"] = self.graphs
        return env

    def _worker_argv(self, index: int) -> list[str]:
        return [sys.executable, "-m", "relaygraph.cli", "worker", "--concurrency", "1",
                "--hostname", f"worker{index}@%h"]  # fmt: skip

    def _flower_argv(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "relaygraph.workers.app", "flower",
                f"--port={self.flower_port}", f"--address={self.flower_address}"]  # fmt: skip

    def _api_argv(self) -> list[str]:
        return [sys.executable, "-m", "relaygraph.cli", "serve", "--host", self.flower_address,
                "--port", str(self.api_port)]  # fmt: skip

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        # A group of its own: the terminal's Ctrl-C reaches only this process, which stops
        # the children in order, and a killpg takes a worker's pool children too.
        # If dev itself dies without stopping them (SIGKILL, OOM), Linux signals each child:
        # workers and the API stop as on SIGTERM; Flower, which has nothing to save, is killed.
        on_parent_death = signal.SIGKILL if name == "flower" else signal.SIGTERM
        self.children[name] = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, on_parent_death),
        )

    def _wait_ready(self, url: str) -> None:
        """Until every worker answers a ping, and Flower and the API accept connections."""
        from relaygraph.workers.app import create_app
        from relaygraph.workers.settings import WorkerSettings

        celery = create_app(WorkerSettings(redis_url=url, broker_url=None))
        deadline = time.monotonic() + self.ready_timeout
        answered: set[str] = set()
        flower_up = False
        api_up = not self.api_port
        while time.monotonic() < deadline:
            self._check_children("during startup")
            if len(answered) < self.workers:
                for reply in celery.control.ping(timeout=0.5) or []:
                    answered.update(reply)
            if not flower_up:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((self.flower_address, self.flower_port), timeout=0.5),
                ):
                    flower_up = True
            if not api_up:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((self.flower_address, self.api_port), timeout=0.5),
                ):
                    api_up = True
            if len(answered) >= self.workers and flower_up and api_up:
                celery.close()
                return
            time.sleep(0.2)
        raise DevFleetError(
            f"the fleet was not ready after {self.ready_timeout:.0f}s "
            f"({len(answered)}/{self.workers} workers answered, flower "
            f"{'up' if flower_up else 'down'}, api {'up' if api_up else 'down'})"
        )

    def _serve(self) -> None:
        while True:
            self._check_children("")
            time.sleep(0.5)

    def _check_children(self, when: str) -> None:
        for name, child in self.children.items():
            status = child.poll()
            if status is not None:
                where = f" {when}" if when else ""
                raise DevFleetError(f"{name} exited{where} with status {status}; stopping")

    # -- stopping ----------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopping:
            self._hurry = True  # a second Ctrl-C: do not wait for warm shutdowns
            return
        self._stopping = True
        raise _Stop(signum)

    def _shutdown(self, server: Any) -> None:
        """The API, workers (warm shutdown), then Flower, then Redis; then nothing left in a
        group."""
        workers = [c for n, c in self.children.items() if n not in ("flower", "api")]
        flower = [c for n, c in self.children.items() if n == "flower"]
        api = [c for n, c in self.children.items() if n == "api"]
        self._stop_group(api, 5.0)
        self._stop_group(workers, self.worker_grace)
        self._stop_group(flower, 5.0)
        server.stop()
        for child in self.children.values():  # a pool child its worker left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)

    def _stop_group(self, children: list[subprocess.Popen[bytes]], grace: float) -> None:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)  # the leader: Celery's warm shutdown
        deadline = time.monotonic() + grace
        while any(c.poll() is None for c in children):
            if self._hurry or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
