"""Distributed equals local: the differential catalogue on real workers.

Each case's calls (invokes and resumes) run as submitted runs on two worker processes; the
thread's values, next nodes and history must equal the in-process executor's.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from relaygraph import Command
from relaygraph.workers.client import Client
from relaygraph.workers.settings import WorkerSettings

from .catalogue_graphs import CALLS, GRAPHS, REGISTRY, Resume, normalize
from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.xdist_group("catalogue")]

# Cases whose nodes count calls in process memory (to fail once, or to prove what re-ran):
# on workers each process has its own counter, so the case means something else there.
PROCESS_LOCAL = {"failing_sibling", "retry_policy"}


def _history(snapshots: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.metadata["step"], s.metadata["source"], tuple(s.next)) for s in snapshots]


def _local(name: str) -> tuple[Any, list[tuple[Any, ...]]]:
    graph = GRAPHS[name].builder.compile(checkpointer=GRAPHS[name].checkpointer.__class__())
    config = {"configurable": {"thread_id": "local"}}
    for call in CALLS[name]:
        if isinstance(call, Resume):
            value = call.answer(graph.get_state(config).interrupts)
            payload, extra, kwargs = Command(resume=value), {}, {}
        else:
            payload, extra, kwargs = call.input, call.config, call.kwargs
        with contextlib.suppress(Exception):  # the trace compares state, not error texts
            graph.invoke(payload, {**config, **extra}, **kwargs)
    state = graph.get_state(config)
    values = normalize(state.values)
    return (values, state.next), _history(list(graph.get_state_history(config)))


def _remote(client: Client, name: str) -> tuple[Any, list[tuple[Any, ...]]]:
    thread = f"remote-{name}"
    for call in CALLS[name]:
        if isinstance(call, Resume):
            value = call.answer(client.get_state(name, thread).interrupts)
            run = client.submit(name, Command(resume=value), thread_id=thread)
        else:
            run = client.submit(
                name, call.input, thread_id=thread, config=call.config, **call.kwargs
            )
        run.wait(timeout=60)
    state = client.get_state(name, thread)
    values = normalize(state.values)
    return (values, state.next), _history(client.get_state_history(name, thread))


@pytest.fixture(scope="module")
def catalogue_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from relaygraph.persistence.redis_server import EmbeddedRedis

    tmp = tmp_path_factory.mktemp("catalogue")
    with EmbeddedRedis(modules=False) as server:
        fleet = Fleet(server.url, tmp, RELAYGRAPH_GRAPHS=REGISTRY)
        try:
            fleet.start("w1")
            fleet.start("w2")
            settings = WorkerSettings(redis_url=server.url, graphs=REGISTRY)
            with Client(settings=settings) as client:
                yield client
        finally:
            fleet.stop()


@pytest.mark.parametrize("name", sorted(set(GRAPHS) - PROCESS_LOCAL))
def test_distributed_equals_local(catalogue_client: Client, name: str) -> None:
    assert _remote(catalogue_client, name) == _local(name)
