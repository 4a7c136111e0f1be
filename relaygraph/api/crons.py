"""Crons: runs the API submits on a schedule, on one thread or each on a new one.

A cron is an assistant, a cron schedule (croniter's syntax: five fields, or six with
seconds last), a timezone (IANA, default UTC), an optional end time and the run's payload
(input, config, context, metadata, interrupts, multitask strategy, stream modes). Storage:
one hash per cron (``rgw:{cron:<id>}:api:cron``: the cron as JSON), one sorted set of
every cron for search (id -> creation ms) and one of the crons that will fire (id -> next
fire ms; a disabled or ended cron is not in it).

Every API replica ticks each second (:func:`crons_forever`): it reads the due crons and,
for each, moves its next fire time with a compare-and-set on the due set (a script); only
the replica whose move landed submits the run, so a fire runs once however many replicas
tick. Fires missed while no replica ran are skipped (the next one is after now). A fire
whose submission fails is logged and the cron stays; a thread cron whose thread is gone
is deleted (it can never run again). A stateless cron's run gets a thread of its own,
deleted after the run unless ``on_run_completed='keep'`` (:mod:`relaygraph.api.housekeeping`).
At most once: a replica killed between its move and its submit loses that one fire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from starlette.concurrency import run_in_threadpool

from relaygraph.api.encode import iso
from relaygraph.workers.keys import PREFIX
from relaygraph.workers.threads import now_ms

__all__ = [
    "CRONS",
    "DUE",
    "CronError",
    "CronStore",
    "check_schedule",
    "cron_end",
    "crons_forever",
    "fire_due",
    "new_cron",
    "next_fire",
    "zone",
]

log = logging.getLogger("relaygraph.api")

CRONS = f"{PREFIX}:api:crons"
"""Global sorted set: cron id -> creation time (ms), every cron."""
DUE = f"{PREFIX}:api:crons:due"
"""Global sorted set: cron id -> its next fire (ms), the crons that will fire."""
TICK = 1.0
"""Seconds between a replica's looks at the due crons."""
BATCH = 50

# KEYS[1] the due set. ARGV[1] the cron, ARGV[2] the score the caller read, ARGV[3] the next
# fire ("" : none, the cron ended). 1 when this call moved it (and so fires it), else 0.
_CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1])
else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1
"""


class CronError(ValueError):
    """A schedule, timezone or end time that cannot be used (the message names it)."""


def cron_key(cron_id: str) -> str:
    """The hash of a cron."""
    return f"{PREFIX}:{{cron:{cron_id}}}:api:cron"


def zone(name: str | None) -> ZoneInfo:
    """The IANA timezone ``name`` (UTC when None); CronError for an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"timezone: {name!r} is not an IANA timezone") from exc


def check_schedule(schedule: str) -> None:
    """CronError unless ``schedule`` is a cron expression croniter takes."""
    if not croniter.is_valid(schedule):
        raise CronError(
            f"schedule: {schedule!r} is not a cron expression (five fields, or six with "
            "seconds last)"
        )


def next_fire(cron: dict[str, Any], after_ms: int) -> int | None:
    """The cron's first fire strictly after ``after_ms`` (ms), or None when it is past the
    cron's end time or the cron is disabled."""
    if not cron["enabled"]:
        return None
    start = datetime.fromtimestamp(after_ms / 1000, zone(cron["timezone"]))
    fire = croniter(cron["schedule"], start).get_next(datetime)
    fire_ms = int(fire.timestamp() * 1000)
    end = cron.get("end_time")
    if end and fire_ms > int(datetime.fromisoformat(end).timestamp() * 1000):
        return None
    return fire_ms


class CronStore:
    """The crons on a redis-py client (``decode_responses`` off)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)

    def save(self, cron: dict[str, Any], now: int | None = None) -> dict[str, Any]:
        """Store the cron (new or changed) and schedule its next fire after now."""
        now = now_ms() if now is None else now
        fire = next_fire(cron, now)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(cron_key(cron["cron_id"]), json.dumps(cron))
        pipe.zadd(CRONS, {cron["cron_id"]: now}, nx=True)
        if fire is None:
            pipe.zrem(DUE, cron["cron_id"])
        else:
            pipe.zadd(DUE, {cron["cron_id"]: fire})
        pipe.execute()
        return self._shown(cron, fire)

    def get(self, cron_id: str) -> dict[str, Any] | None:
        """The cron as the SDK shows it, or None."""
        return self.many([cron_id])[0]

    def many(self, cron_ids: list[str]) -> list[dict[str, Any] | None]:
        """The crons ``cron_ids`` (None for each unknown one), in one round trip."""
        if not cron_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cron_id in cron_ids:
            pipe.get(cron_key(cron_id))
        raws = pipe.execute()
        fires = self.redis.zmscore(DUE, cron_ids)
        out: list[dict[str, Any] | None] = []
        for raw, fire in zip(raws, fires, strict=True):
            if raw is None:
                out.append(None)
                continue
            out.append(self._shown(json.loads(raw), None if fire is None else int(fire)))
        return out

    def all(self) -> list[dict[str, Any]]:
        """Every cron."""
        ids = [raw.decode() for raw in self.redis.zrange(CRONS, 0, -1)]
        return [cron for cron in self.many(ids) if cron is not None]

    def delete(self, cron_id: str) -> bool:
        """Drop the cron; False for an unknown one."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(cron_key(cron_id))
        pipe.zrem(CRONS, cron_id)
        pipe.zrem(DUE, cron_id)
        return bool(pipe.execute()[0])

    def due(self, now: int) -> list[tuple[str, int]]:
        """``(cron id, its fire ms)`` of the crons due at ``now``."""
        rows = self.redis.zrangebyscore(DUE, "-inf", now, start=0, num=BATCH, withscores=True)
        return [(raw.decode(), int(score)) for raw, score in rows]

    def claim(self, cron_id: str, score: int, following: int | None) -> bool:
        """Move a due cron to its next fire if nobody did since we read ``score``."""
        return bool(self._claim(keys=[DUE], args=[cron_id, score, following or ""]))

    @staticmethod
    def _shown(cron: dict[str, Any], fire: int | None) -> dict[str, Any]:
        return {**cron, "next_run_date": iso(fire) if fire is not None else None}


def new_cron(
    assistant_id: str,
    thread_id: str | None,
    schedule: str,
    payload: dict[str, Any],
    *,
    timezone: str | None,
    end_time: datetime | None,
    enabled: bool,
    on_run_completed: str | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """A cron record, checked (CronError names what is wrong)."""
    check_schedule(schedule)
    zone(timezone)
    now = iso(now_ms())
    return {
        "cron_id": str(uuid.uuid4()),
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "on_run_completed": None if thread_id else (on_run_completed or "delete"),
        "end_time": cron_end(end_time),
        "schedule": schedule,
        "timezone": timezone,
        "created_at": now,
        "updated_at": now,
        "payload": payload,
        "user_id": None,
        "metadata": metadata,
        "enabled": enabled,
    }


def cron_end(end_time: datetime | None) -> str | None:
    """An end time as stored (ISO 8601; a naive time is UTC)."""
    if end_time is None:
        return None
    if end_time.tzinfo is None:  # a naive time is UTC, as the SDK sends isoformat()
        end_time = end_time.replace(tzinfo=UTC)
    return end_time.isoformat()


def fire_due(
    store: CronStore, submit: Callable[[dict[str, Any]], None], now: int | None = None
) -> list[str]:
    """Fire every cron due at ``now`` that this caller claims; the ids fired."""
    now = now_ms() if now is None else now
    fired = []
    for cron_id, score in store.due(now):
        cron = store.get(cron_id)
        if cron is None:  # deleted meanwhile
            store.redis.zrem(DUE, cron_id)
            continue
        if not store.claim(cron_id, score, next_fire(cron, now)):
            continue  # another replica fired it
        try:
            submit(cron)
        except Exception:
            log.warning("cron %s: its run was not submitted", cron_id, exc_info=True)
            continue
        fired.append(cron_id)
    return fired


async def crons_forever(backend: Any) -> None:
    """Every TICK seconds, fire the due crons this replica claims."""
    failing = False
    while True:
        await asyncio.sleep(TICK)
        try:
            await run_in_threadpool(fire_due, backend.crons, backend.fire_cron)
        except Exception:  # Redis away a moment: the next tick tries again
            if not failing:  # once per outage, not every second
                log.warning("cron ticks failing (logged once until they work)", exc_info=True)
            failing = True
        else:
            if failing:
                log.warning("cron ticks work again")
            failing = False
