"""LangGraph 1.x API pieces (issue 15): their error paths and edges.

The behaviour shared with LangGraph is compared case by case in tests/differential; these
tests pin what the catalogue cannot: clear errors for bad input, and relaygraph-only details.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypedDict

import pytest

from relaygraph import (
    END,
    START,
    Command,
    MemorySaver,
    RelaygraphError,
    Runtime,
    StateGraph,
    get_runtime,
    interrupt,
)
from relaygraph.runtime import Runtime as RuntimeFromPackage
from relaygraph.runtime import get_runtime as get_runtime_from_package


class State(TypedDict, total=False):
    n: int
    seen: str


@dataclass
class Ctx:
    user: str


def _graph(node: Any, **compile_kwargs: Any) -> Any:
    builder = StateGraph(State, context_schema=Ctx).add_node("node", node)
    return builder.add_edge(START, "node").add_edge("node", END).compile(**compile_kwargs)


def test_runtime_is_importable_from_the_package_and_relaygraph() -> None:
    assert RuntimeFromPackage is Runtime and get_runtime_from_package is get_runtime


def test_runtime_merge_and_override() -> None:
    base = Runtime(context="a", store="s")
    assert base.merge(Runtime(context="b")) == Runtime(context="b", store="s")
    assert base.override(store=None).store is None and base.store == "s"


def test_get_runtime_outside_a_node_is_a_clear_error() -> None:
    with pytest.raises(RelaygraphError, match="inside a graph node"):
        get_runtime()


def test_dict_context_becomes_the_schema_class_and_bad_keys_fail() -> None:
    def node(state: State, runtime: Runtime[Ctx]) -> dict[str, Any]:
        return {"seen": f"{type(runtime.context).__name__}:{runtime.context.user}"}

    graph = _graph(node)
    assert graph.invoke({"n": 1}, context={"user": "ada"})["seen"] == "Ctx:ada"
    with pytest.raises(TypeError, match="nope"):
        graph.invoke({"n": 1}, context={"nope": 1})


def test_without_context_the_runtime_context_is_none_and_writer_is_a_no_op() -> None:
    def node(state: State, runtime: Runtime, writer: Any) -> dict[str, Any]:
        runtime.stream_writer("ignored")
        writer("also ignored")
        return {"seen": repr(runtime.context)}

    assert _graph(node).invoke({"n": 1}) == {"n": 1, "seen": "None"}


def test_context_reaches_async_nodes_and_streams() -> None:
    async def node(state: State, runtime: Runtime[Ctx]) -> dict[str, Any]:
        runtime.stream_writer({"user": runtime.context.user})
        return {"seen": runtime.context.user}

    graph = _graph(node)

    async def collect() -> list[Any]:
        stream = graph.astream({"n": 1}, context=Ctx("bo"), stream_mode=["custom", "values"])
        return [chunk async for chunk in stream]

    chunks = asyncio.run(collect())
    assert ("custom", {"user": "bo"}) in chunks
    assert chunks[-1] == ("values", {"n": 1, "seen": "bo"})


def test_recursion_limit_must_be_a_positive_integer() -> None:
    graph = _graph(lambda s: {"n": 2})
    for bad in (0, -3, "10"):
        with pytest.raises(ValueError, match="recursion_limit"):
            graph.invoke({"n": 1}, {"recursion_limit": bad})


def test_batch_results_in_order_configs_per_input_and_errors() -> None:
    def node(state: State, config: Any) -> dict[str, Any]:
        if state["n"] < 0:
            raise ValueError("negative")
        return {"seen": config["configurable"].get("tag", "")}

    graph = _graph(node)
    inputs = [{"n": 1}, {"n": 2}]
    configs = [{"configurable": {"tag": "x"}}, {"configurable": {"tag": "y"}}]
    assert [r["seen"] for r in graph.batch(inputs, configs)] == ["x", "y"]
    assert graph.batch([]) == []
    with pytest.raises(ValueError, match="2 inputs but 1 configs"):
        graph.batch(inputs, [configs[0]])
    with pytest.raises(ValueError, match="negative"):
        graph.batch([{"n": -1}, {"n": 1}])
    mixed = asyncio.run(graph.abatch([{"n": -1}, {"n": 1}], return_exceptions=True))
    assert isinstance(mixed[0], ValueError) and mixed[1]["n"] == 1


def test_command_parent_at_the_top_graph_escapes_as_langgraph_does() -> None:
    from relaygraph.runtime.nodes import ParentCommand

    graph = _graph(lambda s: Command(graph=Command.PARENT, goto="elsewhere"))
    with pytest.raises(ParentCommand):
        graph.invoke({"n": 1})


def test_subgraph_called_from_a_node_keeps_its_interrupt_answer_on_resume() -> None:
    inner = StateGraph(State).add_node("ask", lambda s: {"seen": interrupt("who?")})
    child = inner.add_edge(START, "ask").compile()
    calls: list[str] = []

    def call(state: State) -> dict[str, Any]:
        calls.append("called")
        return {"seen": "child: " + child.invoke({"n": 0})["seen"]}

    graph = _graph(call, checkpointer=MemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    paused = graph.invoke({"n": 1}, config)
    assert [i.value for i in paused["__interrupt__"]] == ["who?"]
    assert graph.get_state(config).next == ("node",)
    assert graph.invoke(Command(resume="ada"), config)["seen"] == "child: ada"
    assert calls == ["called", "called"]  # the parent node re-ran; the child continued


def test_parallel_interrupts_answered_one_at_a_time_keep_both_stored_answers() -> None:
    """Both resume maps are stored against the paused step, and loading merges them: a
    worker that runs the step sees every answer (the issue 15 distributed bug)."""
    from relaygraph.runtime.constants import RESUME_MAP
    from relaygraph.runtime.loop import Run

    builder = StateGraph(State)
    builder.add_node("p", lambda s: {"n": 1 if interrupt("p?") else 0})
    builder.add_node("q", lambda s: {"seen": interrupt("q?")})
    builder.add_edge(START, "p").add_edge(START, "q")
    saver = MemorySaver()
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"n": 0}, config)
    paused = graph.get_state(config).config
    by_value = {i.value: i.id for i in graph.get_state(config).interrupts}
    graph.invoke(Command(resume={by_value["p?"]: True}), config)
    assert [i.value for i in graph.get_state(config).interrupts] == ["q?"]
    assert graph.invoke(Command(resume={by_value["q?"]: "yes"}), config) == {"n": 1, "seen": "yes"}
    stored = saver.get_tuple(paused).pending_writes
    maps = [(task_id, value) for task_id, channel, value in stored if channel == RESUME_MAP]
    assert len({task_id for task_id, _ in maps}) == 2
    run = Run(graph, {"configurable": {"thread_id": "t"}})
    run.load(saver.get_tuple(paused))
    assert run.configurable["__relaygraph_resume_map"] == {
        by_value["p?"]: True,
        by_value["q?"]: "yes",
    }


def test_deferred_channels_store_and_restore_their_finished_flag() -> None:
    from relaygraph.runtime.channels import MISSING, DeferredBarrierValue, DeferredValue

    channel = DeferredValue("branch:to:final")
    assert channel.checkpoint() is MISSING and not channel.finish()
    assert channel.update([None]) and not channel.is_available()
    assert channel.checkpoint() == (None, False) and not channel.consume()
    assert channel.finish() and channel.is_available() and not channel.finish()
    restored = channel.from_checkpoint(channel.checkpoint())
    assert restored.is_available() and restored.get() is None
    assert restored.consume() and restored.checkpoint() is MISSING
    assert not restored.update([])  # steps that do not write it keep it as it is

    barrier = DeferredBarrierValue("join:a+b:final", frozenset({"a", "b"}))
    barrier.update(["a"])
    assert not barrier.finish()  # incomplete: nothing to finish
    barrier.update(["b"])
    assert not barrier.is_available() and barrier.finish() and barrier.is_available()
    again = barrier.from_checkpoint(barrier.checkpoint())
    assert again.is_available() and again.consume() and again.checkpoint() is MISSING


def test_deferred_node_fingerprint_differs_only_with_deferred_nodes() -> None:
    from relaygraph.workers.registry import fingerprint

    def build(defer: bool) -> Any:
        builder = StateGraph(State).add_node("a", lambda s: s, defer=defer)
        return builder.add_edge(START, "a").compile()

    assert fingerprint(build(True)) != fingerprint(build(False))


def test_execution_info_in_async_nodes_and_get_runtime() -> None:
    """The async executor counts attempts too; ``get_runtime()`` carries the same info."""
    from relaygraph import RetryPolicy

    seen: list[Any] = []

    async def node(state: State, runtime: Runtime) -> dict[str, Any]:
        info = runtime.execution_info
        seen.append((info.node_attempt, info.node_first_attempt_time, info.task_id))
        assert get_runtime().execution_info == info
        if info.node_attempt < 3:
            raise ConnectionError("flaky")
        return {"seen": info.checkpoint_ns.split(":")[0]}

    retry = RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False)
    builder = StateGraph(State).add_node("node", node, retry_policy=retry)
    graph = builder.add_edge(START, "node").compile()
    assert asyncio.run(graph.ainvoke({"n": 1})) == {"n": 1, "seen": "node"}
    assert [attempt for attempt, _, _ in seen] == [1, 2, 3]
    assert len({(t, task) for _, t, task in seen}) == 1  # one first time, one task
    assert Runtime().execution_info is None and not Runtime().control
