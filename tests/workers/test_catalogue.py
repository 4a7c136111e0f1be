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


def _task_report(chunk: tuple[str, Any]) -> int:
    """1 for a chunk that reports a finished task (``updates``, a ``tasks`` or ``debug``
    task result), 0 for one that reports a task starting, -1 for any other."""
    mode, data = chunk
    if mode == "debug":
        return {"task_result": 1, "task": 0}.get(data.get("type"), -1)
    if mode == "tasks":
        return 1 if "result" in data else 0
    return 1 if mode == "updates" else -1


def _in_task_order(chunks: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``chunks`` with each run of consecutive task reports in one canonical order, starts
    before results: parallel tasks (Send tasks of one node too) report in the order they
    finish, on workers as in LangGraph, and on workers each starts when a worker takes it
    (in process all of a step's tasks start before any runs). ``values`` and checkpoint
    chunks between steps keep the steps' order checked."""
    out: list[tuple[str, Any]] = []
    run: list[tuple[str, Any]] = []
    for chunk in [*chunks, ("end", None)]:
        if _task_report(chunk) >= 0:
            run.append(chunk)
            continue
        out.extend(sorted(run, key=lambda c: (_task_report(c), repr(c))))
        run = []
        out.append(chunk)
    return out[:-1]


def _normal_chunk(mode: str, data: Any, thread: str = "local") -> tuple[str, Any]:
    if mode == "debug":  # when the event was made, on either side
        data = {k: v for k, v in data.items() if k != "timestamp"}
    return mode, _renamed(normalize(data), thread)


def _renamed(value: Any, thread: str) -> Any:
    """``value`` with the thread's id (in checkpoint configs) as the local run's."""
    if value == thread:
        return "local"
    if isinstance(value, dict):
        return {k: _renamed(v, thread) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, thread) for v in value]
    return value


def _named(namespace: tuple[str, ...]) -> str:
    """A namespace without its task ids (random per run): ``"|child|inner"``."""
    return "".join(f"|{part.partition(':')[0]}" for part in namespace)


def _local_streams(
    name: str, modes: list[str] | None = None, subgraphs: bool = False
) -> list[list[Any]]:
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
        mode = modes or call_modes(call)
        chunks: list[tuple[str, Any]] = []
        stream = graph.stream(
            payload, {**config, **extra}, stream_mode=mode, subgraphs=subgraphs, **kwargs
        )
        with contextlib.suppress(Exception):  # a node's error: its run streamed until then
            for chunk in stream:
                namespace, m, data = chunk if subgraphs else ((), *chunk)
                mode_name, normal = _normal_chunk(m, data)
                chunks.append((mode_name + _named(namespace), normal))
        streams.append(_in_task_order(chunks))
    return streams


def _remote_streams(
    client: Client,
    name: str,
    modes: list[str] | None = None,
    prefix: str = "streams",
    subgraphs: bool = False,
) -> list[list[Any]]:
    thread = f"{prefix}-{name}"
    streams = []
    for call in CALLS[name]:
        mode = modes or call_modes(call)
        if isinstance(call, Resume):
            value = call.answer(client.get_state(name, thread).interrupts)
            run = client.submit(
                name, Command(resume=value), thread_id=thread, stream_mode=mode, subgraphs=subgraphs
            )
        else:
            run = client.submit(
                name,
                call.input,
                thread_id=thread,
                config=call.config,
                stream_mode=mode,
                subgraphs=subgraphs,
                **call.kwargs,
            )
        chunks = []
        for event in run.stream(timeout=60):
            if event.mode != "status":
                mode_name, normal = _normal_chunk(event.mode, event.data, thread)
                chunks.append((mode_name + _named(event.namespace), normal))
        streams.append(_in_task_order(chunks))
    return streams


@pytest.mark.parametrize("name", STREAMED)
def test_distributed_streams_equal_local(catalogue_client: Client, name: str) -> None:
    assert _remote_streams(catalogue_client, name) == _local_streams(name)


# Cases with a subgraph as a node: one whose node goes to a parent's node (Command.PARENT),
# one reading the run's context, one reading its execution info, one with a checkpointer
# of its own across three runs; and graphs a node invokes: one paused by an interrupt and
# resumed, one with a checkpointer of its own, one going to a parent's node.
SUBGRAPH_CASES = [
    "command_parent",
    "runtime_context_subgraph",
    "runtime_execution_info",
    "subgraph_node_checkpointer_true",
    "interrupt_in_called_subgraph",
    "subgraph_checkpointer_true",
    "command_parent_from_called_subgraph",
]


@pytest.mark.parametrize("name", SUBGRAPH_CASES)
def test_subgraph_streams_on_workers_equal_local(catalogue_client: Client, name: str) -> None:
    """``submit(subgraphs=True)``: a subgraph's own values and updates, with its namespace,
    among the parent's, as ``stream(subgraphs=True)`` gives them in process."""
    modes = ["values", "updates"]
    remote = _remote_streams(catalogue_client, name, modes, prefix="sub", subgraphs=True)
    local = _local_streams(name, modes, subgraphs=True)
    assert any("|" in mode for stream in local for mode, _ in stream), "no subgraph events"
    assert remote == local
    plain = _remote_streams(catalogue_client, name, modes, prefix="plain")
    assert not any("|" in mode for stream in plain for mode, _ in stream)  # only when asked


# Cases for the tool-facing modes: an interrupt and its resume, a node's error, parallel
# Send tasks, a subgraph a node called that pauses.
TOOLING_CASES = [
    "interrupt_single",
    "task_error_type",
    "send_map_reduce",
    "interrupt_in_called_subgraph",
]


@pytest.mark.parametrize("name", TOOLING_CASES)
def test_tasks_checkpoints_and_debug_streams_on_workers_equal_local(
    catalogue_client: Client, name: str
) -> None:
    """Each task as it starts and finishes (input, triggers; result, error, interrupts) and
    each checkpoint as it is written (values, metadata, next tasks), as LangGraph's
    ``tasks``, ``checkpoints`` and ``debug`` modes show them in process."""
    modes = ["tasks", "checkpoints", "debug"]
    remote = _remote_streams(catalogue_client, name, modes, prefix="tooling")
    local = _local_streams(name, modes)
    assert {mode for stream in local for mode, _ in stream} == set(modes), "a mode sent nothing"
    assert remote == local


def test_second_answer_of_parallel_interrupts_is_not_lost(catalogue_client: Client) -> None:
    """Issue 15: answering p, then q, by interrupt id completes the thread on workers."""
    values, history = _remote(catalogue_client, "interrupt_parallel_one_by_one", "answers")
    assert values == ({"items": ["p got answer to p?", "q got answer to q?", "join"]}, (), [])
    assert [row[1] for row in history] == ["loop", "loop", "loop", "input"]
