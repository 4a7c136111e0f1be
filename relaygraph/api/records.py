"""What the API keeps in Redis beside the workers' keys: thread records and run indexes.

A thread record (metadata, timestamps) and its run index carry the thread's hash tag like
every other key of the thread; the one global key is the list of threads for search.
"""

from __future__ import annotations

import json
import time
from typing import Any

from relaygraph.workers.keys import PREFIX, ThreadKeys

__all__ = ["THREADS", "ThreadRecords", "now_ms"]

THREADS = f"{PREFIX}:api:threads"
"""Global sorted set: thread id -> creation time (ms), for thread search."""


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return int(time.time() * 1000)


def thread_key(thread_id: str) -> str:
    """Hash of a thread's record: created, updated, metadata (JSON)."""
    return f"{ThreadKeys(thread_id).base}:api:thread"


def runs_key(thread_id: str) -> str:
    """Sorted set of a thread's runs: run id -> creation time (ms)."""
    return f"{ThreadKeys(thread_id).base}:api:runs"


class ThreadRecords:
    """Thread records and run indexes on a redis-py client (``decode_responses`` off)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def create(self, thread_id: str, metadata: dict[str, Any]) -> bool:
        """Create the record; False (nothing written) when the thread exists already."""
        now = now_ms()
        created = self.redis.hsetnx(thread_key(thread_id), "created", now)
        if not created:
            return False
        self.redis.hset(
            thread_key(thread_id), mapping={"updated": now, "metadata": json.dumps(metadata)}
        )
        self.redis.zadd(THREADS, {thread_id: now})
        return True

    def get(self, thread_id: str) -> dict[str, Any] | None:
        """``{"created", "updated", "metadata"}`` or None for an unknown thread."""
        raw = self.redis.hgetall(thread_key(thread_id))
        if not raw or b"created" not in raw:
            return None
        return {
            "created": int(raw[b"created"]),
            "updated": int(raw.get(b"updated", raw[b"created"])),
            "metadata": json.loads(raw.get(b"metadata") or b"{}"),
        }

    def update(self, thread_id: str, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the record's (keys with None values are removed)."""
        record = self.get(thread_id) or {"metadata": {}}
        merged = {**record["metadata"], **metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        self.redis.hset(
            thread_key(thread_id), mapping={"metadata": json.dumps(merged), "updated": now_ms()}
        )

    def touch(self, thread_id: str) -> None:
        """Move the record's ``updated`` time to now."""
        self.redis.hset(thread_key(thread_id), "updated", now_ms())

    def ids(self) -> list[str]:
        """Every thread id, newest first."""
        return [m.decode() for m in self.redis.zrevrange(THREADS, 0, -1)]

    def delete(self, thread_id: str) -> None:
        """Drop the record, the run index and the search entry."""
        self.redis.delete(thread_key(thread_id), runs_key(thread_id))
        self.redis.zrem(THREADS, thread_id)

    def add_run(self, thread_id: str, run_id: str) -> None:
        """Index a run of the thread."""
        now = now_ms()
        self.redis.zadd(runs_key(thread_id), {run_id: now})
        self.redis.hset(thread_key(thread_id), "updated", now)

    def run_ids(self, thread_id: str, offset: int = 0, limit: int = -1) -> list[str]:
        """The thread's runs, newest first."""
        end = -1 if limit < 0 else offset + limit - 1
        return [m.decode() for m in self.redis.zrevrange(runs_key(thread_id), offset, end)]

    def remove_run(self, thread_id: str, run_id: str) -> None:
        """Drop a run from the index."""
        self.redis.zrem(runs_key(thread_id), run_id)
