"""What the SQLite and PostgreSQL savers share: schema access, operations, and the saver.

Every saver operation is written once, as a *sans-IO generator*: it yields :class:`Query`
objects and receives their results, and returns its answer. A backend only supplies a
*driver* that runs such a generator in one transaction on its connection, sync or async
(:meth:`SqlSaver._execute` / :meth:`SqlSaver._aexecute`). So the compare-and-set commit,
idempotent writes, retention and the listing index are the same code on sqlite3, aiosqlite,
psycopg and psycopg's asyncio connections; only :class:`Dialect` spells the differences.

Tables (``migrations/<dialect>/*.sql``): ``relaygraph_checkpoints`` (header and metadata,
never values), ``relaygraph_blobs`` (one row per channel version; append rows hold only the
new items and name their base), ``relaygraph_writes``, ``relaygraph_heads`` (moved only by
compare-and-set) and ``relaygraph_threads`` (per-thread expiry).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from relaygraph.persistence import migrations
from relaygraph.persistence.base import (
    ANY_HEAD,
    SPECIAL_WRITE_INDEX,
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    checkpoint_id_of,
    checkpoint_ns_of,
    make_config,
    metadata_matches,
    thread_id_of,
)
from relaygraph.persistence.blobs import (
    EMPTY,
    ResolvedCache,
    blobs_for_put,
    decode_blob,
    decode_header,
    encode_header,
    load_channel_values,
)
from relaygraph.persistence.errors import (
    CheckpointConflict,
    CheckpointExistsError,
    CorruptCheckpointError,
    RelaygraphError,
    SerializationError,
)
from relaygraph.persistence.serde import Serializer

__all__ = [
    "Dialect",
    "Op",
    "Query",
    "SetupRequiredError",
    "SqlSaver",
]

T = TypeVar("T")
Fetch = Literal["none", "one", "all", "rowcount"]
Key = tuple[str, str, str, str]
"""A blob's key: (thread_id, checkpoint_ns, channel, version)."""

LIST_PAGE_SIZE = 100
"""Checkpoints read per query while listing; ``list`` has no cap, it pages on."""


class SetupRequiredError(RelaygraphError, RuntimeError):
    """The database has no (or an older) relaygraph schema: call ``setup()`` first."""


@dataclass(frozen=True, slots=True)
class Query:
    """One statement for a driver to run. SQL uses ``?`` placeholders in every dialect.

    ``many`` runs the statement once per parameter tuple in ``params``; ``fetch`` says what
    to send back: nothing, one row (or None), all rows, or the affected row count.
    """

    sql: str
    params: Sequence[Any] | None = None
    fetch: Fetch = "none"
    many: bool = False


Op = Generator[Query, Any, T]
"""A sans-IO database operation: yields queries, receives their results, returns a value."""


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared operations need."""

    name: str
    placeholder: str
    json_param: str  # how a JSON text parameter is written in INSERTs
    for_update: str  # row lock suffix for SELECTs that guard a thread (empty on SQLite)
    lock_migrations: str | None  # statement serializing concurrent setup() calls
    text_param: str  # a text parameter comparable with key columns (collation included)
    # Key limits (None: none): bytes of thread_id / checkpoint_ns, and of the other ids
    # (checkpoint id, channel, version, task id, run id); whether NUL is refused.
    max_thread_bytes: int | None = None
    max_id_bytes: int | None = None
    refuses_nul: bool = False
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def check_ids(self, thread_id: str | None, ns: str | None, **ids: Any) -> None:
        """A ValueError naming the field when this database cannot store an id as a key:
        up front, instead of the driver's error half-way through an operation."""
        if self.max_thread_bytes is None and not self.refuses_nul:
            return
        parts = [("thread_id", thread_id, self.max_thread_bytes)]
        parts.append(("checkpoint_ns", ns, self.max_thread_bytes))
        parts += [(name, value, self.max_id_bytes) for name, value in ids.items()]
        for name, value, limit in parts:
            if value is None:
                continue
            text = str(value)
            if self.refuses_nul and "\0" in text:
                raise ValueError(
                    f"{name} must not contain NUL characters ({self.name} text cannot hold "
                    f"them): {text[:60]!r}"
                )
            size = len(text.encode("utf-8", "surrogatepass"))
            if limit is not None and size > limit:
                raise ValueError(
                    f"{name} is {size} bytes; {self.name} keys hold at most {limit} bytes "
                    f"(an index row must fit a page): {text[:60]!r}..."
                )

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders rewritten for this database's driver."""
        if self.placeholder == "?":
            return text
        converted = self._cache.get(text)
        if converted is None:
            converted = text.replace("%", "%%").replace("?", self.placeholder)
            self._cache[text] = converted
        return converted

    def metadata_filter(self, key: str, value: Any) -> tuple[str, list[Any]] | None:
        """A WHERE clause narrowing ``metadata[key] == value``, or None to filter in Python.

        Only scalars are pushed into SQL; results are always checked again in Python with
        :func:`metadata_matches`, so a clause may let through more, never fewer, rows.
        """
        if isinstance(value, (dict, list, tuple)) or not isinstance(
            value, (str, int, float, bool, type(None))
        ):
            return None
        if self.name == "postgres":
            # jsonb equality keeps true and 1 (false and 0) apart, Python's == does not:
            # such values are filtered in Python only, so no row is dropped here.
            if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
                return None
            return "c.metadata_json -> CAST(? AS TEXT) = CAST(? AS jsonb)", [
                key,
                json.dumps(_jsonable(value)),
            ]
        if '"' in key or "\\" in key:
            return None
        # IS rather than =: a JSON null filter must match (missing keys pass, Python decides)
        return "json_extract(c.metadata_json, ?) IS json_extract(?, '$')", [
            f'$."{key}"',
            json.dumps(value),
        ]


SQLITE = Dialect("sqlite", "?", "?", "", None, "CAST(? AS TEXT)")
POSTGRES = Dialect(
    "postgres",
    "%s",
    "CAST(? AS jsonb)",
    " FOR UPDATE",
    "SELECT pg_advisory_xact_lock(hashtext('relaygraph.migrations:' || current_schema()))",
    'CAST(? AS TEXT) COLLATE "C"',
    # A B-tree entry holds at most 2,704 bytes: the widest key (writes: thread, namespace,
    # checkpoint, task, index) stays below it.
    max_thread_bytes=1000,
    max_id_bytes=256,
    refuses_nul=True,
)


# -- raw rows an operation returns (decoded outside the transaction) --------------------


@dataclass(slots=True)
class _RawCheckpoint:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    header: bytes
    metadata: bytes
    versions: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, str, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class _RawPage:
    items: list[_RawCheckpoint]
    blobs: dict[Key, bytes]
    exhausted: bool
    cached: dict[Key, Any] = field(default_factory=dict)  # resolved lists the read relied on


@dataclass(slots=True)
class _PreparedPut:
    thread_id: str
    checkpoint_ns: str
    parent_id: str | None
    checkpoint: Checkpoint
    versions: dict[str, str]
    new_versions: dict[str, str]
    header: bytes
    metadata: bytes
    metadata_json: str
    run_id: str | None
    blobs: dict[tuple[str, str], bytes]


# -- SQL --------------------------------------------------------------------------------

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS relaygraph_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""

_EXPIRED = (
    "EXISTS (SELECT 1 FROM relaygraph_threads t WHERE t.thread_id = c.thread_id"
    " AND t.expires_at <= ?)"
)

_SELECT_ONE = f"""SELECT c.checkpoint_id, c.parent_checkpoint_id, c.header, c.metadata
FROM relaygraph_checkpoints c
WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = COALESCE(CAST(? AS TEXT),
    (SELECT h.checkpoint_id FROM relaygraph_heads h
     WHERE h.thread_id = ? AND h.checkpoint_ns = ?))
  AND NOT {_EXPIRED}"""

_INSERT_BLOB = """INSERT INTO relaygraph_blobs
    (thread_id, checkpoint_ns, channel, version, base_version, data)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, checkpoint_ns, channel, version)
DO UPDATE SET base_version = excluded.base_version, data = excluded.data"""

_INSERT_WRITE = """INSERT INTO relaygraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, task_path, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO """
_WRITE_FIRST_WINS = _INSERT_WRITE + "NOTHING"
_WRITE_REPLACES = (
    _INSERT_WRITE
    + "UPDATE SET channel = excluded.channel, task_path = excluded.task_path, data = excluded.data"
)

_TOUCH_THREAD = """INSERT INTO relaygraph_threads (thread_id, expires_at) VALUES (?, ?)
ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at"""

_THREAD_TABLES = (
    "relaygraph_writes",
    "relaygraph_blobs",
    "relaygraph_checkpoints",
    "relaygraph_heads",
    "relaygraph_threads",
)


def _values(dialect: Dialect, rows: int, columns: int) -> str:
    """``(CAST(? AS TEXT), ...), ...``: a typed VALUES list of text parameters."""
    row = "(" + ", ".join([dialect.text_param] * columns) + ")"
    return ", ".join([row] * rows)


def _exact_blobs_query(dialect: Dialect, keys: Sequence[Key]) -> Query:
    """The blobs stored at exactly the given (thread, ns, channel, version) keys."""
    sql = f"""WITH want(thread_id, checkpoint_ns, channel, version) AS (
    VALUES {_values(dialect, len(keys), 4)})
SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.data
FROM relaygraph_blobs b JOIN want w
  ON b.thread_id = w.thread_id AND b.checkpoint_ns = w.checkpoint_ns
 AND b.channel = w.channel AND b.version = w.version"""
    return Query(sql, [part for key in keys for part in key], "all")


def _range_blobs_query(ranges: Sequence[tuple[str, str, str, str]]) -> Query:
    """Every blob of each (thread, ns, channel) up to a version: one index range scan each."""
    one = """SELECT thread_id, checkpoint_ns, channel, version, data FROM relaygraph_blobs
WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version <= ?"""
    return Query("\nUNION ALL\n".join([one] * len(ranges)), [p for r in ranges for p in r], "all")


def _append_base(data: bytes) -> str | None:
    """The version an append blob extends (None for other blobs and unreadable ones)."""
    if data[:1] != b"A":
        return None
    try:
        _, base, _ = decode_blob(data)
    except Exception:
        return None  # resolve_channel reports it, naming the checkpoint
    return base[0] if base else None


def _writes_query(dialect: Dialect, keys: Sequence[tuple[str, str, str]]) -> Query:
    """The pending writes of the given (thread, ns, checkpoint id) keys, in write order."""
    values = _values(dialect, len(keys), 3)
    sql = f"""WITH want(thread_id, checkpoint_ns, checkpoint_id) AS (VALUES {values})
SELECT x.thread_id, x.checkpoint_ns, x.checkpoint_id, x.task_id, x.channel, x.data
FROM relaygraph_writes x JOIN want w
  ON x.thread_id = w.thread_id AND x.checkpoint_ns = w.checkpoint_ns
 AND x.checkpoint_id = w.checkpoint_id
ORDER BY x.seq"""
    return Query(sql, [part for key in keys for part in key], "all")


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON (NUL-free strings, finite numbers, anything else as repr)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {_jsonable(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return _jsonable(repr(value))


def _metadata_json(metadata: CheckpointMetadata) -> str:
    # Only for filtering in SQL; the serializer's bytes are what is read back.
    return json.dumps(_jsonable(metadata))


class _ValueCache:
    """Resolved list values (message histories) by blob key, shared by a saver's reads.

    Versions are immutable, so an entry stays right until its thread is deleted or pruned
    (the saver then clears the cache) or a put stores a version again (cleared too). Another
    process re-creating a deleted thread with the same version strings is not seen: relaygraph
    versions carry a random suffix, so only hand-made versions can collide that way.
    """

    def __init__(self, size: int) -> None:
        self._cache = ResolvedCache(size)

    @staticmethod
    def _channel(thread_id: str, checkpoint_ns: str, channel: str) -> str:
        return f"{thread_id}\x00{checkpoint_ns}\x00{channel}"

    def get(self, key: Key) -> Any:
        """A copy of the cached value, or EMPTY."""
        return self._cache.get(self._channel(*key[:3]), key[3])

    def put(self, key: Key, value: Any) -> None:
        """Remember a resolved list."""
        self._cache.put(self._channel(*key[:3]), key[3], value)

    def clear(self) -> None:
        """Forget everything."""
        self._cache.clear()


class _ScopedCache:
    """What resolve_channel sees: the values a read pinned, then the saver's cache."""

    def __init__(self, cache: _ValueCache, pinned: dict[Key, Any], thread_id: str, ns: str):
        self._cache, self._pinned, self._scope = cache, pinned, (thread_id, ns)

    def get(self, channel: str, version: str) -> Any:
        key = (*self._scope, channel, version)
        if key in self._pinned:
            value = self._pinned[key]
            return list(value) if isinstance(value, list) else value
        return self._cache.get(key)

    def put(self, channel: str, version: str, value: Any) -> None:
        self._cache.put((*self._scope, channel, version), value)


class _Ops:
    """The saver's operations as sans-IO generators (see :data:`Op`)."""

    def __init__(
        self, dialect: Dialect, ttl: float | None, refresh_on_read: bool, cache: _ValueCache
    ) -> None:
        self.dialect = dialect
        self.ttl = ttl
        self.refresh_on_read = refresh_on_read
        self.cache = cache

    # -- schema --------------------------------------------------------------------------

    def migrate(self) -> Op[list[int]]:
        """Apply every migration not yet applied; returns the versions applied now."""
        if self.dialect.lock_migrations:
            yield Query(self.dialect.lock_migrations, None, "one")
        yield Query(_MIGRATIONS_TABLE)
        rows = yield Query("SELECT version FROM relaygraph_migrations", None, "all")
        done = {row[0] for row in rows}
        applied = []
        for migration in migrations.load(self.dialect.name):
            if migration.version in done:
                continue
            for statement in migration.statements:
                yield Query(statement)
            yield Query(
                "INSERT INTO relaygraph_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [migration.version, migration.name, time.time()],
            )
            applied.append(migration.version)
        return applied

    def schema_version(self) -> Op[int]:
        """The newest applied migration (the driver maps a missing table to setup errors)."""
        row = yield Query("SELECT MAX(version) FROM relaygraph_migrations", None, "one")
        return int(row[0] or 0) if row else 0

    # -- expiry ----------------------------------------------------------------------------

    def touch(self, thread_ids: Iterable[str], now: float) -> Op[None]:
        """Push the threads' expiry ``ttl`` seconds past ``now`` (no-op without a TTL)."""
        if self.ttl:
            rows = [(thread_id, now + self.ttl) for thread_id in thread_ids]
            if rows:
                yield Query(_TOUCH_THREAD, rows, many=True)

    def _drop_if_expired(self, thread_id: str, now: float) -> Op[None]:
        row = yield Query(
            "SELECT expires_at FROM relaygraph_threads WHERE thread_id = ?", [thread_id], "one"
        )
        if row is not None and row[0] is not None and row[0] <= now:
            yield from self._delete_thread(thread_id)

    def sweep_expired(self, now: float) -> Op[int]:
        """Delete every thread whose expiry has passed; returns how many."""
        rows = yield Query(
            "SELECT thread_id FROM relaygraph_threads WHERE expires_at <= ?", [now], "all"
        )
        for (thread_id,) in rows:
            yield from self._delete_thread(thread_id)
        return len(rows)

    # -- reading ---------------------------------------------------------------------------

    def get(self, thread_id: str, ns: str, checkpoint_id: str | None, now: float) -> Op[Any]:
        """The raw checkpoint and its blobs, or None."""
        row = yield Query(_SELECT_ONE, [thread_id, ns, checkpoint_id, thread_id, ns, now], "one")
        if row is None:
            return None
        raw = _RawCheckpoint(thread_id, ns, row[0], row[1], bytes(row[2]), bytes(row[3]))
        page = yield from self._complete([raw])
        return page

    def list_page(
        self,
        *,
        thread_id: str | None,
        ns: str | None,
        only_id: str | None,
        before_id: str | None,
        filter: dict[str, Any] | None,
        after: tuple[str, str, str] | None,
        size: int,
        now: float,
    ) -> Op[_RawPage]:
        """One page of the listing, newest first, after the ``after`` sort key."""
        where, params = [f"NOT {_EXPIRED}"], [now]
        for column, value in (
            ("c.thread_id", thread_id),
            ("c.checkpoint_ns", ns),
            ("c.checkpoint_id", only_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before_id is not None:
            where.append("c.checkpoint_id < ?")
            params.append(before_id)
        for key, value in (filter or {}).items():
            clause = self.dialect.metadata_filter(str(key), value)
            if clause is not None:
                where.append(clause[0])
                params.extend(clause[1])
        if after is not None:
            where.append("(c.checkpoint_id, c.thread_id, c.checkpoint_ns) < (?, ?, ?)")
            params.extend(after)
        sql = f"""SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
    c.header, c.metadata
FROM relaygraph_checkpoints c
WHERE {" AND ".join(where)}
ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC
LIMIT {int(size)}"""
        rows = yield Query(sql, params, "all")
        raws = [_RawCheckpoint(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in rows]
        page = yield from self._complete(raws)
        page.exhausted = len(rows) < size
        return page

    def _complete(self, raws: list[_RawCheckpoint]) -> Op[_RawPage]:
        """Fetch the blobs and pending writes of ``raws`` (headers decoded for versions)."""
        keys: set[Key] = set()
        for raw in raws:
            try:
                raw.versions = dict(decode_header(raw.header)["channel_versions"])
            except SerializationError:
                raw.versions = {}  # reported when the tuple is built
            keys.update((raw.thread_id, raw.checkpoint_ns, c, v) for c, v in raw.versions.items())
        cached: dict[Key, Any] = {}
        blobs = yield from self._blobs(keys, cached)
        by_key = {(r.thread_id, r.checkpoint_ns, r.checkpoint_id): r for r in raws}
        wanted = list(by_key)
        for start in range(0, len(wanted), 2000):
            rows = yield _writes_query(self.dialect, wanted[start : start + 2000])
            for r in rows:
                by_key[r[0], r[1], r[2]].writes.append((r[3], r[4], bytes(r[5])))
        return _RawPage(raws, blobs, exhausted=True, cached=cached)

    def _blobs(self, wanted: set[Key], cached: dict[Key, Any]) -> Op[dict[Key, bytes]]:
        """The blobs that resolving ``wanted`` needs: each key and its append chain.

        A chain stops at a full blob or at a value in the cache (copied into ``cached``, so
        eviction cannot pull it away before the values are built). The keys themselves are
        read exactly; the chain below them with one range scan per channel (versions sort
        in the order they were made); exact reads then fetch whatever a range missed.
        """
        blobs: dict[Key, bytes] = {}
        tried: set[Key] = set()
        ranged: set[tuple[str, str, str]] = set()

        def covered(key: Key) -> bool:
            if key in cached:
                return True
            value = self.cache.get(key)
            if value is EMPTY:
                return False
            cached[key] = value
            return True

        exact = {key for key in wanted if not covered(key)}
        ranges: dict[tuple[str, str, str], str] = {}
        while exact or ranges:
            tried |= exact
            todo = sorted(exact)
            # bounded statements: SQLite allows 32766 parameters, PostgreSQL 65535
            for start in range(0, len(todo), 2000):
                rows = yield _exact_blobs_query(self.dialect, todo[start : start + 2000])
                blobs.update({(r[0], r[1], r[2], r[3]): bytes(r[4]) for r in rows})
            spans = [(*scope, upto) for scope, upto in sorted(ranges.items())]
            for start in range(0, len(spans), 500):
                rows = yield _range_blobs_query(spans[start : start + 500])
                blobs.update({(r[0], r[1], r[2], r[3]): bytes(r[4]) for r in rows})
            ranged |= ranges.keys()
            exact, ranges = set(), {}
            for key in wanted:
                base = self._missing_base(key, blobs, covered)
                if base is None or base in tried:
                    continue
                scope = base[:3]
                if scope in ranged:
                    exact.add(base)
                else:
                    ranges[scope] = max(ranges.get(scope, base[3]), base[3])
        return blobs

    @staticmethod
    def _missing_base(
        key: Key, blobs: dict[Key, bytes], covered: Callable[[Key], bool]
    ) -> Key | None:
        """The first key of ``key``'s chain that is neither read nor cached, if any."""
        at, seen = key, set()
        while not covered(at):
            data = blobs.get(at)
            if data is None:
                return at
            if at in seen:
                return None  # a cycle: resolve_channel reports it
            seen.add(at)
            base = _append_base(data)
            if base is None:
                return None
            at = (at[0], at[1], at[2], base)
        return None

    # -- writing ---------------------------------------------------------------------------

    def put(self, put: _PreparedPut, expected_head: Any, serde: Serializer, now: float) -> Op[bool]:
        """Compare-and-set the head, then store header, metadata and missing blobs.

        Returns whether a version already stored was written again (caches must forget it).
        """
        thread_id, ns, new_id = put.thread_id, put.checkpoint_ns, put.checkpoint["id"]
        yield from self._drop_if_expired(thread_id, now)
        head_key = [thread_id, ns]
        stored = yield Query(
            "SELECT parent_checkpoint_id, header, metadata FROM relaygraph_checkpoints"
            " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
            + self.dialect.for_update,
            [thread_id, ns, new_id],
            "one",
        )
        # Immutable: the same checkpoint again is a no-op (a retry), other content under a
        # stored id is refused after the compare-and-set (which speaks first); the raise
        # rolls the transaction back.
        if stored is not None and (stored[0], bytes(stored[1]), bytes(stored[2])) == (
            put.parent_id,
            put.header,
            put.metadata,
        ):
            return False
        if expected_head is ANY_HEAD:
            yield Query(
                "INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)"
                " VALUES (?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns)"
                " DO UPDATE SET checkpoint_id = excluded.checkpoint_id",
                [*head_key, new_id],
            )
        else:
            if expected_head is None:
                moved = yield Query(
                    "INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)"
                    " VALUES (?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING",
                    [*head_key, new_id],
                    "rowcount",
                )
            else:
                moved = yield Query(
                    "UPDATE relaygraph_heads SET checkpoint_id = ?"
                    " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                    [new_id, *head_key, str(expected_head)],
                    "rowcount",
                )
            if moved != 1:
                row = yield Query(
                    "SELECT checkpoint_id FROM relaygraph_heads"
                    " WHERE thread_id = ? AND checkpoint_ns = ?",
                    head_key,
                    "one",
                )
                raise CheckpointConflict(thread_id, ns, expected_head, row[0] if row else None)
        if stored is not None:
            raise CheckpointExistsError(thread_id, ns, new_id)
        blobs, rewritten = yield from self._settle_blobs(put, serde)
        if blobs:
            yield Query(
                _INSERT_BLOB,
                [(thread_id, ns, c, v, base, data) for (c, v), (base, data) in blobs.items()],
                many=True,
            )
        yield Query(
            f"""INSERT INTO relaygraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, run_id, header, metadata, metadata_json)
VALUES (?, ?, ?, ?, ?, ?, ?, {self.dialect.json_param})
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING""",
            [
                thread_id,
                ns,
                new_id,
                put.parent_id,
                put.run_id,
                put.header,
                put.metadata,
                put.metadata_json,
            ],
        )
        yield from self.touch([thread_id], now)
        return rewritten

    def _settle_blobs(
        self, put: _PreparedPut, serde: Serializer
    ) -> Op[tuple[dict[tuple[str, str], tuple[str | None, bytes]], bool]]:
        """The blobs to store: ``put.blobs``, fixed up against what the thread already holds.

        An append blob whose base is not stored becomes a full one, and a version of the
        checkpoint that nothing stores (a caller that left it out of ``new_versions``) is
        written too, as :class:`~relaygraph.persistence.memory.InMemorySaver` does.
        """
        blobs = dict(put.blobs)
        bases = {}
        for key, data in blobs.items():
            base = _append_base(data)
            if base is not None:
                bases[key] = (key[0], base)
        probe = set(put.versions.items()) | set(blobs)
        probe.update(bases.values())
        present: set[tuple[str, str]] = set()
        if probe:
            keys = sorted(probe)
            rows = yield Query(
                f"""WITH want(channel, version) AS (VALUES {_values(self.dialect, len(keys), 2)})
SELECT b.channel, b.version FROM relaygraph_blobs b JOIN want w
  ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = w.channel
 AND b.version = w.version""",
                [*(part for key in keys for part in key), put.thread_id, put.checkpoint_ns],
                "all",
            )
            present = {(r[0], r[1]) for r in rows}
        redo = {key[0]: key[1] for key, base in bases.items() if base not in present}
        missing = {
            c: v
            for c, v in put.versions.items()
            if c not in put.new_versions and (c, v) not in present
        }
        if redo:
            blobs.update(blobs_for_put(serde, put.checkpoint, redo, lambda c, v: False))
        if missing:
            blobs.update(
                blobs_for_put(serde, put.checkpoint, missing, lambda c, v: (c, v) in present)
            )
        settled: dict[tuple[str, str], tuple[str | None, bytes]] = {}
        for key, data in blobs.items():
            settled[key] = (_append_base(data), data)
        return settled, any(key in present for key in put.blobs)

    def put_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        rows: list[tuple[str, int, bytes]],
        task_id: str,
        task_path: str,
        now: float,
    ) -> Op[None]:
        """Insert writes: first per (task_id, idx) wins, special channels replace."""
        yield from self._drop_if_expired(thread_id, now)
        first = [r for r in rows if r[0] not in SPECIAL_WRITE_INDEX]
        special = [r for r in rows if r[0] in SPECIAL_WRITE_INDEX]
        for sql, group in ((_WRITE_FIRST_WINS, first), (_WRITE_REPLACES, special)):
            if group:
                yield Query(
                    sql,
                    [
                        (thread_id, ns, checkpoint_id, task_id, idx, channel, task_path, data)
                        for channel, idx, data in group
                    ],
                    many=True,
                )
        yield from self.touch([thread_id], now)

    def stored_bytes(self, thread_id: str) -> Op[int]:
        """Bytes of payload a thread holds: headers, metadata, blobs and writes."""
        total = 0
        for sql in (
            "SELECT SUM(length(header) + length(metadata)) FROM relaygraph_checkpoints",
            "SELECT SUM(length(data)) FROM relaygraph_blobs",
            "SELECT SUM(length(data)) FROM relaygraph_writes",
        ):
            row = yield Query(sql + " WHERE thread_id = ?", [thread_id], "one")
            total += int(row[0] or 0) if row else 0
        return total

    # -- retention -------------------------------------------------------------------------

    def _delete_thread(self, thread_id: str) -> Op[None]:
        for table in _THREAD_TABLES:
            yield Query(f"DELETE FROM {table} WHERE thread_id = ?", [thread_id])

    def delete_thread(self, thread_id: str) -> Op[None]:
        """Delete every row of a thread."""
        yield from self._delete_thread(thread_id)

    def copy_thread(self, source: str, target: str, now: float) -> Op[None]:
        """Copy every row of ``source`` to the empty thread ``target``."""
        yield from self._drop_if_expired(source, now)
        yield from self._drop_if_expired(target, now)
        row = yield Query(
            "SELECT 1 FROM relaygraph_checkpoints WHERE thread_id = ? LIMIT 1", [target], "one"
        )
        if row is not None:
            raise ValueError(
                f"copy_thread: target thread {target!r} already has checkpoints; "
                "delete it first or choose another thread id"
            )
        yield from self._delete_thread(target)
        columns = {
            "relaygraph_checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
            " run_id, header, metadata, metadata_json",
            "relaygraph_blobs": "checkpoint_ns, channel, version, base_version, data",
            "relaygraph_writes": "checkpoint_ns, checkpoint_id, task_id, idx, channel,"
            " task_path, data",
            "relaygraph_heads": "checkpoint_ns, checkpoint_id",
        }
        for table, rest in columns.items():
            order = " ORDER BY seq" if table == "relaygraph_writes" else ""
            yield Query(
                f"INSERT INTO {table} (thread_id, {rest})"
                f" SELECT ?, {rest} FROM {table} WHERE thread_id = ?{order}",
                [target, source],
            )
        yield from self.touch([target], now)

    def prune(self, thread_ids: Sequence[str], keep_last: int) -> Op[None]:
        """Keep the newest ``keep_last`` checkpoints (and the head) of each namespace."""
        for thread_id in thread_ids:
            heads = yield Query(
                "SELECT checkpoint_ns, checkpoint_id FROM relaygraph_heads WHERE thread_id = ?"
                + self.dialect.for_update,
                [thread_id],
                "all",
            )
            head_of = {ns: cid for ns, cid in heads}
            spaces = yield Query(
                "SELECT DISTINCT checkpoint_ns FROM relaygraph_checkpoints WHERE thread_id = ?",
                [thread_id],
                "all",
            )
            for (ns,) in spaces:
                cutoff = yield Query(
                    "SELECT checkpoint_id FROM relaygraph_checkpoints"
                    " WHERE thread_id = ? AND checkpoint_ns = ?"
                    f" ORDER BY checkpoint_id DESC LIMIT 1 OFFSET {int(keep_last) - 1}",
                    [thread_id, ns],
                    "one",
                )
                if cutoff is None:
                    continue
                keep_head = head_of.get(ns) or cutoff[0]
                for table in ("relaygraph_writes", "relaygraph_checkpoints"):
                    yield Query(
                        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ?"
                        " AND checkpoint_id < ? AND checkpoint_id <> ?",
                        [thread_id, ns, cutoff[0], keep_head],
                    )
                yield from self._collect(thread_id, ns)

    def delete_for_runs(self, run_ids: Sequence[str]) -> Op[None]:
        """Delete the checkpoints made by ``run_ids`` and their writes; heads move back."""
        marks = ", ".join("?" * len(run_ids))
        spaces = yield Query(
            "SELECT DISTINCT thread_id, checkpoint_ns FROM relaygraph_checkpoints"
            f" WHERE run_id IN ({marks})",
            list(run_ids),
            "all",
        )
        for thread_id, ns in sorted(spaces):
            yield Query(
                "SELECT checkpoint_id FROM relaygraph_heads WHERE thread_id = ?"
                f" AND checkpoint_ns = ?{self.dialect.for_update}",
                [thread_id, ns],
                "all",
            )
            yield Query(
                """DELETE FROM relaygraph_writes WHERE thread_id = ? AND checkpoint_ns = ?
AND checkpoint_id IN (SELECT checkpoint_id FROM relaygraph_checkpoints
    WHERE thread_id = ? AND checkpoint_ns = ? AND run_id IN ("""
                + marks
                + "))",
                [thread_id, ns, thread_id, ns, *run_ids],
            )
            yield Query(
                "DELETE FROM relaygraph_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
                f" AND run_id IN ({marks})",
                [thread_id, ns, *run_ids],
            )
            yield from self._collect(thread_id, ns)

    def _collect(self, thread_id: str, ns: str) -> Op[None]:
        """After deleting checkpoints: move a lost head back and drop unreachable blobs."""
        key = [thread_id, ns]
        newest = yield Query(
            "SELECT MAX(checkpoint_id) FROM relaygraph_checkpoints"
            " WHERE thread_id = ? AND checkpoint_ns = ?",
            key,
            "one",
        )
        if newest is None or newest[0] is None:
            yield Query(
                "DELETE FROM relaygraph_heads WHERE thread_id = ? AND checkpoint_ns = ?", key
            )
        else:
            yield Query(
                """UPDATE relaygraph_heads SET checkpoint_id = ?
WHERE thread_id = ? AND checkpoint_ns = ? AND NOT EXISTS (
    SELECT 1 FROM relaygraph_checkpoints c WHERE c.thread_id = ? AND c.checkpoint_ns = ?
    AND c.checkpoint_id = relaygraph_heads.checkpoint_id)""",
                [newest[0], *key, *key],
            )
        headers = yield Query(
            "SELECT header FROM relaygraph_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?",
            key,
            "all",
        )
        live: set[tuple[str, str]] = set()
        for (header,) in headers:
            try:
                live.update(decode_header(bytes(header))["channel_versions"].items())
            except SerializationError:
                return  # a corrupt header: keep every blob rather than guess
        rows = yield Query(
            "SELECT channel, version, base_version FROM relaygraph_blobs"
            " WHERE thread_id = ? AND checkpoint_ns = ?",
            key,
            "all",
        )
        base_of = {(r[0], r[1]): r[2] for r in rows}
        reachable: set[tuple[str, str]] = set()
        for start in live:
            at: tuple[str, str] | None = start
            while at is not None and at not in reachable and at in base_of:
                reachable.add(at)
                base = base_of[at]
                at = (at[0], base) if base is not None else None
        doomed = [(thread_id, ns, c, v) for (c, v) in base_of if (c, v) not in reachable]
        if doomed:
            yield Query(
                "DELETE FROM relaygraph_blobs WHERE thread_id = ? AND checkpoint_ns = ?"
                " AND channel = ? AND version = ?",
                doomed,
                many=True,
            )


# -- the saver ------------------------------------------------------------------------------


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
        self._cache = _ValueCache(cache_size)
        self._ops = _Ops(self.dialect, ttl, refresh_on_read, self._cache)
        self._ready = False

    # -- drivers (backend-specific) ------------------------------------------------------

    @abstractmethod
    def _execute(self, op: Callable[[], Op[T]], *, write: bool) -> T:
        """Run the generator ``op()`` in one transaction (IMMEDIATE when ``write``)."""

    @abstractmethod
    async def _aexecute(self, op: Callable[[], Op[T]], *, write: bool) -> T:
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

    def _run(self, op: Callable[[], Op[T]], *, write: bool) -> T:
        if not self._ready:
            check, check_writes = self._readiness()
            self._execute(check, write=check_writes)
            self._ready = True
        return self._execute(op, write=write)

    async def _arun(self, op: Callable[[], Op[T]], *, write: bool) -> T:
        if not self._ready:
            check, check_writes = self._readiness()
            await self._aexecute(check, write=check_writes)
            self._ready = True
        return await self._aexecute(op, write=write)

    def _refresh(self, page: _RawPage | None) -> None:
        """Refresh the expiry of threads just read (its own small write transaction)."""
        if page and page.items and self.ttl and self.refresh_on_read:
            threads, now = sorted({raw.thread_id for raw in page.items}), time.time()
            self._run(lambda: self._ops.touch(threads, now), write=True)

    async def _arefresh(self, page: _RawPage | None) -> None:
        """Async :meth:`_refresh`."""
        if page and page.items and self.ttl and self.refresh_on_read:
            threads, now = sorted({raw.thread_id for raw in page.items}), time.time()
            await self._arun(lambda: self._ops.touch(threads, now), write=True)

    # -- building results (outside any transaction) ----------------------------------------

    def _tuple(self, raw: _RawCheckpoint, page: _RawPage) -> CheckpointTuple:
        thread_id, ns, checkpoint_id = raw.thread_id, raw.checkpoint_ns, raw.checkpoint_id
        where = f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace {ns!r})"
        try:
            checkpoint = decode_header(raw.header)
            if checkpoint["id"] != checkpoint_id:
                raise SerializationError(f"header names checkpoint {checkpoint['id']!r}")
        except SerializationError as exc:
            raise CorruptCheckpointError(f"{where}: corrupt header: {exc}") from exc
        try:
            metadata = self.serde.loads(raw.metadata, where="checkpoint metadata")
            if not isinstance(metadata, dict):
                raise SerializationError(f"metadata is a {type(metadata).__name__}, not a mapping")
        except SerializationError as exc:
            raise CorruptCheckpointError(f"{where}: corrupt metadata: {exc}") from exc
        checkpoint["channel_values"] = load_channel_values(
            checkpoint["channel_versions"],
            lambda channel, version: page.blobs.get((thread_id, ns, channel, version)),
            serde=self.serde,
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            cache=_ScopedCache(self._cache, page.cached, thread_id, ns),
        )
        writes = []
        for task_id, channel, data in raw.writes:
            try:
                value = self.serde.loads(data, where=f"write {channel!r} of task {task_id!r}")
            except SerializationError as exc:
                raise CorruptCheckpointError(f"{where}: corrupt pending write: {exc}") from exc
            writes.append(PendingWrite(task_id, channel, value))
        parent = make_config(thread_id, ns, raw.parent_id) if raw.parent_id else None
        return CheckpointTuple(
            config=make_config(thread_id, ns, checkpoint_id),
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=parent,
            pending_writes=writes,
        )

    def _first(self, page: _RawPage | None) -> CheckpointTuple | None:
        if page is None or not page.items:
            return None
        return self._tuple(page.items[0], page)

    def _prepare_put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
    ) -> _PreparedPut:
        """Serialize everything before the transaction, so a bad value stores nothing."""
        checkpoint_id = checkpoint["id"]
        versions = dict(checkpoint.get("channel_versions") or {})
        for channel in checkpoint.get("channel_values") or {}:
            if channel not in versions:
                raise ValueError(
                    f"checkpoint {checkpoint_id!r}: channel {channel!r} has a value but no "
                    "version in channel_versions, so it cannot be stored"
                )
        wanted = {c: v for c, v in new_versions.items() if versions.get(c) == v}
        run_id = (metadata or {}).get("run_id")
        check = self.dialect.check_ids
        check(
            thread_id_of(config),
            checkpoint_ns_of(config),
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=checkpoint_id_of(config),
            run_id=None if run_id is None else str(run_id),
        )
        for channel, version in versions.items():
            check(None, None, channel=channel, version=str(version))
        return _PreparedPut(
            thread_id=thread_id_of(config),
            checkpoint_ns=checkpoint_ns_of(config),
            parent_id=checkpoint_id_of(config),
            checkpoint=checkpoint,
            versions=versions,
            new_versions=wanted,
            header=encode_header(checkpoint),
            metadata=self.serde.dumps(metadata, where="checkpoint metadata"),
            metadata_json=_metadata_json(metadata or {}),
            run_id=None if run_id is None else str(run_id),
            blobs=blobs_for_put(self.serde, checkpoint, wanted, lambda c, v: True),
        )

    def _prepare_writes(
        self, config: dict[str, Any], writes: Sequence[tuple[str, Any]], task_id: str
    ) -> tuple[str, str, str, list[tuple[str, int, bytes]]]:
        thread_id = thread_id_of(config)
        checkpoint_id = checkpoint_id_of(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs a config naming a checkpoint_id")
        self.dialect.check_ids(
            thread_id, checkpoint_ns_of(config), checkpoint_id=checkpoint_id, task_id=task_id
        )
        rows = [
            (
                channel,
                SPECIAL_WRITE_INDEX.get(channel, index),
                self.serde.dumps(value, where=f"write {channel!r} of task {task_id!r}"),
            )
            for index, (channel, value) in enumerate(writes)
        ]
        return thread_id, checkpoint_ns_of(config), checkpoint_id, rows

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
    ) -> Callable[[], Op[_RawPage]]:
        now = time.time()
        return lambda: self._ops.list_page(**plan, after=after, size=LIST_PAGE_SIZE, now=now)

    def _select(self, page: _RawPage, filter: dict[str, Any] | None) -> Iterator[CheckpointTuple]:
        for raw in page.items:
            item = self._tuple(raw, page)
            if metadata_matches(item.metadata, filter):
                yield item

    # -- reading ---------------------------------------------------------------------------

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the namespace's head when it names none."""
        args = (thread_id_of(config), checkpoint_ns_of(config), checkpoint_id_of(config))
        self.dialect.check_ids(args[0], args[1], checkpoint_id=args[2])
        now = time.time()
        page = self._run(lambda: self._ops.get(*args, now), write=False)
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
        page = await self._arun(lambda: self._ops.get(*args, now), write=False)
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
        prepared = self._prepare_put(config, checkpoint, metadata, new_versions)
        now = time.time()
        if self._run(lambda: self._ops.put(prepared, expected_head, self.serde, now), write=True):
            self._cache.clear()
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
        prepared = self._prepare_put(config, checkpoint, metadata, new_versions)
        now = time.time()
        if await self._arun(
            lambda: self._ops.put(prepared, expected_head, self.serde, now), write=True
        ):
            self._cache.clear()
        return make_config(prepared.thread_id, prepared.checkpoint_ns, checkpoint["id"])

    def put_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes; first write per (task_id, index) wins, special ones replace."""
        thread_id, ns, checkpoint_id, rows = self._prepare_writes(config, writes, task_id)
        if not rows:
            return
        now = time.time()
        self._run(
            lambda: self._ops.put_writes(
                thread_id, ns, checkpoint_id, rows, task_id, task_path, now
            ),
            write=True,
        )

    async def aput_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        thread_id, ns, checkpoint_id, rows = self._prepare_writes(config, writes, task_id)
        if not rows:
            return
        now = time.time()
        await self._arun(
            lambda: self._ops.put_writes(
                thread_id, ns, checkpoint_id, rows, task_id, task_path, now
            ),
            write=True,
        )

    # -- retention -------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob, write and head of a thread."""
        self._run(lambda: self._ops.delete_thread(str(thread_id)), write=True)
        self._cache.clear()

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._arun(lambda: self._ops.delete_thread(str(thread_id)), write=True)
        self._cache.clear()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's history, blobs, writes and heads to a thread with no checkpoints."""
        now, source, target = time.time(), str(source_thread_id), str(target_thread_id)
        self._run(lambda: self._ops.copy_thread(source, target, now), write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        now, source, target = time.time(), str(source_thread_id), str(target_thread_id)
        await self._arun(lambda: self._ops.copy_thread(source, target, now), write=True)

    @staticmethod
    def _ids(values: Sequence[str] | str) -> list[str]:
        return [values] if isinstance(values, str) else [str(v) for v in values]

    @staticmethod
    def _check_keep(keep_last: int) -> None:
        if keep_last < 1:
            raise ValueError(f"prune: keep_last must be at least 1, got {keep_last}")

    def prune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Keep the newest ``keep_last`` checkpoints (and always the head) per namespace."""
        self._check_keep(keep_last)
        ids = self._ids(thread_ids)
        self._run(lambda: self._ops.prune(ids, keep_last), write=True)
        self._cache.clear()

    async def aprune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Async :meth:`prune`."""
        self._check_keep(keep_last)
        ids = self._ids(thread_ids)
        await self._arun(lambda: self._ops.prune(ids, keep_last), write=True)
        self._cache.clear()

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is given."""
        ids = self._ids(run_ids)
        if ids:
            self._run(lambda: self._ops.delete_for_runs(ids), write=True)
            self._cache.clear()

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        ids = self._ids(run_ids)
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


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(op: Op[T], execute: Callable[[Query], Any]) -> T:
    """Drive ``op`` with a sync ``execute(query) -> result`` (the caller owns the transaction)."""
    try:
        query = next(op)
        while True:
            query = op.send(execute(query))
    except StopIteration as stop:
        return stop.value


async def run_async(op: Op[T], execute: Callable[[Query], Any]) -> T:
    """Drive ``op`` with an async ``execute(query) -> awaitable result``."""
    try:
        query = next(op)
        while True:
            query = op.send(await execute(query))
    except StopIteration as stop:
        return stop.value
