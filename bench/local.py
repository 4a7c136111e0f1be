"""relaygraph vs LangGraph on the same graphs, in one run, side by side.

    python bench/local.py [--rounds N]

Cases: an echo invoke with the in-memory saver, a 10-node linear graph, an LLM agent
(a model node calling a fake chat model on the state's messages, a ToolNode, the loop:
per step, and the time to its answer's first token with ``stream_mode="messages"``), one
thread grown to 200 turns (cost per turn early vs late), and put+get_tuple of a
100-message checkpoint. Each measurement alternates the two libraries round by round (so machine
noise hits both alike) and reports medians; the ratio column is relaygraph / LangGraph
(below 1 means relaygraph is faster). Targets (issue 2): per-step overhead at most half of
LangGraph's, and a step's cost that does not grow with the thread's length.

The tables are printed and saved to ``bench/results/local.json`` (``bench/report.py``
turns them into docs/benchmarks.md's tables and PNG plots).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._libs import graph_libs
from bench._results import Plot, Table, print_table, save

#: Turns per window of the long-thread case (its early and late rows, and its plot points).
WINDOW = 20


def echo_graph(lib: SimpleNamespace) -> Any:
    def respond(state: Any) -> dict[str, Any]:
        return {"messages": [lib.AIMessage(content="Echo: " + state["messages"][-1].content)]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    return builder.compile(checkpointer=lib.Saver())


def linear_graph(lib: SimpleNamespace, length: int = 10) -> Any:
    from typing import TypedDict

    class Counter(TypedDict):
        n: int

    builder = lib.StateGraph(Counter)
    names = [f"n{i}" for i in range(length)]
    for name in names:
        builder.add_node(name, lambda state: {"n": state["n"] + 1})
    builder.add_edge(lib.START, names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    return builder.compile(checkpointer=lib.Saver())


AGENT_STEPS = 4  # __start__, model (a tool call), tools, model (the answer)


def agent_graph(lib: SimpleNamespace) -> Any:
    """A model node + ToolNode loop; the model is scripted (a tool call, then an answer)."""
    from langchain_core.tools import tool

    from relaygraph.testing.chat_models import ScriptedChatModel

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1"}
    model = ScriptedChatModel(
        responses=[lib.AIMessage("", tool_calls=[call]), "The sum of the two is 5."]
    ).bind_tools([add])

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", lib.ToolNode([add]))
    builder.add_edge(lib.START, "agent")
    builder.add_conditional_edges("agent", lib.tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=lib.Saver())


def bench_agent(libs: dict[str, SimpleNamespace], rounds: int) -> dict[str, list[float]]:
    """Per step of an agent run (model, tools, model) on a fresh thread each round."""
    graphs = {name: agent_graph(lib) for name, lib in libs.items()}
    times: dict[str, list[float]] = {name: [] for name in libs}
    for index in range(rounds):
        for name, graph in graphs.items():
            question = {"messages": [libs[name].HumanMessage(content="What is 2 + 3?")]}
            config = {"configurable": {"thread_id": f"agent-{index}"}}
            times[name].append(_timed(graph.invoke, question, config) / AGENT_STEPS)
    return times


def bench_first_token(libs: dict[str, SimpleNamespace], rounds: int) -> dict[str, list[float]]:
    """Time from ``stream(..., stream_mode="messages")`` to the answer's first token."""
    graphs = {name: agent_graph(lib) for name, lib in libs.items()}
    times: dict[str, list[float]] = {name: [] for name in libs}
    for index in range(rounds):
        for name, graph in graphs.items():
            question = {"messages": [libs[name].HumanMessage(content="What is 2 + 3?")]}
            config = {"configurable": {"thread_id": f"ttft-{index}"}}
            start = time.perf_counter()
            stream = graph.stream(question, config, stream_mode="messages")
            for message, _meta in stream:
                if message.content and type(message).__name__ == "AIMessageChunk":
                    times[name].append(time.perf_counter() - start)
                    break
            for _ in stream:  # run to the end
                pass
    return times


def _timed(func: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def bench_echo(libs: dict[str, SimpleNamespace], rounds: int) -> dict[str, list[float]]:
    graphs = {name: echo_graph(lib) for name, lib in libs.items()}
    samples: dict[str, list[float]] = {name: [] for name in libs}
    for i in range(rounds):
        for name, graph in graphs.items():
            msg = libs[name].HumanMessage(content="Hello!")
            config = {"configurable": {"thread_id": f"echo-{i}"}}
            samples[name].append(_timed(graph.invoke, {"messages": [msg]}, config))
    return samples


def bench_linear(libs: dict[str, SimpleNamespace], rounds: int) -> dict[str, list[float]]:
    graphs = {name: linear_graph(lib) for name, lib in libs.items()}
    samples: dict[str, list[float]] = {name: [] for name in libs}
    for i in range(rounds):
        for name, graph in graphs.items():
            config = {"configurable": {"thread_id": f"lin-{i}"}}
            # 12 supersteps: input, start, 10 nodes -> time per step
            samples[name].append(_timed(graph.invoke, {"n": 0}, config) / 12)
    return samples


def bench_long_thread(libs: dict[str, SimpleNamespace], turns: int = 200) -> dict[str, list[float]]:
    """Seconds per turn of one thread grown to ``turns`` turns, per library, in turn order."""
    graphs = {name: echo_graph(lib) for name, lib in libs.items()}
    per_turn: dict[str, list[float]] = {name: [] for name in libs}
    for _turn in range(turns):
        for name, graph in graphs.items():
            msg = libs[name].HumanMessage(content="Hello again")
            config = {"configurable": {"thread_id": "long"}}
            per_turn[name].append(_timed(graph.invoke, {"messages": [msg]}, config))
    return per_turn


def bench_put_get(libs: dict[str, SimpleNamespace], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in libs}
    prepared = {}
    for name, lib in libs.items():
        graph = echo_graph(lib)
        config = {"configurable": {"thread_id": "hundred"}}
        for _ in range(50):  # 50 turns = 100 messages
            graph.invoke({"messages": [lib.HumanMessage(content="x" * 40)]}, config)
        saved = graph.checkpointer.get_tuple(config)
        prepared[name] = (lib.Saver(), saved)
    for i in range(rounds):
        for name, (saver, saved) in prepared.items():
            config = {"configurable": {"thread_id": f"pg-{i}", "checkpoint_ns": ""}}
            versions = dict(saved.checkpoint["channel_versions"])

            samples[name].append(_timed(_put_get, saver, saved, config, versions))
    return samples


def _put_get(saver: Any, saved: Any, config: dict[str, Any], versions: dict[str, Any]) -> None:
    stored = saver.put(config, saved.checkpoint, saved.metadata, versions)
    saver.get_tuple(stored)


def _ms(values: list[float]) -> float:
    """Median of ``values`` (seconds) in milliseconds."""
    return statistics.median(values) * 1000


def comparison_table(
    cases: list[tuple[str, list[float], list[float]]], theirs: str, notes: list[str]
) -> Table:
    """The side-by-side table: per case LangGraph's and relaygraph's medians, and the ratio."""
    table = Table(
        "In-process executor vs LangGraph",
        ["case (median)", theirs, "relaygraph", "ratio"],
        notes=["ratio = relaygraph / LangGraph (below 1: relaygraph is faster)", *notes],
        plot=Plot("bar", x="case (median)", y=[theirs, "relaygraph"], ylabel="ms", log=True),
        formats={theirs: ".3f", "relaygraph": ".3f", "ratio": ".2f"},
    )
    for label, langgraph, ours in cases:
        table.add(
            label, _ms(langgraph), _ms(ours), statistics.median(ours) / statistics.median(langgraph)
        )
    return table


def growth_table(per_turn: dict[str, list[float]], theirs: str) -> Table:
    """The long thread's cost per turn, median per window of turns (a line each)."""
    table = Table(
        "Cost of a turn as one thread grows",
        ["turns", theirs, "relaygraph"],
        notes=[f"median of each {WINDOW} turns, by the window's last turn"],
        plot=Plot("line", x="turns", y=[theirs, "relaygraph"], ylabel="ms per turn (median)"),
        formats={theirs: ".3f", "relaygraph": ".3f"},
    )
    langgraph, ours = per_turn["langgraph"], per_turn["relaygraph"]
    for first in range(0, len(ours), WINDOW):
        window = slice(first, first + WINDOW)
        table.add(first + WINDOW, _ms(langgraph[window]), _ms(ours[window]))
    return table


def main() -> None:
    """Run every case, print the tables and save them to bench/results/local.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    libs = graph_libs()
    cases: list[tuple[str, list[float], list[float]]] = []
    for label, result in (
        ("echo invoke, MemorySaver (ms)", bench_echo(libs, args.rounds)),
        ("10-node linear graph, per step (ms)", bench_linear(libs, args.rounds)),
        ("agent: model + ToolNode loop, per step (ms)", bench_agent(libs, args.rounds)),
        ("agent: time to the answer's first token (ms)", bench_first_token(libs, args.rounds)),
        ("put + get_tuple of a 100-message checkpoint (ms)", bench_put_get(libs, args.rounds)),
    ):
        cases.append((label, result["langgraph"], result["relaygraph"]))
    per_turn = bench_long_thread(libs)
    turns = len(per_turn["relaygraph"])
    early = {name: times[:WINDOW] for name, times in per_turn.items()}
    late = {name: times[-WINDOW:] for name, times in per_turn.items()}
    cases.append(
        (
            f"a turn early in a thread (turns 1-{WINDOW}, ms)",
            early["langgraph"],
            early["relaygraph"],
        )
    )
    cases.append(
        (
            f"a turn late in a thread (turns {turns - WINDOW + 1}-{turns}, ms)",
            late["langgraph"],
            late["relaygraph"],
        )
    )
    ratios = {n: statistics.median(late[n]) / statistics.median(early[n]) for n in per_turn}
    growth = [
        f"{name}: a turn at {turns} costs {ratios[name]:.2f}x a turn at 1-{WINDOW}"
        for name in ("langgraph", "relaygraph")
    ]
    theirs = f"LangGraph {version('langgraph')}"
    tables = [comparison_table(cases, theirs, growth), growth_table(per_turn, theirs)]
    for table in tables:
        print_table(table)
    path = save("local", tables, f"python bench/local.py --rounds {args.rounds}")
    print(f"\nsaved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
