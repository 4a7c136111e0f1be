"""How each database spells what the shared SQL operations need: :data:`SQLITE`, :data:`POSTGRES`.

Placeholders, JSON parameters, row locks, the migration lock, key limits and the metadata
filter pushed into SQL differ; everything else the operations write once (``ops.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from relaygraph.persistence.sql.rows import jsonable

__all__ = ["POSTGRES", "SQLITE", "Dialect"]


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
    # Reads of one checkpoint and puts as one statement each (postgres_sql.py): for a
    # server a round trip away, where every statement costs one.
    one_round_trip: bool = False
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
            if "\0" in key:  # text cannot hold NUL: such a key is filtered in Python only
                return None
            # jsonb equality keeps true and 1 (false and 0) apart, Python's == does not:
            # such values are filtered in Python only, so no row is dropped here.
            if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
                return None
            return "c.metadata_json -> CAST(? AS TEXT) = CAST(? AS jsonb)", [
                key,
                json.dumps(jsonable(value)),
            ]
        if '"' in key or "\\" in key or "\0" in key:  # not a plain JSON path (NUL: dropped)
            return None
        # IS rather than =: a JSON null filter must match (missing keys pass, Python decides).
        # The value as the metadata's JSON copy holds it (jsonable): NUL dropped, infinities
        # as text, as stored, so the clause never drops a row Python would keep.
        return "json_extract(c.metadata_json, ?) IS json_extract(?, '$')", [
            f'$."{key}"',
            json.dumps(jsonable(value)),
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
    one_round_trip=True,
)
