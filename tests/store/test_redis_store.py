"""RedisStore specifics: escaping, native expiry, paging past RediSearch windows, filter
push-down, pipelining, migration, connections and errors. The shared behaviour is in the
conformance suite (store_contract.py, run on Redis through backend_redis.py)."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from datetime import UTC, datetime

import pytest
import redis

from relaygraph.persistence.errors import SerializationError
from relaygraph.persistence.store import redis as redis_store_module
from relaygraph.persistence.store import redis_query as rq
from relaygraph.persistence.store.base import GetOp, PutOp, SearchOp
from relaygraph.persistence.store.filters import FilterError
from relaygraph.persistence.store.memory import InMemoryStore
from relaygraph.persistence.store.redis import AsyncRedisStore, RedisStore, RedisStoreError

from .store_contract import FAKE_DIMS, FAKE_INDEX, fake_embed, keys

pytestmark = pytest.mark.xdist_group("redis-store")

NASTY = [
    "bob",
    "bobby",
    "bob*",
    "b*",
    "*",
    "bob|bobby",
    "bob bobby",
    "{bob}",
    "bob}|{bobby",
    'q"uote',
    "it's",
    "back\\slash",
    "\\",
    "-bob",
    "@ns:{bob}",
    "(bob)",
    "$bob",
    "%bob%",
    "Bob",
    "BOB",
    "ünï¢ødé ✓",
    "鮑勃",
    "emoji 🙂",
    "tab\there",
    "new\nline",
    "a,b",
    ";:!~",
    "[1 2]",
]


@pytest.fixture
def url(redis_search_url: str) -> str:
    return redis_search_url


@pytest.fixture
def store(url: str):
    with RedisStore.from_conn_string(url) as store:
        yield store


@pytest.fixture
def client(url: str):
    with redis.Redis.from_url(url, protocol=2) as client:
        yield client


def item_keys(client: redis.Redis, name: str = "relaygraph_store") -> list[bytes]:
    return sorted(client.scan_iter(match=f"{name}:item:*", count=1000))


# -- escaping: no namespace, key or value string can widen a query ---------------------------


def test_nasty_namespaces_are_label_exact(store: RedisStore) -> None:
    store.batch([PutOp(("users", label), "k", {"label": label}) for label in NASTY])
    for label in NASTY:
        found = store.search(("users", label), limit=100)
        assert [item.namespace for item in found] == [("users", label)], label
        if label != "*":  # in list_namespaces patterns "*" is the documented wildcard
            assert store.list_namespaces(prefix=("users", label)) == [("users", label)]
            assert store.list_namespaces(suffix=(label,)) == [("users", label)]
        assert store.get(("users", label), "k").value == {"label": label}
    assert len(store.search(("users",), limit=100)) == len(NASTY)
    assert store.search(("users", "bo")) == []
    assert store.search(("user",)) == []


def test_nasty_keys_and_filter_values(store: RedisStore) -> None:
    for position, text in enumerate(NASTY):
        store.put(("d",), text, {"text": text, "n": position})
    for position, text in enumerate(NASTY):
        assert store.get(("d",), text).value["n"] == position
        found = store.search(("d",), filter={"text": text}, limit=100)
        assert keys(found) == [text], text
        found = store.search(("d",), filter={"text": {"$in": [text, "nothing"]}}, limit=100)
        assert keys(found) == [text], text
        assert len(store.search(("d",), filter={"text": {"$ne": text}}, limit=100)) == (
            len(NASTY) - 1
        )


def test_queries_carry_only_digests() -> None:
    expr, exact = rq.compile_value_filter(
        {"a": 'x"} | @pfx:{*', "b": {"$in": ["*", "\\"]}, "c": {"$exists": False}}
    )
    text = rq.render(rq.conj([rq.namespace_prefix_expr(("users", "bob}|*")), expr]))
    assert exact
    # Only field names, hex digests and query punctuation: no user text at all.
    assert re.fullmatch(r"[()@a-z:{}0-9 |\-]+", text), text
    assert "users" not in text and "bob" not in text


# -- filter push-down: exact where RediSearch can, re-checked where it cannot ---------------


@pytest.mark.parametrize(
    "filter, exact",
    [
        ({"a": 1}, True),
        ({"a": {"$ne": None}}, True),
        ({"a": {"$in": [1, "x", None, True]}}, True),
        ({"a": {"$nin": [[1, 2], {"k": "v"}]}}, True),
        ({"a.b.0": {"$exists": True}}, True),
        ({"a": {"$gt": 1}}, False),
        ({"a": "x" * 300}, False),
        ({"a": {"$ne": "x" * 300}}, False),
        ({"a.01": 1}, False),
    ],
)
def test_filter_pushdown_exactness(filter, exact: bool) -> None:
    assert rq.compile_value_filter(filter)[1] is exact


def test_empty_in_matches_nothing_without_a_query(store: RedisStore) -> None:
    store.put(("d",), "k", {"a": 1})
    assert rq.compile_value_filter({"a": {"$in": []}})[0] == rq.FALSE
    assert store.search(("d",), filter={"a": {"$in": []}}) == []
    assert keys(store.search(("d",), filter={"a": {"$nin": []}})) == ["k"]


def _random_value(rng: random.Random) -> dict:
    scalars = [0, 1, 1.0, 2.5, -3, True, False, None, "a", "b", "", "x" * 300]
    value: dict = {}
    for name in ("a", "b", "c"):
        roll = rng.random()
        if roll < 0.2:
            continue
        if roll < 0.7:
            value[name] = rng.choice(scalars)
        elif roll < 0.85:
            value[name] = [rng.choice(scalars) for _ in range(rng.randint(0, 2))]
        else:
            value[name] = {"x": rng.choice(scalars), "y": [rng.choice(scalars)]}
    return value


def _random_filter(rng: random.Random) -> dict:
    scalars = [0, 1, 1.0, 2.5, True, None, "a", "x" * 300, [1], [], {"x": 1, "y": [0]}]
    path = rng.choice(["a", "b", "c", "a.0", "c.x", "c.y.0", "c.y", "b.1"])
    operator = rng.choice(["$eq", "$ne", "$in", "$nin", "$exists", "$gt", "$lte", "plain"])
    if operator == "plain":
        return {path: rng.choice([0, 1, "a", None, 2.5])}
    if operator in ("$in", "$nin"):
        return {path: {operator: rng.sample(scalars, rng.randint(0, 3))}}
    if operator == "$exists":
        return {path: {"$exists": rng.random() < 0.5}}
    if operator in ("$gt", "$lte"):
        return {path: {operator: rng.choice([0, 1, "a"])}}
    return {path: {operator: rng.choice(scalars)}}


def test_filters_agree_with_in_memory_store(store: RedisStore) -> None:
    """Random values and filters: RedisStore returns what InMemoryStore returns."""
    rng = random.Random(7)
    memory = InMemoryStore()
    ops = [PutOp(("r", str(i % 3)), f"k{i:03d}", _random_value(rng)) for i in range(150)]
    store.batch(ops)
    memory.batch(ops)
    for _ in range(120):
        filter = _random_filter(rng)
        if rng.random() < 0.3:
            filter.update(_random_filter(rng))
        prefix = rng.choice([("r",), ("r", "1")])
        offset, limit = rng.choice([(0, 200), (0, 5), (7, 4)])
        expected = keys(memory.search(prefix, filter=filter, limit=limit, offset=offset))
        got = keys(store.search(prefix, filter=filter, limit=limit, offset=offset))
        assert got == expected, (filter, prefix, offset, limit)


def test_client_side_filter_pages_past_the_first_page(store: RedisStore, monkeypatch) -> None:
    """A filter RediSearch can't answer (ordering) pages through every candidate."""
    store.batch([PutOp(("p",), f"k{i:04d}", {"n": i}) for i in range(600)])
    found = store.search(("p",), filter={"n": {"$lt": 3}}, limit=10)
    assert keys(found) == ["k0002", "k0001", "k0000"]
    found = store.search(("p",), filter={"n": {"$lt": 30}}, limit=5, offset=20)
    assert keys(found) == [f"k{i:04d}" for i in range(9, 4, -1)]


# -- layout: one document per item, overwritten in place ---------------------------------------


def test_put_overwrites_in_place_and_keeps_other_namespaces(
    store: RedisStore, client: redis.Redis
) -> None:
    store.put(("a",), "k", {"v": 1})
    store.put(("a", "b"), "k", {"v": 2})
    store.put(("b",), "k", {"v": 3})
    before = item_keys(client)
    assert len(before) == 3
    first = store.get(("a",), "k")
    store.put(("a",), "k", {"v": 10})
    assert item_keys(client) == before
    assert store.get(("a",), "k").value == {"v": 10}
    assert store.get(("a",), "k").created_at == first.created_at
    assert store.get(("a", "b"), "k").value == {"v": 2}
    assert store.get(("b",), "k").value == {"v": 3}
    store.delete(("a",), "k")
    assert len(item_keys(client)) == 2


def test_documents_are_readable_json(store: RedisStore, client: redis.Redis) -> None:
    store.put(("docs", "x"), "k", {"text": "hi", "nested": {"n": [1, 2]}})
    [key] = item_keys(client)
    doc = client.json().get(key)
    assert doc["ns"] == ["docs", "x"] and doc["key"] == "k"
    assert doc["value"] == {"text": "hi", "nested": {"n": [1, 2]}}
    assert doc["created_at"] == doc["updated_at"]
    stamp = datetime.fromtimestamp(doc["updated_at"] / 1e6, UTC)
    assert abs((stamp - datetime.now(UTC)).total_seconds()) < 60
    assert len(doc["pfx"]) == 2 and len(doc["sfx"]) == 2


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    "value, message",
    [
        ({"when": datetime.now(UTC)}, "datetime"),
        ({"v": float("nan")}, "float values"),
        ({"v": {1, 2}}, "set"),
        ({"big": 2**64}, "64 bits"),
        ({"small": -(2**63) - 1}, "64 bits"),
        (_nested(rq.MAX_DEPTH + 1), "deeper than 100"),
        ({"text": "lone \ud800 surrogate"}, "UTF-8"),
    ],
)
def test_values_redis_cannot_keep_are_refused_before_writing(
    store: RedisStore, client, value, message: str
) -> None:
    with pytest.raises(SerializationError, match=rf"'k' in namespace \('d',\).*{message}"):
        store.batch([PutOp(("d",), "ok", {"v": 1}), PutOp(("d",), "k", value)])
    assert item_keys(client) == []


def test_limits_that_fit_are_stored_exactly(store: RedisStore) -> None:
    value = {"big": 2**64 - 1, "small": -(2**63), "f": 1e308, "z": -0.0, "deep": _nested(99)}
    store.put(("d",), "k", value)
    assert store.get(("d",), "k").value == value
    with pytest.raises(SerializationError, match="UTF-8"):
        store.put(("d", "\udcff"), "k", {})


def test_tuples_come_back_as_lists(store: RedisStore) -> None:
    store.put(("d",), "k", {"pair": (1, 2)})
    assert store.get(("d",), "k").value == {"pair": [1, 2]}
    assert keys(store.search(("d",), filter={"pair": [1, 2]})) == ["k"]


# -- TTL: Redis's own expiry ---------------------------------------------------------------------


def test_ttl_is_native_expiry(url: str, client: redis.Redis) -> None:
    with RedisStore.from_conn_string(url, ttl={"default_ttl": 0.02}) as store:  # 1.2 s
        store.put(("t",), "a", {"v": 1})
        store.put(("t",), "b", {"v": 1}, ttl=None)
        store.put(("t",), "c", {"v": 1}, ttl=10)
        ttls = {client.json().get(k, "$.key")[0]: client.pttl(k) for k in item_keys(client)}
        assert 0 < ttls["a"] <= 1200
        assert ttls["b"] == -1
        assert 590_000 < ttls["c"] <= 600_000
        time.sleep(0.8)
        [key_a] = [k for k in item_keys(client) if client.json().get(k, "$.key")[0] == "a"]
        store.get(("t",), "a")  # refresh on read: the timer restarts
        assert client.pttl(key_a) > 1000
        time.sleep(1.4)
        # Redis itself removed it: the store has no sweeper and did not touch it.
        assert client.exists(key_a) == 0
        assert keys(store.search(("t",))) == ["c", "b"]
        assert store.list_namespaces() == [("t",)]
        store.put(("t",), "b", {"v": 2}, ttl=0.5)  # overwrite sets an expiry ...
        store.put(("t",), "b", {"v": 3}, ttl=None)  # ... and ttl=None removes it
        assert sorted(client.pttl(k) > 0 for k in item_keys(client)) == [False, True]


def test_reads_without_refresh_leave_the_timer(url: str, client: redis.Redis) -> None:
    config = {"default_ttl": 1, "refresh_on_read": False}
    with RedisStore.from_conn_string(url, ttl=config) as store:
        store.put(("t",), "a", {"v": 1})
        [key] = item_keys(client)
        client.pexpire(key, 5000)
        store.get(("t",), "a")
        store.search(("t",))
        assert client.pttl(key) <= 5000
        store.get(("t",), "a", refresh_ttl=True)
        assert client.pttl(key) > 55_000
        client.pexpire(key, 5000)
        store.search(("t",), refresh_ttl=True)
        assert client.pttl(key) > 55_000


def test_bad_ttl_config(url: str) -> None:
    with pytest.raises(ValueError, match="defualt_ttl"):
        RedisStore.from_conn_string(url, ttl={"defualt_ttl": 1})
    with pytest.raises(ValueError, match="default_ttl"):
        RedisStore.from_conn_string(url, ttl={"default_ttl": 0})
    with pytest.raises(ValueError, match="refresh_on_read"):
        RedisStore.from_conn_string(url, ttl={"refresh_on_read": 1})
    with pytest.raises(TypeError):
        RedisStore.from_conn_string(url, ttl=5)


# -- no hidden caps --------------------------------------------------------------------------


def test_list_namespaces_past_the_search_window(store: RedisStore) -> None:
    """10,050 namespaces: more than RediSearch's default 10,000-result window."""
    total = 10_050
    for start in range(0, total, 2_000):
        store.batch(
            [PutOp(("n", f"{i:05d}"), "k", {}) for i in range(start, min(start + 2_000, total))]
        )
    found = store.list_namespaces(prefix=("n",), limit=20_000)
    assert len(found) == total
    assert found[0] == ("n", "00000") and found[-1] == ("n", f"{total - 1:05d}")
    assert store.list_namespaces(prefix=("n",), offset=10_040, limit=100) == [
        ("n", f"{i:05d}") for i in range(10_040, total)
    ]
    assert store.list_namespaces(max_depth=1) == [("n",)]
    assert len(store.search(("n",), limit=10_020, offset=30)) == 10_020


def test_list_namespaces_reads_every_cursor_page(store: RedisStore, monkeypatch) -> None:
    monkeypatch.setattr(redis_store_module, "_PAGE", 7)
    store.batch([PutOp(("m", str(i)), "k", {}) for i in range(50)])
    assert len(store.list_namespaces(limit=1000)) == 50


# -- batches are pipelined ---------------------------------------------------------------------


def test_batch_is_one_round_trip(store: RedisStore, monkeypatch) -> None:
    store.setup()
    calls: list[int] = []
    original = RedisStore._execute

    def counting(client, commands):
        calls.append(len(commands))
        return original(client, commands)

    monkeypatch.setattr(RedisStore, "_execute", staticmethod(counting))
    ops = [PutOp(("b",), f"k{i}", {"i": i}) for i in range(100)]
    ops += [GetOp(("b",), f"k{i}") for i in range(100)]
    results = store.batch(ops)
    assert calls == [200]
    assert [item.value["i"] for item in results[100:]] == list(range(100))
    calls.clear()
    results = store.batch([GetOp(("b",), "k1"), SearchOp(("b",), limit=3), GetOp(("b",), "k2")])
    assert calls == [1, 1, 1]  # get, then the search, then the get after it
    assert keys(results[1]) == ["k99", "k98", "k97"]


async def test_async_batch_is_pipelined(url: str) -> None:
    async with RedisStore.from_conn_string(url) as store:
        ops = [PutOp(("b",), f"k{i}", {"i": i}) for i in range(50)]
        await store.abatch(ops)
        got = await store.abatch([GetOp(("b",), f"k{i}") for i in range(50)])
        assert [item.value["i"] for item in got] == list(range(50))


# -- semantic search --------------------------------------------------------------------------


def test_scores_are_cosine_similarity_like_in_memory(url: str) -> None:
    memory = InMemoryStore(index=FAKE_INDEX)
    texts = ["cat dog", "dog dog fish", "tree car car", "bird", "cat cat cat"]
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        for i, text in enumerate(texts):
            store.put(("s",), f"k{i}", {"text": text})
            memory.put(("s",), f"k{i}", {"text": text})
        store.put(("s",), "plain", {"other": 1})
        memory.put(("s",), "plain", {"other": 1})
        for query in ("cat", "dog fish", "car"):
            got = store.search(("s",), query=query, limit=10)
            want = memory.search(("s",), query=query, limit=10)
            assert keys(got) == keys(want)
            for a, b in zip(got, want, strict=True):
                assert (a.score is None) == (b.score is None)
                if a.score is not None:
                    assert a.score == pytest.approx(b.score, abs=1e-5)


def test_vector_search_pages_through_a_client_side_filter(url: str) -> None:
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        store.batch(
            [PutOp(("v",), f"k{i:03d}", {"text": "cat " * (1 + i % 5), "n": i}) for i in range(300)]
        )
        found = store.search(("v",), query="cat", filter={"n": {"$gte": 295}}, limit=10)
        assert sorted(keys(found)) == [f"k{i:03d}" for i in range(295, 300)]
        scores = [item.score for item in found]
        assert scores == sorted(scores, reverse=True)
        # k295 holds one "cat", like the query: the same vector.
        assert keys(found)[0] == "k295" and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_redisvl_vectorizer_as_embedder(url: str) -> None:
    from redisvl.utils.vectorize import CustomVectorizer

    vectorizer = CustomVectorizer(
        embed=lambda text: fake_embed([text])[0], embed_many=lambda texts: fake_embed(texts)
    )
    index = {"embed": vectorizer, "dims": FAKE_DIMS, "fields": ["text"]}
    with RedisStore.from_conn_string(url, index=index) as store:
        store.put(("v",), "cat", {"text": "cat cat"})
        store.put(("v",), "car", {"text": "car"})
        assert keys(store.search(("v",), query="a cat")) == ["cat", "car"]


def test_hnsw_options_and_unknown_index_keys(url: str, client: redis.Redis) -> None:
    index = {**FAKE_INDEX, "hnsw": {"m": 8, "ef_construction": 50}}
    with RedisStore.from_conn_string(url, index=index, name="tuned") as store:
        store.setup()
        info = client.execute_command("FT.INFO", "tuned")
        text = str(info)
        assert "b'M', 8" in text and "b'ef_construction', 50" in text
    with pytest.raises(ValueError, match="unknown index config keys"):
        RedisStore.from_conn_string(url, index={**FAKE_INDEX, "hnws": {}})
    with pytest.raises(ValueError, match="keys among"):
        RedisStore.from_conn_string(url, index={**FAKE_INDEX, "hnsw": {"M": 8}})
    with pytest.raises(ValueError, match="positive integer"):
        RedisStore.from_conn_string(url, index={**FAKE_INDEX, "hnsw": {"m": 0}})


# -- namespace counts and the search plan ------------------------------------------------------


def _counts(client: redis.Redis, name: str = "relaygraph_store") -> dict[str, int]:
    raw = client.hgetall(f"{name}:count")
    return {k.decode(): int(v) for k, v in raw.items()}


def test_namespace_counts_follow_puts_overwrites_and_deletes(
    store: RedisStore, client: redis.Redis
) -> None:
    store.setup()
    assert _counts(client) == {"all": 0}
    store.put(("a", "b"), "k1", {"n": 1})
    store.put(("a", "b"), "k2", {"n": 2})
    store.put(("a", "c"), "k1", {"n": 3})
    store.put(("a", "b"), "k1", {"n": 4})  # an overwrite counts nothing
    store.delete(("a", "b"), "missing")  # nor does deleting nothing
    a, ab, ac = (rq.prefix_tag(p) for p in (["a"], ["a", "b"], ["a", "c"]))
    assert _counts(client) == {"all": 3, a: 3, ab: 2, ac: 1}
    store.delete(("a", "b"), "k2")
    assert _counts(client) == {"all": 2, a: 2, ab: 1, ac: 1}


def test_setup_counts_a_store_that_has_no_counts(url: str, client: redis.Redis) -> None:
    with RedisStore.from_conn_string(url) as store:
        store.batch([PutOp(("x", str(i % 3)), f"k{i}", {"i": i}) for i in range(30)])
    client.delete("relaygraph_store:count")  # as a store written before counts existed
    with RedisStore.from_conn_string(url) as store:
        store.setup()
    counts = _counts(client)
    assert counts["all"] == 30 and counts[rq.prefix_tag(["x"])] == 30
    assert counts[rq.prefix_tag(["x", "1"])] == 10
    assert client.exists("relaygraph_store:setup-lock") == 0


def test_migration_recounts(url: str, client: redis.Redis) -> None:
    with RedisStore.from_conn_string(url) as store:
        store.batch([PutOp(("m", str(i % 2)), f"k{i}", {"text": "cat"}) for i in range(10)])
    client.hset("relaygraph_store:count", "all", 99)  # drifted (items expired, say)
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:  # re-indexes all
        store.setup()
    counts = _counts(client)
    assert counts["all"] == 10 and counts[rq.prefix_tag(["m", "0"])] == 5


def test_prefer_batches_only_for_a_large_share() -> None:
    assert rq.prefer_batches(10_000, 10_000, 10)
    assert rq.prefer_batches(100_000, 100_000, 64)
    assert rq.prefer_batches(10_000, 100_000, 10)
    assert not rq.prefer_batches(1_000, 100_000, 10)  # a scan of 1,000 items is cheaper
    assert not rq.prefer_batches(100, 10_000, 10)
    assert not rq.prefer_batches(0, 0, 10)
    assert not rq.prefer_batches(500, 500, 10)  # small stores keep RediSearch's choice


def test_a_namespace_holding_most_items_is_searched_in_batches(url: str, monkeypatch) -> None:
    sent: list[tuple] = []
    original = RedisStore._execute

    def recording(client, commands):
        sent.extend(commands)
        return original(client, commands)

    monkeypatch.setattr(RedisStore, "_execute", staticmethod(recording))
    memory = InMemoryStore(index=FAKE_INDEX)
    words = ("cat", "dog", "fish", "bird", "tree", "car")
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        for target in (store, memory):
            ops = [
                PutOp(("big",), f"k{i}", {"text": " ".join(words[: 1 + i % 6]) + f" {i}"})
                for i in range(1500)
            ]
            ops += [PutOp(("small",), f"s{i}", {"text": words[i % 6]}) for i in range(12)]
            for first in range(0, len(ops), 500):
                target.batch(ops[first : first + 500])
        for prefix, batches in ((("big",), True), (("small",), False)):
            for _ in range(2):  # the first reads the counts, the next refreshes them
                sent.clear()
                got = store.search(prefix, query="cat dog", limit=5)
                searches = [c for c in sent if c[0] == "FT.SEARCH"]
                assert len(searches) == 1
                assert ("HYBRID_POLICY BATCHES" in str(searches[0][2])) is batches, prefix
                want = memory.search(prefix, query="cat dog", limit=5)
                assert [i.score for i in got] == pytest.approx([i.score for i in want], abs=1e-5)
        sent.clear()  # a value filter keeps RediSearch's own choice
        store.search(("big",), query="cat", filter={"text": "cat 0"}, limit=5)
        assert all("HYBRID_POLICY" not in str(c) for c in sent if c[0] == "FT.SEARCH")


def test_a_prefix_holding_every_item_is_searched_without_a_filter(url: str, monkeypatch) -> None:
    sent: list[tuple] = []
    original = RedisStore._execute

    def recording(client, commands):
        sent.extend(c for c in commands if c[0] == "FT.SEARCH")
        return original(client, commands)

    monkeypatch.setattr(RedisStore, "_execute", staticmethod(recording))
    with (
        RedisStore.from_conn_string(url, index=FAKE_INDEX) as store,
        RedisStore.from_conn_string(url, index=FAKE_INDEX) as other,
    ):
        store.batch([PutOp(("only",), f"k{i}", {"text": f"cat dog {i}"}) for i in range(40)])
        got = store.search(("only",), query="cat", limit=5)
        assert len(got) == 5 and len(sent) == 1 and "@pfx" not in str(sent[0][2])
        # Another process adds the best match elsewhere: this store's counts are stale.
        other.put(("elsewhere",), "x", {"text": "cat"})
        sent.clear()
        got = store.search(("only",), query="cat", limit=5)
        assert len(got) == 5 and {item.namespace for item in got} == {("only",)}
        assert len(sent) == 2 and "@pfx" in str(sent[1][2])  # re-sent with the filter


# -- setup and migration --------------------------------------------------------------------------


def test_setup_is_idempotent_and_concurrent(url: str, client: redis.Redis) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with RedisStore.from_conn_string(url, index=FAKE_INDEX, name="race") as store:
                store.setup()
                store.put(("r",), threading.current_thread().name, {"text": "cat"})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, name=f"t{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with RedisStore.from_conn_string(url, index=FAKE_INDEX, name="race") as store:
        store.setup()
        assert len(store.search(("r",), query="cat")) == 4
    assert client.exists("race:setup-lock") == 0


def test_migration_adds_vectors_and_changes_dims(url: str, client: redis.Redis) -> None:
    with RedisStore.from_conn_string(url, ttl={"default_ttl": 30}) as plain:
        plain.put(("m",), "cat", {"text": "cat cat"})
        plain.put(("m",), "car", {"text": "car"})
        plain.put(("m",), "skip", {"text": "cat"}, index=False)
        plain.put(("m",), "other", {"title": "cat", "text": "car"}, index=["title"])
        before = {item.key: item for item in plain.search(("m",))}
    # The same store name with semantic search: setup re-indexes and embeds the items,
    # honouring each put's own field choice.
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        found = store.search(("m",), query="cat")
        assert keys(found)[:2] == ["other", "cat"] or keys(found)[:2] == ["cat", "other"]
        assert [item.score is None for item in found] == [False, False, False, True]
        assert found[-1].key == "skip"
        for item in found:  # stamps kept
            assert item.created_at == before[item.key].created_at
            assert item.updated_at == before[item.key].updated_at
        assert all(0 < client.pttl(k) <= 30 * 60_000 for k in item_keys(client))

    def embed_doubled(texts):
        return [vector + vector for vector in fake_embed(texts)]

    doubled = {"embed": embed_doubled, "dims": 2 * FAKE_DIMS, "fields": ["text"]}
    with RedisStore.from_conn_string(url, index=doubled) as store:
        found = store.search(("m",), query="cat")
        assert keys(found)[0] in ("cat", "other") and found[0].score == pytest.approx(1, abs=0.1)
        assert [item.score is None for item in found] == [False, False, False, True]
    assert client.hget("relaygraph_store:meta", "dims") == str(2 * FAKE_DIMS).encode()


def test_forced_reembedding_and_a_failed_migration_releases_the_lock(
    url: str, client: redis.Redis
) -> None:
    with RedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        store.put(("m",), "k", {"text": "cat"})
        assert store.search(("m",), query="dog")[0].score < 0.5

    def broken(texts):
        raise RuntimeError("embedder down")

    # Same dims, another "model": only an explicit reembed re-embeds.
    with RedisStore.from_conn_string(url, index={**FAKE_INDEX, "embed": broken}) as store:
        store.setup()
        with pytest.raises(RuntimeError, match="embedder down"):
            store.setup(reembed=True)
    assert client.exists("relaygraph_store:setup-lock") == 0

    def as_dog(texts):
        return fake_embed(["dog" for _ in texts])

    with RedisStore.from_conn_string(url, index={**FAKE_INDEX, "embed": as_dog}) as store:
        store.setup(reembed=True)
        assert store.search(("m",), query="dog")[0].score == pytest.approx(1.0, abs=1e-5)


async def test_async_setup_and_migration(url: str) -> None:
    async with RedisStore.from_conn_string(url) as store:
        await store.aput(("a",), "k", {"text": "dog"})
    async with AsyncRedisStore.from_conn_string(url, index=FAKE_INDEX) as store:
        found = await store.asearch(("a",), query="dog")
        assert keys(found) == ["k"] and found[0].score == pytest.approx(1.0, abs=1e-5)


# -- connections and errors -----------------------------------------------------------------------


def test_from_conn_string_works_directly_and_as_context_manager(url: str) -> None:
    store = RedisStore.from_conn_string(url)
    store.put(("c",), "k", {"v": 1})
    assert store.get(("c",), "k").value == {"v": 1}
    store.close()
    store.close()  # twice is fine
    with RedisStore.from_conn_string(url) as again:
        assert again.get(("c",), "k").value == {"v": 1}


async def test_async_works_across_event_loops(url: str) -> None:
    store = RedisStore.from_conn_string(url)
    await store.aput(("c",), "k", {"v": 1})
    # The same store on another event loop (in a thread) gets its own connection.
    other = await asyncio.to_thread(lambda: asyncio.run(store.aget(("c",), "k")))
    assert other.value == {"v": 1}
    assert (await store.aget(("c",), "k")).value == {"v": 1}
    await store.aclose()


def test_given_clients(url: str) -> None:
    # A RESP3 client that decodes replies: the store reads both protocols.
    client = redis.Redis.from_url(url, protocol=3, decode_responses=True)
    store = RedisStore(client=client, name="given", index=FAKE_INDEX)
    store.put(("c",), "k", {"v": 1, "text": "cat"}, ttl=5)
    store.put(("c", "d"), "j", {"v": 2})
    assert store.get(("c",), "k").value == {"v": 1, "text": "cat"}
    assert keys(store.search(("c",))) == ["j", "k"]
    assert keys(store.search(("c",), query="cat", filter={"v": {"$lt": 5}})) == ["k", "j"]
    assert store.list_namespaces() == [("c",), ("c", "d")]
    store.close()
    assert client.ping()  # a client passed in stays open
    with pytest.raises(RedisStoreError, match="sync client"):
        asyncio.run(store.aget(("c",), "k"))
    client.close()


def test_server_without_search_module_is_a_clear_error(plain_redis_url: str) -> None:
    store = RedisStore.from_conn_string(plain_redis_url, name="rg_no_modules_probe")
    try:
        with pytest.raises(RedisStoreError, match="search and JSON modules"):
            store.put(("c",), "k", {"v": 1})
    finally:
        store.close()


def test_bad_arguments(url: str, store: RedisStore) -> None:
    with pytest.raises(ValueError, match="URL"):
        RedisStore()
    with pytest.raises(ValueError, match="store name"):
        RedisStore(url, name="has space")
    with pytest.raises(FilterError, match=r"\$regex"):
        store.search(("d",), filter={"a": {"$regex": "x"}})
    with pytest.raises(ValueError, match="limit"):
        store.search(("d",), limit=-1)


@pytest.mark.slow
def test_lesson_semantic_search_with_the_default_model(url: str) -> None:
    """The lesson's memory search on Redis with the real offline model (384 dims)."""
    with RedisStore.from_conn_string(url, index={"embed": "default", "fields": ["text"]}) as store:
        namespace = ("user_123", "memories")
        store.put(namespace, "1", {"text": "I love hiking in the mountains"})
        store.put(namespace, "2", {"text": "My favourite food is pizza"})
        store.put(namespace, "3", {"text": "I work as a software engineer"})
        found = store.search(namespace, query="outdoor activities", limit=2)
        assert found[0].value["text"] == "I love hiking in the mountains"
        assert found[0].score > found[1].score
