"""The two agent stacks under comparison, as namespaces with the same attribute names.

A scenario is written once against ``lib.StateGraph``, ``lib.ToolNode``, ... and run on
LangGraph (the oracle) and on relaygraph with the same scripted chat models.
"""

from __future__ import annotations

import importlib
import warnings
from types import SimpleNamespace
from typing import Any

from langchain_core.messages import BaseMessage

__all__ = ["LANGGRAPH", "RELAYGRAPH", "LIBS", "normalized", "observe"]

_LANGGRAPH_HOMES = {
    "StateGraph": "langgraph.graph",
    "START": "langgraph.graph",
    "END": "langgraph.graph",
    "MessagesState": "langgraph.graph",
    "add_messages": "langgraph.graph.message",
    "Command": "langgraph.types",
    "interrupt": "langgraph.types",
    "MemorySaver": "langgraph.checkpoint.memory",
    "InMemoryStore": "langgraph.store.memory",
    "ToolNode": "langgraph.prebuilt",
    "tools_condition": "langgraph.prebuilt",
    "create_react_agent": "langgraph.prebuilt",
    "InjectedState": "langgraph.prebuilt",
    "InjectedStore": "langgraph.prebuilt",
    "ToolRuntime": "langgraph.prebuilt",
    "AgentState": "langgraph.prebuilt.chat_agent_executor",
    "GraphRecursionError": "langgraph.errors",
}
_RELAYGRAPH_HOMES = {
    name: "relaygraph.prebuilt" if home.startswith("langgraph.prebuilt") else "relaygraph"
    for name, home in _LANGGRAPH_HOMES.items()
}


def _namespace(name: str, homes: dict[str, str], **run_kwargs: Any) -> SimpleNamespace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangGraph 1.x deprecates create_react_agent
        values = {key: getattr(importlib.import_module(home), key) for key, home in homes.items()}
    return SimpleNamespace(name=name, run_kwargs=run_kwargs, **values)


def _langgraph_node_config() -> dict[str, Any]:
    # LangGraph's ToolNode called outside a graph needs the runtime a graph would give it.
    from langgraph._internal._constants import CONFIG_KEY_RUNTIME
    from langgraph.runtime import DEFAULT_RUNTIME

    return {"configurable": {CONFIG_KEY_RUNTIME: DEFAULT_RUNTIME}}


LANGGRAPH = _namespace("langgraph", _LANGGRAPH_HOMES, durability="sync")
LANGGRAPH.node_config = _langgraph_node_config
RELAYGRAPH = _namespace("relaygraph", _RELAYGRAPH_HOMES)
RELAYGRAPH.node_config = dict
LIBS = (LANGGRAPH, RELAYGRAPH)


class _Ids:
    """Random message ids renamed in order of first appearance (id0, id1, ...)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self.names.setdefault(value, f"id{len(self.names)}")


def normalized(value: Any, ids: _Ids | None = None) -> Any:
    """``value`` with every message as a plain dict of all its fields, ids renamed."""
    ids = ids or _Ids()
    if isinstance(value, BaseMessage):
        data = value.model_dump()
        data["id"] = ids(data.get("id"))
        return {"__type__": type(value).__name__, **data}
    if isinstance(value, dict):
        return {k: normalized(v, ids) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalized(v, ids) for v in value]
    if hasattr(value, "model_dump"):
        return {"__type__": type(value).__name__, **value.model_dump()}
    return value


def observe(graph: Any, config: dict[str, Any], result: Any) -> dict[str, Any]:
    """What must be equal on both stacks: the result, ``next``, the values and the whole
    history (each checkpoint's step, source, next, task names and values). One id renaming
    runs over all of it, so a message keeps its id from checkpoint to checkpoint."""
    ids = _Ids()
    snapshot = graph.get_state(config)
    history = [
        (
            s.metadata.get("step"),
            s.metadata.get("source"),
            tuple(s.next),
            sorted(t.name for t in s.tasks),
            normalized(s.values, ids),
        )
        for s in graph.get_state_history(config)
    ]
    return {
        "result": normalized(result, ids),
        "next": tuple(snapshot.next),
        "values": normalized(snapshot.values, ids),
        "history": history,
        "interrupts": [i.value for i in snapshot.interrupts],
    }
