"""A graph's drawing (nodes and edges) and its JSON schemas, for the assistants routes."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from relaygraph.runtime.constants import END, START

__all__ = ["graph_drawing", "graph_schemas"]


def graph_drawing(graph: Any) -> dict[str, Any]:
    """``{"nodes": [{"id", "type", "data"}], "edges": [{"source", "target", "conditional"}]}``."""
    builder = graph.builder
    nodes = [{"id": START, "type": "schema", "data": START}]
    nodes += [{"id": name, "type": "runnable", "data": name} for name in builder.nodes]
    edges = [{"source": a, "target": b, "conditional": False} for a, b in builder.edges]
    for starts, end in builder.waiting_edges:
        edges += [{"source": a, "target": end, "conditional": False} for a in starts]
    for source, branches in builder.branches.items():
        for branch in branches:
            targets = (branch.path_map or {}).values() or [n for n in builder.nodes] + [END]
            edges += [{"source": source, "target": str(t), "conditional": True} for t in targets]
    if any(edge["target"] == END for edge in edges) or not edges:
        nodes.append({"id": END, "type": "schema", "data": END})
    return {"nodes": nodes, "edges": edges}


def _schema(state: Any) -> dict[str, Any] | None:
    if state is None or state.cls in (None, dict):
        return None
    try:
        return TypeAdapter(state.cls).json_schema()
    except Exception:  # a type pydantic cannot describe: list its keys at least
        return {
            "title": getattr(state.cls, "__name__", "State"),
            "type": "object",
            "properties": {key: {} for key in state.keys},
        }


def graph_schemas(graph: Any) -> dict[str, Any]:
    """The SDK's ``GraphSchema`` fields (``graph_id`` aside)."""
    builder = graph.builder
    context = builder.context_schema
    context_schema = None
    if context is not None:
        try:
            context_schema = TypeAdapter(context).json_schema()
        except Exception:
            context_schema = None
    return {
        "input_schema": _schema(builder.input_schema),
        "output_schema": _schema(builder.output_schema),
        "state_schema": _schema(builder.schema),
        "config_schema": None,
        "context_schema": context_schema,
    }
