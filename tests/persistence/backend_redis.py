"""RedisSaver backends of the saver conformance suite.

* ``redis``: this worker's embedded valkey-server (flushed for every saver);
* ``redis-cluster``: this worker's embedded 3-master cluster (flushed for every saver);
* ``redis-plain7``: a Redis without modules (``$RELAYGRAPH_TEST_REDIS_URL``, else this
  worker's embedded valkey-server started without modules, see ``tests/servers.py``),
  isolated by a unique key prefix per saver and cleaned up afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import redis
import servers

from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.redis_server import shared_cluster, shared_server


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
    """A saver on a plain Redis (no modules), under a key prefix nobody else uses."""
    url = servers.plain_redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    prefix = f"rgtest-{uuid.uuid4().hex[:12]}"
    try:
        with RedisSaver.from_conn_string(url, prefix=prefix, **kwargs) as saver:  # type: ignore[arg-type]
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
