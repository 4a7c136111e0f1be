"""RedisStore: the cross-thread memory store in Redis, on a RedisVL search index.

Every item is one JSON document (see :mod:`.redis_query` for its layout and how queries
are built), indexed by a RedisVL ``SearchIndex``: namespace prefixes and suffixes and
value paths as digest TAGs, timestamps and a write sequence as NUMERICs, and one
multi-valued HNSW vector field holding one vector per embedded text (an item's score is
its best-matching text, as in :class:`~relaygraph.persistence.store.memory.InMemoryStore`).

Needs Redis with the search and JSON modules (Redis 8, Redis Stack, or the embedded
server of :mod:`relaygraph.persistence.redis_server`). Expiry is Redis's own (PEXPIRE on
the document), so no sweeper is needed. Sync and async methods share one object; each
batch is executed by one plan (a generator yielding pipelines of commands) that a sync
or an async driver runs, so both behave the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from relaygraph.persistence.embeddings import StoreIndex
from relaygraph.persistence.errors import RelaygraphError, SerializationError
from relaygraph.persistence.store import redis_query as rq
from relaygraph.persistence.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    namespace_matches,
    validate_op,
)
from relaygraph.persistence.store.filters import compile_filter

__all__ = ["AsyncRedisStore", "RedisStore", "RedisStoreError"]

DEFAULT_NAME = "relaygraph_store"
_PAGE = 1000  # documents per FT.SEARCH page / FT.CURSOR read when paging client-side
_LOCK_MS = 120_000  # the setup lock's lease, renewed while documents are rewritten
_COUNTS_FRESH = 1.0  # seconds a namespace count read stays the plan's basis (see _nearest)
_MAX_RESULTS = 1_000_000  # RediSearch's MAXSEARCHRESULTS: deeper pages are read in pages

# Writes one item: keeps created_at of a live previous version, stamps updated_at from
# the server clock and a store-wide sequence (the recency order), then sets or clears
# the expiry. ARGV[1] is the document's JSON without its closing brace, ARGV[2] the ttl,
# ARGV[3...] its namespace-prefix tags: a new item counts once under each (KEYS[3], see
# RedisStore._counts). TIME's parts are concatenated as strings because Lua numbers would
# print 16-digit microseconds as 1e+15.
_PUT_SCRIPT = """
local old = redis.call('JSON.GET', KEYS[1], '$.created_at')
local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
local created = now
if old then
  local kept = string.match(old, '^%[(%d+)%]$')
  if kept then created = kept end
else
  for i = 3, #ARGV do redis.call('HINCRBY', KEYS[3], ARGV[i], 1) end
  redis.call('HINCRBY', KEYS[3], 'all', 1)
end
local seq = redis.call('INCR', KEYS[2])
redis.call('JSON.SET', KEYS[1], '$', ARGV[1] .. ',"created_at":' .. created ..
  ',"updated_at":' .. now .. ',"seq":' .. string.format('%d', seq) .. '}')
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
"""

# Deletes one item, taking it out of the counts of its namespace prefixes (KEYS[2]); a count
# that reaches zero is removed, so an emptied namespace leaves nothing behind.
_DELETE_SCRIPT = """
local function uncount(field)
  if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then redis.call('HDEL', KEYS[2], field) end
end
local ok, pfx = pcall(redis.call, 'JSON.GET', KEYS[1], '$.pfx')
if ok and pfx then
  for tag in string.gmatch(pfx, '%x+') do uncount(tag) end
  uncount('all')
end
return redis.call('DEL', KEYS[1])
"""

# Restarts an item's expiry from the ttl stored in it (a no-op for items without one).
_REFRESH = """
local function refresh(key)
  local t = redis.call('JSON.GET', key, '$.ttl_ms')
  local ms = t and string.match(t, '^%[(%d+)%]$')
  if ms and tonumber(ms) > 0 then redis.call('PEXPIRE', key, ms) end
end
"""
_REFRESH_SCRIPT = _REFRESH + "if redis.call('EXISTS', KEYS[1]) == 1 then refresh(KEYS[1]) end\n"

# Reads one item (without its vectors and tags), refreshing its expiry when asked.
_GET_SCRIPT = (
    _REFRESH
    + "local doc = redis.call('JSON.GET', KEYS[1], "
    + ", ".join(f"'$.{name}'" for name in rq.RETURN_PATHS)
    + ")\nif doc and ARGV[1] == '1' then refresh(KEYS[1]) end\nreturn doc\n"
)

# Rewrites a document in a new layout, keeping its stamps, sequence and expiry.
_MIGRATE_SCRIPT = """
local old = redis.call('JSON.GET', KEYS[1], '$.created_at', '$.updated_at', '$.seq')
if not old then return 0 end
local c = string.match(old, '"%$%.created_at":%[(%d+)%]')
local u = string.match(old, '"%$%.updated_at":%[(%d+)%]')
local s = string.match(old, '"%$%.seq":%[(%d+)%]')
if not (c and u and s) then return 0 end
local pttl = redis.call('PTTL', KEYS[1])
redis.call('JSON.SET', KEYS[1], '$', ARGV[1] .. ',"created_at":' .. c ..
  ',"updated_at":' .. u .. ',"seq":' .. s .. '}')
if pttl > 0 then redis.call('PEXPIRE', KEYS[1], pttl) end
return 1
"""


class RedisStoreError(RelaygraphError):
    """The Redis store cannot work with the server or index it was given."""


# -- plans: what a batch does, independent of sync or async I/O ------------------------------


@dataclass(slots=True)
class _Embed:
    """Ask the driver to embed texts for storage; it sends back the vectors."""

    texts: list[str]


@dataclass(slots=True)
class _Sleep:
    """Ask the driver to wait (without blocking an event loop)."""

    seconds: float


@dataclass(slots=True)
class _Create:
    """Ask the driver to create the search index through RedisVL."""


Commands = list[tuple[Any, ...]]
Plan = Generator[Any, Any, Any]


def _ttl_ms(minutes: float | None) -> int:
    return 0 if minutes is None else max(1, math.ceil(minutes * 60_000))


def _check_ttl_config(ttl: Mapping[str, Any] | None) -> TTLConfig | None:
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        raise TypeError(f"ttl must be a dict (a TTLConfig), got {ttl!r}")
    known = {"default_ttl", "refresh_on_read", "sweep_interval_minutes"}
    unknown = set(ttl) - known
    if unknown:
        raise ValueError(f"unknown ttl config keys {sorted(unknown)}; expected {sorted(known)}")
    for name in ("default_ttl", "sweep_interval_minutes"):
        minutes = ttl.get(name)
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0
        ):
            raise ValueError(f"ttl config {name!r} must be a positive number of minutes or None")
    if not isinstance(ttl.get("refresh_on_read", True), bool):
        raise ValueError("ttl config 'refresh_on_read' must be true or false")
    return TTLConfig(**ttl)  # type: ignore[typeddict-item]


_HNSW_OPTIONS = ("m", "ef_construction", "ef_runtime")


def _check_hnsw(hnsw: Any) -> dict[str, int] | None:
    if hnsw is None:
        return None
    if not isinstance(hnsw, Mapping) or set(hnsw) - set(_HNSW_OPTIONS):
        raise ValueError(f"index 'hnsw' must be a dict with keys among {_HNSW_OPTIONS}: {hnsw!r}")
    for name, number in hnsw.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"index 'hnsw' option {name!r} must be a positive integer")
    return dict(hnsw)


_RETURN_ARGS = ["RETURN", 3, rq.RETURN_UNION, "AS", rq.RETURN_ALIAS]


def _item(row: rq.Row) -> Item:
    return Item(
        value=row.value,
        key=row.key,
        namespace=row.namespace,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _search_item(score: float | None, row: rq.Row) -> SearchItem:
    return SearchItem(
        namespace=row.namespace,
        key=row.key,
        value=row.value,
        created_at=row.created_at,
        updated_at=row.updated_at,
        score=score,
    )


def _error_text(error: BaseException) -> str:
    return str(error).lower()


def _text_or_none(reply: Any) -> str | None:
    return None if reply is None else rq.as_text(reply)


def _count_namespace(counts: dict[str, int], namespace: list[str]) -> None:
    """Count one item under ``"all"`` and under every prefix of its namespace."""
    counts["all"] = counts.get("all", 0) + 1
    for depth in range(1, len(namespace) + 1):
        tag = rq.prefix_tag(namespace[:depth])
        counts[tag] = counts.get(tag, 0) + 1


class RedisStore(BaseStore):
    """A :class:`BaseStore` in Redis (search + JSON modules), sync and async.

    ``RedisStore.from_conn_string(url, index=..., ttl=...)`` returns a store that works
    directly and as a (sync or async) context manager that closes its connections.
    ``index={"embed": ..., "dims": int, "fields": [...]}`` enables semantic search
    (``"hnsw": {"m": .., "ef_construction": .., "ef_runtime": ..}`` tunes the vector
    index); ``ttl={"default_ttl": minutes, "refresh_on_read": bool}`` sets expiry.
    ``name`` prefixes every key and names the search index, so several stores can share
    one database. The index is created (or migrated) by :meth:`setup`, which the first
    operation calls when the application did not.
    """

    supports_ttl = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        name: str = DEFAULT_NAME,
        connection_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if url is None and client is None and async_client is None:
            raise ValueError("RedisStore needs a Redis URL, a client or an async client")
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"store name must be a non-empty string without spaces: {name!r}")
        self.url = url
        self.name = name
        self.prefix = f"{name}:item:"
        self._seq_key = f"{name}:seq"
        self._meta_key = f"{name}:meta"
        self._count_key = f"{name}:count"
        # Namespace-prefix counts last read per prefix tag (see _nearest), newest last.
        self._counts: OrderedDict[str, tuple[int, int, float]] = OrderedDict()
        self._counts_lock = threading.Lock()
        self._lock_key = f"{name}:setup-lock"
        self.index: StoreIndex | None = StoreIndex(index, extra_keys=("hnsw",)) if index else None
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.ttl_config = _check_ttl_config(ttl)
        self._connection_kwargs = dict(connection_kwargs or {})
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._owns_async_client = async_client is None
        self._ready = False
        hnsw = _check_hnsw(index.get("hnsw")) if index else None
        self._schema = rq.index_schema(
            name, self.prefix, self.index.dims if self.index else None, hnsw
        )
        self._fingerprint = hashlib.sha256(
            json.dumps([rq.DOC_FORMAT, self._schema], sort_keys=True).encode()
        ).hexdigest()

    @classmethod
    def from_conn_string(
        cls,
        url: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        name: str = DEFAULT_NAME,
        **connection_kwargs: Any,
    ) -> RedisStore:
        """A store on ``url`` (``redis://``, ``rediss://``, with AUTH in the URL).

        Usable directly or as ``with``/``async with`` (which closes the connections).
        """
        return cls(url, index=index, ttl=ttl, name=name, connection_kwargs=connection_kwargs)

    # -- connections -----------------------------------------------------------------

    def _sync_client(self) -> Any:
        if self._client is None:
            if self.url is None:
                raise RedisStoreError(
                    "this RedisStore was given only an async client; use the a* methods"
                )
            import redis

            self._client = redis.Redis.from_url(
                self.url, **{"protocol": 2, **self._connection_kwargs}
            )
        return self._client

    def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._async_client is not None and (
            not self._owns_async_client or self._async_loop is loop
        ):
            return self._async_client
        if self.url is None:
            raise RedisStoreError(
                "this RedisStore was given only a sync client; use the sync methods"
            )
        import redis.asyncio

        # A client is bound to the event loop that made it: make one per loop.
        self._async_client = redis.asyncio.Redis.from_url(
            self.url, **{"protocol": 2, **self._connection_kwargs}
        )
        self._async_loop = loop
        return self._async_client

    def close(self) -> None:
        """Close the connections this store opened (clients passed in stay open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Async twin of :meth:`close` (closes the async connections too)."""
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- drivers ---------------------------------------------------------------------

    def _run(self, plan: Plan, create: Callable[[], Any] | None = None) -> Any:
        """Run a plan with blocking I/O."""
        client = self._sync_client()
        try:
            request: Any = next(plan)
        except StopIteration as done:  # nothing to ask the server
            return done.value
        while True:
            try:
                if isinstance(request, _Embed):
                    assert self.index is not None
                    reply: Any = self.index.embed_documents(request.texts)
                elif isinstance(request, _Sleep):
                    reply = time.sleep(request.seconds)
                elif isinstance(request, _Create):
                    assert create is not None
                    reply = create()
                else:
                    reply = self._execute(client, request)
            except Exception as error:  # the plan handles what it expects, re-raises the rest
                try:
                    request = plan.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                request = plan.send(reply)
            except StopIteration as done:
                return done.value

    async def _arun(self, plan: Plan, create: Callable[[], Any] | None = None) -> Any:
        """Run a plan with asyncio I/O."""
        client = self._aclient()
        try:
            request: Any = next(plan)
        except StopIteration as done:
            return done.value
        while True:
            try:
                if isinstance(request, _Embed):
                    assert self.index is not None
                    reply: Any = await self.index.aembed_documents(request.texts)
                elif isinstance(request, _Sleep):
                    reply = await asyncio.sleep(request.seconds)
                elif isinstance(request, _Create):
                    assert create is not None
                    reply = await create()
                else:
                    reply = await self._aexecute(client, request)
            except Exception as error:
                try:
                    request = plan.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                request = plan.send(reply)
            except StopIteration as done:
                return done.value

    @staticmethod
    def _execute(client: Any, commands: Commands) -> list[Any]:
        if len(commands) == 1:
            return [client.execute_command(*commands[0])]
        with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()

    @staticmethod
    async def _aexecute(client: Any, commands: Commands) -> list[Any]:
        if len(commands) == 1:
            return [await client.execute_command(*commands[0])]
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute()

    # -- setup -----------------------------------------------------------------------

    def setup(self, *, reembed: bool = False) -> None:
        """Create the search index, or migrate it when this store's layout or vector
        config differs from the one that made it: documents are kept and re-indexed, and
        re-embedded when the vector dimensions changed (or ``reembed=True``, e.g. after
        switching to another model of the same size). Safe to call repeatedly and from
        several processes at once; the first operation calls it when nobody did."""
        from redisvl.index import SearchIndex
        from redisvl.schema import IndexSchema

        index = SearchIndex(IndexSchema.from_dict(self._schema), redis_client=self._sync_client())
        self._run(self._setup_plan(reembed), create=index.create)
        self._ready = True

    async def asetup(self, *, reembed: bool = False) -> None:
        """Async twin of :meth:`setup`."""
        from redisvl.index import AsyncSearchIndex
        from redisvl.schema import IndexSchema

        index = AsyncSearchIndex(IndexSchema.from_dict(self._schema), redis_client=self._aclient())
        await self._arun(self._setup_plan(reembed), create=index.create)
        self._ready = True

    def _setup_plan(self, force_reembed: bool) -> Plan:
        """Check the index's fingerprint; (re)create it under a lock when it differs."""
        fingerprint, counted = yield [
            ("HGET", self._meta_key, "fingerprint"),
            ("EXISTS", self._count_key),
        ]
        if not force_reembed and _text_or_none(fingerprint) == self._fingerprint and counted:
            exists = yield from self._index_exists()
            if exists:
                return
        token = uuid.uuid4().hex
        deadline = time.monotonic() + 120
        while True:
            [got] = yield [("SET", self._lock_key, token, "NX", "PX", _LOCK_MS)]
            if got:
                break
            if time.monotonic() > deadline:
                raise RedisStoreError(f"timed out waiting for the setup lock {self._lock_key}")
            yield _Sleep(0.05)
        try:
            yield from self._migrate(force_reembed)
        except GeneratorExit:  # abandoned by its driver: the lock expires by itself
            raise
        except BaseException:
            yield [("EVAL", _UNLOCK_SCRIPT, 1, self._lock_key, token)]
            raise
        yield [("EVAL", _UNLOCK_SCRIPT, 1, self._lock_key, token)]

    def _migrate(self, force_reembed: bool) -> Plan:
        """Under the setup lock: (re)create the index and rewrite documents if needed."""
        *replies, counted = yield [
            ("HGET", self._meta_key, "fingerprint"),
            ("HGET", self._meta_key, "dims"),
            ("HGET", self._meta_key, "format"),
            ("EXISTS", self._count_key),
        ]
        fingerprint, old_dims, old_format = (_text_or_none(reply) for reply in replies)
        exists = yield from self._index_exists()
        if exists and not force_reembed and fingerprint == self._fingerprint:
            if not counted:  # a store written before namespaces were counted
                yield from self._recount()
            return  # else another process migrated it while we waited
        if exists:
            yield [("FT.DROPINDEX", self.name)]  # keeps the documents
        try:
            yield _Create()
        except Exception as error:
            if "already exists" not in _error_text(error):
                raise
        dims = "" if self.index is None else str(self.index.dims)
        known = fingerprint is not None
        reembed = self.index is not None and (force_reembed or (known and old_dims != dims))
        if reembed or (known and old_format != str(rq.DOC_FORMAT)) or (exists and not known):
            yield from self._rewrite_documents(reembed)
        elif not counted:
            yield from self._recount()
        yield [
            (
                "HSET",
                self._meta_key,
                "fingerprint",
                self._fingerprint,
                "dims",
                dims,
                "format",
                rq.DOC_FORMAT,
            )
        ]
        yield from self._wait_indexed()

    def _index_exists(self) -> Plan:
        try:
            yield [("FT.INFO", self.name)]
        except Exception as error:
            text = _error_text(error)
            if "unknown index" in text or "no such index" in text:
                return False
            if "unknown command" in text:
                raise RedisStoreError(
                    "RedisStore needs Redis with the search and JSON modules (Redis 8, Redis "
                    f"Stack, or relaygraph's embedded server); the server said: {error}"
                ) from error
            raise
        return True

    def _wait_indexed(self, timeout: float = 300.0) -> Plan:
        deadline = time.monotonic() + timeout
        while True:
            [info] = yield [("FT.INFO", self.name)]
            if not rq.info_field(info, "indexing"):
                return
            if time.monotonic() > deadline:
                raise RedisStoreError(f"index {self.name} is still indexing after {timeout}s")
            yield _Sleep(0.05)

    def _recount(self) -> Plan:
        """Count every item under each of its namespace prefixes (under the setup lock)."""
        counts: dict[str, int] = {}
        cursor = 0
        while True:
            [[cursor, keys]] = yield [
                ("SCAN", cursor, "MATCH", f"{self.prefix}*", "COUNT", 500, "TYPE", "ReJSON-RL")
            ]
            cursor = int(cursor)
            if keys:
                replies = yield [("JSON.GET", key, "$.ns") for key in keys]
                for reply in replies:
                    found = json.loads(rq.as_text(reply)) if reply is not None else None
                    if found and isinstance(found[0], list):
                        _count_namespace(counts, found[0])
            if cursor == 0:
                break
        yield from self._write_counts(counts)

    def _write_counts(self, counts: dict[str, int]) -> Plan:
        """Replace the namespace counts at once (built aside, then renamed over)."""
        aside = f"{self._count_key}:new"
        fields = [part for pair in counts.items() for part in pair]
        commands: Commands = [("DEL", aside), ("HSET", aside, "all", counts.get("all", 0))]
        for first in range(0, len(fields), 2000):
            commands.append(("HSET", aside, *fields[first : first + 2000]))
        yield [*commands, ("RENAME", aside, self._count_key)]

    def _rewrite_documents(self, reembed: bool) -> Plan:
        """Rewrite every document in the current layout (re-embedding when asked), and
        count the namespaces anew."""
        counts: dict[str, int] = {}
        cursor = 0
        paths = ("ns", "key", "value", "vfields", "ttl_ms", "vec")
        while True:
            [[cursor, keys]] = yield [
                ("SCAN", cursor, "MATCH", f"{self.prefix}*", "COUNT", 500, "TYPE", "ReJSON-RL")
            ]
            cursor = int(cursor)
            if keys:
                replies = yield [("JSON.GET", key, *(f"$.{p}" for p in paths)) for key in keys]
                docs = []
                for key, reply in zip(keys, replies, strict=True):
                    if reply is None:
                        continue
                    got = {p: v[0] for p, v in json.loads(rq.as_text(reply)).items() if v}
                    if not {"$.ns", "$.key", "$.value"} <= set(got):
                        continue
                    docs.append((key, got))
                texts: list[str] = []
                spans: list[tuple[int, int]] = []
                if reembed and self.index is not None:
                    for _, got in docs:
                        fields = got.get("$.vfields")
                        index_arg = False if fields == [] else fields
                        found = [t for _, t in self.index.texts_for(got["$.value"], index_arg)]
                        spans.append((len(texts), len(texts) + len(found)))
                        texts += found
                vectors = (yield _Embed(texts)) if texts else []
                commands: Commands = []
                for position, (key, got) in enumerate(docs):
                    _count_namespace(counts, got["$.ns"])
                    if reembed and self.index is not None:
                        start, end = spans[position]
                        doc_vectors = vectors[start:end]
                    else:
                        doc_vectors = got.get("$.vec") or []
                    doc = rq.build_document(
                        got["$.ns"],
                        got["$.key"],
                        got["$.value"],
                        doc_vectors,
                        int(got.get("$.ttl_ms") or 0),
                        got.get("$.vfields"),
                    )
                    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))[:-1]
                    commands.append(("EVAL", _MIGRATE_SCRIPT, 1, key, body))
                if commands:  # keep the setup lock while this (possibly long) pass runs
                    yield [*commands, ("PEXPIRE", self._lock_key, _LOCK_MS)]
            if cursor == 0:
                break
        yield from self._write_counts(counts)

    def _ensure_ready(self) -> None:
        if not self._ready:
            self.setup()

    async def _aensure_ready(self) -> None:
        if not self._ready:
            await self.asetup()

    # -- the primitive ---------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; consecutive gets and puts share one pipeline."""
        ops = self._validated(ops)
        self._ensure_ready()
        queries = self._queries(ops)
        query_vectors = (
            {q: self.index.embed_query(q) for q in queries} if self.index is not None else {}
        )
        return self._run(self._batch_plan(ops, query_vectors))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch`."""
        ops = self._validated(ops)
        await self._aensure_ready()
        query_vectors: dict[str, list[float]] = {}
        if self.index is not None:
            index = self.index
            queries = self._queries(ops)
            vectors = await asyncio.gather(*(index.aembed_query(q) for q in queries))
            query_vectors = dict(zip(queries, vectors, strict=True))
        return await self._arun(self._batch_plan(ops, query_vectors))

    @staticmethod
    def _validated(ops: Iterable[Op]) -> list[Op]:
        ops = list(ops)
        for op in ops:  # all or nothing: a bad op fails the batch before any write
            validate_op(op)
        return ops

    @staticmethod
    def _queries(ops: list[Op]) -> list[str]:
        return list(dict.fromkeys(op.query for op in ops if isinstance(op, SearchOp) and op.query))

    def _key(self, namespace: tuple[str, ...], key: str) -> str:
        return self.prefix + rq.item_digest(namespace, key)

    def _batch_plan(self, ops: list[Op], query_vectors: dict[str, list[float]]) -> Plan:
        vectors = yield from self._embed_puts(ops)
        results: list[Result] = [None] * len(ops)
        pending: list[tuple[int | None, tuple[Any, ...]]] = []

        def flush() -> Plan:
            if not pending:
                return
            replies = yield [command for _, command in pending]
            for (position, _), reply in zip(pending, replies, strict=True):
                if position is not None:
                    results[position] = self._get_result(ops[position], reply)  # type: ignore[arg-type]
            pending.clear()

        for position, op in enumerate(ops):
            if isinstance(op, PutOp):
                pending.append((None, self._put_command(op, vectors.get(position, []))))
            elif isinstance(op, GetOp):
                key = self._key(op.namespace, op.key)
                pending.append((position, ("EVAL", _GET_SCRIPT, 1, key, int(op.refresh_ttl))))
            elif isinstance(op, SearchOp):
                yield from flush()
                ranked = yield from self._search_plan(op, query_vectors.get(op.query or ""))
                results[position] = [_search_item(score, row) for score, row in ranked]
                if op.refresh_ttl:  # sent before any later op of the batch, in order
                    pending.extend(
                        (None, ("EVAL", _REFRESH_SCRIPT, 1, row.redis_key))
                        for _, row in ranked
                        if row.ttl_ms > 0
                    )
            else:
                assert isinstance(op, ListNamespacesOp)
                yield from flush()
                results[position] = yield from self._list_plan(op)
        yield from flush()
        return results

    # -- puts and gets ---------------------------------------------------------------

    def _embed_puts(self, ops: list[Op]) -> Plan:
        """Vectors of every put of the batch, from one embedding call."""
        if self.index is None:
            return {}
        spans: dict[int, tuple[int, int]] = {}
        texts: list[str] = []
        for position, op in enumerate(ops):
            if isinstance(op, PutOp) and op.value is not None:
                found = [text for _, text in self.index.texts_for(op.value, op.index)]
                spans[position] = (len(texts), len(texts) + len(found))
                texts += found
        vectors = (yield _Embed(texts)) if texts else []
        return {position: vectors[start:end] for position, (start, end) in spans.items()}

    def _put_command(self, op: PutOp, vectors: list[list[float]]) -> tuple[Any, ...]:
        key = self._key(op.namespace, op.key)
        if op.value is None:
            return ("EVAL", _DELETE_SCRIPT, 2, key, self._count_key)
        fields: list[str] | None
        if op.index is False:
            fields = []
        elif op.index is None:
            fields = None
        else:
            fields = list(op.index)
        try:
            rq.check_storable([*op.namespace, op.key])
            rq.check_storable(op.value)
            doc = rq.build_document(
                op.namespace, op.key, dict(op.value), vectors, _ttl_ms(op.ttl), fields
            )
            text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SerializationError(
                f"RedisStore stores items as JSON documents: key {op.key!r} in namespace "
                f"{op.namespace!r} cannot be stored ({error})"
            ) from error
        return (
            "EVAL",
            _PUT_SCRIPT,
            3,
            key,
            self._seq_key,
            self._count_key,
            text[:-1],
            _ttl_ms(op.ttl),
            *doc["pfx"],
        )

    def _get_result(self, op: GetOp, reply: Any) -> Item | None:
        row = rq.parse_get_reply(self._key(op.namespace, op.key), reply)
        if row is None or row.namespace != op.namespace or row.key != op.key:
            return None
        return _item(row)

    # -- search ----------------------------------------------------------------------

    def _search_plan(
        self, op: SearchOp, query_vector: list[float] | None
    ) -> Generator[Any, Any, list[tuple[float | None, rq.Row]]]:
        value_expr, exact = rq.compile_value_filter(op.filter)
        expr = rq.conj([rq.namespace_prefix_expr(op.namespace_prefix), value_expr])
        wanted = op.offset + op.limit
        if expr == rq.FALSE or op.limit == 0:
            return []
        predicate = compile_filter(op.filter)
        depth = len(op.namespace_prefix)

        def check(row: rq.Row) -> bool:
            return row.namespace[:depth] == op.namespace_prefix and predicate(row.value)

        if query_vector is None or self.index is None:
            rows = yield from self._newest(expr, exact, check, op.offset, op.limit)
            return [(None, row) for row in rows]
        if wanted > _MAX_RESULTS:
            raise ValueError(
                f"search: offset + limit of a semantic search is at most {_MAX_RESULTS:,} "
                f"(got offset={op.offset}, limit={op.limit}); page with a smaller limit"
            )
        # Only a namespace prefix filters on the server: its item count can pick the plan.
        counted = rq.prefix_tag(op.namespace_prefix) if op.namespace_prefix else None
        if value_expr != rq.TRUE:
            counted = None
        ranked: list[tuple[float | None, rq.Row]] = list(
            (yield from self._nearest(expr, exact, check, wanted, query_vector, counted))[:wanted]
        )
        if len(ranked) < wanted:  # items without an embedding follow, newest first
            unscored = rq.conj([expr, rq.Raw("@nvec:[0 0]")])
            rest = yield from self._newest(unscored, exact, check, 0, wanted - len(ranked))
            ranked += [(None, row) for row in rest]
        return ranked[op.offset : wanted]

    def _newest(
        self,
        expr: rq.Expr,
        exact: bool,
        check: Callable[[rq.Row], bool],
        offset: int,
        limit: int,
    ) -> Generator[Any, Any, list[rq.Row]]:
        """Matching rows, most recently written first, ``offset``/``limit`` applied.

        Exact filters page on the server; otherwise pages (keyset, by sequence, so
        concurrent writes never shift them) are re-checked until enough rows match.
        """

        def command(query: rq.Expr, start: int, count: int) -> tuple[Any, ...]:
            return (
                "FT.SEARCH",
                self.name,
                rq.render(query),
                *_RETURN_ARGS,
                "SORTBY",
                "seq",
                "DESC",
                "LIMIT",
                start,
                count,
                "DIALECT",
                3,
            )

        wanted = offset + limit
        if exact and wanted <= _MAX_RESULTS:
            [reply] = yield [command(expr, offset, limit)]
            rows, _ = rq.parse_search_reply(reply)
            return [row for row in rows if check(row)]
        # Keyset pages, never past the server's result cap (an offset beyond it included).
        matched: list[rq.Row] = []
        page = min(max(2 * wanted, 64), 10 * _PAGE)
        query = expr
        while True:
            [reply] = yield [command(query, 0, page)]
            rows, count = rq.parse_search_reply(reply)
            matched += [row for row in rows if check(row)]
            if len(matched) >= wanted or count < page or not rows:
                break
            last = min(row.seq for row in rows)
            query = rq.conj([expr, rq.Raw(f"@seq:[-inf ({last}]")])
            page = min(page * 2, 10 * _PAGE)
        return matched[offset:wanted]

    def _nearest(
        self,
        expr: rq.Expr,
        exact: bool,
        check: Callable[[rq.Row], bool],
        wanted: int,
        query_vector: list[float],
        counted: str | None = None,
    ) -> Generator[Any, Any, list[tuple[float, rq.Row]]]:
        """Up to ``wanted`` matching rows with vectors, best cosine similarity first
        (ties: newest first), through a RedisVL ``VectorQuery``.

        ``counted`` is the prefix tag when a namespace prefix is the whole server-side
        filter. Its item count then picks the plan: a prefix holding every item of the
        store needs no filter at all (rows are re-checked, and a row from another
        namespace sends the query again, filtered); one holding a large share forces
        RediSearch's BATCHES plan (:func:`~.redis_query.prefer_batches`). The count is
        read once per prefix, then refreshed along with a search every
        :data:`_COUNTS_FRESH` seconds: it only ever chooses the plan, never the results.
        """
        from redisvl.query import VectorQuery

        counts, refresh = None, False
        if counted is not None:
            cached = self._cached_counts(counted)
            if cached is None:
                [reply] = yield [("HMGET", self._count_key, counted, "all")]
                counts = self._remember_counts(counted, reply)
            else:
                counts, read_at = cached[:2], cached[2]
                refresh = time.monotonic() - read_at > _COUNTS_FRESH
        k = wanted if exact else max(4 * wanted, 64)
        whole = exact and counts is not None and 0 < counts[1] <= counts[0]
        while True:
            batches = counts is not None and rq.prefer_batches(counts[0], counts[1], k)
            query = VectorQuery(
                vector=query_vector,
                vector_field_name="vec",
                filter_expression=None if whole else rq.render(expr),
                num_results=k,
                return_score=True,
                dialect=3,
                hybrid_policy="BATCHES" if batches and not whole else None,
            )
            query.return_field(rq.RETURN_UNION, as_field=rq.RETURN_ALIAS)
            params: list[Any] = []
            for name, value in query.params.items():
                params += [name, value]
            commands: Commands = [
                ("FT.SEARCH", self.name, *query.get_args(), "PARAMS", len(params), *params)
            ]
            if refresh:
                commands.append(("HMGET", self._count_key, counted, "all"))
            reply, *refreshed = yield commands
            if refresh and counted is not None:
                counts = self._remember_counts(counted, refreshed[0])
                refresh = False
            rows, count = rq.parse_search_reply(reply)
            matched = [row for row in rows if check(row)]
            if whole and len(matched) < len(rows):  # the counts were stale: filter after all
                whole = False
                continue
            if exact or len(matched) >= wanted or count < k:
                break
            k *= 4
        scored = [(1.0 - (row.distance or 0.0), row) for row in matched]
        scored.sort(key=lambda pair: (-pair[0], -pair[1].seq))
        return scored

    def _cached_counts(self, tag: str) -> tuple[int, int, float] | None:
        with self._counts_lock:
            return self._counts.get(tag)

    def _remember_counts(self, tag: str, reply: Any) -> tuple[int, int]:
        """(items under the prefix, items in the store) from an HMGET reply, kept per tag."""
        subset, total = (max(0, int(part)) if part is not None else 0 for part in reply)
        with self._counts_lock:
            self._counts[tag] = (subset, total, time.monotonic())
            self._counts.move_to_end(tag)
            while len(self._counts) > 4096:
                self._counts.popitem(last=False)
        return subset, total

    # -- list_namespaces -------------------------------------------------------------

    def _list_plan(self, op: ListNamespacesOp) -> Generator[Any, Any, list[tuple[str, ...]]]:
        conditions = op.match_conditions or ()
        expr, _ = rq.match_conditions_expr(conditions)
        if expr == rq.FALSE or op.limit == 0:
            return []
        [reply] = yield [
            (
                "FT.AGGREGATE",
                self.name,
                rq.render(expr),
                "LOAD",
                3,
                "$.ns",
                "AS",
                "ns",
                # Dialect 2: under dialect 3 RediSearch merges groups of loaded arrays.
                "GROUPBY",
                1,
                "@ns",
                "WITHCURSOR",
                "COUNT",
                _PAGE,
                "DIALECT",
                2,
            )
        ]
        found: set[tuple[str, ...]] = set()
        while True:
            namespaces, cursor = rq.parse_aggregate_rows(reply)
            for namespace in namespaces:
                if all(namespace_matches(namespace, c) for c in conditions):
                    found.add(namespace if op.max_depth is None else namespace[: op.max_depth])
            if cursor == 0:
                break
            [reply] = yield [("FT.CURSOR", "READ", self.name, cursor, "COUNT", _PAGE)]
        return sorted(found)[op.offset : op.offset + op.limit]


_UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

AsyncRedisStore = RedisStore
"""The same class: every method has an ``a``-prefixed async twin (LangGraph-style name)."""
