"""The run loop's own guarantees, beyond what the differential tests compare with LangGraph."""

from __future__ import annotations

import asyncio
import itertools
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest

from relaygraph import (
    END,
    START,
    CheckpointConflict,
    Command,
    EmptyInputError,
    InvalidResumeError,
    InvalidUpdateError,
    MemorySaver,
    RetryPolicy,
    Send,
    StateGraph,
    get_stream_writer,
)
from relaygraph.persistence.errors import SerializationError


class State(TypedDict):
    items: Annotated[list, operator.add]
    last: str


def thread(name: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def linear(*names: str, checkpointer: Any = None, **compile_kwargs: Any) -> Any:
    builder = StateGraph(State)
    for name in names:
        builder.add_node(name, lambda s, name=name: {"items": [name], "last": name})
    builder.add_edge(START, names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=checkpointer or MemorySaver(), **compile_kwargs)


def test_two_writers_of_a_last_value_key_in_one_step_is_a_clear_error() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"last": "a"})
    builder.add_node("b", lambda s: {"last": "b"})
    builder.add_edge(START, "a").add_edge(START, "b")
    with pytest.raises(InvalidUpdateError, match=r"'last'.*one value per step"):
        builder.compile().invoke({"items": []})


def test_invoke_none_on_a_new_thread_is_an_empty_input_error() -> None:
    graph = linear("a")
    with pytest.raises(EmptyInputError, match="no input"):
        graph.invoke(None, thread())


def test_resume_with_nothing_pending_is_an_error_and_changes_nothing() -> None:
    graph = linear("a")
    graph.invoke({"items": []}, thread())
    before = list(graph.get_state_history(thread()))
    with pytest.raises(InvalidResumeError, match="nothing is waiting"):
        graph.invoke(Command(resume="yes"), thread())
    assert len(list(graph.get_state_history(thread()))) == len(before)


def test_update_state_with_unknown_key_is_an_error_and_stores_nothing() -> None:
    graph = linear("a")
    graph.invoke({"items": []}, thread())
    before = graph.get_state(thread())
    with pytest.raises(InvalidUpdateError, match="'nope'"):
        graph.update_state(thread(), {"nope": 1}, as_node="a")
    after = graph.get_state(thread())
    assert after.config == before.config and after.values == before.values


def test_update_state_as_unknown_node_is_an_error() -> None:
    graph = linear("a")
    graph.invoke({"items": []}, thread())
    with pytest.raises(InvalidUpdateError, match="'ghost' is not a node"):
        graph.update_state(thread(), {"items": ["x"]}, as_node="ghost")


def test_a_value_that_cannot_be_stored_fails_at_write_time_naming_the_key() -> None:
    graph = linear("a")

    class Opaque:
        pass

    with pytest.raises(SerializationError, match="last"):
        graph.invoke({"items": [], "last": Opaque()}, thread())


def test_concurrent_runs_on_one_thread_never_both_commit_a_step() -> None:
    """The step commit is a compare-and-set: a run whose head moved underneath it fails."""
    saver = MemorySaver()
    entered, release = threading.Event(), threading.Event()

    def slow(state: State) -> dict[str, Any]:
        entered.set()
        release.wait(5)
        return {"items": ["slow"]}

    builder = StateGraph(State).add_node("slow", slow).add_edge(START, "slow")
    slow_graph = builder.compile(checkpointer=saver)
    fast_graph = linear("fast", checkpointer=saver)
    fast_graph.invoke({"items": []}, thread())
    errors: list[BaseException] = []

    def run_slow() -> None:
        try:
            slow_graph.invoke({"items": ["s"]}, thread())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run_slow)
    worker.start()
    assert entered.wait(5)
    fast_graph.invoke({"items": ["f"]}, thread())  # moves the head meanwhile
    release.set()
    worker.join(5)
    assert len(errors) == 1 and isinstance(errors[0], CheckpointConflict)
    values = fast_graph.get_state(thread()).values
    assert "slow" not in values["items"]


def test_retry_policy_retries_then_succeeds() -> None:
    calls = {"n": 0}

    def flaky(state: State) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("transient")
        return {"last": "ok"}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry=RetryPolicy(initial_interval=0.001, jitter=False))
    builder.add_edge(START, "flaky")
    assert builder.compile().invoke({"items": []})["last"] == "ok"
    assert calls["n"] == 3


def test_retry_policy_gives_up_after_max_attempts() -> None:
    calls = {"n": 0}

    def broken(state: State) -> dict[str, Any]:
        calls["n"] += 1
        raise ConnectionError("down")

    builder = StateGraph(State)
    policy = RetryPolicy(max_attempts=2, initial_interval=0.001, jitter=False)
    builder.add_node("broken", broken, retry=policy).add_edge(START, "broken")
    with pytest.raises(ConnectionError):
        builder.compile().invoke({"items": []})
    assert calls["n"] == 2


def test_stream_modes_custom_and_several_modes_at_once() -> None:
    def talk(state: State) -> dict[str, Any]:
        writer = get_stream_writer()
        writer({"progress": 1})
        writer({"progress": 2})
        return {"last": "done"}

    graph = StateGraph(State).add_node("talk", talk).add_edge(START, "talk").compile()
    chunks = list(graph.stream({"items": []}, stream_mode=["custom", "updates"]))
    assert chunks == [
        ("custom", {"progress": 1}),
        ("custom", {"progress": 2}),
        ("updates", {"talk": {"last": "done"}}),
    ]


def test_send_results_are_applied_in_task_order_not_completion_order() -> None:
    class MapState(TypedDict):
        out: Annotated[list, operator.add]

    def work(arg: dict[str, int]) -> dict[str, Any]:
        time.sleep(0.02 * (4 - arg["i"]))  # the last Send finishes first
        return {"out": [arg["i"]]}

    builder = StateGraph(MapState).add_node("work", work)
    builder.add_conditional_edges(START, lambda s: [Send("work", {"i": i}) for i in range(4)])
    assert builder.compile().invoke({"out": []})["out"] == [0, 1, 2, 3]


def test_task_ids_are_deterministic_for_a_checkpoint() -> None:
    graph = linear("a", "b", interrupt_before=["b"])
    graph.invoke({"items": []}, thread())
    first = graph.get_state(thread()).tasks
    second = graph.get_state(thread()).tasks
    assert [t.id for t in first] == [t.id for t in second] and first[0].name == "b"


def test_state_accumulates_across_invokes_on_a_thread() -> None:
    saver = MemorySaver()
    graph = linear("a", checkpointer=saver)
    graph.invoke({"items": ["x"]}, thread())
    graph.invoke({"items": ["y"]}, thread())
    head = saver.get_tuple(thread())
    assert head.checkpoint["channel_values"]["items"] == ["x", "a", "y", "a"]
    assert head.metadata["step"] == 4


async def test_astream_and_async_nodes() -> None:
    async def slow(state: State) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"items": ["async"]}

    builder = StateGraph(State).add_node("slow", slow).add_edge(START, "slow")
    graph = builder.compile(checkpointer=MemorySaver())
    chunks = [c async for c in graph.astream({"items": []}, thread(), stream_mode="values")]
    assert chunks[-1] == {"items": ["async"]}
    state = await graph.aget_state(thread())
    assert state.values == {"items": ["async"]} and state.next == ()
    history = [s async for s in graph.aget_state_history(thread())]
    assert [h.metadata["source"] for h in history] == ["loop", "loop", "input"]


def test_unknown_stream_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="stream_mode 'everything'"):
        list(linear("a").stream({"items": []}, thread(), stream_mode="everything"))
