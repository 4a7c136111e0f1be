"""The store conformance suite: behaviour every BaseStore backend must show.

The functions here are collected through ``test_store_contract.py`` and run once per
backend (see ``conftest.py``). They use only the public store API, so a backend passes
them without knowing about the others.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import datetime

import pytest

from relaygraph.persistence.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
)
from relaygraph.persistence.store.filters import FilterError

# -- a deterministic embedder --------------------------------------------------------------

VOCABULARY = ("cat", "dog", "fish", "bird", "tree", "car")


def fake_embed(texts: list[str]) -> list[list[float]]:
    """Counts of each vocabulary word, plus a small constant so no vector is zero."""
    vectors = []
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower())
        vectors.append([float(words.count(w)) for w in VOCABULARY] + [0.1])
    return vectors


FAKE_DIMS = len(VOCABULARY) + 1
FAKE_INDEX = {"embed": fake_embed, "dims": FAKE_DIMS, "fields": ["text"]}


def keys(items) -> list[str]:
    return [item.key for item in items]


# -- put / get / delete --------------------------------------------------------------------


def test_put_get_roundtrip(store: BaseStore) -> None:
    value = {"fact": "likes tea", "nested": {"n": [1, 2.5, None, True]}}
    store.put(("users", "alice"), "k1", value)
    item = store.get(("users", "alice"), "k1")
    assert item is not None
    assert item.value == value
    assert item.key == "k1"
    assert item.namespace == ("users", "alice")
    assert isinstance(item.created_at, datetime) and item.created_at.tzinfo is not None
    assert item.created_at == item.updated_at
    assert store.get(("users", "alice"), "missing") is None
    assert store.get(("users", "nobody"), "k1") is None


def test_put_accepts_keyword_arguments(store: BaseStore) -> None:
    store.put(("users", "u1"), key="greeting", value={"fact": "User said hello"})
    assert store.get(("users", "u1"), "greeting").value == {"fact": "User said hello"}


def test_overwrite_keeps_created_at(store: BaseStore) -> None:
    store.put(("docs",), "d", {"v": 1})
    first = store.get(("docs",), "d")
    time.sleep(0.01)
    store.put(("docs",), "d", {"v": 2})
    second = store.get(("docs",), "d")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_recreated_after_delete_gets_new_created_at(store: BaseStore) -> None:
    store.put(("docs",), "d", {"v": 1})
    first = store.get(("docs",), "d")
    store.delete(("docs",), "d")
    time.sleep(0.01)
    store.put(("docs",), "d", {"v": 2})
    assert store.get(("docs",), "d").created_at > first.created_at


def test_delete_and_missing_delete(store: BaseStore) -> None:
    store.put(("a",), "k", {"x": 1})
    store.delete(("a",), "k")
    assert store.get(("a",), "k") is None
    store.delete(("a",), "k")  # deleting twice is fine
    store.delete(("never", "there"), "k")
    assert store.search(("a",)) == []


def test_same_key_in_other_namespaces_is_independent(store: BaseStore) -> None:
    store.put(("users", "bob"), "k", {"who": "bob"})
    store.put(("users", "bobby"), "k", {"who": "bobby"})
    store.put(("users", "bob", "x"), "k", {"who": "bob/x"})
    store.delete(("users", "bob"), "k")
    assert store.get(("users", "bobby"), "k").value == {"who": "bobby"}
    assert store.get(("users", "bob", "x"), "k").value == {"who": "bob/x"}


def test_stored_values_are_isolated_from_caller_mutation(store: BaseStore) -> None:
    value = {"tags": ["a"]}
    store.put(("ns",), "k", value)
    value["tags"].append("b")
    item = store.get(("ns",), "k")
    assert item.value == {"tags": ["a"]}
    item.value["tags"].append("c")
    assert store.get(("ns",), "k").value == {"tags": ["a"]}
    store.search(("ns",))[0].value["tags"].append("d")
    assert store.get(("ns",), "k").value == {"tags": ["a"]}


def test_unicode_and_special_characters(store: BaseStore) -> None:
    namespace = ("üsers", "a b", "x:y*z{1}", "|-@")
    store.put(namespace, "ключ:*?", {"text": "naïve café ✓"})
    assert store.get(namespace, "ключ:*?").value == {"text": "naïve café ✓"}
    assert keys(store.search(("üsers", "a b"))) == ["ключ:*?"]
    assert store.list_namespaces(prefix=("üsers",)) == [namespace]


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace, fragment",
    [
        ((), "must not be empty"),
        (("users", ""), "empty"),
        (("a.b",), r"'\.'"),
        (("langgraph", "x"), "reserved"),
        (("users", 3), "strings"),
        (["users"], "tuple"),
        ("users", "tuple"),
    ],
)
def test_put_rejects_bad_namespaces(store: BaseStore, namespace, fragment: str) -> None:
    with pytest.raises(InvalidNamespaceError, match=fragment) as info:
        store.put(namespace, "k", {"v": 1})
    assert repr(namespace) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_reads_reject_bad_namespaces(store: BaseStore) -> None:
    with pytest.raises(InvalidNamespaceError, match=r"a\.b"):
        store.get(("a.b",), "k")
    with pytest.raises(InvalidNamespaceError, match="empty"):
        store.search(("users", ""))
    with pytest.raises(InvalidNamespaceError, match=r"a\.b"):
        store.list_namespaces(prefix=("a.b",))
    with pytest.raises(InvalidNamespaceError, match=r"a\.b"):
        store.delete(("a.b",), "k")


def test_batch_validates_ops_directly(store: BaseStore) -> None:
    with pytest.raises(InvalidNamespaceError, match="reserved"):
        store.batch([PutOp(("langgraph",), "k", {"v": 1})])
    with pytest.raises(InvalidNamespaceError, match=r"'\.'"):
        store.batch([GetOp(("a.b",), "k")])


@pytest.mark.parametrize("value", [["not", "a", "dict"], "text", 3, None, ("k", "v")])
def test_values_must_be_dicts(store: BaseStore, value) -> None:
    with pytest.raises(TypeError, match="must be dicts") as info:
        store.put(("ns",), "k", value)
    assert "'k'" in str(info.value)


def test_bad_pagination(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.search(("ns",), limit=-1)
    with pytest.raises(ValueError, match="offset"):
        store.search(("ns",), offset=-2)
    with pytest.raises(ValueError, match="max_depth"):
        store.list_namespaces(max_depth=0)


def test_unknown_filter_operator_is_a_clear_error(store: BaseStore) -> None:
    with pytest.raises(FilterError, match=r"\$regex"):
        store.search(("ns",), filter={"name": {"$regex": "^a"}})
    store.put(("ns",), "k", {"name": "a"})
    with pytest.raises(FilterError, match=r"\$or"):
        store.search(("ns",), filter={"$or": [{"name": "a"}]})
    with pytest.raises(FilterError, match=r"\$in.*list"):
        store.search(("ns",), filter={"name": {"$in": "a"}})


def test_ttl_must_be_positive(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.put(("ns",), "k", {"v": 1}, ttl=-1)
    with pytest.raises(ValueError, match="ttl"):
        store.put(("ns",), "k", {"v": 1}, ttl=0)


def test_a_failed_batch_writes_nothing(store: BaseStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("ok",), "k", {"v": 1}), PutOp(("",), "k", {"v": 2})])
    assert store.get(("ok",), "k") is None


# -- search without a query ----------------------------------------------------------------


def test_search_orders_by_most_recently_updated(store: BaseStore) -> None:
    for name in ("a", "b", "c"):
        store.put(("ns",), name, {"name": name})
    assert keys(store.search(("ns",))) == ["c", "b", "a"]
    store.put(("ns",), "a", {"name": "a2"})
    results = store.search(("ns",))
    assert keys(results) == ["a", "c", "b"]
    assert all(isinstance(r, SearchItem) and r.score is None for r in results)


def test_search_pagination(store: BaseStore) -> None:
    for i in range(15):
        store.put(("ns",), f"k{i:02d}", {"i": i})
    assert len(store.search(("ns",))) == 10  # default limit
    page1 = keys(store.search(("ns",), limit=5))
    page2 = keys(store.search(("ns",), limit=5, offset=5))
    page4 = keys(store.search(("ns",), limit=5, offset=15))
    assert page1 == [f"k{i:02d}" for i in range(14, 9, -1)]
    assert page2 == [f"k{i:02d}" for i in range(9, 4, -1)]
    assert page4 == []
    assert store.search(("ns",), limit=0) == []


def test_search_namespace_prefix_is_label_exact(store: BaseStore) -> None:
    store.put(("users", "bob"), "1", {"v": 1})
    store.put(("users", "bob", "notes"), "2", {"v": 2})
    store.put(("users", "bobby"), "3", {"v": 3})
    store.put(("teams", "bob"), "4", {"v": 4})
    assert sorted(keys(store.search(("users", "bob")))) == ["1", "2"]
    assert sorted(keys(store.search(("users",)))) == ["1", "2", "3"]
    assert sorted(keys(store.search(()))) == ["1", "2", "3", "4"]
    assert store.search(("users", "bo")) == []
    assert store.search(("users", "*")) == []  # no wildcards in search prefixes


# -- filters -------------------------------------------------------------------------------


@pytest.fixture
def catalogue(store: BaseStore) -> BaseStore:
    rows = [
        ("apple", {"kind": "fruit", "price": 3, "tags": ["red"], "meta": {"origin": "fr"}}),
        ("kiwi", {"kind": "fruit", "price": 5.5, "meta": {"origin": "nz", "organic": True}}),
        ("leek", {"kind": "vegetable", "price": 2, "meta": {"origin": "fr"}}),
        ("salt", {"kind": "mineral", "price": None}),
        ("flag", {"kind": "thing", "price": True}),
    ]
    for key, value in rows:
        store.put(("shop",), key, value)
    return store


@pytest.mark.parametrize(
    "filter, expected",
    [
        ({"kind": "fruit"}, ["apple", "kiwi"]),
        ({"kind": {"$eq": "vegetable"}}, ["leek"]),
        ({"kind": {"$ne": "fruit"}}, ["flag", "leek", "salt"]),
        ({"price": {"$gt": 3}}, ["kiwi"]),
        ({"price": {"$gte": 3}}, ["apple", "kiwi"]),
        ({"price": {"$lt": 3}}, ["leek"]),
        ({"price": {"$lte": 3, "$gt": 2}}, ["apple"]),
        ({"price": 1}, []),  # True is not 1
        ({"price": True}, ["flag"]),
        ({"price": 5.5}, ["kiwi"]),
        ({"price": None}, ["salt"]),
        ({"kind": {"$in": ["mineral", "vegetable"]}}, ["leek", "salt"]),
        ({"kind": {"$nin": ["fruit", "thing"]}}, ["leek", "salt"]),
        ({"meta.origin": "fr"}, ["apple", "leek"]),
        ({"meta": {"origin": "nz"}}, ["kiwi"]),
        ({"meta.organic": {"$exists": True}}, ["kiwi"]),
        ({"meta": {"$exists": False}}, ["flag", "salt"]),
        ({"meta.origin": {"$ne": "fr"}}, ["flag", "kiwi", "salt"]),
        ({"tags": ["red"]}, ["apple"]),
        ({"kind": "fruit", "meta.origin": "fr"}, ["apple"]),
        ({"kind": {"$gt": "m"}}, ["flag", "leek", "salt"]),
        ({"price": {"$gt": "a"}}, []),  # strings compare only with strings
        ({}, ["apple", "flag", "kiwi", "leek", "salt"]),
    ],
)
def test_filters(catalogue: BaseStore, filter, expected) -> None:
    assert sorted(keys(catalogue.search(("shop",), filter=filter))) == expected


def test_filter_applies_before_limit_and_offset(store: BaseStore) -> None:
    for i in range(30):
        store.put(("ns",), f"k{i:02d}", {"even": i % 2 == 0, "i": i})
    # the newest items are odd and even alternately; only evens may fill the page
    page = store.search(("ns",), filter={"even": True}, limit=4)
    assert keys(page) == ["k28", "k26", "k24", "k22"]
    page = store.search(("ns",), filter={"even": True}, limit=4, offset=12)
    assert keys(page) == ["k04", "k02", "k00"]
    older = store.search(("ns",), filter={"i": {"$lt": 3}}, limit=2)
    assert keys(older) == ["k02", "k01"]


# -- list_namespaces -----------------------------------------------------------------------


@pytest.fixture
def tree(store: BaseStore) -> BaseStore:
    for namespace in [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("x", "y"),
    ]:
        store.put(namespace, "k", {"v": 1})
    return store


def test_list_namespaces(tree: BaseStore) -> None:
    assert tree.list_namespaces() == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("x", "y"),
    ]
    assert tree.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert tree.list_namespaces(max_depth=1) == [("a",), ("x",)]
    assert tree.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert tree.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert tree.list_namespaces(suffix=("d", "*")) == [("a", "b", "d", "e"), ("a", "b", "d", "i")]
    assert tree.list_namespaces(prefix=("a",), suffix=("c",)) == [("a", "b", "c")]
    assert tree.list_namespaces(prefix=("a", "b", "c", "d")) == []
    assert tree.list_namespaces(prefix=("a",), limit=2, offset=1) == [
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
    ]


def test_list_namespaces_has_no_hidden_cap(store: BaseStore) -> None:
    store.batch([PutOp(("many", f"n{i:03d}"), "k", {"i": i}) for i in range(250)])
    assert len(store.list_namespaces(prefix=("many",), limit=1000)) == 250
    assert len(store.list_namespaces(prefix=("many",))) == 100
    assert store.list_namespaces(prefix=("many",), offset=249) == [("many", "n249")]


def test_emptied_namespaces_disappear(store: BaseStore) -> None:
    store.put(("p", "q"), "k1", {"v": 1})
    store.put(("p", "q"), "k2", {"v": 1})
    store.delete(("p", "q"), "k1")
    assert store.list_namespaces() == [("p", "q")]
    store.delete(("p", "q"), "k2")
    assert store.list_namespaces() == []


# -- batch ---------------------------------------------------------------------------------


def test_batch_runs_in_order(store: BaseStore) -> None:
    results = store.batch(
        [
            GetOp(("ns",), "k"),
            PutOp(("ns",), "k", {"v": 1}),
            GetOp(("ns",), "k"),
            SearchOp(("ns",)),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("ns",)),)),
            PutOp(("ns",), "k", None),
            GetOp(("ns",), "k"),
            ListNamespacesOp(),
        ]
    )
    assert results[0] is None
    assert results[1] is None
    assert results[2].value == {"v": 1}
    assert keys(results[3]) == ["k"]
    assert results[4] == [("ns",)]
    assert results[5] is None
    assert results[6] is None
    assert results[7] == []


def test_last_put_in_a_batch_wins(store: BaseStore) -> None:
    store.batch([PutOp(("ns",), "k", {"v": 1}), PutOp(("ns",), "k", {"v": 2})])
    assert store.get(("ns",), "k").value == {"v": 2}


def test_concurrent_writers(store: BaseStore) -> None:
    def writer(worker: int) -> None:
        for i in range(20):
            store.put(("conc", f"w{worker}"), f"k{i}", {"i": i})

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.search(("conc",), limit=100)) == 80
    assert len(store.list_namespaces(prefix=("conc",))) == 4


# -- async twins ---------------------------------------------------------------------------


async def test_async_api(store: BaseStore) -> None:
    await store.aput(("users", "a"), "k1", {"kind": "x"})
    await store.aput(("users", "b"), "k2", {"kind": "y"})
    assert (await store.aget(("users", "a"), "k1")).value == {"kind": "x"}
    found = await store.asearch(("users",), filter={"kind": "y"})
    assert keys(found) == ["k2"]
    assert await store.alist_namespaces(prefix=("users",)) == [("users", "a"), ("users", "b")]
    await store.adelete(("users", "a"), "k1")
    assert await store.aget(("users", "a"), "k1") is None
    results = await store.abatch([PutOp(("z",), "k", {"v": 1}), GetOp(("z",), "k")])
    assert results[1].value == {"v": 1}
    with pytest.raises(InvalidNamespaceError):
        await store.aput(("a.b",), "k", {})
    with pytest.raises(FilterError, match=r"\$like"):
        await store.asearch(("users",), filter={"kind": {"$like": "x"}})


async def test_async_concurrent_puts(store: BaseStore) -> None:
    await asyncio.gather(*(store.aput(("many",), f"k{i}", {"i": i}) for i in range(30)))
    assert len(await store.asearch(("many",), limit=50)) == 30


# -- semantic search -----------------------------------------------------------------------


@pytest.fixture
def pets(semantic_store: BaseStore) -> BaseStore:
    semantic_store.put(("pets",), "cat", {"text": "a cat sleeping"})
    semantic_store.put(("pets",), "dog", {"text": "dog dog barking at a cat"})
    semantic_store.put(("pets",), "fish", {"text": "a fish in a bowl"})
    semantic_store.put(("pets",), "plain", {"text": "a car"}, index=False)
    semantic_store.put(("pets",), "notext", {"other": "dog"})
    return semantic_store


def test_semantic_ranking(pets: BaseStore) -> None:
    results = pets.search(("pets",), query="cat dog")
    assert keys(results)[:3] == ["dog", "cat", "fish"]
    scores = [r.score for r in results[:3]]
    assert scores == sorted(scores, reverse=True)
    assert 0.9 < scores[0] <= 1.0 + 1e-6
    # items without an embedding come last, without a score
    assert sorted(keys(results[3:])) == ["notext", "plain"]
    assert all(r.score is None for r in results[3:])
    assert keys(pets.search(("pets",), query="fish", limit=1)) == ["fish"]


def test_semantic_search_with_filter_and_paging(pets: BaseStore) -> None:
    pets.put(("pets",), "cat2", {"text": "cat", "indoor": True})
    results = pets.search(("pets",), query="cat", filter={"indoor": {"$exists": False}})
    assert keys(results)[0] == "cat"
    assert "cat2" not in keys(results)
    assert keys(pets.search(("pets",), query="cat", limit=1, offset=1)) == ["cat"]
    assert keys(pets.search(("pets",), query="cat", limit=2)) == ["cat2", "cat"]


def test_query_ranks_only_within_prefix(pets: BaseStore) -> None:
    pets.put(("other",), "dog", {"text": "dog"})
    assert "other" not in {r.namespace[0] for r in pets.search(("pets",), query="dog")}
    assert keys(pets.search(("other",), query="dog")) == ["dog"]


def test_put_index_list_overrides_fields(semantic_store: BaseStore) -> None:
    semantic_store.put(("d",), "a", {"text": "tree", "title": "bird"})
    semantic_store.put(("d",), "b", {"text": "tree", "title": "bird"}, index=["title"])
    results = semantic_store.search(("d",), query="bird")
    assert keys(results)[0] == "b"
    assert results[0].score > results[1].score


def test_overwrite_reembeds(semantic_store: BaseStore) -> None:
    semantic_store.put(("d",), "a", {"text": "cat"})
    semantic_store.put(("d",), "b", {"text": "dog"})
    semantic_store.put(("d",), "a", {"text": "dog dog"})
    top = semantic_store.search(("d",), query="dog", limit=2)
    assert all(r.score > 0.9 for r in top)
    semantic_store.put(("d",), "a", {"text": "fish"}, index=False)
    assert keys(semantic_store.search(("d",), query="dog")) == ["b", "a"]
    assert semantic_store.search(("d",), query="dog")[1].score is None


def test_array_fields_score_by_best_element(make_store) -> None:
    store = make_store(index={**FAKE_INDEX, "fields": ["notes[*].text"]})
    store.put(("d",), "mixed", {"notes": [{"text": "tree"}, {"text": "bird"}]})
    store.put(("d",), "trees", {"notes": [{"text": "tree tree"}]})
    store.put(("d",), "empty", {"notes": []})
    results = store.search(("d",), query="bird")
    assert keys(results)[0] == "mixed"
    assert results[0].score > 0.9
    assert results[-1].key == "empty" and results[-1].score is None


def test_whole_value_field(make_store) -> None:
    store = make_store(index={**FAKE_INDEX, "fields": ["$"]})
    store.put(("d",), "a", {"x": "cat", "y": {"z": "cat"}})
    store.put(("d",), "b", {"x": "tree"})
    assert keys(store.search(("d",), query="cat")) == ["a", "b"]


def test_query_without_index_is_recency(store: BaseStore) -> None:
    store.put(("d",), "old", {"text": "dog"})
    store.put(("d",), "new", {"text": "cat"})
    results = store.search(("d",), query="dog")
    assert keys(results) == ["new", "old"]
    assert all(r.score is None for r in results)


def test_wrong_dims_is_a_clear_error(make_store) -> None:
    store = make_store(index={**FAKE_INDEX, "dims": FAKE_DIMS + 1})
    with pytest.raises(ValueError, match=f"dims={FAKE_DIMS + 1}") as info:
        store.put(("d",), "a", {"text": "cat"})
    assert str(FAKE_DIMS) in str(info.value)
    assert store.get(("d",), "a") is None
    with pytest.raises(ValueError, match="dims"):
        store.search(("d",), query="cat")


async def test_async_embedder(make_store) -> None:
    async def embed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return fake_embed(texts)

    store = make_store(index={**FAKE_INDEX, "embed": embed})
    await store.aput(("d",), "a", {"text": "bird"})
    await store.aput(("d",), "b", {"text": "car"})
    assert keys(await store.asearch(("d",), query="car")) == ["b", "a"]
    store.put(("d",), "c", {"text": "car car"})  # the sync API drives an async embedder too
    assert keys(store.search(("d",), query="car"))[2] == "a"


# -- TTL -----------------------------------------------------------------------------------

# TTLs are in minutes; 0.02 min = 1.2 s. Sleeps leave >= 0.5 s of margin either way.


def test_ttl_expiry_and_refresh_on_read(make_store) -> None:
    store = make_store(ttl={"refresh_on_read": True})
    store.put(("t",), "short", {"v": 1}, ttl=0.02)
    store.put(("t",), "refreshed", {"v": 1}, ttl=0.02)
    store.put(("t",), "forever", {"v": 1})
    store.put(("t", "gone"), "short", {"v": 1}, ttl=0.02)
    time.sleep(0.6)
    assert store.get(("t",), "refreshed") is not None  # restarts its 1.2 s
    time.sleep(0.9)  # 1.5 s after the puts
    assert store.get(("t",), "short") is None
    assert sorted(keys(store.search(("t",), refresh_ttl=False))) == ["forever", "refreshed"]
    assert store.list_namespaces() == [("t",)]
    assert store.get(("t",), "refreshed", refresh_ttl=False) is not None
    time.sleep(0.9)  # 1.5 s after the last refresh
    assert store.get(("t",), "refreshed") is None
    assert keys(store.search(("t",))) == ["forever"]


def test_ttl_default_and_no_refresh(make_store) -> None:
    store = make_store(ttl={"default_ttl": 0.02, "refresh_on_read": False})
    store.put(("t",), "default", {"v": 1})
    store.put(("t",), "never", {"v": 1}, ttl=None)
    time.sleep(0.6)
    assert store.get(("t",), "default") is not None  # no refresh by default
    assert len(store.search(("t",), refresh_ttl=False)) == 2
    time.sleep(0.9)
    assert store.get(("t",), "default") is None
    assert keys(store.search(("t",))) == ["never"]


def test_search_refreshes_ttl(make_store) -> None:
    store = make_store(ttl={"default_ttl": 0.02})
    store.put(("t",), "a", {"v": 1})
    store.put(("t",), "b", {"v": 2})
    time.sleep(0.6)
    assert keys(store.search(("t",), filter={"v": 1})) == ["a"]  # refreshes only "a"
    time.sleep(0.9)
    assert keys(store.search(("t",))) == ["a"]


def test_overwrite_restarts_ttl(make_store) -> None:
    store = make_store()
    store.put(("t",), "k", {"v": 1}, ttl=0.02)
    time.sleep(0.6)
    store.put(("t",), "k", {"v": 2}, ttl=0.02)
    time.sleep(0.9)
    assert store.get(("t",), "k").value == {"v": 2}
    store.put(("t",), "k", {"v": 3})  # ttl omitted and no default: never expires
    time.sleep(0.6)  # past the expiry of the previous put
    assert store.get(("t",), "k").value == {"v": 3}
