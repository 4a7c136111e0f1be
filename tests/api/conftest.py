"""A real fleet behind a real ``relaygraph serve``: a private Redis with search, one worker
process, and API server subprocesses the tests reach with the official langgraph-sdk."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.local_fleet import LocalFleet

from .graphs import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
ASSISTANT = "assistant=relaygraph.examples.assistant:graph"  # docs/api.md's example
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiFleet(LocalFleet):
    """Workers and API servers on one Redis; ``serve()`` starts a server, returns its URL."""

    def serve(self, name: str, port: int | None = None, **env: str) -> str:
        port = port or free_port()
        argv = [sys.executable, "-m", "relaygraph.cli", "serve", "--port", str(port)]
        self.start(name, argv, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start:\n{self.log(name)[-3000:]}")


@pytest.fixture(scope="session")
def api_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def api_fleet(
    api_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiFleet]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RELAYGRAPH_REDIS_URL": api_redis.url,
        "RELAYGRAPH_STORE_URL": api_redis.url,
        "RELAYGRAPH_STORE_EMBED": "default",
        "RELAYGRAPH_STORE_FIELDS": "text",
        "RELAYGRAPH_GRAPHS": f"{REGISTRY},{ASSISTANT}",
        "RELAYGRAPH_LEASE_TTL": "2",
        "RELAYGRAPH_SWEEP_INTERVAL": "0.5",
        "RELAYGRAPH_TEST_SLOW": "2",
        "RELAYGRAPH_API_SWEEP_INTERVAL": "0.5",
    }
    env.pop("RELAYGRAPH_API_KEY", None)
    fleet = ApiFleet(env, tmp_path_factory.mktemp("api-fleet"), cwd=ROOT)
    try:
        fleet.start_worker("worker1", concurrency=2, queues="relaygraph")
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def api_url(api_fleet: ApiFleet) -> str:
    """The URL of a running ``relaygraph serve`` without an API key."""
    return api_fleet.serve("api")


@pytest.fixture
def sync_client(api_url: str) -> Iterator[Any]:
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=api_url, api_key=None)
    yield client


@pytest.fixture
async def client(api_url: str) -> Any:
    from langgraph_sdk import get_client

    return get_client(url=api_url, api_key=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every API test on one xdist worker: they share one fleet (Redis, a worker, a
    server), which each worker would otherwise start for itself."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("api-fleet"))
