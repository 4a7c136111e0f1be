"""Thread records (relaygraph.workers.threads): what Client.submit writes for the HTTP API."""

from __future__ import annotations

import redis

from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.threads import THREADS, ThreadRecords, assistant_id_of, thread_key


def test_note_run_creates_or_completes_a_record_and_keeps_user_metadata(
    redis_server: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    records = ThreadRecords(client)
    records.note_run("new", "g")
    assert records.get("new")["metadata"] == {"graph_id": "g", "assistant_id": assistant_id_of("g")}
    assert records.ids() == ["new"]
    assert records.create("api", {"user": "ann"})
    records.note_run("api", "g")  # the thread's first run adds graph_id, keeps the rest
    assert records.get("api")["metadata"] == {
        "user": "ann",
        "graph_id": "g",
        "assistant_id": assistant_id_of("g"),
    }
    records.note_run("api", "other")  # a later run of another graph changes nothing
    assert records.get("api")["metadata"]["graph_id"] == "g"
    assert client.ttl(thread_key("api")) == -1  # no thread TTL: kept like the checkpoints
    records.delete("new")
    assert records.get("new") is None and records.ids() == ["api"]
    client.close()


def test_records_expire_with_the_thread_ttl_and_reads_renew_them(
    redis_server: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    records = ThreadRecords(client, ttl=100)
    records.note_run("t", "g")
    assert 0 < client.ttl(thread_key("t")) <= 100
    client.expire(thread_key("t"), 5)
    assert records.get("t") is not None
    assert client.ttl(thread_key("t")) > 5  # a read renews it, as the saver's reads do
    assert records.create("u", {})
    assert 0 < client.ttl(thread_key("u")) <= 100
    client.delete(thread_key("u"))  # as when it expires: the list entry stays until forgotten
    assert records.get("u") is None and client.zscore(THREADS, "u") is not None
    records.forget("u")
    assert records.ids() == ["t"]
    client.expire(thread_key("t"), 5)
    records.touch("t")  # a write renews it too
    assert client.ttl(thread_key("t")) > 5
    records.delete("t")
    assert not client.exists(thread_key("t")) and records.ids() == []
    client.close()


def test_runs_are_the_coordinators_index_newest_first(redis_server: EmbeddedRedis) -> None:
    from relaygraph.workers.coordination import Coordinator

    client = redis.Redis.from_url(redis_server.url)
    coordinator = Coordinator(client, lease_ttl=5, run_ttl=60)
    records = ThreadRecords(client)
    assert records.run_ids("t") == [] and records.last_run("t") is None
    coordinator.submit_run("t", "r1", "enqueue", {"graph": "g"})
    coordinator.submit_run("t", "r2", "enqueue", {"graph": "g"})  # queued behind r1
    assert records.run_ids("t") == ["r2", "r1"] and records.run_ids("t", 1, 1) == ["r1"]
    coordinator.finish_run("t", "r1", "success")
    coordinator.finish_run("t", "r2", "error", "boom")
    assert records.last_run("t") == "r2"
    client.delete(ThreadKeys("t").run("r2"))
    assert records.run_ids("t") == ["r1"]  # a run whose record expired is not listed
    client.close()


def test_get_many_reads_in_one_go_without_renewing(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url)
    records = ThreadRecords(client, ttl=100)
    records.note_run("a", "g")
    client.expire(thread_key("a"), 5)
    got = records.get_many(["a", "missing"])
    assert got[0]["metadata"]["graph_id"] == "g" and got[1] is None
    assert client.ttl(thread_key("a")) <= 5  # a scan is not a read of the thread
    assert records.get_many([]) == []
    client.close()


def test_newest_first_pages_by_creation_time_and_ties(redis_server: EmbeddedRedis) -> None:
    """Pages follow a cursor on the creation time: threads created or dropped while a scan
    goes on shift no page, and ids created in the same millisecond are neither repeated
    nor skipped across a page boundary."""
    client = redis.Redis.from_url(redis_server.url)
    client.delete(THREADS)
    records = ThreadRecords(client)
    # 7 threads, 4 of them in one millisecond: pages of 3 cut through the tie twice
    scores = {"a": 1, "b": 2, "c": 3, "d": 3, "e": 3, "f": 3, "g": 4}
    client.zadd(THREADS, scores)
    order = [m.decode() for m in client.zrevrange(THREADS, 0, -1)]
    pages = records.newest_first(3)
    first = next(pages)
    assert first == order[:3]
    client.zadd(THREADS, {"new": 10})  # created meanwhile: newer than the cursor
    client.zrem(THREADS, first[0])  # dropped meanwhile, from a page already read
    rest = [thread for page in pages for thread in page]
    assert first + rest == order  # every thread once, in order
    assert [len(p) for p in records.newest_first(3)] == [3, 3, 1]  # "new" in, "g" out
    assert list(records.newest_first(10)) == [["new", *order[1:]]]
    client.delete(THREADS)
    assert list(records.newest_first(3)) == []
    client.close()


def test_newest_first_of_orders_the_listed_threads_and_drops_unknown_ones(
    redis_server: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(THREADS)
    records = ThreadRecords(client)
    client.zadd(THREADS, {"old": 1, "mid": 2, "new": 3})
    assert records.newest_first_of(["old", "nope", "new", "old"]) == ["new", "old"]
    assert records.newest_first_of([]) == []
    records.forget("old", "mid")
    records.forget()  # nothing to drop: no call
    assert records.ids() == ["new"]
    client.close()
