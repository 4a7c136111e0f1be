"""``get_graph()`` draws what LangGraph draws; ``with_config`` defaults every call's config;
``LANGGRAPH_DEFAULT_RECURSION_LIMIT`` sets the default limit, as in LangGraph."""

from __future__ import annotations

import operator
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command as LangGraphCommand
from typing_extensions import TypedDict

from relaygraph import Command
from tests.agents import scenarios
from tests.agents.libs import LIBS, RELAYGRAPH

ROOT = Path(__file__).resolve().parents[2]


class State(TypedDict):
    n: int
    log: Annotated[list, operator.add]


def _step(state: Any) -> dict[str, Any]:
    return {"n": state["n"] + 1, "log": ["step"]}


def _route(state: Any) -> Literal["b", "__end__"]:
    return "b" if state["n"] < 3 else "__end__"


def _untyped_route(state: Any) -> str:
    return "b"


def linear(lib: Any) -> Any:
    builder = lib.StateGraph(State)
    builder.add_node("a", _step)
    builder.add_node("b", _step, metadata={"role": "second"})
    builder.add_node("c", _step)
    builder.add_edge(lib.START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    return builder.compile(interrupt_before=["b"], interrupt_after=["b", "c"])


def _goto_both_langgraph(state: Any) -> LangGraphCommand[Literal["a", "b"]]:
    return LangGraphCommand(goto="a")


def _goto_both_relaygraph(state: Any) -> Command[Literal["a", "b"]]:
    return Command(goto="a")


def branches(lib: Any) -> Any:
    """Literal-hinted paths, a labelled path_map, a list path_map, an untyped path, a
    ``Command[Literal[...]]`` node, and nodes no edge reaches (not drawn)."""
    goto_both = _goto_both_langgraph if lib.name == "langgraph" else _goto_both_relaygraph
    builder = lib.StateGraph(State)
    for name in ("a", "b", "d"):
        builder.add_node(name, _step)
    builder.add_node("c", goto_both)
    builder.add_node("e", _step)
    builder.add_edge(lib.START, "a")
    builder.add_conditional_edges("a", _route)
    builder.add_conditional_edges("b", _untyped_route, {"yes": "c", "no": lib.END, "d": "d"})
    builder.add_conditional_edges("d", _untyped_route, ["a", "e"])
    builder.add_conditional_edges("e", _untyped_route)
    return builder.compile()


def conditional_entry(lib: Any) -> Any:
    builder = lib.StateGraph(State)
    builder.add_node("a", _step)
    builder.add_node("b", _step)
    builder.set_conditional_entry_point(lambda s: "a", {"first": "a", "second": "b"})
    builder.add_edge("a", lib.END)
    return builder.compile()


def fan_in(lib: Any) -> Any:
    builder = lib.StateGraph(State)
    for name in ("a", "b", "c"):
        builder.add_node(name, _step)
    builder.add_edge(lib.START, "a")
    builder.add_edge(lib.START, "b")
    builder.add_edge(["a", "b"], "c")
    builder.add_edge("c", lib.END)
    return builder.compile()


def destinations(lib: Any) -> Any:
    def hop(state: Any) -> Any:
        return lib.Command(goto="b")

    builder = lib.StateGraph(State)
    builder.add_node("a", hop, destinations={"b": "onwards", "c": ""})
    builder.add_node("b", hop, destinations=("c", "d"))
    builder.add_node("c", _step)
    builder.add_node("d", _step)
    builder.add_edge(lib.START, "a")
    return builder.compile()


def nested(lib: Any) -> Any:
    """A subgraph two levels deep, for ``xray``."""
    inner = lib.StateGraph(State)
    inner.add_node("x", _step)
    inner.add_edge(lib.START, "x")
    middle = lib.StateGraph(State)
    middle.add_node("p", _step)
    middle.add_node("inner", inner.compile())
    middle.add_edge(lib.START, "p")
    middle.add_edge("p", "inner")
    middle.add_conditional_edges("inner", _untyped_route, ["p", lib.END])
    outer = lib.StateGraph(State)
    outer.add_node("a", _step)
    outer.add_node("middle", middle.compile())
    outer.add_node("z", _step)
    outer.add_edge(lib.START, "a")
    outer.add_edge("a", "middle")
    outer.add_edge("middle", "z")
    return outer.compile()


def hand_agent(lib: Any) -> Any:
    return scenarios.hand_loop_graph(lib, scenarios.loop_script(), [scenarios.add])


def react_agent(lib: Any) -> Any:
    return lib.create_react_agent(scenarios.agent_script(), [scenarios.add], name="calc")


GRAPHS = [linear, branches, conditional_entry, fan_in, destinations, nested, hand_agent]


def _shape(drawn: Any) -> dict[str, Any]:
    return {
        "nodes": [(node.id, node.metadata) for node in drawn.nodes.values()],
        "edges": [(e.source, e.target, e.data, e.conditional) for e in drawn.edges],
        "mermaid": drawn.draw_mermaid(),
    }


@pytest.mark.parametrize("build", [*GRAPHS, react_agent], ids=lambda f: f.__name__)
@pytest.mark.parametrize("xray", [False, True, 1])
def test_get_graph_draws_what_langgraph_draws(build: Any, xray: Any) -> None:
    langgraph, relaygraph = (build(lib) for lib in LIBS)
    expected = _shape(langgraph.get_graph(xray=xray))
    assert len(expected["edges"]) >= 2  # the oracle drew a graph, not nothing
    assert _shape(relaygraph.get_graph(xray=xray)) == expected


def test_a_deferred_node_is_marked() -> None:
    # LangGraph also draws edges into a deferred node from the branches it waits for; a
    # drawing of relaygraph's shows only the declared edges.
    builder = RELAYGRAPH.StateGraph(State)
    builder.add_node("a", _step)
    builder.add_node("late", _step, defer=True)
    builder.add_edge(RELAYGRAPH.START, "a")
    builder.add_edge(RELAYGRAPH.START, "late")
    assert builder.compile().get_graph().nodes["late"].metadata == {"defer": True}


def test_xray_expands_subgraphs_level_by_level() -> None:
    graph = nested(RELAYGRAPH)
    shallow = [node for node in graph.get_graph(xray=1).nodes]
    deep = [node for node in graph.get_graph(xray=True).nodes]
    assert "middle:p" in shallow and "middle:inner" in shallow
    assert "middle:inner:x" not in shallow
    assert "middle:inner:x" in deep and "middle:inner" not in deep
    assert "middle" in graph.get_graph().nodes


@pytest.mark.parametrize("xray", [-1, "yes", 1.5])
def test_get_graph_refuses_a_bad_xray(xray: Any) -> None:
    with pytest.raises(ValueError, match="xray"):
        linear(RELAYGRAPH).get_graph(xray=xray)


def test_draw_ascii_and_async_get_graph() -> None:
    import asyncio

    graph = hand_agent(RELAYGRAPH)
    drawn = asyncio.run(graph.aget_graph())
    assert [e.target for e in drawn.edges if e.source == "agent"] == ["__end__", "tools"]
    assert drawn.draw_mermaid() == graph.get_graph().draw_mermaid()


# -- with_config ------------------------------------------------------------------------


def _looping(lib: Any, saver: Any = None) -> Any:
    builder = lib.StateGraph(State)
    builder.add_node("a", _step)
    builder.add_node("b", _step)
    builder.add_edge(lib.START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "a")
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
def test_with_config_sets_defaults_a_call_overrides(lib: Any) -> None:
    graph = _looping(lib)
    limited = graph.with_config(recursion_limit=4)
    with pytest.raises(lib.GraphRecursionError):
        limited.invoke({"n": 0, "log": []})
    # the call's own limit wins over the default; the original graph is unchanged
    with pytest.raises(lib.GraphRecursionError):
        limited.invoke({"n": 0, "log": []}, {"recursion_limit": 7})
    assert graph is not limited and not graph.config


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
def test_with_config_configurable_reaches_nodes_and_state_calls(lib: Any) -> None:
    seen: list[Any] = []

    def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        seen.append({k: config["configurable"].get(k) for k in ("user", "model")})
        return {"n": state["n"] + 1}

    builder = lib.StateGraph(State)
    builder.add_node("a", node)
    builder.add_edge(lib.START, "a")
    graph = builder.compile(checkpointer=lib.MemorySaver())
    bound = graph.with_config(configurable={"thread_id": "t", "user": "ann", "model": "m1"})
    bound.invoke({"n": 0, "log": []}, {"configurable": {"model": "m2"}})
    assert seen == [{"user": "ann", "model": "m2"}]
    thread = {"configurable": {"thread_id": "t"}}
    assert bound.get_state(thread).values["n"] == 1
    assert len(list(bound.get_state_history(thread))) == 3


def test_with_config_thread_serves_state_calls_too() -> None:
    # LangGraph's state calls ignore with_config's configurable; relaygraph's use it.
    graph = _looping(RELAYGRAPH, RELAYGRAPH.MemorySaver()).with_config(
        recursion_limit=3, configurable={"thread_id": "t"}
    )
    with pytest.raises(RELAYGRAPH.GraphRecursionError):
        graph.invoke({"n": 0, "log": []})
    assert graph.get_state({}).values["log"] == ["step", "step", "step"]
    graph.update_state({}, {"n": 10}, as_node="b")
    assert graph.get_state({}).values["n"] == 10


def test_merge_configs_adds_tags_and_keeps_both_layers() -> None:
    from relaygraph.runtime.config_merge import merge_configs

    base = {"tags": ["a"], "metadata": {"x": 1}, "configurable": {"thread_id": "t"}}
    merged = merge_configs(base, {"tags": ["a", "b"], "metadata": {"y": 2}}, None)
    assert merged == {
        "tags": ["a", "b"],
        "metadata": {"x": 1, "y": 2},
        "configurable": {"thread_id": "t"},
    }
    assert base == {"tags": ["a"], "metadata": {"x": 1}, "configurable": {"thread_id": "t"}}


# -- LANGGRAPH_DEFAULT_RECURSION_LIMIT -----------------------------------------------------

_PROBE = """
import operator
from typing import Annotated
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command as LangGraphCommand
from typing_extensions import TypedDict

from relaygraph import Command
from relaygraph import START, StateGraph, GraphRecursionError
class S(TypedDict):
    n: Annotated[int, operator.add]
b = StateGraph(S)
b.add_node("a", lambda s: {"n": 1})
b.add_node("b", lambda s: {"n": 1})
b.add_edge(START, "a"); b.add_edge("a", "b"); b.add_edge("b", "a")
try:
    b.compile().invoke({"n": 0})
except GraphRecursionError as exc:
    print("limit", str(exc).split("of ")[1].split(" ")[0])
"""


def _probe(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANGGRAPH_DEFAULT_RECURSION_LIMIT": value, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_default_recursion_limit_comes_from_the_environment() -> None:
    done = _probe("6")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "limit 6"


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_default_recursion_limit_is_named(value: str) -> None:
    done = _probe(value)
    assert done.returncode != 0
    assert "LANGGRAPH_DEFAULT_RECURSION_LIMIT" in done.stderr and repr(value) in done.stderr
