"""Per-thread TTLs set through the API: ``threads.create(ttl=...)`` / ``threads.update(ttl=...)``.

A thread with a TTL is deleted (checkpoints, runs, record) once it has been idle that long:
no write to its record and no run ending within the TTL. Its record keeps the TTL
(``ttl_ms``); one global sorted set, thread -> the earliest time it may be due, tells
the sweeper where to look. That score is only a hint: the sweeper reads the thread's last
activity (its record's ``updated``, its last run's end) and, when the thread is not due
yet, moves the score to when it would be, so a write never has to update the set. A busy
thread is looked at again a sweep interval later.

Every API replica's housekeeping (:mod:`relaygraph.api.housekeeping`) calls :func:`sweep`;
a short lock lets one of them sweep each interval, and a deletion twice is harmless
anyway. Threads run only from Python keep a TTL set through the API, but are deleted only
while an API replica runs.
(``RELAYGRAPH_THREAD_TTL`` is the fleet-wide TTL of every thread, kept by Redis itself.)
"""

from __future__ import annotations

import logging
from typing import Any

from relaygraph.api.schemas import ThreadTTL
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.threads import THREAD_EXPIRY as EXPIRY
from relaygraph.workers.threads import now_ms, thread_key

__all__ = ["EXPIRY", "set_ttl", "sweep"]

log = logging.getLogger("relaygraph.api")

SWEEP_BATCH = 100


def set_ttl(redis: Any, thread_id: str, ttl: ThreadTTL) -> None:
    """Give the thread (whose record exists) a TTL counted from now."""
    ttl_ms = int(ttl.ttl * 60_000)
    now = now_ms()
    pipe = redis.pipeline(transaction=False)
    pipe.hset(thread_key(thread_id), mapping={"ttl_ms": ttl_ms, "updated": now})
    pipe.zadd(EXPIRY, {thread_id: now + ttl_ms})
    pipe.execute()


def sweep(backend: Any, now: int | None = None) -> list[str]:
    """Delete the threads whose TTL is due (up to SWEEP_BATCH); their ids."""
    now = now_ms() if now is None else now
    redis = backend.redis
    deleted: list[str] = []
    for raw in redis.zrangebyscore(EXPIRY, "-inf", now, start=0, num=SWEEP_BATCH):
        thread_id = raw.decode()
        due = _due_at(redis, thread_id)
        if due is None:  # deleted meanwhile, or its TTL is gone
            redis.zrem(EXPIRY, thread_id)
        elif due > now:
            redis.zadd(EXPIRY, {thread_id: due})
        elif redis.exists(ThreadKeys(thread_id).active):  # busy: not idle yet
            redis.zadd(EXPIRY, {thread_id: now + int(backend.settings.api_sweep_interval * 1000)})
        else:
            try:
                backend.delete_thread(thread_id)
            except Exception:  # (a 404: gone already) the next sweep looks again
                log.warning("deleting expired thread %s failed", thread_id, exc_info=True)
                continue
            redis.zrem(EXPIRY, thread_id)
            deleted.append(thread_id)
    return deleted


def _due_at(redis: Any, thread_id: str) -> int | None:
    """When the thread's TTL runs out: its last activity plus its TTL (None: no record or
    no TTL)."""
    keys = ThreadKeys(thread_id)
    pipe = redis.pipeline(transaction=False)
    pipe.hmget(thread_key(thread_id), "ttl_ms", "updated", "created")
    pipe.zrevrange(keys.runs, 0, 0)
    (ttl_ms, updated, created), last = pipe.execute()
    if not ttl_ms or not created:
        return None
    active = int(updated or created)
    if last:
        ended = redis.hget(keys.run(last[0].decode()), "updated")
        active = max(active, int(ended or 0))
    return active + int(ttl_ms)
