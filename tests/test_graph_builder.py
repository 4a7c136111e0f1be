"""Builder-time validation of StateGraph: mistakes are reported when the graph is built."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from relaygraph.runtime.constants import END, START
from relaygraph.runtime.graph import StateGraph


class State(TypedDict):
    items: Annotated[list[str], operator.add]
    name: str


def noop(state: State) -> dict:
    return {}


def test_duplicate_node_is_rejected() -> None:
    builder = StateGraph(State).add_node("a", noop)
    with pytest.raises(ValueError, match="'a' is already present"):
        builder.add_node("a", noop)


@pytest.mark.parametrize("name", [START, END, "__pregel_tasks"])
def test_reserved_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        StateGraph(State).add_node(name, noop)


def test_edge_to_unknown_node_is_reported_at_compile() -> None:
    builder = StateGraph(State).add_node("a", noop)
    builder.add_edge(START, "a").add_edge("a", "missing")
    with pytest.raises(ValueError, match="unknown node 'missing'"):
        builder.validate()


def test_graph_without_entry_point_is_reported() -> None:
    builder = StateGraph(State).add_node("a", noop)
    with pytest.raises(ValueError, match="entrypoint"):
        builder.validate()


def test_non_schema_state_is_rejected() -> None:
    with pytest.raises(TypeError, match="state schema"):
        StateGraph(42)
