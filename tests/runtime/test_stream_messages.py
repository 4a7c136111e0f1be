"""``stream_mode="messages"`` compared with LangGraph's, chunk for chunk (issue 10).

Each case runs the same graph on LangGraph and on relaygraph with langchain_core's fake chat
models; the streams must be equal once the random parts (task ids, generated message ids)
are numbered in order of appearance.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from differential.libs import LANGGRAPH, relaygraph_lib
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _streaming_model(*texts: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(t) for t in texts]))


def _whole_model(*texts: str) -> FakeMessagesListChatModel:
    return FakeMessagesListChatModel(responses=[AIMessage(t) for t in texts])


def chat_then_post(lib: Any, make_model: Callable[[], Any]) -> Any:
    """START -> agent (a model call on the state's messages) -> post (a plain message)."""
    model = make_model()

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def post(state: Any) -> dict[str, Any]:
        return {"messages": [lib.AIMessage("done")]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("post", post)
    builder.add_edge(lib.START, "agent")
    builder.add_edge("agent", "post")
    builder.add_edge("post", lib.END)
    return builder.compile(checkpointer=lib.MemorySaver())


def bound_model_with_config(lib: Any, make_model: Callable[[], Any]) -> Any:
    """A bound model (as bind_tools makes) invoked with the node's config."""
    model = _streaming_model("bound words").bind(stop=None)

    def agent(state: Any, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"], config)]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(lib.START, "agent")
    return builder.compile(checkpointer=lib.MemorySaver())


def async_node_model(lib: Any, make_model: Callable[[], Any]) -> Any:
    """An async node awaiting the model (``ainvoke``), then a node streaming it (``astream``)."""
    first, second = make_model(), _streaming_model("streamed by hand")

    async def agent(state: Any) -> dict[str, Any]:
        return {"messages": [await first.ainvoke(state["messages"])]}

    async def again(state: Any) -> dict[str, Any]:
        chunks = [chunk async for chunk in second.astream(state["messages"])]
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        return {"messages": [total]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("again", again)
    builder.add_edge(lib.START, "agent")
    builder.add_edge("agent", "again")
    return builder.compile(checkpointer=lib.MemorySaver())


def two_models_in_parallel(lib: Any, make_model: Callable[[], Any]) -> Any:
    """Two nodes of one step each call their own model; plus a node echoing its input."""
    left, right = _streaming_model("left says hi"), _streaming_model("right says yo")

    def call(model: Any) -> Callable[[Any], dict[str, Any]]:
        return lambda state: {"messages": [model.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("left", call(left))
    builder.add_node("right", call(right))
    builder.add_node("echo", lambda state: {"messages": state["messages"][:1]})
    builder.add_edge(lib.START, "left")
    builder.add_edge(lib.START, "right")
    builder.add_edge(["left", "right"], "echo")
    builder.add_edge("echo", lib.END)
    return builder.compile(checkpointer=lib.MemorySaver())


def subgraph_model(lib: Any, make_model: Callable[[], Any]) -> Any:
    """A subgraph whose node calls the model, as a node of the parent."""
    model = make_model()
    inner = lib.StateGraph(lib.MessagesState)
    inner.add_node("think", lambda state: {"messages": [model.invoke(state["messages"])]})
    inner.add_edge(lib.START, "think")
    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("sub", inner.compile())
    builder.add_edge(lib.START, "sub")
    return builder.compile(checkpointer=lib.MemorySaver())


CASES: dict[str, tuple[Callable[..., Any], Callable[[], Any], dict[str, Any]]] = {
    "streaming model": (chat_then_post, lambda: _streaming_model("hello there friend"), {}),
    "model that does not stream": (chat_then_post, lambda: _whole_model("all at once"), {}),
    # a bound model merges the node's config with the inherited one: no token twice
    "bound model given the node's config": (bound_model_with_config, lambda: None, {}),
    "several modes": (
        chat_then_post, lambda: _streaming_model("a b"), {"stream_mode": ["messages", "updates"]}
    ),
    "parallel models": (two_models_in_parallel, lambda: None, {}),
    "subgraph, subgraphs=False": (subgraph_model, lambda: _streaming_model("deep thought"), {}),
    "subgraph, subgraphs=True": (
        subgraph_model, lambda: _streaming_model("deep thought"), {"subgraphs": True}
    ),
}


class _Numbering:
    """Replaces random ids by their order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _UUID.sub(lambda m: self.ids.setdefault(m.group(), f"#{len(self.ids)}"), value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items() if k != "lc_versions"}
        if isinstance(value, (list, tuple)):
            return type(value)(self(v) for v in value)
        return value


def _normal(chunks: list[Any]) -> list[Any]:
    number = _Numbering()
    out = []
    for chunk in chunks:
        out.append(_normal_chunk(chunk, number))
    return out


def _normal_chunk(chunk: Any, number: _Numbering) -> Any:
    if isinstance(chunk, tuple) and len(chunk) == 2 and isinstance(chunk[0], BaseMessage):
        message, meta = chunk
        dumped = message.model_dump()
        dumped["id"] = number(message.id or "")
        return (type(message).__name__, number(dumped), number(meta))
    if isinstance(chunk, tuple) and chunk and isinstance(chunk[0], tuple):  # (namespace, ...)
        return (number(chunk[0]), *(_normal_chunk(part, number) for part in chunk[1:]))
    if isinstance(chunk, tuple):
        return tuple(_normal_chunk(part, number) for part in chunk)
    if isinstance(chunk, dict):  # an updates chunk: only which nodes wrote
        return sorted(chunk)
    return chunk


def _run(lib: Any, case: str, *, use_async: bool = False) -> list[Any]:
    build, make_model, kwargs = CASES[case]
    graph = build(lib, make_model)
    kwargs = {"stream_mode": "messages", **kwargs}
    config = {"configurable": {"thread_id": "t", "user_id": "ann"}, "metadata": {"app": "x"}}
    first = {"messages": [HumanMessage("hi", id="h1")]}
    if use_async:
        async def collect() -> list[Any]:
            return [c async for c in graph.astream(first, config, **kwargs)]

        return asyncio.run(collect())
    return list(graph.stream(first, config, **kwargs))


def _normal_per_node(chunks: list[Any]) -> dict[str, list[Any]]:
    """Each node's chunks in their order, numbered on their own.

    Two models streaming at once interleave their tokens differently on every run, and the
    ids are numbered in order of first appearance: only each node's own order is stable.
    """
    by_node: dict[str, list[Any]] = {}
    for chunk in chunks:
        by_node.setdefault(chunk[1]["langgraph_node"], []).append(chunk)
    return {node: _normal(node_chunks) for node, node_chunks in by_node.items()}


def _normal_for(case: str, chunks: list[Any]) -> Any:
    return _normal_per_node(chunks) if case == "parallel models" else _normal(chunks)


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_stream_equals_langgraph(case: str) -> None:
    expected = _normal_for(case, _run(LANGGRAPH, case))
    got = _normal_for(case, _run(relaygraph_lib(), case))
    assert expected, "the oracle streamed nothing: the case tests nothing"
    assert got == expected


CASES["async nodes"] = (async_node_model, lambda: _streaming_model("awaited words here"), {})


@pytest.mark.parametrize(
    "case", ["streaming model", "several modes", "subgraph, subgraphs=True", "async nodes"]
)
def test_async_messages_stream_equals_langgraph(case: str) -> None:
    expected = _normal(_run(LANGGRAPH, case, use_async=True))
    got = _normal(_run(relaygraph_lib(), case, use_async=True))
    assert expected, "the oracle streamed nothing: the case tests nothing"
    assert got == expected


def test_tokens_arrive_while_the_node_still_runs() -> None:
    """The first token reaches the consumer before the node that streams it returns."""
    lib = relaygraph_lib()
    model = _streaming_model("first second third")
    node_done = threading.Event()

    def agent(state: Any) -> dict[str, Any]:
        reply = model.invoke(state["messages"])
        time.sleep(0.5)  # slow work after the model call
        node_done.set()
        return {"messages": [reply]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(lib.START, "agent")
    graph = builder.compile()
    stream = graph.stream({"messages": [("user", "hi")]}, stream_mode="messages")
    message, meta = next(iter(stream))
    assert message.content == "first" and meta["langgraph_node"] == "agent"
    assert not node_done.is_set()
    rest = list(stream)
    assert [m.content for m, _ in rest] == [" ", "second", " ", "third"]


def test_a_model_tagged_nostream_is_not_streamed() -> None:
    lib = relaygraph_lib()
    model = _streaming_model("quiet words").with_config(tags=["nostream"])

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(lib.START, "agent")
    chunks = list(builder.compile().stream({"messages": [("user", "hi")]}, stream_mode="messages"))
    # only the node's returned message, whole: no token chunks
    assert [(type(m).__name__, m.content) for m, _ in chunks] == [("AIMessage", "quiet words")]
