"""Root fixtures: private Redis servers with search and JSON, started once per test process.

Each xdist worker process starts its own embedded server (and cluster) on first use, so
workers never share data; a test that uses one gets it flushed (``FLUSHALL SYNC``) first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaygraph.persistence.redis_server import (
    EmbeddedCluster,
    EmbeddedRedis,
    shared_cluster,
    shared_server,
)


@pytest.fixture(scope="session")
def redis_search_server() -> EmbeddedRedis:
    """This worker's embedded valkey-server with RediSearch and RedisJSON."""
    return shared_server()


@pytest.fixture(scope="session")
def redis_search_url(redis_search_server: EmbeddedRedis) -> str:
    """``redis://`` URL of this worker's embedded server (flushed before every test using it)."""
    return redis_search_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> EmbeddedCluster:
    """This worker's embedded 3-master Redis Cluster (flushed before every test using it)."""
    return shared_cluster()


@pytest.fixture(autouse=True)
def _clean_embedded_redis(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give every test that uses an embedded server an empty database."""
    names = set(request.fixturenames)
    if names & {"redis_search_url", "redis_search_server"}:
        request.getfixturevalue("redis_search_server").flush()
    if "redis_cluster" in names:
        request.getfixturevalue("redis_cluster").flush()
    yield
