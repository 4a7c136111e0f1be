"""Thread records: a thread's metadata and times beside its checkpoints, and the list of
threads, for the HTTP API's thread routes.

``Client.submit`` writes the record of every thread it runs (and ``Client.delete`` drops
it), so a thread run from Python or the CLI is a thread of the API too. A thread's runs
are the coordinator's run index (``rgw:{t}:runs``, bounded by the run retention), so the
API lists every run of the thread whoever submitted it. A record carries the thread's
hash tag like every other key of the thread; the one global key is the list of threads
for search (entries whose record expired are dropped when search meets them).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

from relaygraph.workers.keys import PREFIX, ThreadKeys

__all__ = ["THREADS", "THREAD_EXPIRY", "ThreadRecords", "assistant_id_of", "now_ms", "thread_key"]

THREADS = f"{PREFIX}:api:threads"
"""Global sorted set: thread id -> creation time (ms), for thread search."""
THREAD_EXPIRY = f"{PREFIX}:api:thread_expiry"
"""Global sorted set: thread id -> earliest time (ms) a TTL set through the API may be due
(:mod:`relaygraph.api.thread_ttl`)."""

_ASSISTANTS = uuid.UUID("6f1c1b7e-6d1e-4b43-9d0e-7d1e5b0f6a52")


def assistant_id_of(graph: str) -> str:
    """The stable assistant id of a registered graph (the same on every replica).

    >>> assistant_id_of("echo") == assistant_id_of("echo") != assistant_id_of("other")
    True
    """
    return str(uuid.uuid5(_ASSISTANTS, graph))


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return int(time.time() * 1000)


def thread_key(thread_id: str) -> str:
    """Hash of a thread's record: created, updated, metadata (JSON)."""
    return f"{ThreadKeys(thread_id).base}:api:thread"


def _legacy_runs_key(thread_id: str) -> str:
    # The API's own run list of the release before (runs are the coordinator's index now).
    return f"{ThreadKeys(thread_id).base}:api:runs"


class ThreadRecords:
    """Thread records on a redis-py client (``decode_responses`` off).

    ``ttl`` (seconds, the saver's ``RELAYGRAPH_THREAD_TTL``) expires a record with its
    thread: renewed by every write and every read, as the saver renews the checkpoints.
    """

    def __init__(self, redis: Any, ttl: float | None = None) -> None:
        self.redis = redis
        self.ttl = max(1, math.ceil(ttl)) if ttl else None

    def create(self, thread_id: str, metadata: dict[str, Any]) -> bool:
        """Create the record; False (nothing written) when the thread exists already."""
        now = now_ms()
        key = thread_key(thread_id)
        if not self.redis.hsetnx(key, "created", now):
            return False
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"updated": now, "metadata": json.dumps(metadata)})
        self._expire(pipe, key)
        pipe.zadd(THREADS, {thread_id: now})
        pipe.execute()
        return True

    def note_run(self, thread_id: str, graph: str, assistant_id: str | None = None) -> None:
        """Record that ``graph`` runs on the thread: create the record if it is new (its
        metadata ``graph_id`` and ``assistant_id``, as LangGraph's server sets them; the
        graph's default assistant unless ``assistant_id`` says), else add them when missing
        and move ``updated``. One round trip for a known thread."""
        now = now_ms()
        key = thread_key(thread_id)
        mine = {"graph_id": graph, "assistant_id": assistant_id or assistant_id_of(graph)}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(key, "created", now)
        pipe.hsetnx(key, "metadata", json.dumps(mine))
        pipe.hset(key, "updated", now)
        pipe.hget(key, "metadata")
        self._expire(pipe, key)
        pipe.zadd(THREADS, {thread_id: now}, nx=True)  # every time: heals a lost entry
        metadata = json.loads(pipe.execute()[3] or b"{}")
        if "graph_id" not in metadata:
            self.update(thread_id, mine)

    def get(self, thread_id: str) -> dict[str, Any] | None:
        """``{"created", "updated", "metadata"}`` or None for an unknown thread (a read of
        the thread: renews its expiry)."""
        key = thread_key(thread_id)
        if self.ttl:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(key)
            self._expire(pipe, key)
            raw = pipe.execute()[0]
        else:
            raw = self.redis.hgetall(key)
        return _record(raw)

    def get_many(self, thread_ids: list[str]) -> list[dict[str, Any] | None]:
        """The records of ``thread_ids`` in one round trip, as :meth:`get` (for a scan:
        no expiry is renewed)."""
        if not thread_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            pipe.hgetall(thread_key(thread_id))
        return [_record(raw) for raw in pipe.execute()]

    def update(self, thread_id: str, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the record's (keys with None values are removed)."""
        record = self.get(thread_id) or {"metadata": {}}
        merged = {**record["metadata"], **metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        key = thread_key(thread_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"metadata": json.dumps(merged), "updated": now_ms()})
        self._expire(pipe, key)
        pipe.execute()

    def touch(self, thread_id: str) -> None:
        """Move the record's ``updated`` time to now (a write: renews its expiry too)."""
        key = thread_key(thread_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, "updated", now_ms())
        self._expire(pipe, key)
        pipe.execute()

    def ids(self) -> list[str]:
        """Every thread id, newest first."""
        return [m.decode() for m in self.redis.zrevrange(THREADS, 0, -1)]

    def newest_first(self, page: int) -> Iterator[list[str]]:
        """Thread ids, newest first, ``page`` at a time (one round trip each, read as the
        caller asks: a search that has its page reads no further).

        A cursor on the creation time, not a rank: threads created or dropped while the
        caller goes through the pages shift no page (ties in a millisecond continue by an
        offset among the ids of that time, in Redis's order for them).
        """
        top: float | str = "+inf"
        seen_at_top = 0
        while True:
            rows = self.redis.zrevrangebyscore(
                THREADS, top, "-inf", start=seen_at_top, num=page, withscores=True
            )
            if not rows:
                return
            yield [member.decode() for member, _ in rows]
            last = rows[-1][1]
            at_last = sum(1 for _, score in rows if score == last)
            seen_at_top = seen_at_top + at_last if last == top else at_last
            top = last
            if len(rows) < page:
                return

    def newest_first_of(self, thread_ids: list[str]) -> list[str]:
        """The listed ``thread_ids`` newest first, as :meth:`newest_first` orders them (ids
        not in the list of threads left out), in one round trip."""
        if not thread_ids:
            return []
        unique = list(dict.fromkeys(thread_ids))
        scores = self.redis.zmscore(THREADS, unique)
        listed = [(score, t) for t, score in zip(unique, scores, strict=True) if score is not None]
        return [t for _, t in sorted(listed, reverse=True)]

    def forget(self, *thread_ids: str) -> None:
        """Drop threads from the list (their records are gone: they expired)."""
        if thread_ids:
            self.redis.zrem(THREADS, *thread_ids)

    def delete(self, thread_id: str) -> None:
        """Drop the record and the search entry (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in (thread_key(thread_id), _legacy_runs_key(thread_id)):
            pipe.delete(key)  # one key a command: a cluster pipeline takes no multi-key DEL
        pipe.zrem(THREADS, thread_id)
        pipe.zrem(THREAD_EXPIRY, thread_id)
        pipe.execute()

    def run_ids(self, thread_id: str, offset: int = 0, limit: int = -1) -> list[str]:
        """The thread's runs still kept (the coordinator's index), newest first."""
        keys = ThreadKeys(thread_id)
        members = [m.decode() for m in self.redis.zrange(keys.runs, 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for run_id in members:
            pipe.hget(keys.run(run_id), "created")
        created = pipe.execute() if members else []
        kept = [(int(c), r) for r, c in zip(members, created, strict=True) if c is not None]
        ordered = [run_id for _, run_id in sorted(kept, reverse=True)]
        return ordered[offset:] if limit < 0 else ordered[offset : offset + limit]

    def last_run(self, thread_id: str) -> str | None:
        """The run that finished last, or an unfinished one (one round trip: the index
        scores a finished run by its finish time, an unfinished one +inf)."""
        top = self.redis.zrevrange(ThreadKeys(thread_id).runs, 0, 0)
        return top[0].decode() if top else None

    def remove_run(self, thread_id: str, run_id: str) -> None:
        """Drop a run from the thread's index."""
        self.redis.zrem(ThreadKeys(thread_id).runs, run_id)

    def _expire(self, pipe: Any, key: str) -> None:
        if self.ttl:
            pipe.expire(key, self.ttl)


def _record(raw: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    if not raw or b"created" not in raw:
        return None
    return {
        "created": int(raw[b"created"]),
        "updated": int(raw.get(b"updated", raw[b"created"])),
        "metadata": json.loads(raw.get(b"metadata") or b"{}"),
    }
