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

from .catalogue_graphs import CALLS, GRAPHS, REGISTRY, Resume, Stream, call_modes, normalize
from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.xdist_group("catalogue")]

# Cases whose nodes count calls in process memory (to fail once, or to prove what re-ran):
# on workers each process has its own counter, so the case means something else there.
PROCESS_LOCAL = {"failing_sibling", "retry_policy"}


def _history(snapshots: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.metadata["step"], s.metadata["source"], tuple(s.next)) for s in snapshots]


def _view(read: Any) -> tuple[Any, ...]:
    """A thread's values, next nodes and tasks (as the differential catalogue sees them);
    ``read`` reads its state (which fails as it does locally when its writes conflict)."""
    try:
        state = read()
    except Exception as exc:
        return ("error", type(exc).__name__)
    tasks = sorted((t.name, t.error is not None, len(t.interrupts)) for t in state.tasks)
    return normalize(state.values), state.next, tasks


def _fresh(name: str) -> Any:
    """The case's graph compiled again (breakpoints and store included) on an empty saver."""
    graph = GRAPHS[name]
    return graph.builder.compile(
        checkpointer=graph.checkpointer.__class__(),
        store=graph.store,
        interrupt_before=graph.interrupt_before,
        interrupt_after=graph.interrupt_after,
    )


def _local(name: str) -> tuple[Any, list[tuple[Any, ...]]]:
    graph = _fresh(name)
    config = {"configurable": {"thread_id": "local"}}
    for call in CALLS[name]:
        if isinstance(call, Resume):
            value = call.answer(graph.get_state(config).interrupts)
            payload, extra, kwargs = Command(resume=value), {}, {}
        else:
            payload, extra, kwargs = call.input, call.config, call.kwargs
        with contextlib.suppress(Exception):  # the trace compares state, not error texts
            graph.invoke(payload, {**config, **extra}, **kwargs)
    state = _view(lambda: graph.get_state(config))
    return state, _history(list(graph.get_state_history(config)))


def _remote(client: Client, name: str, prefix: str = "remote") -> tuple[Any, list[tuple[Any, ...]]]:
    thread = f"{prefix}-{name}"
    for call in CALLS[name]:
        if isinstance(call, Resume):
            value = call.answer(client.get_state(name, thread).interrupts)
            run = client.submit(name, Command(resume=value), thread_id=thread)
        else:
            run = client.submit(
                name, call.input, thread_id=thread, config=call.config, **call.kwargs
            )
        run.wait(timeout=60)
    state = _view(lambda: client.get_state(name, thread))
    return state, _history(client.get_state_history(name, thread))


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


# Cases whose runs' streams must also be the same on workers: every case with a stream
# call (in that call's modes; other calls in values + updates), and these: interrupts
# answered one at a time, breakpoints, a paused subgraph a node called.
STREAMED = sorted(
    {
        "interrupt_parallel_one_by_one",
        "interrupt_before_after_compile",
        "interrupt_in_called_subgraph",
        "runtime_context_invoke",
    }
    & set(GRAPHS)
    | {name for name, calls in CALLS.items() if any(type(c) is Stream for c in calls)}
)


def _in_task_order(chunks: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``chunks`` with each run of consecutive ``updates`` chunks in one canonical order:
    parallel tasks (Send tasks of one node too) report in the order they finish, on workers
    as in LangGraph. ``values`` chunks between steps keep the steps' order checked."""
    out: list[tuple[str, Any]] = []
    run: list[tuple[str, Any]] = []
    for chunk in [*chunks, ("end", None)]:
        if chunk[0] == "updates":
            run.append(chunk)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        out.append(chunk)
    return out[:-1]


def _local_streams(name: str) -> list[list[Any]]:
    graph = _fresh(name)
    config = {"configurable": {"thread_id": "local"}}
    streams = []
    for call in CALLS[name]:
        if isinstance(call, Resume):
            payload, extra, kwargs = (
                Command(resume=call.answer(graph.get_state(config).interrupts)),
                {},
                {},
            )
        else:
            payload, extra, kwargs = call.input, call.config, call.kwargs
        chunks = graph.stream(payload, {**config, **extra}, stream_mode=call_modes(call), **kwargs)
        streams.append(_in_task_order([(mode, normalize(data)) for mode, data in chunks]))
    return streams


def _remote_streams(client: Client, name: str) -> list[list[Any]]:
    thread = f"streams-{name}"
    streams = []
    for call in CALLS[name]:
        if isinstance(call, Resume):
            value = call.answer(client.get_state(name, thread).interrupts)
            run = client.submit(
                name, Command(resume=value), thread_id=thread, stream_mode=call_modes(call)
            )
        else:
            run = client.submit(
                name,
                call.input,
                thread_id=thread,
                config=call.config,
                stream_mode=call_modes(call),
                **call.kwargs,
            )
        events = list(run.stream(timeout=60))
        chunks = [(e.mode, normalize(e.data)) for e in events if e.mode != "status"]
        streams.append(_in_task_order(chunks))
    return streams


@pytest.mark.parametrize("name", STREAMED)
def test_distributed_streams_equal_local(catalogue_client: Client, name: str) -> None:
    assert _remote_streams(catalogue_client, name) == _local_streams(name)


def test_second_answer_of_parallel_interrupts_is_not_lost(catalogue_client: Client) -> None:
    """Issue 15: answering p, then q, by interrupt id completes the thread on workers."""
    values, history = _remote(catalogue_client, "interrupt_parallel_one_by_one", "answers")
    assert values == ({"items": ["p got answer to p?", "q got answer to q?", "join"]}, (), [])
    assert [row[1] for row in history] == ["loop", "loop", "loop", "input"]
