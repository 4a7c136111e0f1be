"""The graph API of both libraries behind one namespace each, for side-by-side benchmarks."""

from __future__ import annotations

from types import SimpleNamespace


def graph_libs() -> dict[str, SimpleNamespace]:
    """``{"langgraph": ..., "relaygraph": ...}``: StateGraph, START, END, MessagesState, the
    in-memory saver, the message classes and the prebuilt ToolNode / tools_condition of
    each (imported on call)."""
    import langchain_core.messages as lc
    import langgraph.graph as lg
    import langgraph.prebuilt as lgp
    from langgraph.checkpoint.memory import InMemorySaver

    import relaygraph as rg
    import relaygraph.prebuilt as rgp

    return {
        "langgraph": SimpleNamespace(
            StateGraph=lg.StateGraph,
            START=lg.START,
            END=lg.END,
            MessagesState=lg.MessagesState,
            Saver=InMemorySaver,
            AIMessage=lc.AIMessage,
            HumanMessage=lc.HumanMessage,
            ToolNode=lgp.ToolNode,
            tools_condition=lgp.tools_condition,
        ),
        "relaygraph": SimpleNamespace(
            StateGraph=rg.StateGraph,
            START=rg.START,
            END=rg.END,
            MessagesState=rg.MessagesState,
            Saver=rg.InMemorySaver,
            AIMessage=rg.AIMessage,
            HumanMessage=rg.HumanMessage,
            ToolNode=rgp.ToolNode,
            tools_condition=rgp.tools_condition,
        ),
    }
