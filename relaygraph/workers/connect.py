"""The one factory of the coordination Redis client: a single server or a Redis Cluster.

``RELAYGRAPH_REDIS_URL`` may name a single Redis or any node of a Redis Cluster; the
cluster is detected (``INFO cluster``), as the RedisSaver does, and a
``redis.cluster.RedisCluster`` is made for it. Clients, workers, ``relaygraph recover``
and the HTTP API all build their coordination client here.

The Celery broker cannot be a Redis Cluster (kombu's Redis transport uses keys of many
slots in one command): :func:`check_broker` says so before a worker or a client uses it.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from relaygraph.persistence.errors import RelaygraphError

__all__ = [
    "BrokerOnClusterError",
    "async_redis_client",
    "check_broker",
    "is_cluster_client",
    "is_cluster_url",
    "redis_client",
]

_detected: dict[str, bool] = {}
_lock = threading.Lock()


class BrokerOnClusterError(RelaygraphError, ValueError):
    """``RELAYGRAPH_BROKER_URL`` (or the Redis URL it defaults to) is a Redis Cluster node."""


def is_cluster_url(url: str, **kwargs: Any) -> bool:
    """Whether ``url`` is a node of a Redis Cluster (one ``INFO cluster`` per process and
    URL; a server without cluster support counts as a single Redis)."""
    with _lock:
        known = _detected.get(url)
    if known is not None:
        return known
    import redis

    probe = redis.Redis.from_url(url, **kwargs)
    try:
        try:
            info = probe.info("cluster")
        except redis.ResponseError:  # a server that does not know the section
            info = {}
        found = bool(int(info.get("cluster_enabled", 0)))
    finally:
        probe.close()
    with _lock:
        _detected[url] = found
    return found


def redis_client(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """A sync client of ``url``: ``RedisCluster`` on a cluster node, else ``redis.Redis``
    (``cluster=None`` detects it). Responses are bytes (``decode_responses`` off)."""
    import redis
    from redis.cluster import RedisCluster

    if cluster if cluster is not None else is_cluster_url(url):
        return RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def async_redis_client(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """The asyncio twin of :func:`redis_client` (detection is a short sync probe)."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    if cluster if cluster is not None else is_cluster_url(url):
        return AsyncRedisCluster.from_url(url, **kwargs)
    return aioredis.Redis.from_url(url, **kwargs)


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` (sync or asyncio) talks to a Redis Cluster."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster | AsyncRedisCluster)


def check_broker(broker_url: str) -> None:
    """Raise :class:`BrokerOnClusterError` when the Celery broker URL is a Redis Cluster
    node. Celery's Redis transport cannot run on a cluster: use a single Redis (with the
    checkpoint Redis it is the outbox path) or RabbitMQ (``amqp://``)."""
    if urlsplit(broker_url).scheme not in ("redis", "rediss"):
        return
    if is_cluster_url(broker_url):
        raise BrokerOnClusterError(
            f"the Celery broker {broker_url} is a Redis Cluster node: Celery's Redis "
            "transport cannot run on a cluster. Set RELAYGRAPH_BROKER_URL to a single "
            "(non-cluster) Redis or to RabbitMQ (amqp://...); the checkpoints and leases "
            "stay on the cluster (RELAYGRAPH_REDIS_URL)."
        )
