"""Fixtures of the distributed tests: a private Redis, a worker fleet, a client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.client import Client
from relaygraph.workers.settings import WorkerSettings

from .fleet import Fleet
from .graphs import REGISTRY
from .topologies import Topology, open_topology

# Workers import the test graphs as "tests.workers.graphs" (with the repository root on
# their path); make the same name importable here whatever way pytest was started.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    """A private server per test (workers are killed; nothing may leak between tests)."""
    with EmbeddedRedis(modules=False, appendonly=True) as server:
        yield server


@pytest.fixture
def fleet(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Fleet]:
    workers = Fleet(redis_server.url, tmp_path)
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> Iterator[Client]:
    settings = WorkerSettings(redis_url=redis_server.url, graphs=REGISTRY, lease_ttl=2)
    with Client(settings=settings) as c:
        yield c


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    """The deployment a test runs on: ``redis`` unless parametrized (``indirect``) with
    another of ``topologies.ALL``; skipped, saying so, when it needs a missing RabbitMQ."""
    with open_topology(getattr(request, "param", "redis")) as deployment:
        yield deployment


@pytest.fixture
def topology_client(topology: Topology) -> Iterator[Client]:
    """A client of ``topology`` with the short leases of the test fleets."""
    with topology.client(lease_ttl=2) as c:
        yield c
