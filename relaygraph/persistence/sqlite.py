"""``SqliteSaver``: checkpoints in a SQLite file (or ``:memory:``), sync and async on one object.

    memory = SqliteSaver.from_conn_string("checkpoints.db")      # used directly
    with SqliteSaver.from_conn_string("checkpoints.db") as memory: ...
    async with AsyncSqliteSaver.from_conn_string("checkpoints.db") as memory: ...

A file database runs in WAL mode: readers never block the writer, and every write is one
``BEGIN IMMEDIATE`` transaction that waits up to ``busy_timeout`` for the write lock, so
several threads and several processes can share one file. Sync calls use a small pool of
stdlib ``sqlite3`` connections, async calls a pool of ``aiosqlite`` connections.
``:memory:`` (or a ``sqlite3.Connection`` you pass in) is a single connection behind a lock,
which async calls reach through a worker thread; an ``aiosqlite.Connection`` you pass in
serves async calls natively and sync calls from other threads.

The tables are created on first use (``auto_setup=True``, as LangGraph's SqliteSaver does);
with ``auto_setup=False`` a database without them raises :class:`SetupRequiredError` until
:meth:`~SqlSaver.setup` is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from relaygraph.persistence.serde import Serializer
from relaygraph.persistence.sql import (
    SQLITE,
    Op,
    Query,
    SetupRequiredError,
    SqlSaver,
    run_async,
    run_sync,
)

try:  # optional: only async calls on a file need it
    import aiosqlite
except ImportError:  # pragma: no cover - depends on the environment
    aiosqlite = None  # type: ignore[assignment]

__all__ = ["AsyncSqliteSaver", "SetupRequiredError", "SqliteSaver"]

T = TypeVar("T")

_MEMORY = (":memory:", "")


def _fetch(cursor: Any, query: Query) -> Any:
    if query.fetch == "one":
        return cursor.fetchone()
    if query.fetch == "all":
        return cursor.fetchall()
    if query.fetch == "rowcount":
        return cursor.rowcount
    return None


def _execute_on(conn: sqlite3.Connection, query: Query) -> Any:
    if query.fetch == "snapshot":
        return None  # every operation already runs in one transaction
    if query.many:
        cursor = conn.executemany(query.sql, query.params or [])
    else:
        cursor = conn.execute(query.sql, query.params or ())
    return _fetch(cursor, query)


async def _aexecute_on(conn: Any, query: Query) -> Any:
    if query.fetch == "snapshot":
        return None
    if query.many:
        cursor = await conn.executemany(query.sql, query.params or [])
    else:
        cursor = await conn.execute(query.sql, query.params or ())
    try:
        if query.fetch == "one":
            return await cursor.fetchone()
        if query.fetch == "all":
            return await cursor.fetchall()
        if query.fetch == "rowcount":
            return cursor.rowcount
        return None
    finally:
        await cursor.close()


def _is_missing_table(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "no such table: relaygraph_" in str(exc)


def _pragmas(conn: sqlite3.Connection, wal: bool) -> None:
    if not wal:
        return
    # Switching a new file to WAL needs a moment of exclusive access; retry briefly when
    # another process is doing the same.
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.05)


class SqliteSaver(SqlSaver):
    """A checkpoint saver on SQLite; see the module docstring for connections and setup.

    Args:
        conn: a file path, ``":memory:"``, a ``file:`` URI, a ``sqlite3.Connection`` or an
            ``aiosqlite.Connection`` (connections passed in are never closed by the saver).
        busy_timeout: seconds a write waits for another writer's lock.
        pool_size: idle connections kept per kind (sync, async) for a file.
        ttl, refresh_on_read, cache_size, auto_setup, serde: see :class:`SqlSaver`.
    """

    dialect = SQLITE

    def __init__(
        self,
        conn: str | os.PathLike[str] | sqlite3.Connection | Any = ":memory:",
        *,
        serde: Serializer | None = None,
        ttl: float | None = None,
        refresh_on_read: bool = True,
        cache_size: int = 256,
        auto_setup: bool = True,
        busy_timeout: float = 30.0,
        pool_size: int = 4,
    ) -> None:
        super().__init__(
            serde=serde,
            ttl=ttl,
            refresh_on_read=refresh_on_read,
            auto_setup=auto_setup,
            cache_size=cache_size,
        )
        self.busy_timeout = busy_timeout
        self.pool_size = max(1, pool_size)
        self._lock = threading.RLock()
        self._closed = False
        self._path: str | None = None
        self._shared: sqlite3.Connection | None = None  # one connection behind self._lock
        self._owns_shared = False
        self._aconn: Any = None  # an aiosqlite connection given by the caller
        self._aconn_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._aconn_loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[sqlite3.Connection] = []
        self._aidle: list[Any] = []
        if isinstance(conn, sqlite3.Connection):
            self._shared = conn
        elif aiosqlite is not None and isinstance(conn, aiosqlite.Connection):
            self._aconn = conn
            with contextlib.suppress(RuntimeError):
                self._aconn_loop = asyncio.get_running_loop()
        elif isinstance(conn, (str, os.PathLike)):
            path = os.fspath(conn)
            if path in _MEMORY:
                self._shared = sqlite3.connect(
                    ":memory:", isolation_level=None, check_same_thread=False
                )
                self._owns_shared = True
            else:
                self._path = path
        else:
            raise TypeError(
                "SqliteSaver needs a path, ':memory:', a sqlite3.Connection or an "
                f"aiosqlite.Connection, not {type(conn).__name__}"
            )

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> SqliteSaver:
        """A saver that owns its connections to ``conn_string`` (a path or ``:memory:``).

        Use it directly, or as a sync or async context manager that closes it at the end.
        """
        return cls(conn_string, **kwargs)

    @property
    def path(self) -> str | None:
        """The database file (None for ``:memory:`` and connections passed in)."""
        return self._path

    # -- connections -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this SqliteSaver is closed")

    def _connect(self) -> sqlite3.Connection:
        assert self._path is not None
        conn = sqlite3.connect(
            self._path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=self._path.startswith("file:"),
        )
        _pragmas(conn, wal=True)
        return conn

    async def _aconnect(self) -> Any:
        if aiosqlite is None:  # pragma: no cover - depends on the environment
            raise ImportError("async SqliteSaver calls need aiosqlite: pip install aiosqlite")
        assert self._path is not None
        conn = await aiosqlite.connect(
            self._path,
            timeout=self.busy_timeout,
            isolation_level=None,
            uri=self._path.startswith("file:"),
        )
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            await conn.close()
            raise
        return conn

    def _async_only(self) -> bool:
        return self._aconn is not None

    # -- drivers ---------------------------------------------------------------------------

    @staticmethod
    def _transaction(conn: sqlite3.Connection, op: Callable[[], Op[T]], write: bool) -> T:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = run_sync(op(), lambda query: _execute_on(conn, query))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    @staticmethod
    async def _atransaction(conn: Any, op: Callable[[], Op[T]], write: bool) -> T:
        await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = await run_async(op(), lambda query: _aexecute_on(conn, query))
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        return result

    def _execute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        self._check_open()
        try:
            if self._shared is not None:
                with self._lock:
                    return self._transaction(self._shared, op, write)
            if self._aconn is not None:
                return self._bridge(op, write)
            return self._pooled(op, write)
        except sqlite3.OperationalError as exc:
            if _is_missing_table(exc):
                raise self._setup_error("its tables are missing") from exc
            raise

    def _pooled(self, op: Callable[[], Op[T]], write: bool) -> T:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        healthy = False
        try:
            result = self._transaction(conn, op, write)
            healthy = True
            return result
        finally:
            keep = healthy or not conn.in_transaction
            with self._lock:
                if keep and not self._closed and len(self._idle) < self.pool_size:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _bridge(self, op: Callable[[], Op[T]], write: bool) -> T:
        """Sync call on a saver that only has an aiosqlite connection."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "this SqliteSaver holds an aiosqlite connection: inside the event loop use "
                "its async methods (aget_tuple, aput, alist, ...)"
            )
        loop = self._aconn_loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._aexecute(op, write=write), loop)
            return future.result()
        # aiosqlite connections are not tied to a loop: a private one will do
        return asyncio.run(self._aexecute(op, write=write))

    async def _aexecute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        self._check_open()
        try:
            if self._aconn is not None:
                return await self._on_given(op, write)
            if self._shared is not None:
                return await asyncio.to_thread(self._execute, op, write=write)
            return await self._apooled(op, write)
        except sqlite3.OperationalError as exc:
            if _is_missing_table(exc):
                raise self._setup_error("its tables are missing") from exc
            raise

    async def _on_given(self, op: Callable[[], Op[T]], write: bool) -> T:
        loop = asyncio.get_running_loop()
        if self._aconn_loop is None:
            self._aconn_loop = loop
        lock = self._aconn_locks.get(loop)
        if lock is None:
            lock = self._aconn_locks[loop] = asyncio.Lock()
        async with lock:
            return await self._atransaction(self._aconn, op, write)

    async def _apooled(self, op: Callable[[], Op[T]], write: bool) -> T:
        with self._lock:
            conn = self._aidle.pop() if self._aidle else None
        if conn is None:
            conn = await self._aconnect()
        healthy = False
        try:
            result = await self._atransaction(conn, op, write)
            healthy = True
            return result
        finally:
            keep = healthy or not conn.in_transaction
            with self._lock:
                if keep and not self._closed and len(self._aidle) < self.pool_size:
                    self._aidle.append(conn)
                    conn = None
            if conn is not None:
                await conn.close()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this saver opened. Further calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            aidle, self._aidle = self._aidle, []
            shared = self._shared if self._owns_shared else None
        for conn in idle:
            conn.close()
        if shared is not None:
            shared.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for aconn in aidle:
                aconn.stop()  # closes on its own thread; nothing to await here

    async def aclose(self) -> None:
        """Async :meth:`close` (waits for the async connections to close)."""
        with self._lock:
            aidle, self._aidle = self._aidle, []
        for aconn in aidle:
            await aconn.close()
        self.close()


AsyncSqliteSaver = SqliteSaver
"""LangGraph's async name: the same class, whose async methods are native."""
