"""``PostgresSaver``: checkpoints in PostgreSQL (psycopg 3), sync and async on one object.

    with PostgresSaver.from_conn_string("postgresql://...") as saver:
        saver.setup()                       # once per database: versioned migrations
    async with AsyncPostgresSaver.from_conn_string("postgresql://...") as saver:
        await saver.asetup()                # or `await saver.setup()`, LangGraph's spelling

From a connection string the saver opens a ``psycopg_pool.ConnectionPool`` for sync calls and
plain async connections (kept idle per event loop, no background task) for async calls,
and closes them when closed.
You may instead pass a ``psycopg.Connection``, a ``ConnectionPool`` (async calls then run in a
worker thread), a ``psycopg.AsyncConnection`` or an ``AsyncConnectionPool`` (sync calls then
hop onto its event loop from other threads); those are never closed by the saver.

Every operation is one transaction. ``put`` is one statement on its common path: without a
TTL a plain one whose compare-and-set locks the head row and moves it, and whose blob and
header inserts run only when it did (data-modifying CTEs); when it moved nothing (then a
second statement), or with a TTL, a call of the server-side ``relaygraph_put`` function
(migrations 0002 and 0003), which does the same and says why it did not. Two commits racing
on one thread serialize on the head row and exactly one wins. ``get_tuple`` is one
statement too (autocommit, so no BEGIN/COMMIT round trips), falling back to several in one
REPEATABLE READ snapshot when that cannot answer (rows written before migration 0002, blob
chains the cache does not cover). ``setup()`` holds an advisory lock (per schema) while it
migrates, so concurrent calls are safe. A database that was never set up raises
:class:`SetupRequiredError` saying to call ``setup()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row

from relaygraph.persistence.serde import Serializer
from relaygraph.persistence.sql import (
    POSTGRES,
    Op,
    Query,
    SetupRequiredError,
    SqlSaver,
    run_async,
    run_sync,
)

try:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError:  # pragma: no cover - depends on the environment
    AsyncConnectionPool = ConnectionPool = None  # type: ignore[assignment,misc]

__all__ = ["AsyncPostgresSaver", "PostgresSaver", "SetupRequiredError"]

T = TypeVar("T")

# A read sees one snapshot, so a checkpoint and the blobs it needs are read consistently
# even while prune() removes older ones (READ COMMITTED re-snapshots every statement).
_READ_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


_CURSOR = "_relaygraph_cursor"


def _cursor_of(conn: Any) -> Any:
    """``conn``'s kept tuple-row cursor (made on first use, or again once closed).

    Kept because a new cursor copies the connection's adapters and picks the dumpers and
    loaders of every parameter and column type (arrays above all) afresh: that cost more
    than a put's round trip. It lives on the connection (and dies with it); a connection
    runs one operation at a time (the pool lends it, or the saver's lock holds it), so its
    cursor is never shared by two at once. It holds its last result until the next one."""
    cursor = getattr(conn, _CURSOR, None)
    if cursor is None or cursor.closed:
        cursor = conn.cursor(row_factory=tuple_row)
        setattr(conn, _CURSOR, cursor)
    return cursor


def _sql(query: Query) -> str:
    # Without parameters psycopg does not interpret placeholders (nor "%").
    return query.sql if query.params is None else POSTGRES.sql(query.sql)


def _fetch(cursor: Any, query: Query) -> Any:
    if query.fetch == "one":
        return cursor.fetchone()
    if query.fetch == "all":
        return cursor.fetchall()
    if query.fetch == "rowcount":
        return cursor.rowcount
    return None


def _execute_on(cursor: psycopg.Cursor[Any], query: Query) -> Any:
    if query.fetch == "snapshot":
        return None  # already in a transaction that began with its snapshot
    if query.many:
        cursor.executemany(_sql(query), query.params or [])
    else:
        cursor.execute(_sql(query), query.params)
    return _fetch(cursor, query)


async def _aexecute_on(cursor: psycopg.AsyncCursor[Any], query: Query) -> Any:
    if query.fetch == "snapshot":
        return None
    if query.many:
        await cursor.executemany(_sql(query), query.params or [])
    else:
        await cursor.execute(_sql(query), query.params)
    if query.fetch == "one":
        return await cursor.fetchone()
    if query.fetch == "all":
        return await cursor.fetchall()
    if query.fetch == "rowcount":
        return cursor.rowcount
    return None


class PostgresSaver(SqlSaver):
    """A checkpoint saver on PostgreSQL; see the module docstring for connections and setup.

    Args:
        conn: a connection string, or a psycopg (async) connection or psycopg_pool (async)
            pool that the caller owns.
        pool_size: the largest pool the saver opens from a connection string.
        connect_kwargs: extra ``psycopg.connect`` arguments for the connections it opens.
        ttl, refresh_on_read, cache_size, auto_setup, serde: see :class:`SqlSaver`.
    """

    dialect = POSTGRES

    def __init__(
        self,
        conn: str | psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | Any,
        *,
        serde: Serializer | None = None,
        ttl: float | None = None,
        refresh_on_read: bool = True,
        cache_size: int = 256,
        auto_setup: bool = False,
        pool_size: int = 8,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            serde=serde,
            ttl=ttl,
            refresh_on_read=refresh_on_read,
            auto_setup=auto_setup,
            cache_size=cache_size,
        )
        self.pool_size = max(1, pool_size)
        self._connect_kwargs = {"autocommit": True, **(connect_kwargs or {})}
        self._lock = threading.Lock()
        self._closed = False
        self._conninfo: str | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._pool: Any = None
        self._owns_pool = False
        self._aconn: psycopg.AsyncConnection[Any] | None = None
        self._apool: Any = None
        # Ours: idle async connections, per event loop (see _own_aconn).
        self._aidle: dict[asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]] = {}
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._alocks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        if isinstance(conn, str):
            self._conninfo = conn
        elif isinstance(conn, psycopg.Connection):
            self._conn = conn
        elif isinstance(conn, psycopg.AsyncConnection):
            self._aconn = conn
        elif ConnectionPool is not None and isinstance(conn, ConnectionPool):
            self._pool = conn
        elif AsyncConnectionPool is not None and isinstance(conn, AsyncConnectionPool):
            self._apool = conn
        else:
            raise TypeError(
                "PostgresSaver needs a connection string, a psycopg (Async)Connection or a "
                f"psycopg_pool (Async)ConnectionPool, not {type(conn).__name__}"
            )
        if self._async_only():
            try:
                self._aloop = asyncio.get_running_loop()
            except RuntimeError:
                self._aloop = None

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> PostgresSaver:
        """A saver that owns pools opened on ``conn_string``.

        Use it directly, or as a sync or async context manager that closes it at the end.
        """
        return cls(conn_string, **kwargs)

    def _async_only(self) -> bool:
        return self._aconn is not None or self._apool is not None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this PostgresSaver is closed")

    def _missing(self, exc: BaseException) -> SetupRequiredError:
        return self._setup_error(f"{exc}".strip().splitlines()[0])

    # -- sync ------------------------------------------------------------------------------

    @staticmethod
    def _transaction(
        conn: psycopg.Connection[Any], op: Callable[[], Op[T]], write: bool, lazy: bool = False
    ) -> T:
        if lazy and conn.autocommit:
            return PostgresSaver._autocommit(conn, op)
        cursor = _cursor_of(conn)
        with conn.transaction():
            if not write:
                cursor.execute(_READ_SNAPSHOT)
            return run_sync(op(), lambda query: _execute_on(cursor, query))

    @staticmethod
    def _autocommit(conn: psycopg.Connection[Any], op: Callable[[], Op[T]]) -> T:
        """Each statement its own transaction (one round trip) until the op asks for a
        snapshot; a transaction opened then ends with the op (commit, or rollback on error)."""
        cursor = _cursor_of(conn)
        with contextlib.ExitStack() as stack:

            def execute(query: Query) -> Any:
                if query.fetch != "snapshot":
                    return _execute_on(cursor, query)
                if not conn.info.transaction_status:  # idle: not in a transaction yet
                    stack.enter_context(conn.transaction())
                    cursor.execute(_READ_SNAPSHOT)
                return None

            return run_sync(op(), execute)

    def _sync_pool(self) -> Any:
        with self._lock:
            self._check_open()
            if self._pool is None:
                if ConnectionPool is None:  # pragma: no cover - depends on the environment
                    raise ImportError("PostgresSaver needs psycopg_pool: pip install psycopg-pool")
                self._pool = ConnectionPool(
                    self._conninfo or "",
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs=self._connect_kwargs,
                    open=True,
                    name="relaygraph-sync",
                )
                self._owns_pool = True
            return self._pool

    def _execute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        self._check_open()
        if self._async_only():
            return self._bridge(op, write, lazy)
        try:
            if self._conn is not None:
                with self._lock:
                    return self._transaction(self._conn, op, write, lazy)
            with self._sync_pool().connection() as conn:
                return self._transaction(conn, op, write, lazy)
        except pg_errors.UndefinedTable as exc:
            raise self._missing(exc) from exc

    def _bridge(self, op: Callable[[], Op[T]], write: bool, lazy: bool) -> T:
        """A sync call on a saver holding only an asyncio connection or pool."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._aloop
        if running is not None or loop is None or not loop.is_running():
            raise RuntimeError(
                "this PostgresSaver holds an asyncio connection: use its async methods "
                "(aget_tuple, aput, alist, ...), or call sync ones from another thread while "
                "its event loop runs"
            )
        call = self._aexecute(op, write=write, lazy=lazy)
        return asyncio.run_coroutine_threadsafe(call, loop).result()

    # -- async -----------------------------------------------------------------------------

    @staticmethod
    async def _atransaction(
        conn: psycopg.AsyncConnection[Any],
        op: Callable[[], Op[T]],
        write: bool,
        lazy: bool = False,
    ) -> T:
        if lazy and conn.autocommit:
            return await PostgresSaver._aautocommit(conn, op)
        cursor = _cursor_of(conn)
        async with conn.transaction():
            if not write:
                await cursor.execute(_READ_SNAPSHOT)
            return await run_async(op(), lambda query: _aexecute_on(cursor, query))

    @staticmethod
    async def _aautocommit(conn: psycopg.AsyncConnection[Any], op: Callable[[], Op[T]]) -> T:
        """Async :meth:`_autocommit`."""
        cursor = _cursor_of(conn)
        async with contextlib.AsyncExitStack() as stack:

            async def execute(query: Query) -> Any:
                if query.fetch != "snapshot":
                    return await _aexecute_on(cursor, query)
                if not conn.info.transaction_status:
                    await stack.enter_async_context(conn.transaction())
                    await cursor.execute(_READ_SNAPSHOT)
                return None

            return await run_async(op(), execute)

    async def _own_aconn(self) -> psycopg.AsyncConnection[Any]:
        """An idle connection of this event loop, or a new one.

        Plain connections, not a psycopg_pool ``AsyncConnectionPool``: that pool runs tasks
        of its own on the loop, and a saver used in ``asyncio.run(...)`` without
        ``aclose()`` (as LangGraph's lesson does) leaves them to the loop's shutdown, which
        cancels them; psycopg_pool can absorb such a cancellation (psycopg/psycopg#1345,
        #1401) and the shutdown then hung forever. An idle connection has no task: when its
        loop ends it is only a socket, dropped here on the next call from another loop.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            self._check_open()
            for other in [k for k in self._aidle if k.is_closed()]:
                del self._aidle[other]  # their loops are gone (the sockets close when collected)
            idle = self._aidle.get(loop)
            conn = idle.pop() if idle else None
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo or "", **self._connect_kwargs
            )
        return conn

    async def _release_aconn(self, conn: psycopg.AsyncConnection[Any], healthy: bool) -> None:
        """Keep ``conn`` idle for this loop's next call (up to ``pool_size``), else close it."""
        loop = asyncio.get_running_loop()
        idle_status = psycopg.pq.TransactionStatus.IDLE
        keep = healthy and not conn.closed and conn.info.transaction_status == idle_status
        with self._lock:
            if keep and not self._closed:
                idle = self._aidle.setdefault(loop, [])
                if len(idle) < self.pool_size:
                    idle.append(conn)
                    return
        await conn.close()

    async def _aexecute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        self._check_open()
        try:
            if self._conninfo is not None:
                conn = await self._own_aconn()
                healthy = False
                try:
                    result = await self._atransaction(conn, op, write, lazy)
                    healthy = True
                    return result
                finally:
                    await self._release_aconn(conn, healthy)
            if self._conn is not None or self._pool is not None:
                return await asyncio.to_thread(self._execute, op, write=write, lazy=lazy)
            loop = asyncio.get_running_loop()
            if self._aloop is None or self._aloop.is_closed():
                self._aloop = loop
            if self._apool is not None:
                async with self._apool.connection() as conn:
                    return await self._atransaction(conn, op, write, lazy)
            assert self._aconn is not None
            lock = self._alocks.get(loop)
            if lock is None:
                lock = self._alocks[loop] = asyncio.Lock()
            async with lock:
                return await self._atransaction(self._aconn, op, write, lazy)
        except pg_errors.UndefinedTable as exc:
            raise self._missing(exc) from exc

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pool and connections this saver opened. Further calls raise
        RuntimeError.

        An async connection is closed on its loop: prefer ``aclose()`` (or ``async with``)
        when the saver made async calls; idle ones of a loop that runs in another thread are
        closed there, those of a loop that is gone were only sockets.
        """
        with self._lock:
            self._closed = True
            pool = self._pool if self._owns_pool else None
            aidle, self._aidle = self._aidle, {}
        if pool is not None:
            pool.close()
        for loop, conns in aidle.items():
            if loop.is_running() and not _on_loop(loop):
                for conn in conns:
                    asyncio.run_coroutine_threadsafe(conn.close(), loop).result(timeout=30)

    async def aclose(self) -> None:
        """Close everything this saver opened (this loop's connections awaited)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            conns = self._aidle.pop(loop, [])
        for conn in conns:
            await conn.close()
        await asyncio.to_thread(self.close)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


AsyncPostgresSaver = PostgresSaver
"""LangGraph's async name: the same class, whose async methods are native."""
