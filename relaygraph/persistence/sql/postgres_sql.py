"""PostgreSQL's own statements: a read of one checkpoint and a put, each one round trip.

Both lean on migration 0002 (``migrations/postgres/0002_one_round_trip.sql``): the
checkpoint's channel versions stored as arrays next to its header, and the
``relaygraph_put`` function that decides and writes a whole put on the server. A put with
no expiry to set is first sent as one plain statement (:func:`plain_put`), which writes
only when it moves the head; the function then runs only for the puts that did not (a
conflict, a retry, a stored id, an expired thread, missing blobs) and says why. Rows written
before migration 0002 have no arrays; the shared multi-statement read serves them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from relaygraph.persistence.sql.statements import EXPIRED

__all__ = ["CALL_PUT", "GET_ONE", "bool_array", "plain_put", "text_array"]


def text_array(items: Iterable[str | None]) -> str:
    """``items`` as a PostgreSQL array literal, for a ``CAST(? AS TEXT[])`` parameter.

    A string parameter costs psycopg a few microseconds; a list costs it tens (it inspects
    the elements and builds an array dumper, anew for every statement), and a put sends
    nine of them. Every element is quoted (backslash and double quote escaped), None is
    NULL; ids never hold NUL (the dialect refuses them up front).
    """
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        else:
            parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def bool_array(items: Iterable[bool]) -> str:
    """``items`` as a literal for a ``CAST(? AS BOOLEAN[])`` parameter (see text_array)."""
    return "{" + ",".join("t" if item else "f" for item in items) + "}"


GET_ONE = f"""SELECT c.checkpoint_id, c.parent_checkpoint_id, c.header, c.metadata,
    c.versions IS NOT NULL, b.channels, b.versions, b.data, w.tasks, w.channels, w.data
FROM relaygraph_checkpoints c
CROSS JOIN LATERAL (
    SELECT array_agg(u.channel) AS channels, array_agg(u.version) AS versions,
        array_agg((SELECT x.data FROM relaygraph_blobs x
            WHERE x.thread_id = c.thread_id AND x.checkpoint_ns = c.checkpoint_ns
              AND x.channel = u.channel AND x.version = u.version)) AS data
    FROM unnest(c.channels, c.versions) AS u(channel, version)
    WHERE NOT (u.channel, u.version) IN (
        SELECT k.channel, k.version
        FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS k(channel, version))
) b
CROSS JOIN LATERAL (
    SELECT array_agg(x.task_id ORDER BY x.seq) AS tasks,
        array_agg(x.channel ORDER BY x.seq) AS channels, array_agg(x.data ORDER BY x.seq) AS data
    FROM relaygraph_writes x
    WHERE x.thread_id = c.thread_id AND x.checkpoint_ns = c.checkpoint_ns
      AND x.checkpoint_id = c.checkpoint_id
) w
WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = COALESCE(CAST(? AS TEXT),
    (SELECT h.checkpoint_id FROM relaygraph_heads h
     WHERE h.thread_id = ? AND h.checkpoint_ns = ?))
  AND NOT {EXPIRED}"""
"""The checkpoint (or head), the blobs of its versions but the ones given (cached by the
reader; a missing blob reads as NULL), and its pending writes in order. Each blob is a
scalar subquery, so it is one primary-key lookup whatever the planner thinks of the table
(as a join it may scan every blob of the thread). Params: skip channels, skip versions, thread, ns,
checkpoint id or None, thread, ns, now."""

CALL_PUT = """SELECT status, detail FROM relaygraph_put(
    CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT),
    CAST(? AS BYTEA), CAST(? AS BYTEA), CAST(? AS JSONB),
    CAST(? AS TEXT[]), CAST(? AS TEXT[]),
    CAST(? AS INTEGER), CAST(? AS TEXT),
    CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BYTEA[]),
    CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BOOLEAN[]), CAST(? AS BOOLEAN[]),
    CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION))"""
"""A whole put (see migration 0002 for its parameters and the statuses it returns; 0003
runs it as separate statements)."""

_HEAD_MOVES = (
    # 0: any head (params: thread, ns, id, guard)
    """INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
    SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT) WHERE {guard}
    ON CONFLICT (thread_id, checkpoint_ns) DO UPDATE SET checkpoint_id = excluded.checkpoint_id
    RETURNING 1""",
    # 1: only if there is none (params: thread, ns, id, guard)
    """INSERT INTO relaygraph_heads (thread_id, checkpoint_ns, checkpoint_id)
    SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT) WHERE {guard}
    ON CONFLICT (thread_id, checkpoint_ns) DO NOTHING
    RETURNING 1""",
    # 2: only from the expected head (params: id, thread, ns, expected, guard)
    """UPDATE relaygraph_heads SET checkpoint_id = CAST(? AS TEXT)
    WHERE thread_id = CAST(? AS TEXT) AND checkpoint_ns = CAST(? AS TEXT)
      AND checkpoint_id = CAST(? AS TEXT) AND {guard}
    RETURNING 1""",
)

# Params: thread, now, thread, ns, id.
_GUARD = """NOT EXISTS (SELECT 1 FROM relaygraph_threads t
        WHERE t.thread_id = CAST(? AS TEXT) AND t.expires_at <= CAST(? AS DOUBLE PRECISION))
    AND NOT EXISTS (SELECT 1 FROM relaygraph_checkpoints c
        WHERE c.thread_id = CAST(? AS TEXT) AND c.checkpoint_ns = CAST(? AS TEXT)
          AND c.checkpoint_id = CAST(? AS TEXT))"""

# Params: thread, ns, channel, version.
_NEEDS = """
    AND EXISTS (SELECT 1 FROM relaygraph_blobs b
        WHERE b.thread_id = CAST(? AS TEXT) AND b.checkpoint_ns = CAST(? AS TEXT)
          AND b.channel = CAST(? AS TEXT) AND b.version = CAST(? AS TEXT))"""

# Params: (thread, ns, channel, version, base, data) per blob.
_BLOBS = """, b AS (
    INSERT INTO relaygraph_blobs (thread_id, checkpoint_ns, channel, version, base_version, data)
    SELECT u.* FROM (VALUES {rows}) AS u(thread_id, checkpoint_ns, channel, version, base, data)
     WHERE EXISTS (SELECT 1 FROM h)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version)
    DO UPDATE SET base_version = excluded.base_version, data = excluded.data
    RETURNING xmax::text <> '0' AS rewritten
)"""
_BLOB_ROW = (
    "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT),"
    " CAST(? AS BYTEA))"
)

# Params: thread, ns, id, parent, run id, header, metadata, metadata JSON, channels, versions.
_HEADER = """, c AS (
    INSERT INTO relaygraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id,
        parent_checkpoint_id, run_id, header, metadata, metadata_json, channels, versions)
    SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT),
        CAST(? AS BYTEA), CAST(? AS BYTEA), CAST(? AS JSONB), CAST(? AS TEXT[]), CAST(? AS TEXT[])
     WHERE EXISTS (SELECT 1 FROM h)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING
)
SELECT (SELECT count(*) FROM h), {rewritten}"""


@functools.lru_cache(maxsize=256)
def plain_put(mode: int, needs: int, blobs: int) -> str:
    """A put with no expiry to set, as one plain statement: the compare-and-set of ``mode``
    (0: any head, 1: only if there is none, 2: only from the expected one) moves the head
    when the guard holds (the thread has not expired, the id is not stored, the ``needs``
    blob keys the put relies on are), and the ``blobs`` blobs and the header are inserted
    only when it moved (data-modifying CTEs of one statement). Returns (heads moved,
    whether a sent blob was stored already: ``xmax`` is set on a row that ON CONFLICT
    updated). A put that moved no head wrote nothing; ``relaygraph_put`` then says why
    (a conflict, a retry, a stored id, an expired thread, missing blobs).

    Scalar parameters only, one text per shape: the server's plan then costs the same
    whatever the values, so a prepared statement keeps its generic plan instead of planning
    every call (about 1 ms here; an array parameter's unknown length tips it to a custom
    plan). No plpgsql: one statement against the five ``relaygraph_put`` runs.
    """
    guard = _GUARD + _NEEDS * needs
    sql = "WITH h AS (\n    " + _HEAD_MOVES[mode].format(guard=guard) + "\n)"
    if blobs:
        sql += _BLOBS.format(rows=", ".join([_BLOB_ROW] * blobs))
    rewritten = "(SELECT COALESCE(bool_or(b.rewritten), FALSE) FROM b)" if blobs else "FALSE"
    return sql + _HEADER.format(rewritten=rewritten)
