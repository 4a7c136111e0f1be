"""``astream_events`` and LangChain callbacks: the graph run and its node runs, with the
model and tool runs inside them, as LangGraph reports them (LangGraph is the oracle)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from typing_extensions import TypedDict

from tests.agents import scenarios
from tests.agents.libs import LIBS, RELAYGRAPH, normalized


def _model_graph(lib: Any) -> Any:
    model = scenarios.ScriptedChatModel(responses=[AIMessage("hello there, friend")])

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("after", lambda state: {})
    builder.add_edge(lib.START, "agent")
    builder.add_edge("agent", "after")
    return builder.compile()


def _tool_loop(lib: Any) -> Any:
    tools = [scenarios.add, scenarios.multiply]
    return scenarios.hand_loop_graph(lib, scenarios.loop_script(), tools)


def _react(lib: Any) -> Any:
    return lib.create_react_agent(scenarios.agent_script(), [scenarios.add, scenarios.multiply])


class Inner(TypedDict):
    n: int


def _nested(lib: Any) -> Any:
    inner = lib.StateGraph(Inner)
    inner.add_node("double", lambda s: {"n": s["n"] * 2})
    inner.add_edge(lib.START, "double")
    outer = lib.StateGraph(Inner)
    outer.add_node("first", lambda s: {"n": s["n"] + 1})
    outer.add_node("inner", inner.compile())
    outer.add_edge(lib.START, "first")
    outer.add_edge("first", "inner")
    return outer.compile()


_INPUT = {"messages": [HumanMessage("What is 2 + 3, times 4?", id="h1")]}
CASES = {
    "model": (_model_graph, _INPUT),
    "tool_loop": (_tool_loop, _INPUT),
    "react_agent": (_react, {"messages": [HumanMessage("What are 40 + 2 and 6 * 7?", id="h1")]}),
    "subgraph": (_nested, {"n": 1}),
}


def _events(lib: Any, case: str, **kwargs: Any) -> list[tuple]:
    build, value = CASES[case]
    graph = build(lib)

    async def collect() -> list[tuple]:
        seen = []
        async for event in graph.astream_events(value, version="v2", **kwargs):
            metadata = event["metadata"]
            data = {k: normalized(v) for k, v in event["data"].items() if k != "input"}
            seen.append(
                (
                    event["event"],
                    event["name"],
                    len(event["parent_ids"]),
                    metadata.get("langgraph_node"),
                    metadata.get("langgraph_step"),
                    [t for t in event["tags"] if t.startswith("graph:")],
                    _without_run_ids(data),
                )
            )
        return seen

    return asyncio.run(collect())


def _without_run_ids(value: Any) -> Any:
    """Without message ids: a model's message takes its id from its run's (random) id, and
    LangGraph's reducer gives a tool message its id in place, which its root stream then
    shows (relaygraph's reducer copies)."""
    if isinstance(value, dict):
        return {k: _without_run_ids(v) for k, v in value.items() if k not in ("run_id", "id")}
    if isinstance(value, list):
        return [_without_run_ids(v) for v in value]
    return value


def _graph_level(events: list[tuple]) -> list[tuple]:
    """The graph's and its nodes' runs, and the model and tool runs at any depth: how a
    prebuilt node is built inside (LangGraph's agent node is a chain of runnables) may
    differ, what it runs may not. Events of one step are compared as a set."""
    kept = [
        e if e[2] <= 1 else (*e[:2], None, *e[3:])
        for e in events
        if e[2] <= 1 or e[0].startswith(("on_chat_model", "on_tool"))
    ]
    # The agent's tool calls run as parallel tasks whose events (and the graph's update
    # chunks after each) interleave as they finish: each step's events as a sorted set,
    # the steps in order. A graph event belongs to the step of the node event before it.
    step, keyed = -1, []
    for event in kept:
        if event[4] is not None:
            step = event[4]
        keyed.append((step, repr(event), event))
    return [event for _step, _text, event in sorted(keyed, key=lambda k: (k[0], k[1]))]


@pytest.mark.parametrize("case", sorted(CASES))
def test_astream_events_match_langgraph(case: str) -> None:
    expected, got = (_events(lib, case) for lib in LIBS)
    assert any(e[0] == "on_chain_end" and e[2] == 0 for e in expected)  # the oracle ran
    if case == "react_agent":
        expected, got = _graph_level(expected), _graph_level(got)
    assert got == expected


def test_astream_events_filters_and_takes_run_arguments() -> None:
    kinds = {e[0] for e in _events(RELAYGRAPH, "tool_loop", include_types=["tool"])}
    assert kinds == {"on_tool_start", "on_tool_end"}
    names = {e[1] for e in _events(RELAYGRAPH, "model", include_names=["agent"])}
    assert names == {"agent"}
    chunks = [
        e[6]["chunk"]
        for e in _events(RELAYGRAPH, "subgraph", stream_mode="values")
        if e[0] == "on_chain_stream" and e[2] == 0
    ]
    assert chunks == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_astream_events_refuses_version_one() -> None:
    async def first() -> Any:
        async for event in _model_graph(RELAYGRAPH).astream_events(_INPUT, version="v1"):
            return event

    with pytest.raises(NotImplementedError, match="version"):
        asyncio.run(first())


class Recorder(BaseCallbackHandler):
    """Chain, model and tool runs as (kind, name, parent name) in order."""

    def __init__(self) -> None:
        self.runs: dict[UUID, str] = {}
        self.seen: list[tuple[str, str, str | None]] = []

    def _start(self, kind: str, name: str, run_id: UUID, parent: UUID | None) -> None:
        self.runs[run_id] = name
        self.seen.append((kind, name, self.runs.get(parent) if parent else None))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self._start("chain", kw.get("name") or "?", run_id, kw.get("parent_run_id"))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any):
        self._start("model", "model", run_id, kw.get("parent_run_id"))

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kw: Any) -> None:
        self._start("tool", serialized.get("name", "?"), run_id, kw.get("parent_run_id"))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.seen.append(("error", self.runs[run_id], type(error).__name__))


def test_callbacks_in_invoke_see_the_run_tree() -> None:
    recorder = Recorder()
    graph = _tool_loop(RELAYGRAPH)
    graph.invoke(_INPUT, {"callbacks": [recorder]})
    assert recorder.seen[:7] == [
        ("chain", "LangGraph", None),
        ("chain", "agent", "LangGraph"),
        ("model", "model", "agent"),
        ("chain", "tools_condition", "agent"),
        ("chain", "tools", "LangGraph"),
        ("tool", "add", "tools"),
        ("chain", "agent", "LangGraph"),
    ]


def test_a_failing_node_reports_its_error_to_its_run_and_the_graph_run() -> None:
    def broken(state: Any) -> dict[str, Any]:
        raise KeyError("missing")

    builder = RELAYGRAPH.StateGraph(Inner)
    builder.add_node("broken", broken)
    builder.add_edge(RELAYGRAPH.START, "broken")
    recorder = Recorder()
    with pytest.raises(KeyError):
        builder.compile().invoke({"n": 1}, {"callbacks": [recorder]})
    assert recorder.seen == [
        ("chain", "LangGraph", None),
        ("chain", "broken", "LangGraph"),
        ("error", "broken", "KeyError"),
        ("error", "LangGraph", "KeyError"),
    ]
