"""Graphs of bench/capacity.py (imported by its worker processes).

``chatloop``: an agent's conversation, a model node and a tool node taking turns, each
appending one message of a realistic size, until the model has answered ``turns`` times;
what a thread weighs at rest after N steps is measured on it. ``short3``: three trivial
nodes (the 10,000-thread spread).
"""

from __future__ import annotations

from typing import Any

from relaygraph import END, START, AIMessage, MessagesState, StateGraph, ToolMessage

ANSWER = "A model's answer of about a paragraph, " * 8  # ~300 characters
RESULT = "A tool's result: " + "0123456789" * 20  # ~220 characters


class Chat(MessagesState):
    turns: int


def _model(state: Chat) -> dict[str, Any]:
    n = len(state["messages"])
    return {"messages": [AIMessage(content=f"{n}: {ANSWER}", id=f"ai-{n}")]}


def _tool(state: Chat) -> dict[str, Any]:
    n = len(state["messages"])
    return {"messages": [ToolMessage(content=RESULT, tool_call_id=f"call-{n}", id=f"tool-{n}")]}


def _route(state: Chat) -> str:
    answers = sum(1 for m in state["messages"] if isinstance(m, AIMessage))
    return END if answers >= state["turns"] else "tool"


def _chat_loop() -> Any:
    builder = StateGraph(Chat).add_node("model", _model).add_node("tool", _tool)
    builder.add_edge(START, "model").add_edge("tool", "model")
    builder.add_conditional_edges("model", _route)
    return builder.compile()


chatloop = _chat_loop()
GRAPHS = "chatloop=bench._capacity_graphs:chatloop"
