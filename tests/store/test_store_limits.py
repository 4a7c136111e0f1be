"""RedisStore: limits and offsets beyond RediSearch's result cap page internally or fail
clearly (never a raw ResponseError)."""

from __future__ import annotations

import pytest

from .backend_redis import redis_store


def test_a_limit_beyond_the_server_cap_pages_internally(redis_search_url: str) -> None:
    with redis_store() as store:
        for i in range(5):
            store.put(("docs",), f"k{i}", {"n": i})
        found = store.search(("docs",), limit=2_000_000)
        assert sorted(item.key for item in found) == [f"k{i}" for i in range(5)]
        assert store.search(("docs",), limit=10, offset=1_500_000) == []
        assert [i.key for i in store.search(("docs",), limit=1_000_001, offset=3)] == ["k1", "k0"]
        filtered = store.search(("docs",), filter={"n": {"$gte": 3}}, limit=3_000_000)
        assert sorted(item.key for item in filtered) == ["k3", "k4"]


def test_a_semantic_search_beyond_the_cap_is_a_clear_error(redis_search_url: str) -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, float(len(text))] for text in texts]

    with redis_store(index={"embed": embed, "dims": 2}) as store:
        store.put(("docs",), "k", {"text": "hello"})
        with pytest.raises(ValueError, match=r"at most 1,000,000.*limit=2000000"):
            store.search(("docs",), query="hi", limit=2_000_000)
        assert [i.key for i in store.search(("docs",), query="hi", limit=5)] == ["k"]
