"""Crons through the official SDK: runs on a schedule on a thread or each on a new thread,
updates, search, errors; and the scheduler's claim, which fires each due cron once however
many replicas tick."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from relaygraph.api.crons import DUE, CronError, CronStore, fire_due, new_cron, next_fire

EVERY_SECOND = "* * * * * *"  # croniter's sixth field: seconds


def _until(check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def _cron(schedule: str = "*/5 * * * *", **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "timezone": None, "end_time": None, "enabled": True, "on_run_completed": None,
        "metadata": {},
    }  # fmt: skip
    return new_cron("a", None, schedule, {}, **{**args, **kwargs})


def test_next_fire() -> None:
    at = int(datetime(2026, 3, 1, 10, 2, tzinfo=UTC).timestamp() * 1000)
    assert next_fire(_cron(), at) == at + 3 * 60_000  # 10:05
    # 09:00 in New York is 14:00 UTC on 2026-03-01 (before the DST change)
    ny = _cron("0 9 * * *", timezone="America/New_York")
    assert datetime.fromtimestamp(next_fire(ny, at) / 1000, UTC).hour == 14
    ended = _cron(end_time=datetime(2026, 3, 1, 10, 4, tzinfo=UTC))
    assert next_fire(ended, at) is None
    assert next_fire(_cron(enabled=False), at) is None
    with pytest.raises(CronError, match="schedule"):
        _cron("61 * * * *")
    with pytest.raises(CronError, match="timezone"):
        _cron(timezone="Mars/Olympus")


def test_a_due_cron_fires_once_however_many_replicas_tick(api_redis: Any) -> None:
    import redis

    client = redis.Redis.from_url(api_redis.url)
    store = CronStore(client)
    try:
        cron = store.save(_cron("0 0 1 1 *"))  # next new year: not due by itself
        now = int(time.time() * 1000)
        client.zadd(DUE, {cron["cron_id"]: now - 1})  # due now
        fired: list[str] = []
        start = threading.Barrier(8)

        def replica() -> None:
            start.wait()
            fire_due(store, lambda c: fired.append(c["cron_id"]), now)

        ticks = [threading.Thread(target=replica) for _ in range(8)]
        for tick in ticks:
            tick.start()
        for tick in ticks:
            tick.join()
        assert fired == [cron["cron_id"]]
        assert client.zscore(DUE, cron["cron_id"]) > now  # moved to its next fire
        assert store.delete(cron["cron_id"]) and not store.delete(cron["cron_id"])
    finally:
        client.close()


def test_thread_cron_runs_on_its_thread(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    tag = uuid.uuid4().hex
    cron = sync_client.crons.create_for_thread(
        thread_id, "steps", schedule=EVERY_SECOND, input={"items": []}, metadata={"tag": tag}
    )
    assert cron["thread_id"] == thread_id and cron["schedule"] == EVERY_SECOND
    assert cron["enabled"] is True and cron["next_run_date"] and cron["metadata"] == {"tag": tag}
    assert sync_client.crons.search(thread_id=thread_id)[0]["cron_id"] == cron["cron_id"]
    assert sync_client.crons.count(metadata={"tag": tag}) == 1
    try:

        def two_done() -> list[dict[str, Any]] | None:
            runs = sync_client.runs.list(thread_id, limit=100)
            done = [r for r in runs if r["status"] == "success"]
            return done if len(done) >= 2 else None

        runs = _until(two_done)
        assert all(r["metadata"]["cron_id"] == cron["cron_id"] for r in runs)
    finally:
        sync_client.crons.delete(cron["cron_id"])
    time.sleep(1.5)  # a fire claimed just before the delete may still land
    settled = len(sync_client.runs.list(thread_id, limit=100))
    time.sleep(2.5)
    assert len(sync_client.runs.list(thread_id, limit=100)) == settled  # no more fires
    with pytest.raises(NotFoundError):
        sync_client.crons.delete(cron["cron_id"])


def test_stateless_cron_runs_on_new_threads(sync_client: Any) -> None:
    slow = sync_client.assistants.create("slow", name="cron target")["assistant_id"]
    mine = {"assistant_id": slow}
    cron = sync_client.crons.create(slow, schedule=EVERY_SECOND, input={"items": []})
    assert cron["thread_id"] is None and cron["on_run_completed"] == "delete"
    try:
        # each fire has a thread of its own while it runs (2 s) ...
        _until(lambda: sync_client.threads.search(metadata=mine, limit=100))
        sync_client.crons.update(cron["cron_id"], enabled=False)
        assert sync_client.crons.search(assistant_id=slow)[0]["next_run_date"] is None
        # ... deleted after its run: none is left once the cron stops
        _until(lambda: not sync_client.threads.search(metadata=mine, limit=100), 30)
    finally:
        sync_client.crons.delete(cron["cron_id"])
    echo = sync_client.assistants.create("echo")["assistant_id"]
    kept = sync_client.crons.create(
        echo, schedule=EVERY_SECOND, input={"messages": []}, on_run_completed="keep"
    )
    try:
        # a run that fails (echo of no message) leaves its thread too: kept, with the error
        _until(lambda: sync_client.threads.search(metadata={"assistant_id": echo}, status="error"))
    finally:
        sync_client.crons.delete(kept["cron_id"])


def test_update_search_and_refusals(sync_client: Any, api_url: str) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    cron = sync_client.crons.create_for_thread(thread_id, "steps", schedule="0 9 * * *")
    cron_id = cron["cron_id"]
    try:
        nine = datetime.fromisoformat(cron["next_run_date"])
        assert (nine.hour, nine.minute) == (9, 0)
        moved = sync_client.crons.update(cron_id, schedule="30 9 * * *", timezone="Asia/Tokyo")
        utc = datetime.fromisoformat(moved["next_run_date"]).astimezone(UTC)
        assert moved["timezone"] == "Asia/Tokyo" and (utc.hour, utc.minute) == (0, 30)
        ended = sync_client.crons.update(cron_id, end_time=datetime.now(UTC) - timedelta(days=1))
        assert ended["next_run_date"] is None and ended["end_time"]
        reopened = sync_client.crons.update(cron_id, end_time=None)
        assert reopened["end_time"] is None and reopened["next_run_date"]
        with_input = sync_client.crons.update(cron_id, input={"items": ["z"]}, metadata={"m": 1})
        assert with_input["payload"]["input"] == {"items": ["z"]}
        assert with_input["metadata"] == {"m": 1}
        assert sync_client.crons.search(thread_id=thread_id, select=["cron_id"]) == [
            {"cron_id": cron_id}
        ]
        assert sync_client.crons.count(thread_id=thread_id) == 1
        assert sync_client.crons.search(thread_id=thread_id, enabled=False) == []
        # refusals: nothing stored, the cron unchanged
        for body, status, named in [
            ({"assistant_id": "steps", "schedule": "61 * * * *"}, 422, "schedule"),
            ({"assistant_id": "steps", "schedule": "* * * * *", "timezone": "X/Y"}, 422,
             "timezone"),
            ({"assistant_id": "nope", "schedule": "* * * * *"}, 404, "nope"),
            ({"assistant_id": "steps", "schedule": "* * * * *", "webhook": "http://x"}, 422,
             "webhook"),
            ({"schedule": "* * * * *"}, 422, "assistant_id"),
        ]:  # fmt: skip
            response = httpx.post(f"{api_url}/threads/{thread_id}/runs/crons", json=body)
            assert response.status_code == status and named in response.text, response.text
        missing = httpx.post(
            f"{api_url}/threads/{uuid.uuid4()}/runs/crons",
            json={"assistant_id": "steps", "schedule": "* * * * *"},
        )
        assert missing.status_code == 404
        bad = httpx.patch(f"{api_url}/runs/crons/{cron_id}", json={"schedule": "nope"})
        assert bad.status_code == 422
        assert sync_client.crons.count(thread_id=thread_id) == 1
        assert sync_client.crons.search(thread_id=thread_id)[0]["schedule"] == "30 9 * * *"
        unknown = httpx.patch(f"{api_url}/runs/crons/{uuid.uuid4()}", json={"enabled": False})
        assert unknown.status_code == 404
    finally:
        sync_client.crons.delete(cron_id)


async def test_a_failing_tick_is_logged_once_per_outage(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    import logging
    from types import SimpleNamespace

    from relaygraph.api import crons

    down = True

    def due(now: int) -> list[tuple[str, int]]:
        if down:
            raise ConnectionError("Redis is away")
        return []

    backend = SimpleNamespace(crons=SimpleNamespace(due=due), fire_cron=None)
    monkeypatch.setattr(crons, "TICK", 0.01)
    caplog.set_level(logging.WARNING, logger="relaygraph.api")
    ticking = asyncio.create_task(crons.crons_forever(backend))
    try:
        await asyncio.sleep(0.2)  # about 20 failing ticks
        down = False
        await asyncio.sleep(0.1)
    finally:
        ticking.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["cron ticks failing (logged once until they work)", "cron ticks work again"]
