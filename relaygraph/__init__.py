"""relaygraph: stateful agent graphs that never lose their memory.

Everything LangGraph's persistence lesson imports is available here, so code written for
LangGraph runs after changing only its imports::

    from relaygraph import StateGraph, START, END, MessagesState, MemorySaver

Names are imported lazily from their home modules (listed in ``_HOMES``), so importing
one part of relaygraph never pulls in the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES: dict[str, str] = {
    # graph API
    "StateGraph": "relaygraph.runtime.graph",
    "CompiledStateGraph": "relaygraph.runtime.pregel",
    "START": "relaygraph.runtime.constants",
    "END": "relaygraph.runtime.constants",
    "Send": "relaygraph.runtime.types",
    "Overwrite": "relaygraph.runtime.types",
    "Command": "relaygraph.runtime.types",
    "Interrupt": "relaygraph.runtime.types",
    "RetryPolicy": "relaygraph.runtime.types",
    "StateSnapshot": "relaygraph.runtime.types",
    "StateUpdate": "relaygraph.runtime.types",
    "interrupt": "relaygraph.runtime.context",
    "get_stream_writer": "relaygraph.runtime.context",
    "get_config": "relaygraph.runtime.context",
    "get_store": "relaygraph.runtime.context",
    "get_task_id": "relaygraph.runtime.context",
    "Runtime": "relaygraph.runtime.runtime",
    "get_runtime": "relaygraph.runtime.runtime",
    # messages
    "MessagesState": "relaygraph.runtime.messages",
    "add_messages": "relaygraph.runtime.messages",
    "AnyMessage": "relaygraph.runtime.messages",
    "BaseMessage": "relaygraph.runtime.messages",
    "HumanMessage": "relaygraph.runtime.messages",
    "AIMessage": "relaygraph.runtime.messages",
    "SystemMessage": "relaygraph.runtime.messages",
    "ToolMessage": "relaygraph.runtime.messages",
    "RemoveMessage": "relaygraph.runtime.messages",
    "REMOVE_ALL_MESSAGES": "relaygraph.runtime.messages",
    "convert_to_messages": "relaygraph.runtime.messages",
    # persistence
    "InMemorySaver": "relaygraph.persistence.memory",
    "MemorySaver": "relaygraph.persistence.memory",
    "InMemoryStore": "relaygraph.persistence.store.memory",
    "BaseStore": "relaygraph.persistence.store.base",
    "Item": "relaygraph.persistence.store.base",
    "SearchItem": "relaygraph.persistence.store.base",
    "register_type": "relaygraph.persistence.serde",
    "RedisSaver": "relaygraph.persistence.redis",
    "AsyncRedisSaver": "relaygraph.persistence.redis",
    "RedisStore": "relaygraph.persistence.store.redis",
    "AsyncRedisStore": "relaygraph.persistence.store.redis",
    "SqliteSaver": "relaygraph.persistence.sqlite",
    "AsyncSqliteSaver": "relaygraph.persistence.sqlite",
    "PostgresSaver": "relaygraph.persistence.postgres",
    "AsyncPostgresSaver": "relaygraph.persistence.postgres",
    "LangGraphCheckpointer": "relaygraph.persistence.langgraph",
    # errors
    "RelaygraphError": "relaygraph.persistence.errors",
    "MissingThreadIdError": "relaygraph.persistence.errors",
    "CheckpointConflict": "relaygraph.persistence.errors",
    "CheckpointExistsError": "relaygraph.persistence.errors",
    "CheckpointNotFoundError": "relaygraph.persistence.errors",
    "SerializationError": "relaygraph.persistence.errors",
    "CorruptCheckpointError": "relaygraph.persistence.errors",
    "GraphRecursionError": "relaygraph.runtime.errors",
    "InvalidUpdateError": "relaygraph.runtime.errors",
    "EmptyInputError": "relaygraph.runtime.errors",
    "InvalidResumeError": "relaygraph.runtime.errors",
    "GraphInterrupt": "relaygraph.runtime.errors",
}

__all__ = sorted(_HOMES)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'relaygraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
