"""relaygraph vs LangGraph on the same graphs, in one run, side by side.

    python bench/local.py [--rounds N]

Cases: an echo invoke with the in-memory saver, a 10-node linear graph, one thread grown
to 200 turns (cost per turn early vs late), and put+get_tuple of a 100-message
checkpoint. Each measurement alternates the two libraries round by round (so machine
noise hits both alike) and reports medians; the ratio column is relaygraph / LangGraph
(below 1 means relaygraph is faster). Targets (issue 2): per-step overhead at most half of
LangGraph's, and a step's cost that does not grow with the thread's length.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


def _libs() -> dict[str, SimpleNamespace]:
    import langchain_core.messages as lc
    import langgraph.graph as lg
    from langgraph.checkpoint.memory import InMemorySaver as LangGraphSaver

    import relaygraph as rg

    return {
        "langgraph": SimpleNamespace(
            StateGraph=lg.StateGraph,
            START=lg.START,
            END=lg.END,
            MessagesState=lg.MessagesState,
            Saver=LangGraphSaver,
            AIMessage=lc.AIMessage,
            HumanMessage=lc.HumanMessage,
        ),
        "relaygraph": SimpleNamespace(
            StateGraph=rg.StateGraph,
            START=rg.START,
            END=rg.END,
            MessagesState=rg.MessagesState,
            Saver=rg.MemorySaver,
            AIMessage=rg.AIMessage,
            HumanMessage=rg.HumanMessage,
        ),
    }


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


def bench_long_thread(
    libs: dict[str, SimpleNamespace], turns: int = 200
) -> dict[str, dict[str, list[float]]]:
    graphs = {name: echo_graph(lib) for name, lib in libs.items()}
    per_turn: dict[str, list[float]] = {name: [] for name in libs}
    for _turn in range(turns):
        for name, graph in graphs.items():
            msg = libs[name].HumanMessage(content="Hello again")
            config = {"configurable": {"thread_id": "long"}}
            per_turn[name].append(_timed(graph.invoke, {"messages": [msg]}, config))
    window = 20
    return {
        name: {"early": times[:window], "late": times[-window:]} for name, times in per_turn.items()
    }


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


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    libs = _libs()
    rows: list[tuple[str, list[float], list[float]]] = []
    for label, result in (
        ("echo invoke, MemorySaver (ms)", bench_echo(libs, args.rounds)),
        ("10-node linear, per step (ms)", bench_linear(libs, args.rounds)),
        ("put+get_tuple, 100 msgs (ms)", bench_put_get(libs, args.rounds)),
    ):
        rows.append((label, result["langgraph"], result["relaygraph"]))
    long = bench_long_thread(libs)
    rows.append(
        ("turn 1-20 of a thread (ms)", long["langgraph"]["early"], long["relaygraph"]["early"])
    )
    rows.append(
        ("turn 181-200 of a thread (ms)", long["langgraph"]["late"], long["relaygraph"]["late"])
    )
    print(f"{'case (median)':<32}{'langgraph':>10}{'relaygraph':>12}{'ratio':>8}")
    for label, theirs, ours in rows:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{label:<32}{_ms(theirs):>10}{_ms(ours):>12}{ratio:>8.2f}")
    for name in ("langgraph", "relaygraph"):
        growth = statistics.median(long[name]["late"]) / statistics.median(long[name]["early"])
        print(f"{name}: a turn at 200 costs {growth:.2f}x a turn at 1-20")


if __name__ == "__main__":
    main()
