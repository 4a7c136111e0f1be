"""The two libraries under comparison, as namespaces with the same attribute names.

A catalogue case is written once against ``lib.StateGraph``, ``lib.Send``, ... and built
twice: once with :data:`LANGGRAPH` (the oracle) and once with :func:`relaygraph_lib`.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

__all__ = ["LANGGRAPH", "NAMES", "relaygraph_lib", "relaygraph_missing"]

#: Every name a catalogue case may use, and where LangGraph keeps it.
_LANGGRAPH_HOMES: dict[str, str] = {
    "StateGraph": "langgraph.graph",
    "START": "langgraph.graph",
    "END": "langgraph.graph",
    "MessagesState": "langgraph.graph",
    "add_messages": "langgraph.graph.message",
    "REMOVE_ALL_MESSAGES": "langgraph.graph.message",
    "Send": "langgraph.types",
    "Overwrite": "langgraph.types",
    "Command": "langgraph.types",
    "interrupt": "langgraph.types",
    "RetryPolicy": "langgraph.types",
    "StateUpdate": "langgraph.types",
    "get_stream_writer": "langgraph.config",
    "Runtime": "langgraph.runtime",
    "get_runtime": "langgraph.runtime",
    "MemorySaver": "langgraph.checkpoint.memory",
    "InMemorySaver": "langgraph.checkpoint.memory",
    "InMemoryStore": "langgraph.store.memory",
    "HumanMessage": "langchain_core.messages",
    "AIMessage": "langchain_core.messages",
    "SystemMessage": "langchain_core.messages",
    "ToolMessage": "langchain_core.messages",
    "RemoveMessage": "langchain_core.messages",
    "GraphRecursionError": "langgraph.errors",
    "InvalidUpdateError": "langgraph.errors",
}

NAMES: tuple[str, ...] = tuple(_LANGGRAPH_HOMES)


def _namespace(name: str, homes: dict[str, str], **run_kwargs: object) -> SimpleNamespace:
    values = {key: getattr(importlib.import_module(home), key) for key, home in homes.items()}
    return SimpleNamespace(name=name, run_kwargs=run_kwargs, **values)


# LangGraph saves checkpoints in the background by default ("async" durability) and has been
# seen to store a channel value from a later step (a fan-in barrier already holding a node
# that had not run): the oracle runs with every checkpoint written before the next step.
LANGGRAPH = _namespace("langgraph", _LANGGRAPH_HOMES, durability="sync")

_relaygraph: SimpleNamespace | None = None
_relaygraph_error: str | None = None


def relaygraph_lib() -> SimpleNamespace:
    """relaygraph's namespace: every name of :data:`NAMES` imported from ``relaygraph``."""
    global _relaygraph, _relaygraph_error
    if _relaygraph is None:
        try:
            _relaygraph = _namespace("relaygraph", dict.fromkeys(NAMES, "relaygraph"))
            del _relaygraph.run_kwargs  # set below: relaygraph always commits a step first
        except (ImportError, AttributeError) as exc:
            _relaygraph_error = f"{type(exc).__name__}: {exc}"
            raise
        _relaygraph.run_kwargs = {}
    return _relaygraph


def relaygraph_missing() -> str | None:
    """Why relaygraph's namespace cannot be built yet (None when it can)."""
    try:
        relaygraph_lib()
    except (ImportError, AttributeError):
        return _relaygraph_error
    return None
