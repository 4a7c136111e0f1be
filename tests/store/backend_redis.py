"""RedisStore as a backend of the store conformance suite.

Each store gets its own name (so its own key prefix and search index) on this worker's
embedded valkey-server with RediSearch and RedisJSON; the index and every key of the
store are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from relaygraph.persistence.redis_server import shared_server
from relaygraph.persistence.store.redis import RedisStore


def drop_store(url: str, name: str) -> None:
    """Delete a store's index and all its keys."""
    import redis

    with redis.Redis.from_url(url) as client:
        with contextlib.suppress(redis.ResponseError):
            client.execute_command("FT.DROPINDEX", name, "DD")
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.delete(*keys)


@contextlib.contextmanager
def redis_store(index: Any = None, ttl: Any = None) -> Iterator[RedisStore]:
    url = shared_server().url
    name = f"store_{uuid.uuid4().hex[:12]}"
    store = RedisStore.from_conn_string(url, index=index, ttl=ttl, name=name)
    try:
        yield store
    finally:
        store.close()
        drop_store(url, name)


FACTORIES = {"redis": redis_store}
MARKS = [pytest.mark.xdist_group("redis-store")]
