"""The shared step logic: every SQL saver operation, once, as a sans-IO generator.

Reading a checkpoint with the blobs and pending writes it needs, the compare-and-set
``put``, idempotent ``put_writes``, listing pages, expiry, retention and migrations: the same
code on sqlite3, aiosqlite, psycopg and psycopg's asyncio connections (see ``query.py``);
only the :class:`~relaygraph.persistence.sql.dialect.Dialect` spells the differences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from relaygraph.persistence import migrations
from relaygraph.persistence.base import ANY_HEAD, SPECIAL_WRITE_INDEX
from relaygraph.persistence.blobs import (
    EMPTY,
    blobs_for_put,
    decode_header,
    encode_empty_blob,
)
from relaygraph.persistence.errors import (
    CheckpointConflict,
    CheckpointExistsError,
    SerializationError,
)
from relaygraph.persistence.serde import Serializer
from relaygraph.persistence.sql.cache import ResolvedValues
from relaygraph.persistence.sql.dialect import Dialect
from relaygraph.persistence.sql.postgres_sql import (
    CALL_PUT,
    GET_ONE,
    bool_array,
    plain_put,
    text_array,
)
from relaygraph.persistence.sql.query import SNAPSHOT, Op, Query
from relaygraph.persistence.sql.rows import Key, PreparedPut, RawCheckpoint, RawPage, append_base
from relaygraph.persistence.sql.statements import (
    EXPIRED,
    INSERT_BLOB,
    MIGRATIONS_TABLE,
    SELECT_ONE,
    SELECT_ONE_WITH_WRITES,
    THREAD_TABLES,
    TOUCH_THREAD,
    WRITE_FIRST_WINS,
    WRITE_REPLACES,
    exact_blobs_query,
    range_blobs_query,
    typed_values,
    writes_query,
)

__all__ = ["Ops", "probe_keys", "settle"]

EMPTY_BLOB = encode_empty_blob()

_INCOMPLETE: Any = object()  # a one-statement read that must start again in a snapshot

Settled = dict[tuple[str, str], tuple[str | None, bytes]]
"""Blobs to store: ``{(channel, version): (base version or None, blob)}``."""


def probe_keys(
    put: PreparedPut, blobs: dict[tuple[str, str], bytes]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The (channel, version) keys whose presence decides what ``put`` stores, and among
    them those it relies on without sending: the bases of its append blobs and the versions
    of the checkpoint it sends no blob for."""
    bases = set()
    for key, data in blobs.items():
        base = put.base_of(key, data)
        if base is not None:
            bases.add((key[0], base))
    need = bases | {key for key in put.versions.items() if key not in blobs}
    return set(put.versions.items()) | set(blobs) | bases, need


def settle(
    put: PreparedPut, serde: Serializer, present: set[tuple[str, str]]
) -> tuple[Settled, bool]:
    """The blobs to store given the probed keys that are ``present``, and whether one of
    them is a key already stored (written again: caches must forget it).

    An append blob whose base is not stored becomes a full one, and a version of the
    checkpoint that nothing stores (a caller that left it out of ``new_versions``) is
    written too, as :class:`~relaygraph.persistence.memory.InMemorySaver` does.
    """
    blobs = dict(put.blobs)
    bases = {}
    for key, data in blobs.items():
        base = put.base_of(key, data)
        if base is not None:
            bases[key] = (key[0], base)
    redo = {key[0]: key[1] for key, base in bases.items() if base not in present}
    missing = {
        c: v for c, v in put.versions.items() if c not in put.new_versions and (c, v) not in present
    }
    if redo:
        blobs.update(blobs_for_put(serde, put.checkpoint, redo, lambda c, v: False))
    if missing:
        blobs.update(blobs_for_put(serde, put.checkpoint, missing, lambda c, v: (c, v) in present))
    settled: Settled = {key: (put.base_of(key, data), data) for key, data in blobs.items()}
    return settled, any(key in present for key in put.blobs)


class Ops:
    """The saver's operations as sans-IO generators (see :data:`Op`)."""

    def __init__(
        self, dialect: Dialect, ttl: float | None, refresh_on_read: bool, cache: ResolvedValues
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
        yield Query(MIGRATIONS_TABLE)
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
                yield Query(TOUCH_THREAD, rows, many=True)

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
        """The raw checkpoint and its blobs, or None.

        With a one-round-trip dialect one statement usually answers; when it cannot (a row
        written before migration 0002, a chain of blobs the cache does not cover) the read
        starts again in a snapshot (:data:`SNAPSHOT`) with the statements below.
        """
        if self.dialect.one_round_trip and self.cache.enabled:
            # (a reader without a cache reads every chain: the snapshot read does it directly)
            page = yield from self._get_one(thread_id, ns, checkpoint_id, now)
            if page is not _INCOMPLETE:
                return page
            yield SNAPSHOT
        params = [thread_id, ns, checkpoint_id, thread_id, ns, now]
        if self.dialect.one_round_trip:
            row = yield Query(SELECT_ONE, params, "one")
            if row is None:
                return None
            raw = RawCheckpoint(thread_id, ns, row[0], row[1], bytes(row[2]), bytes(row[3]))
            page = yield from self._complete([raw])
            return page
        # The checkpoint and its writes in one statement (a statement fewer per read).
        rows = yield Query(SELECT_ONE_WITH_WRITES, [*params, thread_id, ns], "all")
        if not rows:
            return None
        row = rows[0]
        raw = RawCheckpoint(thread_id, ns, row[1], row[2], bytes(row[3]), bytes(row[4]))
        raw.writes = [(r[1], r[2], bytes(r[3])) for r in rows[1:]]
        page = yield from self._complete([raw], writes=False)
        return page

    def _get_one(self, thread_id: str, ns: str, checkpoint_id: str | None, now: float) -> Op[Any]:
        """One statement: the checkpoint, its writes and the blobs the cache lacks; or
        :data:`_INCOMPLETE` when that is not enough to build it."""
        known = self.cache.known(thread_id, ns)
        empty = self.cache.empty(thread_id, ns)  # versions without a value: not fetched
        skip = sorted({(key[2], key[3]) for key in (*known, *empty)})
        row = yield Query(
            GET_ONE,
            [
                text_array([c for c, _ in skip]),
                text_array([v for _, v in skip]),
                *(thread_id, ns, checkpoint_id, thread_id, ns, now),
            ],
            "one",
        )
        if row is None:
            return None
        raw = RawCheckpoint(thread_id, ns, row[0], row[1], bytes(row[2]), bytes(row[3]))
        if not row[4]:
            return _INCOMPLETE  # written before the versions were stored as arrays
        try:
            raw.decoded = decode_header(raw.header)
            raw.versions = dict(raw.decoded["channel_versions"])
        except SerializationError:
            raw.versions = {}  # reported when the tuple is built
        blobs = {
            (thread_id, ns, c, v): bytes(d)
            for c, v, d in zip(row[5] or (), row[6] or (), row[7] or (), strict=True)
            if d is not None
        }
        for key in empty:
            blobs.setdefault(key, EMPTY_BLOB)
        cached = dict(known)
        covered = self._coverage(cached)
        for channel, version in raw.versions.items():
            key = (thread_id, ns, channel, version)
            if self._missing_base(key, blobs, covered) is not None:
                return _INCOMPLETE
        raw.writes = [
            (task_id, channel, bytes(data))
            for task_id, channel, data in zip(
                row[8] or (), row[9] or (), row[10] or (), strict=True
            )
        ]
        return RawPage([raw], blobs, exhausted=True, cached=cached)

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
    ) -> Op[RawPage]:
        """One page of the listing, newest first, after the ``after`` sort key."""
        where, params = [f"NOT {EXPIRED}"], [now]
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
        raws = [RawCheckpoint(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in rows]
        page = yield from self._complete(raws)
        page.exhausted = len(rows) < size
        return page

    def _complete(self, raws: list[RawCheckpoint], writes: bool = True) -> Op[RawPage]:
        """Fetch the blobs and (unless ``writes`` is false: read already) pending writes of
        ``raws`` (headers decoded for versions)."""
        keys: set[Key] = set()
        for raw in raws:
            try:
                raw.decoded = decode_header(raw.header)
                raw.versions = dict(raw.decoded["channel_versions"])
            except SerializationError:
                raw.versions = {}  # reported when the tuple is built
            keys.update((raw.thread_id, raw.checkpoint_ns, c, v) for c, v in raw.versions.items())
        cached: dict[Key, Any] = {}
        blobs = yield from self._blobs(keys, cached)
        by_key = {(r.thread_id, r.checkpoint_ns, r.checkpoint_id): r for r in raws}
        wanted = list(by_key) if writes else []
        for start in range(0, len(wanted), 2000):
            rows = yield writes_query(self.dialect, wanted[start : start + 2000])
            for r in rows:
                by_key[r[0], r[1], r[2]].writes.append((r[3], r[4], bytes(r[5])))
        return RawPage(raws, blobs, exhausted=True, cached=cached)

    def _blobs(self, wanted: set[Key], cached: dict[Key, Any]) -> Op[dict[Key, bytes]]:
        """The blobs that resolving ``wanted`` needs: each key and its append chain.

        A chain stops at a full blob or at a value in the cache (copied into ``cached``, so
        eviction cannot pull it away before the values are built). The keys themselves are
        read exactly, and so is the first missing base of a channel the cache has seen
        lately (a warm reader lacks one link at most: the input checkpoint between two
        reads); other chains are read with one range scan per channel (versions sort in the
        order they were made); exact reads then fetch whatever a range missed.
        """
        blobs: dict[Key, bytes] = {}
        tried: set[Key] = set()
        ranged: set[tuple[str, str, str]] = set()
        # Channels whose first missing base is read exactly: those the cache has seen lately
        # (a cold reader's chains go straight to a range scan); a second miss ranges.
        linked = {
            (thread_id, ns, channel)
            for thread_id, ns in {key[:2] for key in wanted}
            for _, _, channel, _ in self.cache.known(thread_id, ns)
        }

        # Versions the cache knows hold no value need no read: their blob is the empty one.
        for scope in {key[:2] for key in wanted}:
            for key in self.cache.empty(*scope) & wanted:
                blobs[key] = EMPTY_BLOB
        covered = self._coverage(cached)
        exact = {key for key in wanted if key not in blobs and not covered(key)}
        ranges: dict[tuple[str, str, str], str] = {}
        while exact or ranges:
            tried |= exact
            todo = sorted(exact)
            # bounded statements: SQLite allows 32766 parameters, PostgreSQL 65535
            for start in range(0, len(todo), 2000):
                rows = yield exact_blobs_query(self.dialect, todo[start : start + 2000])
                blobs.update({(r[0], r[1], r[2], r[3]): bytes(r[4]) for r in rows})
            spans = [(*scope, upto) for scope, upto in sorted(ranges.items())]
            for start in range(0, len(spans), 500):
                rows = yield range_blobs_query(spans[start : start + 500])
                blobs.update({(r[0], r[1], r[2], r[3]): bytes(r[4]) for r in rows})
            ranged |= ranges.keys()
            exact, ranges = set(), {}
            for key in wanted:
                base = self._missing_base(key, blobs, covered)
                if base is None or base in tried:
                    continue
                scope = base[:3]
                if scope in ranged or scope in linked:
                    linked.discard(scope)
                    exact.add(base)
                else:
                    ranges[scope] = max(ranges.get(scope, base[3]), base[3])
        return blobs

    def _coverage(self, cached: dict[Key, Any]) -> Callable[[Key], bool]:
        """``covered(key)``: whether the value at ``key`` is pinned in ``cached`` or in the
        cache (then pinned, so eviction cannot pull it away before the values are built)."""

        def covered(key: Key) -> bool:
            if key in cached:
                return True
            value = self.cache.get(key)
            if value is EMPTY:
                return False
            cached[key] = value
            return True

        return covered

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
            base = append_base(data)
            if base is None:
                return None
            at = (at[0], at[1], at[2], base)
        return None

    # -- writing ---------------------------------------------------------------------------

    def put(self, put: PreparedPut, expected_head: Any, serde: Serializer, now: float) -> Op[bool]:
        """Compare-and-set the head, then store header, metadata and missing blobs.

        Returns whether a version already stored was written again (caches must forget it).
        """
        if self.dialect.one_round_trip:
            return (yield from self._put_one(put, expected_head, serde, now))
        thread_id, ns, new_id = put.thread_id, put.checkpoint_ns, put.checkpoint["id"]
        head_key = [thread_id, ns]
        # The thread's expiry, the id's stored row and which blob keys the put's outcome
        # depends on are stored, in one statement (on SQLite the put's BEGIN IMMEDIATE holds
        # the write lock: nothing changes them before it ends).
        probe = sorted(probe_keys(put, put.blobs)[0])
        rows = yield self._put_probe(put, probe)
        row = next(r for r in rows if r[0] == 0)[1:5]
        present = {(r[5], r[6]) for r in rows if r[0] == 1}
        stored = None if row[2] is None else row[1:]
        if row[0] is not None and row[0] <= now:
            yield from self._delete_thread(thread_id)
            stored, present = None, set()
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
        blobs, rewritten = settle(put, serde, present)
        if blobs:
            yield Query(
                INSERT_BLOB,
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

    def _put_one(
        self, put: PreparedPut, expected_head: Any, serde: Serializer, now: float
    ) -> Op[bool]:
        """:meth:`put` in one round trip: without a TTL first as the plain statement of
        :func:`plain_put`, which writes only when it moves the head; otherwise (or when it
        did not move it) as a call of the server's ``relaygraph_put``, which sends the blobs
        of ``put.blobs`` and names the stored ones they rely on: when one of those is
        missing nothing is written and the put is settled (:func:`settle`) and sent again;
        a conflict, a retry or a stored id is reported."""
        if expected_head is ANY_HEAD:
            mode, expected = 0, None
        else:
            mode, expected = (1, None) if expected_head is None else (2, str(expected_head))
        new_id = put.checkpoint["id"]
        blobs: Settled = {key: (put.base_of(key, data), data) for key, data in put.blobs.items()}
        channels, versions = text_array(put.versions), text_array(put.versions.values())
        if not self.ttl:
            # The common put as one plain statement; when it moved no head it wrote
            # nothing, and the function below finds out why and settles it.
            _, need = probe_keys(put, put.blobs)
            row = yield self._plain_put(
                put, mode, expected, blobs, sorted(need), channels, versions, now
            )
            if row[0] == 1:
                return bool(row[1])
        for _ in range(4):
            probe, need = probe_keys(put, {key: data for key, (_, data) in blobs.items()})
            keys, probe_order = list(blobs), sorted(probe)
            row = yield Query(
                CALL_PUT,
                [
                    put.thread_id,
                    put.checkpoint_ns,
                    new_id,
                    put.parent_id,
                    put.run_id,
                    put.header,
                    put.metadata,
                    put.metadata_json,
                    channels,
                    versions,
                    mode,
                    expected,
                    text_array([c for c, _ in keys]),
                    text_array([v for _, v in keys]),
                    text_array([blobs[key][0] for key in keys]),
                    [blobs[key][1] for key in keys],
                    text_array([c for c, _ in probe_order]),
                    text_array([v for _, v in probe_order]),
                    bool_array([key in need for key in probe_order]),
                    bool_array([key in blobs for key in probe_order]),
                    now,
                    now + self.ttl if self.ttl else None,
                ],
                "one",
            )
            status, detail = row
            if status in ("ok", "rewritten", "same"):
                return status == "rewritten"
            if status == "conflict":
                raise CheckpointConflict(put.thread_id, put.checkpoint_ns, expected_head, detail)
            if status == "exists":
                raise CheckpointExistsError(put.thread_id, put.checkpoint_ns, new_id)
            present = {(c, v) for c, v in json.loads(detail)}
            blobs, _ = settle(put, serde, present)
        raise RuntimeError(
            f"put of checkpoint {new_id!r}: the blobs of thread {put.thread_id!r} kept "
            "changing while it was stored; try again"
        )

    @staticmethod
    def _plain_put(
        put: PreparedPut,
        mode: int,
        expected: str | None,
        blobs: Settled,
        need: list[tuple[str, str]],
        channels: str,
        versions: str,
        now: float,
    ) -> Query:
        """The statement :func:`plain_put` of this put with its parameters."""
        thread_id, ns, new_id = put.thread_id, put.checkpoint_ns, put.checkpoint["id"]
        params: list[Any] = (
            [new_id, thread_id, ns, expected] if mode == 2 else [thread_id, ns, new_id]
        )
        params += [thread_id, now, thread_id, ns, new_id]
        for channel, version in need:
            params += [thread_id, ns, channel, version]
        for (channel, version), (base, data) in blobs.items():
            params += [thread_id, ns, channel, version, base, data]
        params += [thread_id, ns, new_id, put.parent_id, put.run_id]
        params += [put.header, put.metadata, put.metadata_json, channels, versions]
        return Query(plain_put(mode, len(need), len(blobs)), params, "one")

    def _put_probe(self, put: PreparedPut, keys: list[tuple[str, str]]) -> Query:
        """A row ``(0, expires_at, parent id, header, metadata, NULL, NULL)`` of the thread's
        expiry and the id's stored row (NULLs when none), and a row ``(1, NULL, NULL, NULL,
        NULL, channel, version)`` per key of ``keys`` stored for the thread."""
        sql = """SELECT 0, t.expires_at, c.parent_checkpoint_id, c.header, c.metadata, NULL, NULL
FROM (SELECT 1) AS one
LEFT JOIN relaygraph_threads t ON t.thread_id = ?
LEFT JOIN relaygraph_checkpoints c
  ON c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ?"""
        params: list[Any] = [put.thread_id, put.thread_id, put.checkpoint_ns, put.checkpoint["id"]]
        if keys:
            want = typed_values(self.dialect, len(keys), 2)
            sql = f"WITH want(channel, version) AS (VALUES {want})\n" + sql
            sql += """
UNION ALL
SELECT 1, NULL, NULL, NULL, NULL, b.channel, b.version
FROM want w CROSS JOIN relaygraph_blobs b
WHERE b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = w.channel
 AND b.version = w.version"""
            params = [*(part for key in keys for part in key), *params]
            params += [put.thread_id, put.checkpoint_ns]
        return Query(sql, params, "all")

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
        for sql, group in ((WRITE_FIRST_WINS, first), (WRITE_REPLACES, special)):
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
        for table in THREAD_TABLES:
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
