"""LangGraph's prebuilt agent parts (``langgraph.prebuilt``) on relaygraph.

``ToolNode`` runs a model's tool calls, ``tools_condition`` routes to it, and
``create_react_agent`` builds the whole model/tool loop::

    from relaygraph.prebuilt import ToolNode, create_react_agent, tools_condition
"""

from __future__ import annotations

from relaygraph.prebuilt.injection import (
    InjectedState,
    InjectedStore,
    InjectedToolCallId,
    ToolRuntime,
)
from relaygraph.prebuilt.react_agent import (
    AgentState,
    AgentStateWithStructuredResponse,
    create_react_agent,
)
from relaygraph.prebuilt.tool_node import ToolNode, tools_condition

__all__ = [
    "AgentState",
    "AgentStateWithStructuredResponse",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "ToolNode",
    "ToolRuntime",
    "create_react_agent",
    "tools_condition",
]
