"""The graph API of both libraries behind one namespace each, for side-by-side benchmarks."""

from __future__ import annotations

from types import SimpleNamespace


def graph_libs() -> dict[str, SimpleNamespace]:
    """``{"langgraph": ..., "relaygraph": ...}``: StateGraph, START, END, MessagesState, the
    in-memory saver and the message classes of each (imported on call)."""
    import langchain_core.messages as lc
    import langgraph.graph as lg
    from langgraph.checkpoint.memory import InMemorySaver

    import relaygraph as rg

    return {
        "langgraph": SimpleNamespace(
            StateGraph=lg.StateGraph,
            START=lg.START,
            END=lg.END,
            MessagesState=lg.MessagesState,
            Saver=InMemorySaver,
            AIMessage=lc.AIMessage,
            HumanMessage=lc.HumanMessage,
        ),
        "relaygraph": SimpleNamespace(
            StateGraph=rg.StateGraph,
            START=rg.START,
            END=rg.END,
            MessagesState=rg.MessagesState,
            Saver=rg.InMemorySaver,
            AIMessage=rg.AIMessage,
            HumanMessage=rg.HumanMessage,
        ),
    }
