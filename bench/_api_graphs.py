"""The one-node graph bench/api.py runs (imported by the workers and the API server)."""

from __future__ import annotations

from typing import Any, TypedDict

from relaygraph import START, StateGraph


class Note(TypedDict):
    text: str


def _reply(state: Note) -> dict[str, Any]:
    return {"text": state["text"] + "!"}


one = StateGraph(Note).add_node("reply", _reply).add_edge(START, "reply").compile()
