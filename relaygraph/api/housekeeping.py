"""What the API replicas do in the background, one replica per interval: delete threads
whose TTL is due (:mod:`relaygraph.api.thread_ttl`) and the threads of stateless runs that
are over.

A stateless background run (``POST /runs``, and a stateless cron's runs) gets a thread of
its own; with ``on_completion='delete'`` (the default, as on LangGraph's server) the thread
is listed in ``rgw:api:temporary`` when the run is submitted and deleted by the first
housekeeping after the run is over. (``/runs/wait`` and ``/runs/stream`` delete theirs as
soon as they answer.)

Every replica runs :func:`housekeeping_forever`; a short lock (``SET NX PX``, the interval
long) lets one of them work each interval, and doing the same work twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool

from relaygraph.api import thread_ttl
from relaygraph.workers.keys import PREFIX, ThreadKeys
from relaygraph.workers.threads import now_ms

__all__ = ["TEMPORARY", "delete_when_over", "housekeeping_forever", "reap_temporary"]

log = logging.getLogger("relaygraph.api")

TEMPORARY = f"{PREFIX}:api:temporary"
"""Global sorted set: thread of a stateless background run -> when it was submitted (ms)."""
LOCK = f"{PREFIX}:api:housekeeping:lock"
BATCH = 200


def delete_when_over(redis: Any, thread_id: str) -> None:
    """List a stateless run's thread for deletion once its run is over."""
    redis.zadd(TEMPORARY, {thread_id: now_ms()})


def reap_temporary(backend: Any) -> list[str]:
    """Delete listed threads with no active run left (up to BATCH); their ids."""
    redis = backend.redis
    reaped: list[str] = []
    for raw in redis.zrange(TEMPORARY, 0, BATCH - 1):
        thread_id = raw.decode()
        if redis.exists(ThreadKeys(thread_id).active):
            continue  # still running (or queued)
        try:
            backend.drop_temporary(thread_id)
        except Exception:  # the next round tries again
            log.warning("deleting stateless thread %s failed", thread_id, exc_info=True)
            continue
        redis.zrem(TEMPORARY, thread_id)
        reaped.append(thread_id)
    return reaped


def housekeep(backend: Any) -> None:
    """One round: TTLs that are due, then stateless threads that are over."""
    thread_ttl.sweep(backend)
    reap_temporary(backend)


async def housekeeping_forever(backend: Any, interval: float) -> None:
    """Every ``interval`` seconds, a round if this replica wins the interval's lock."""
    token = uuid.uuid4().hex
    while True:
        await asyncio.sleep(interval)
        try:
            if await backend.aredis.set(LOCK, token, nx=True, px=int(interval * 1000)):
                await run_in_threadpool(housekeep, backend)
        except Exception:  # Redis away a moment: the next interval tries again
            log.warning("API housekeeping failed", exc_info=True)
