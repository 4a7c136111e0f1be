"""RedisSaver backends of the saver conformance suite.

* ``redis``: this worker's embedded valkey-server (flushed for every saver);
* ``redis-cluster``: this worker's embedded 3-master cluster (flushed for every saver);
* ``redis-plain7``: the machine's shared Redis 7 on 127.0.0.1:6379, isolated by a unique key
  prefix per saver and cleaned up afterwards (skipped when that server is not running).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
import redis

from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.redis_server import shared_cluster, shared_server

PLAIN_REDIS_URL = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def embedded_saver(**kwargs: object) -> Iterator[RedisSaver]:
    """A saver on this worker's embedded server, which starts empty."""
    server = shared_server()
    server.flush()
    with RedisSaver.from_conn_string(server.url, **kwargs) as saver:  # type: ignore[arg-type]
        yield saver


@contextlib.contextmanager
def cluster_saver(**kwargs: object) -> Iterator[RedisSaver]:
    """A saver on this worker's embedded Redis Cluster (detected, not told), empty."""
    cluster = shared_cluster()
    cluster.flush()
    with RedisSaver.from_conn_string(cluster.url, **kwargs) as saver:  # type: ignore[arg-type]
        assert saver.is_cluster
        yield saver


@contextlib.contextmanager
def plain7_saver(**kwargs: object) -> Iterator[RedisSaver]:
    """A saver on the shared plain Redis 7, under a key prefix nobody else uses."""
    client = redis.Redis.from_url(PLAIN_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        client.close()
        pytest.skip("no plain Redis on 127.0.0.1:6379")
    prefix = f"rgtest-{uuid.uuid4().hex[:12]}"
    try:
        with RedisSaver.from_conn_string(PLAIN_REDIS_URL, prefix=prefix, **kwargs) as saver:  # type: ignore[arg-type]
            yield saver
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


FACTORIES = {
    "redis": embedded_saver,
    "redis-cluster": cluster_saver,
    "redis-plain7": plain7_saver,
}
