"""Nothing of a deleted Redis thread or an emptied store namespace remains (keys counted)."""

from __future__ import annotations

import redis

from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.store.redis import RedisStore

from .saver_contract import Thread


def _keys(url: str) -> set[bytes]:
    with redis.Redis.from_url(url) as client:
        return set(client.scan_iter(count=1000))


def test_delete_thread_leaves_no_run_registry_entry(redis_search_url: str) -> None:
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        kept = Thread(saver, "kept")
        kept.commit({"a": 1}, run_id="common")
        before = _keys(redis_search_url)
        doomed = Thread(saver, "doomed")
        doomed.commit({"a": 1}, run_id="common")
        doomed.commit({"a": 2}, run_id="only-doomed")
        assert saver.run_key("only-doomed").encode() in _keys(redis_search_url)
        saver.delete_thread("doomed")
        assert _keys(redis_search_url) == before
        with redis.Redis.from_url(redis_search_url) as client:
            assert client.smembers(saver.run_key("common")) == {b"kept"}
        # A thread of that id committing again under the same run is recorded again.
        again = Thread(saver, "doomed")
        again.commit({"a": 3}, run_id="only-doomed")
        with redis.Redis.from_url(redis_search_url) as client:
            assert client.smembers(saver.run_key("only-doomed")) == {b"doomed"}


async def test_adelete_thread_leaves_no_run_registry_entry(redis_search_url: str) -> None:
    saver = RedisSaver.from_conn_string(redis_search_url)
    before = _keys(redis_search_url)
    Thread(saver, "doomed").commit({"a": 1}, run_id="r1")
    await saver.adelete_thread("doomed")
    assert _keys(redis_search_url) == before
    await saver.aclose()


def test_an_emptied_store_namespace_leaves_no_counter(redis_search_url: str) -> None:
    store = RedisStore.from_conn_string(redis_search_url, name="retention_store")
    store.setup()
    store.put(("users", "kept"), "k", {"v": 1})
    before = _keys(redis_search_url)
    with redis.Redis.from_url(redis_search_url) as client:
        counts_before = client.hgetall("retention_store:count")
    for i in range(3):
        store.put(("users", "gone", "deep"), f"k{i}", {"v": i})
        store.put(("other",), f"k{i}", {"v": i})
    for i in range(3):
        store.delete(("users", "gone", "deep"), f"k{i}")
        store.delete(("other",), f"k{i}")
    with redis.Redis.from_url(redis_search_url) as client:
        assert client.hgetall("retention_store:count") == counts_before
    assert _keys(redis_search_url) == before
    store.close()
