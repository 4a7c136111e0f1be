"""``SqlSaver``: the checkpoint saver API over the shared operations; subclasses add drivers.

The saver serializes a put before its transaction and builds tuples after it
(``rows.py``), runs the operations of ``ops.py`` through its backend's driver
(:meth:`SqlSaver._execute` / :meth:`SqlSaver._aexecute`), and keeps the cache of resolved
message histories (``cache.py``).
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

from relaygraph.persistence import migrations
from relaygraph.persistence.base import (
    ANY_HEAD,
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    checkpoint_id_of,
    checkpoint_ns_of,
    make_config,
    metadata_matches,
    thread_id_of,
)
from relaygraph.persistence.errors import RelaygraphError
from relaygraph.persistence.serde import Serializer
from relaygraph.persistence.sql.cache import ResolvedValues
from relaygraph.persistence.sql.dialect import Dialect
from relaygraph.persistence.sql.ops import Ops
from relaygraph.persistence.sql.query import Op
from relaygraph.persistence.sql.rows import (
    PreparedPut,
    RawPage,
    build_tuple,
    prepare_put,
    prepare_writes,
)

__all__ = ["LIST_PAGE_SIZE", "SetupRequiredError", "SqlSaver"]

T = TypeVar("T")

LIST_PAGE_SIZE = 100
"""Checkpoints read per query while listing; ``list`` has no cap, it pages on."""


class SetupRequiredError(RelaygraphError, RuntimeError):
    """The database has no (or an older) relaygraph schema: call ``setup()`` first."""


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Done:
    """What ``setup()`` returns: already done, and also awaitable for LangGraph-style code."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


class SqlSaver(BaseCheckpointSaver):
    """A checkpoint saver on a SQL database; subclasses supply connections and drivers.

    Sync and async methods live on one object. ``ttl`` (seconds) expires a whole thread
    after that long without a write (or a read, with ``refresh_on_read``): an expired
    thread reads as empty at once, and its rows go at its next write or at
    :meth:`sweep_expired`. With ``auto_setup`` the first call runs :meth:`setup`; without
    it, a database never set up raises :class:`SetupRequiredError`. ``cache_size`` bounds an
    LRU of resolved message histories, so reading a long thread's head reads only new blobs.
    """

    dialect: Dialect

    def __init__(
        self,
        *,
        serde: Serializer | None = None,
        ttl: float | None = None,
        refresh_on_read: bool = True,
        auto_setup: bool = False,
        cache_size: int = 256,
    ) -> None:
        super().__init__(serde=serde)
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.ttl = ttl
        self.refresh_on_read = refresh_on_read
        self.auto_setup = auto_setup
        self._cache = ResolvedValues(cache_size)
        self._ops = Ops(self.dialect, ttl, refresh_on_read, self._cache)
        self._ready = False

    # -- drivers (backend-specific) ------------------------------------------------------

    @abstractmethod
    def _execute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        """Run the generator ``op()`` in one transaction (IMMEDIATE when ``write``).

        ``lazy``: the operation's statements are each atomic alone until it yields
        :data:`~relaygraph.persistence.sql.query.SNAPSHOT`, so a driver may run them outside
        a transaction (autocommit) and open a read snapshot only then.
        """

    @abstractmethod
    async def _aexecute(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        """Async :meth:`_execute`."""

    def close(self) -> None:
        """Close the connections this saver opened (never ones it was given)."""

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- setup -----------------------------------------------------------------------------

    def _async_only(self) -> bool:
        """True when the saver holds only an asyncio connection (sync calls hop to its loop)."""
        return False

    def setup(self) -> Any:
        """Create or migrate the tables; safe to call again and from several processes.

        Returns an awaitable that is already done, so ``await saver.setup()`` (LangGraph's
        async style) works as well; :meth:`asetup` is the native async twin. A saver made
        on an asyncio connection, called inside its event loop, returns :meth:`asetup`'s
        coroutine instead, which must be awaited.
        """
        if self._async_only() and _in_event_loop():
            return self.asetup()
        self._execute(self._ops.migrate, write=True)
        self._ready = True
        return _Done()

    async def asetup(self) -> None:
        """Async :meth:`setup`."""
        await self._aexecute(self._ops.migrate, write=True)
        self._ready = True

    def _readiness(self) -> tuple[Callable[[], Op[Any]], bool]:
        if self.auto_setup:
            return self._ops.migrate, True
        return self._check_version, False

    def _check_version(self) -> Op[None]:
        version = yield from self._ops.schema_version()
        latest = len(migrations.load(self.dialect.name))
        if version < latest:
            raise self._setup_error(f"its schema is at version {version} of {latest}")

    def _setup_error(self, problem: str) -> SetupRequiredError:
        return SetupRequiredError(
            f"the relaygraph tables of this database are not set up ({problem}): call "
            f"{type(self).__name__}.setup() (or await .asetup()) once before using it"
        )

    def _run(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        if not self._ready:
            check, check_writes = self._readiness()
            self._execute(check, write=check_writes)
            self._ready = True
        return self._execute(op, write=write, lazy=lazy)

    async def _arun(self, op: Callable[[], Op[T]], *, write: bool, lazy: bool = False) -> T:
        if not self._ready:
            check, check_writes = self._readiness()
            await self._aexecute(check, write=check_writes)
            self._ready = True
        return await self._aexecute(op, write=write, lazy=lazy)

    def _refresh(self, page: RawPage | None) -> None:
        """Refresh the expiry of threads just read (its own small write transaction)."""
        if page and page.items and self.ttl and self.refresh_on_read:
            threads, now = sorted({raw.thread_id for raw in page.items}), time.time()
            self._run(lambda: self._ops.touch(threads, now), write=True)

    async def _arefresh(self, page: RawPage | None) -> None:
        """Async :meth:`_refresh`."""
        if page and page.items and self.ttl and self.refresh_on_read:
            threads, now = sorted({raw.thread_id for raw in page.items}), time.time()
            await self._arun(lambda: self._ops.touch(threads, now), write=True)

    # -- building results (outside any transaction) ----------------------------------------

    def _first(self, page: RawPage | None) -> CheckpointTuple | None:
        if page is None or not page.items:
            return None
        return build_tuple(page.items[0], page, self.serde, self._cache)

    def _list_plan(
        self,
        config: dict[str, Any] | None,
        filter: dict[str, Any] | None,
        before: dict[str, Any] | None,
    ) -> dict[str, Any]:
        configurable = (config or {}).get("configurable") or {}
        self.dialect.check_ids(
            None if config is None else thread_id_of(config),
            checkpoint_ns_of(config),
            checkpoint_id=checkpoint_id_of(config),
            before=checkpoint_id_of(before),
        )
        return {
            "thread_id": None if config is None else thread_id_of(config),
            "ns": checkpoint_ns_of(config) if "checkpoint_ns" in configurable else None,
            "only_id": checkpoint_id_of(config),
            "before_id": checkpoint_id_of(before),
            "filter": filter,
        }

    def _page_op(
        self, plan: dict[str, Any], after: tuple[str, str, str] | None
    ) -> Callable[[], Op[RawPage]]:
        now = time.time()
        return lambda: self._ops.list_page(**plan, after=after, size=LIST_PAGE_SIZE, now=now)

    def _select(self, page: RawPage, filter: dict[str, Any] | None) -> Iterator[CheckpointTuple]:
        for raw in page.items:
            item = build_tuple(raw, page, self.serde, self._cache)
            if metadata_matches(item.metadata, filter):
                yield item

    # -- reading ---------------------------------------------------------------------------

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the namespace's head when it names none."""
        args = (thread_id_of(config), checkpoint_ns_of(config), checkpoint_id_of(config))
        self.dialect.check_ids(args[0], args[1], checkpoint_id=args[2])
        now = time.time()
        page = self._run(
            lambda: self._ops.get(*args, now), write=False, lazy=self.dialect.one_round_trip
        )
        self._refresh(page)
        return self._first(page)

    def list(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by id), read page by page from the index.

        A config without a ``checkpoint_ns`` key lists every namespace of the thread; a
        ``checkpoint_id`` in the config lists that checkpoint only; ``config=None`` lists
        every thread. Scalar ``filter`` values are matched in SQL, all of them in Python.
        """
        plan = self._list_plan(config, filter, before)
        return self._iterate(plan, filter, limit)

    def _iterate(
        self, plan: dict[str, Any], filter: dict[str, Any] | None, limit: int | None
    ) -> Iterator[CheckpointTuple]:
        count, after = 0, None
        while limit is None or count < limit:
            page = self._run(self._page_op(plan, after), write=False)
            self._refresh(page)
            for item in self._select(page, filter):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            if page.exhausted or not page.items:
                return
            last = page.items[-1]
            after = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)

    async def aget_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        args = (thread_id_of(config), checkpoint_ns_of(config), checkpoint_id_of(config))
        self.dialect.check_ids(args[0], args[1], checkpoint_id=args[2])
        now = time.time()
        page = await self._arun(
            lambda: self._ops.get(*args, now), write=False, lazy=self.dialect.one_round_trip
        )
        await self._arefresh(page)
        return self._first(page)

    async def alist(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        plan = self._list_plan(config, filter, before)
        count, after = 0, None
        while limit is None or count < limit:
            page = await self._arun(self._page_op(plan, after), write=False)
            await self._arefresh(page)
            for item in self._select(page, filter):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            if page.exhausted or not page.items:
                return
            last = page.items[-1]
            after = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)

    # -- writing ---------------------------------------------------------------------------

    def put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Store ``checkpoint`` as a child of ``config``'s checkpoint and make it the head.

        One transaction: the head moves by compare-and-set when ``expected_head`` is given
        (:class:`CheckpointConflict` otherwise, with nothing stored).
        """
        prepared = prepare_put(self.dialect, self.serde, config, checkpoint, metadata, new_versions)
        now = time.time()
        op = lambda: self._ops.put(prepared, expected_head, self.serde, now)  # noqa: E731
        if self._run(op, write=True, lazy=self.dialect.one_round_trip):
            self._cache.clear()
        self._prime(prepared)
        return make_config(prepared.thread_id, prepared.checkpoint_ns, checkpoint["id"])

    async def aput(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Async :meth:`put`."""
        prepared = prepare_put(self.dialect, self.serde, config, checkpoint, metadata, new_versions)
        now = time.time()
        op = lambda: self._ops.put(prepared, expected_head, self.serde, now)  # noqa: E731
        if await self._arun(op, write=True, lazy=self.dialect.one_round_trip):
            self._cache.clear()
        self._prime(prepared)
        return make_config(prepared.thread_id, prepared.checkpoint_ns, checkpoint["id"])

    def _prime(self, put: PreparedPut) -> None:
        """Remember the lists this put stored, so reading the new head reads no history
        (unchanged channels were cached by the read that preceded it, if by anyone)."""
        appends = put.checkpoint.get("channel_appends") or {}
        values = put.checkpoint.get("channel_values") or {}
        # The new versions without a value were stored as empty blobs: reads skip them.
        self._cache.mark_empty(
            put.thread_id,
            put.checkpoint_ns,
            {c: v for c, v in put.new_versions.items() if c not in values},
        )
        for channel, version in put.new_versions.items():
            value = values.get(channel)
            if isinstance(value, list):
                base = appends.get(channel)
                key = (put.thread_id, put.checkpoint_ns, channel, version)
                self._cache.put(key, value, tuple(base) if base else None)

    def put_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes; first write per (task_id, index) wins, special ones replace."""
        if (op := self._writes_op(config, writes, task_id, task_path)) is not None:
            self._run(op, write=True)

    async def aput_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        if (op := self._writes_op(config, writes, task_id, task_path)) is not None:
            await self._arun(op, write=True)

    def _writes_op(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Callable[[], Op[None]] | None:
        """The statement work of a put_writes (encoded here, run by either driver), or
        ``None`` when there is nothing to store."""
        thread_id, ns, checkpoint_id, rows = prepare_writes(
            self.dialect, self.serde, config, writes, task_id
        )
        if not rows:
            return None
        now = time.time()
        return lambda: self._ops.put_writes(
            thread_id, ns, checkpoint_id, rows, task_id, task_path, now
        )

    # -- retention -------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob, write and head of a thread."""
        self.dialect.check_ids(str(thread_id), None)
        self._run(lambda: self._ops.delete_thread(str(thread_id)), write=True)
        self._cache.clear()

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        self.dialect.check_ids(str(thread_id), None)
        await self._arun(lambda: self._ops.delete_thread(str(thread_id)), write=True)
        self._cache.clear()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's history, blobs, writes and heads to a thread with no checkpoints."""
        now, source, target = time.time(), str(source_thread_id), str(target_thread_id)
        self._check_threads([source, target])
        self._run(lambda: self._ops.copy_thread(source, target, now), write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        now, source, target = time.time(), str(source_thread_id), str(target_thread_id)
        self._check_threads([source, target])
        await self._arun(lambda: self._ops.copy_thread(source, target, now), write=True)

    @staticmethod
    def _ids(values: Sequence[str] | str) -> list[str]:
        return [values] if isinstance(values, str) else [str(v) for v in values]

    def _check_threads(self, thread_ids: list[str]) -> None:
        for thread_id in thread_ids:
            self.dialect.check_ids(thread_id, None)

    def _check_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.dialect.check_ids(None, None, run_id=run_id)

    @staticmethod
    def _check_keep(keep_last: int) -> None:
        if keep_last < 1:
            raise ValueError(f"prune: keep_last must be at least 1, got {keep_last}")

    def prune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Keep the newest ``keep_last`` checkpoints (and always the head) per namespace."""
        self._check_keep(keep_last)
        ids = self._ids(thread_ids)
        self._check_threads(ids)
        self._run(lambda: self._ops.prune(ids, keep_last), write=True)
        self._cache.clear()

    async def aprune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Async :meth:`prune`."""
        self._check_keep(keep_last)
        ids = self._ids(thread_ids)
        self._check_threads(ids)
        await self._arun(lambda: self._ops.prune(ids, keep_last), write=True)
        self._cache.clear()

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is given."""
        ids = self._ids(run_ids)
        self._check_runs(ids)
        if ids:
            self._run(lambda: self._ops.delete_for_runs(ids), write=True)
            self._cache.clear()

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        ids = self._ids(run_ids)
        self._check_runs(ids)
        if ids:
            await self._arun(lambda: self._ops.delete_for_runs(ids), write=True)
            self._cache.clear()

    def stored_bytes(self, thread_id: str) -> int:
        """Payload bytes stored for a thread (benchmarks and growth tests)."""
        return self._run(lambda: self._ops.stored_bytes(str(thread_id)), write=False)

    def sweep_expired(self) -> int:
        """Delete every thread whose TTL has passed; returns how many were deleted."""
        now = time.time()
        swept = self._run(lambda: self._ops.sweep_expired(now), write=True)
        self._cache.clear()
        return swept

    async def asweep_expired(self) -> int:
        """Async :meth:`sweep_expired`."""
        now = time.time()
        swept = await self._arun(lambda: self._ops.sweep_expired(now), write=True)
        self._cache.clear()
        return swept
