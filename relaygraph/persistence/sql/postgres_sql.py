"""PostgreSQL's own statements: a read of one checkpoint and a put, each one round trip.

Both lean on migration 0002 (``migrations/postgres/0002_one_round_trip.sql``): the
checkpoint's channel versions stored as arrays next to its header, and the
``relaygraph_put`` function that decides and writes a whole put on the server. Rows written
before that migration have no arrays; the shared multi-statement read serves them.
"""

from __future__ import annotations

from collections.abc import Iterable

from relaygraph.persistence.sql.statements import EXPIRED

__all__ = ["CALL_PUT", "GET_ONE", "bool_array", "text_array"]


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
