"""Runs the store conformance suite (store_contract.py) on every backend, plus the
InMemoryStore specifics that need its injectable clock."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from relaygraph.persistence.store.base import BaseStore, Item, PutOp, SearchItem
from relaygraph.persistence.store.memory import InMemoryStore

from .store_contract import *  # noqa: F403 - the contract's test functions
from .store_contract import FAKE_INDEX, keys


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


def test_memory_ttl_with_clock() -> None:
    clock = FakeClock()
    store = InMemoryStore(ttl={"default_ttl": 10}, clock=clock)
    store.put(("t",), "a", {"v": 1})
    store.put(("t",), "b", {"v": 1}, ttl=30)
    clock.advance(9)
    assert store.get(("t",), "a") is not None  # refresh: expires at 19
    clock.advance(9.9)
    assert keys(store.search(("t",), refresh_ttl=False)) == ["b", "a"]
    clock.advance(0.2)
    assert keys(store.search(("t",))) == ["b"]
    clock.advance(30.1)
    assert store.search(("t",)) == []
    assert store.list_namespaces() == []


def test_memory_sweep_expired() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    store.put(("t",), "a", {"v": 1}, ttl=1)
    store.put(("t",), "b", {"v": 1}, ttl=5)
    store.put(("u",), "c", {"v": 1})
    clock.advance(2)
    assert store.sweep_expired() == 1
    clock.advance(4)
    assert store.sweep_expired() == 1
    assert store.sweep_expired() == 0
    assert store.list_namespaces() == [("u",)]


def test_memory_background_sweeper() -> None:
    store = InMemoryStore(ttl={"sweep_interval_minutes": 0.001})  # every 60 ms
    try:
        store.put(("t",), "a", {"v": 1}, ttl=0.0005)  # 30 ms
        deadline = time.monotonic() + 5
        while store._data and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store._data == {}  # removed by the sweeper, without any read
    finally:
        assert store.stop_ttl_sweeper(timeout=5)
    assert store.stop_ttl_sweeper() is True


def test_memory_sweeper_does_not_keep_the_store_alive() -> None:
    store = InMemoryStore()
    store.start_ttl_sweeper(0.001)
    store.start_ttl_sweeper(0.001)  # already running: no second thread
    thread = store._sweeper
    assert sum(t.name == thread.name for t in threading.enumerate()) >= 1
    del store
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_memory_sweeper_needs_an_interval() -> None:
    with pytest.raises(ValueError, match="sweep_interval_minutes"):
        InMemoryStore().start_ttl_sweeper()


@pytest.mark.parametrize(
    "ttl, message",
    [
        ({"default_ttl": -1}, "default_ttl"),
        ({"sweep_interval_minutes": 0}, "sweep_interval_minutes"),
        ({"refresh_on_read": "yes"}, "refresh_on_read"),
        ({"defualt_ttl": 5}, "defualt_ttl"),
    ],
)
def test_memory_bad_ttl_config(ttl, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InMemoryStore(ttl=ttl)


@pytest.mark.parametrize(
    "index, message",
    [
        ({"embed": FAKE_INDEX["embed"]}, "dims"),
        ({"embed": FAKE_INDEX["embed"], "dims": 0}, "dims"),
        ({"dims": 3}, "embed"),
        ({**FAKE_INDEX, "fields": ["a[x]"]}, "a\\[x\\]"),
        ({**FAKE_INDEX, "feilds": ["a"]}, "feilds"),
        ({"embed": "openai:text-embedding-3-small", "dims": 1536}, "not available offline"),
    ],
)
def test_memory_bad_index_config(index, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InMemoryStore(index=index)


def test_memory_bad_put_index_argument() -> None:
    store = InMemoryStore(index=FAKE_INDEX)
    with pytest.raises(TypeError, match="index must be"):
        store.put(("d",), "k", {"text": "x"}, index="text")
    with pytest.raises(ValueError, match="a\\[\\]"):
        store.put(("d",), "k", {"text": "x"}, index=["a[]"])
    assert store.get(("d",), "k") is None


def test_memory_embedder_returning_too_few_vectors() -> None:
    store = InMemoryStore(index={**FAKE_INDEX, "embed": lambda texts: [[0.0] * 7]})
    with pytest.raises(ValueError, match="1 vectors for 2 texts"):
        store.batch([PutOp(("d",), key, {"text": "x"}) for key in ("a", "b")])


def test_item_and_search_item() -> None:
    item = Item(
        value={"a": 1},
        key="k",
        namespace=["ns", "x"],
        created_at="2024-01-02T03:04:05+00:00",
        updated_at="2024-01-02T03:04:06+00:00",
    )
    assert item.namespace == ("ns", "x")
    assert item.created_at.tzinfo is not None
    assert item.dict()["namespace"] == ["ns", "x"]
    assert Item(**{**item.dict(), "namespace": ("ns", "x")}) == item
    assert "key='k'" in repr(item)
    found = SearchItem(("ns", "x"), "k", {"a": 1}, item.created_at, item.updated_at, 0.5)
    assert found.dict()["score"] == 0.5
    assert found != SearchItem(("ns", "x"), "k", {"a": 1}, item.created_at, item.updated_at)
    assert hash(found) == hash(item)


class _NoTTLStore(BaseStore):
    def batch(self, ops):
        return [None for _ in ops]

    async def abatch(self, ops):
        return self.batch(ops)


def test_ttl_on_a_store_without_ttl_support() -> None:
    store = _NoTTLStore()
    with pytest.raises(NotImplementedError, match="_NoTTLStore does not support TTL"):
        store.put(("ns",), "k", {"v": 1}, ttl=5)
    store.put(("ns",), "k", {"v": 1}, ttl=None)
    with pytest.raises(TypeError, match="unknown store operation"):
        InMemoryStore().batch([("get", ("ns",), "k")])
