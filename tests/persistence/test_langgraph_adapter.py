"""LangGraphCheckpointer: real LangGraph graphs on every relaygraph saver, and its own rules.

Graph tests run once per backend of the saver suite (``saver``/``saver_backend`` from
conftest.py); the unit tests below them use the in-memory saver.
"""

from __future__ import annotations

import operator
import pickle
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, Send, interrupt

from relaygraph.persistence.base import make_config
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.persistence.langgraph import (
    PENDING_SENDS_CHANNEL,
    LangGraphCheckpointer,
    as_langgraph,
)
from relaygraph.persistence.memory import InMemorySaver

# -- graphs ----------------------------------------------------------------------------


def _bot(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"echo {state['messages'][-1].content}")]}


def _ask(state: MessagesState) -> dict[str, Any]:
    answer = interrupt({"question": "go on?"})
    return {"messages": [HumanMessage(content=f"answer {answer}")]}


def chat_graph(checkpointer: LangGraphCheckpointer) -> Any:
    """bot -> ask (interrupts for a human answer) -> END, on langchain messages."""
    builder = StateGraph(MessagesState)
    builder.add_node("bot", _bot)
    builder.add_node("ask", _ask)
    builder.add_edge(START, "bot")
    builder.add_edge("bot", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=checkpointer)


class FanState(TypedDict):
    items: list[str]
    results: Annotated[list[str], operator.add]


def fan_graph(checkpointer: LangGraphCheckpointer) -> Any:
    """A subgraph node, then one Send per item (parallel tasks, pending writes)."""
    sub = StateGraph(FanState)
    sub.add_node("prep", lambda s: {"results": ["prepared"]})
    sub.add_edge(START, "prep")

    builder = StateGraph(FanState)
    builder.add_node("sub", sub.compile())
    builder.add_node("work", lambda s: {"results": [s["items"][0].upper()]})
    builder.add_edge(START, "sub")
    builder.add_conditional_edges(
        "sub", lambda s: [Send("work", {"items": [x], "results": []}) for x in s["items"]]
    )
    return builder.compile(checkpointer=checkpointer)


def _contents(messages: list[Any]) -> list[str]:
    return [m.content for m in messages]


# -- real graphs on every backend ------------------------------------------------------


def test_chat_graph_interrupt_resume_history_fork(saver) -> None:
    graph = chat_graph(LangGraphCheckpointer(saver))
    config = {"configurable": {"thread_id": f"chat-{uuid.uuid4()}"}}

    first = graph.invoke({"messages": [HumanMessage(content="hi")]}, config)
    assert _contents(first["messages"]) == ["hi", "echo hi"]
    assert first["__interrupt__"][0].value == {"question": "go on?"}
    state = graph.get_state(config)
    assert state.next == ("ask",)
    assert state.tasks[0].interrupts[0].value == {"question": "go on?"}

    done = graph.invoke(Command(resume="yes"), config)
    assert _contents(done["messages"]) == ["hi", "echo hi", "answer yes"]
    assert isinstance(done["messages"][1], AIMessage)
    assert graph.get_state(config).next == ()

    history = list(graph.get_state_history(config))
    assert [h.metadata["step"] for h in history] == [2, 1, 0, -1]
    assert history[-1].metadata["source"] == "input"
    assert history[0].parent_config == history[1].config

    # Fork from the step-0 checkpoint: the new branch sees only "hi" plus the update,
    # while the original checkpoints stay readable and unchanged.
    forked = graph.update_state(history[2].config, {"messages": [HumanMessage(content="fork")]})
    assert _contents(graph.get_state(forked).values["messages"]) == ["hi", "fork"]
    assert _contents(graph.get_state(history[0].config).values["messages"]) == [
        "hi",
        "echo hi",
        "answer yes",
    ]
    # Replay the fork: bot answers the forked message, then ask interrupts again.
    replay = graph.invoke(None, forked)
    assert _contents(replay["messages"]) == ["hi", "fork", "echo fork"]
    assert graph.get_state(config).next == ("ask",)


async def test_chat_graph_async(saver) -> None:
    graph = chat_graph(LangGraphCheckpointer(saver))
    config = {"configurable": {"thread_id": f"achat-{uuid.uuid4()}"}}
    try:
        await graph.ainvoke({"messages": [HumanMessage(content="a")]}, config)
        assert (await graph.aget_state(config)).next == ("ask",)
        done = await graph.ainvoke(Command(resume="b"), config)
        assert _contents(done["messages"]) == ["a", "echo a", "answer b"]
        steps = [h.metadata["step"] async for h in graph.aget_state_history(config)]
        assert steps == [2, 1, 0, -1]
    finally:
        # Async connections belong to this test's loop: close them while it runs.
        if hasattr(saver, "aclose"):
            await saver.aclose()


def test_subgraph_and_parallel_sends(saver) -> None:
    checkpointer = LangGraphCheckpointer(saver)
    graph = fan_graph(checkpointer)
    config = {"configurable": {"thread_id": f"fan-{uuid.uuid4()}"}}

    out = graph.invoke({"items": ["a", "b", "c"], "results": []}, config)
    assert out["results"][0] == "prepared"
    assert sorted(out["results"][1:]) == ["A", "B", "C"]
    # The parallel step's writes were recorded against its checkpoint and applied once.
    history = list(graph.get_state_history(config))
    assert graph.get_state(config).values == out
    assert len(history) == 4


def test_conversation_costs_linear_bytes(saver, stored_bytes) -> None:
    # Each turn appends one message pair; stored through channel_appends, a turn costs
    # about the same bytes at turn 40 as at turn 10 (whole-list storage would grow ~4x).
    builder = StateGraph(MessagesState)
    builder.add_node("bot", lambda s: {"messages": [AIMessage(content="x" * 200)]})
    builder.add_edge(START, "bot")
    graph = builder.compile(checkpointer=LangGraphCheckpointer(saver))
    thread = f"long-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread}}

    sizes = []
    for turn in range(41):
        graph.invoke({"messages": [HumanMessage(content="y" * 200)]}, config)
        if turn in (9, 10, 39, 40):
            sizes.append(stored_bytes(thread))
    early, late = sizes[1] - sizes[0], sizes[3] - sizes[2]
    assert late < 1.5 * early, (early, late)
    assert len(graph.get_state(config).values["messages"]) == 82


# -- the adapter's own rules (in-memory saver) -----------------------------------------


@pytest.fixture
def inner() -> InMemorySaver:
    return InMemorySaver()


@pytest.fixture
def checkpointer(inner: InMemorySaver) -> LangGraphCheckpointer:
    return LangGraphCheckpointer(inner)


def _checkpoint(**over: Any) -> dict[str, Any]:
    base = {
        "v": 4,
        "id": new_checkpoint_id(),
        "ts": "2024-01-01T00:00:00+00:00",
        "channel_values": {},
        "channel_versions": {},
        "versions_seen": {},
        "updated_channels": None,
    }
    return {**base, **over}


def _config(thread: str = "t", checkpoint_id: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def test_values_and_writes_are_stored_as_type_bytes_pairs(checkpointer, inner) -> None:
    cp = _checkpoint(
        channel_values={"msgs": [HumanMessage(content="hi", id="1")], "n": 3},
        channel_versions={"msgs": "1.a", "n": "1.a"},
    )
    stored = checkpointer.put(
        _config(), cp, {"source": "input", "step": -1}, {"msgs": "1.a", "n": "1.a"}
    )
    checkpointer.put_writes(stored, [("n", 4)], "task-1")

    raw = inner.get_tuple(stored)
    assert raw is not None
    msgs, n = raw.checkpoint["channel_values"]["msgs"], raw.checkpoint["channel_values"]["n"]
    assert isinstance(msgs, list) and len(msgs) == 1
    assert isinstance(msgs[0][0], str) and isinstance(msgs[0][1], bytes)
    assert isinstance(n, tuple) and isinstance(n[1], bytes)
    assert raw.pending_writes[0].value[0] == checkpointer.serde.dumps_typed(4)[0]

    got = checkpointer.get_tuple(stored)
    assert got.checkpoint["channel_values"] == {
        "msgs": [HumanMessage(content="hi", id="1")],
        "n": 3,
    }
    assert got.pending_writes == [("task-1", "n", 4)]


def test_checkpoint_fields_round_trip(checkpointer) -> None:
    cp = _checkpoint(
        channel_values={"a": "x", "b": None},
        channel_versions={"a": 7, "b": "00000000000000000000000000000002.f00d"},
        versions_seen={"node": {"a": 6, "b": "00000000000000000000000000000001.beef"}},
        updated_channels=["a"],
        pending_sends=[Send("node", {"x": 1})],
    )
    stored = checkpointer.put(
        _config(),
        cp,
        {"source": "loop", "step": 1},
        {"a": 7, "b": "00000000000000000000000000000002.f00d"},
    )
    got = checkpointer.get_tuple(stored).checkpoint

    assert got["channel_versions"] == cp["channel_versions"]  # ints stay ints
    assert got["versions_seen"] == cp["versions_seen"]
    assert got["updated_channels"] == ["a"]
    assert got["pending_sends"] == [Send("node", {"x": 1})]
    assert got["channel_values"] == {"a": "x", "b": None}
    assert PENDING_SENDS_CHANNEL not in got["channel_versions"]
    assert (got["v"], got["id"], got["ts"]) == (4, cp["id"], cp["ts"])


def test_changed_channel_without_value_reads_as_absent(checkpointer) -> None:
    first = checkpointer.put(
        _config(), _checkpoint(channel_values={"a": 1}, channel_versions={"a": 1}), {}, {"a": 1}
    )
    # "a" changed (version 2) and is now empty: LangGraph leaves it out of channel_values.
    second = checkpointer.put(first, _checkpoint(channel_versions={"a": 2}), {}, {"a": 2})
    assert checkpointer.get_tuple(second).checkpoint["channel_values"] == {}
    assert checkpointer.get_tuple(first).checkpoint["channel_values"] == {"a": 1}


def test_metadata_takes_config_keys_and_drops_writes(checkpointer) -> None:
    config = _config()
    config["metadata"] = {"user": "ann", "skipped": {"not": "scalar"}}
    config["configurable"]["tenant"] = 7
    stored = checkpointer.put(
        config, _checkpoint(), {"source": "loop", "step": 0, "writes": {"x": 1}}, {}
    )
    meta = checkpointer.get_tuple(stored).metadata
    assert meta["user"] == "ann" and meta["tenant"] == 7
    assert "writes" not in meta and "skipped" not in meta and "thread_id" not in meta
    assert [t.metadata["user"] for t in checkpointer.list(None, filter={"tenant": 7})] == ["ann"]


def test_next_version_is_increasing_and_unique(checkpointer) -> None:
    v1 = checkpointer.get_next_version(None, None)
    v2 = checkpointer.get_next_version(v1, None)
    assert isinstance(v1, str) and v1 < v2
    # From LangGraph's int versions, the next one still sorts above the int's stored form.
    from_int = checkpointer.get_next_version(5, None)
    assert from_int.startswith(f"{6:032d}.")
    assert from_int > f"{5:032d}"
    assert checkpointer.get_next_version(v1, None) != v2  # a fork gets its own version


def test_list_shrinking_then_growing_stays_correct(checkpointer, inner) -> None:
    graph_builder = StateGraph(MessagesState)
    graph_builder.add_node("bot", _bot)
    graph_builder.add_edge(START, "bot")
    graph = graph_builder.compile(checkpointer=checkpointer)
    config = {"configurable": {"thread_id": "edit"}}
    puts: list[dict[str, Any]] = []
    original_put = inner.put

    def spy(config, checkpoint, metadata, new_versions, **kw):
        puts.append(dict(checkpoint.get("channel_appends") or {}))
        return original_put(config, checkpoint, metadata, new_versions, **kw)

    inner.put = spy  # type: ignore[method-assign]
    graph.invoke({"messages": [HumanMessage(content="1", id="h1")]}, config)
    graph.invoke({"messages": [HumanMessage(content="2", id="h2")]}, config)
    assert "messages" in puts[-1] and "messages" in puts[-2]  # append-only steps

    # Removing a message is not an append: the whole list is stored again.
    graph.update_state(config, {"messages": [RemoveMessage(id="h1")]})
    assert "messages" not in puts[-1]
    assert _contents(graph.get_state(config).values["messages"]) == ["echo 1", "2", "echo 2"]
    graph.invoke({"messages": [HumanMessage(content="3", id="h3")]}, config)
    assert _contents(graph.get_state(config).values["messages"]) == [
        "echo 1",
        "2",
        "echo 2",
        "3",
        "echo 3",
    ]

    # A fresh adapter (a restarted process) learns the base from get_tuple.
    puts.clear()
    chat = StateGraph(MessagesState)
    chat.add_node("bot", _bot)
    chat.add_edge(START, "bot")
    chat.compile(checkpointer=LangGraphCheckpointer(inner)).invoke(
        {"messages": [HumanMessage(content="4")]}, config
    )
    # input checkpoint (only __start__ changes), then two append-only steps
    assert len(puts) == 3 and all("messages" in p for p in puts[1:])


@dataclass
class Point:
    x: int
    y: int


class PointState(TypedDict):
    p: Point


def test_strict_serde_rebuilds_only_allowed_types(inner) -> None:
    builder = StateGraph(PointState)
    builder.add_node("move", lambda s: {"p": Point(s["p"].x + 1, s["p"].y)})
    builder.add_edge(START, "move")
    config = {"configurable": {"thread_id": "pts"}}

    allowed = builder.compile(checkpointer=as_langgraph(inner, allowed_types=[Point]))
    allowed.invoke({"p": Point(1, 2)}, config)
    assert allowed.get_state(config).values == {"p": Point(2, 2)}

    # Without the allow-list the stored class is not imported: its fields come back.
    strict = builder.compile(checkpointer=LangGraphCheckpointer(inner))
    assert strict.get_state(config).values == {"p": {"x": 2, "y": 2}}
    # What a compiled graph does under LANGGRAPH_STRICT_MSGPACK widens it too.
    widened = LangGraphCheckpointer(inner).with_allowlist([(Point.__module__, "Point")])
    assert widened.get_tuple(config).checkpoint["channel_values"]["p"] == Point(2, 2)


def test_pickle_is_refused(inner) -> None:
    with pytest.raises(ValueError, match="pickle"):
        LangGraphCheckpointer(inner, serde=JsonPlusSerializer(pickle_fallback=True))
    with pytest.raises(TypeError, match="either"):
        LangGraphCheckpointer(inner, serde=JsonPlusSerializer(), allowed_types=[Point])

    # A stored "pickle" pair (e.g. written by another tool) is never unpickled.
    inner.put(
        make_config("p", "", "0"),
        _checkpoint(
            id="1",
            channel_values={"a": ("pickle", pickle.dumps(Point(1, 1)))},
            channel_versions={"a": "1.x"},
        ),
        {},
        {"a": "1.x"},
    )
    with pytest.raises(CorruptCheckpointError, match="unpickle"):
        LangGraphCheckpointer(inner).get_tuple(_config("p"))


def test_value_not_written_by_adapter_names_thread_and_channel(inner, checkpointer) -> None:
    inner.put(
        _config("raw"),
        _checkpoint(id="c1", channel_values={"a": 42}, channel_versions={"a": "1.x"}),
        {},
        {"a": "1.x"},
    )
    with pytest.raises(CorruptCheckpointError, match=r"thread 'raw'.*'c1'.*channel 'a'"):
        checkpointer.get_tuple(_config("raw"))


def test_unstorable_value_fails_the_put_and_stores_nothing(checkpointer) -> None:
    cp = _checkpoint(channel_values={"f": lambda: 1}, channel_versions={"f": 1})
    with pytest.raises((TypeError, SerializationError)):
        checkpointer.put(_config("bad"), cp, {}, {"f": 1})
    assert checkpointer.get_tuple(_config("bad")) is None


def test_retention_and_errors(checkpointer) -> None:
    parent = None
    for step in range(3):
        config = parent or _config("keep")
        parent = checkpointer.put(config, _checkpoint(), {"step": step, "run_id": f"r{step}"}, {})
    checkpointer.prune(["keep"], strategy="keep_latest")
    assert [t.metadata["step"] for t in checkpointer.list(_config("keep"))] == [2]

    checkpointer.copy_thread("keep", "copy")
    assert checkpointer.get_tuple(_config("copy")).metadata["step"] == 2
    checkpointer.delete_for_runs([])  # no-op
    checkpointer.delete_for_runs(["r2"])
    assert checkpointer.get_tuple(_config("keep")) is None
    checkpointer.prune(["copy"], strategy="delete")
    assert checkpointer.get_tuple(_config("copy")) is None

    with pytest.raises(ValueError, match="strategy"):
        checkpointer.prune(["copy"], strategy="keep_some")
    with pytest.raises(ValueError, match="thread_id"):
        checkpointer.put({"configurable": {}}, _checkpoint(), {}, {})
    with pytest.raises(ValueError, match="thread_id"):
        checkpointer.get_tuple({"configurable": {"thread_id": None}})


async def test_async_twins_match_sync(checkpointer) -> None:
    stored = await checkpointer.aput(
        _config("as"),
        _checkpoint(channel_values={"m": [1, 2]}, channel_versions={"m": 1}),
        {"step": 0},
        {"m": 1},
    )
    await checkpointer.aput_writes(stored, [("m", [3])], "t1")
    got = await checkpointer.aget_tuple(stored)
    assert got == checkpointer.get_tuple(stored)
    assert [t.config async for t in checkpointer.alist(_config("as"))] == [stored]
    await checkpointer.acopy_thread("as", "as2")
    await checkpointer.aprune(["as2"], strategy="delete")
    await checkpointer.adelete_for_runs([])
    await checkpointer.adelete_thread("as")
    assert await checkpointer.aget_tuple(_config("as")) is None
    with pytest.raises(ValueError, match="strategy"):
        await checkpointer.aprune(["as"], strategy="nope")


def test_deleted_thread_is_forgotten_by_the_append_tracker(checkpointer, inner) -> None:
    # After a delete the thread's versions may be reused (LangGraph's int counters), so no
    # remembered list of the old thread may become the base of an append.
    first = checkpointer.put(
        _config("re"),
        _checkpoint(channel_values={"l": [1, 2]}, channel_versions={"l": 1}),
        {},
        {"l": 1},
    )
    checkpointer.delete_thread("re")
    appends: list[Any] = []
    original_put = inner.put

    def spy(config, checkpoint, metadata, new_versions, **kw):
        appends.append(checkpoint.get("channel_appends"))
        return original_put(config, checkpoint, metadata, new_versions, **kw)

    inner.put = spy  # type: ignore[method-assign]
    # A child of the deleted checkpoint id (as a stale caller might send) is a full write.
    child = checkpointer.put(
        first, _checkpoint(channel_values={"l": [1, 2, 3]}, channel_versions={"l": 2}), {}, {"l": 2}
    )
    assert appends == [None]
    assert checkpointer.get_tuple(child).checkpoint["channel_values"] == {"l": [1, 2, 3]}
