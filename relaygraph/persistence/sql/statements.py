"""The SQL text the shared operations run, in ``?`` placeholders (see ``Dialect.sql``).

Tables (``migrations/<dialect>/*.sql``): ``relaygraph_checkpoints`` (header and metadata,
never values), ``relaygraph_blobs`` (one row per channel version; append rows hold only the
new items and name their base), ``relaygraph_writes``, ``relaygraph_heads`` (moved only by
compare-and-set) and ``relaygraph_threads`` (per-thread expiry).
"""

from __future__ import annotations

from collections.abc import Sequence

from relaygraph.persistence.sql.dialect import Dialect
from relaygraph.persistence.sql.query import Query
from relaygraph.persistence.sql.rows import Key

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS relaygraph_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""

EXPIRED = (
    "EXISTS (SELECT 1 FROM relaygraph_threads t WHERE t.thread_id = c.thread_id"
    " AND t.expires_at <= ?)"
)

SELECT_ONE = f"""SELECT c.checkpoint_id, c.parent_checkpoint_id, c.header, c.metadata
FROM relaygraph_checkpoints c
WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = COALESCE(CAST(? AS TEXT),
    (SELECT h.checkpoint_id FROM relaygraph_heads h
     WHERE h.thread_id = ? AND h.checkpoint_ns = ?))
  AND NOT {EXPIRED}"""

SELECT_ONE_WITH_WRITES = f"""WITH one AS ({SELECT_ONE})
SELECT 0, one.checkpoint_id, one.parent_checkpoint_id, one.header, one.metadata, NULL FROM one
UNION ALL
SELECT 1, x.task_id, x.channel, x.data, NULL, x.seq FROM one CROSS JOIN relaygraph_writes x
WHERE x.thread_id = ? AND x.checkpoint_ns = ? AND x.checkpoint_id = one.checkpoint_id
ORDER BY 1, 6"""
""":data:`SELECT_ONE` and the checkpoint's pending writes (in write order) as one statement:
a row ``(0, id, parent id, header, metadata, NULL)``, then ``(1, task id, channel, data,
NULL, seq)`` per write. Params: SELECT_ONE's, then thread, ns. (CROSS JOIN: SQLite then
looks the writes up by the checkpoint's key instead of scanning the thread's.)"""

INSERT_BLOB = """INSERT INTO relaygraph_blobs
    (thread_id, checkpoint_ns, channel, version, base_version, data)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, checkpoint_ns, channel, version)
DO UPDATE SET base_version = excluded.base_version, data = excluded.data"""

_INSERT_WRITE = """INSERT INTO relaygraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, task_path, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO """
WRITE_FIRST_WINS = _INSERT_WRITE + "NOTHING"
WRITE_REPLACES = (
    _INSERT_WRITE
    + "UPDATE SET channel = excluded.channel, task_path = excluded.task_path, data = excluded.data"
)

TOUCH_THREAD = """INSERT INTO relaygraph_threads (thread_id, expires_at) VALUES (?, ?)
ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at"""

THREAD_TABLES = (
    "relaygraph_writes",
    "relaygraph_blobs",
    "relaygraph_checkpoints",
    "relaygraph_heads",
    "relaygraph_threads",
)


def typed_values(dialect: Dialect, rows: int, columns: int) -> str:
    """``(CAST(? AS TEXT), ...), ...``: a typed VALUES list of text parameters."""
    row = "(" + ", ".join([dialect.text_param] * columns) + ")"
    return ", ".join([row] * rows)


def exact_blobs_query(dialect: Dialect, keys: Sequence[Key]) -> Query:
    """The blobs stored at exactly the given (thread, ns, channel, version) keys."""
    sql = f"""WITH want(thread_id, checkpoint_ns, channel, version) AS (
    VALUES {typed_values(dialect, len(keys), 4)})
SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.data
FROM relaygraph_blobs b JOIN want w
  ON b.thread_id = w.thread_id AND b.checkpoint_ns = w.checkpoint_ns
 AND b.channel = w.channel AND b.version = w.version"""
    return Query(sql, [part for key in keys for part in key], "all")


def range_blobs_query(ranges: Sequence[tuple[str, str, str, str]]) -> Query:
    """Every blob of each (thread, ns, channel) up to a version: one index range scan each."""
    one = """SELECT thread_id, checkpoint_ns, channel, version, data FROM relaygraph_blobs
WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version <= ?"""
    return Query("\nUNION ALL\n".join([one] * len(ranges)), [p for r in ranges for p in r], "all")


def writes_query(dialect: Dialect, keys: Sequence[tuple[str, str, str]]) -> Query:
    """The pending writes of the given (thread, ns, checkpoint id) keys, in write order."""
    values = typed_values(dialect, len(keys), 3)
    sql = f"""WITH want(thread_id, checkpoint_ns, checkpoint_id) AS (VALUES {values})
SELECT x.thread_id, x.checkpoint_ns, x.checkpoint_id, x.task_id, x.channel, x.data
FROM relaygraph_writes x JOIN want w
  ON x.thread_id = w.thread_id AND x.checkpoint_ns = w.checkpoint_ns
 AND x.checkpoint_id = w.checkpoint_id
ORDER BY x.seq"""
    return Query(sql, [part for key in keys for part in key], "all")
