"""A compiled graph's shape as a ``langchain_core`` drawable graph (``get_graph()``).

The drawing is read off what the builder recorded, as LangGraph draws it: plain and fan-in
edges are solid; a conditional edge goes to every target its ``path_map`` names or, without
one, to the ``Literal[...]`` its path function's return annotation lists; a node returning
``Command`` goes (dashed) to its ``destinations=`` or to the ``Command[Literal[...]]`` of
its return annotation. A node with no way out at all ends the graph (LangGraph's implicit
edge to ``END``). Only what START leads to is drawn. ``xray`` draws compiled subgraphs'
own nodes as ``parent:child``. Unlike LangGraph's, the drawing draws no edges into a
deferred node from the branches it waits for: only declared edges.

>>> from typing import TypedDict
>>> from relaygraph import END, START, StateGraph
>>> class State(TypedDict):
...     n: int
>>> builder = StateGraph(State)
>>> _ = builder.add_node("double", lambda s: {"n": s["n"] * 2})
>>> _ = builder.add_edge(START, "double")
>>> drawn = builder.compile().get_graph()
>>> [(edge.source, edge.target) for edge in drawn.edges]
[('__start__', 'double'), ('double', '__end__')]
>>> print(drawn.draw_mermaid())  # doctest: +ELLIPSIS
---
...
	__start__ --> double;
	double --> __end__;
...
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from langchain_core.runnables.graph import Graph

from relaygraph.runtime.constants import END, START

if TYPE_CHECKING:
    from relaygraph.runtime.pregel import CompiledStateGraph

__all__ = ["draw"]

# (source, target, label, conditional)
EdgeSpec = tuple[str, str, "str | None", bool]


def draw(graph: CompiledStateGraph, xray: int | bool = False) -> Graph:
    """The nodes and edges of ``graph``; ``xray`` expands subgraphs that many levels deep
    (``True``: every level)."""
    builder = graph.builder
    edges = _reachable(_edges(builder))
    sources = {source for source, *_ in edges}
    reached = {target for _, target, *_ in edges}
    for name in builder.nodes:
        if name in reached and name not in sources:
            edges.append((name, END, None, False))
    drawn = Graph()
    drawn.add_node(None, START)
    for name, spec in builder.nodes.items():
        drawn.add_node(spec.action, name, metadata=_node_metadata(graph, name) or None)
    if any(target == END for _, target, *_ in edges):
        drawn.add_node(None, END)
    for source, target, label, conditional in _ordered(edges):
        if target in drawn.nodes:  # a hint may name no node: nothing to draw it to
            drawn.add_edge(drawn.nodes[source], drawn.nodes[target], label, conditional)
    depth = _depth(xray)
    if depth:
        for name, spec in builder.nodes.items():
            if spec.is_subgraph:
                _inline(drawn, name, draw(spec.action, xray=True if xray is True else depth - 1))
    return drawn


def _inline(drawn: Graph, name: str, inner: Graph) -> None:
    """Replace node ``name`` by the subgraph ``inner``'s nodes, ``name:``-prefixed; the
    subgraph's START and END go where the subgraph has one entry and one exit node."""
    if len(inner.nodes) < 2 or not inner.first_node() or not inner.last_node():
        return
    inner.trim_first_node()
    inner.trim_last_node()
    drawn.nodes.pop(name)
    first, last = drawn.extend(inner, prefix=name)
    for index, edge in enumerate(drawn.edges):
        if edge.source == name and last is not None:
            edge = edge.copy(source=last.id)
        if edge.target == name and first is not None:
            edge = edge.copy(target=first.id)
        drawn.edges[index] = edge


def _node_metadata(graph: CompiledStateGraph, name: str) -> dict[str, Any]:
    """A node's metadata, with what LangGraph's drawing adds: deferral, breakpoints, the
    tools of a ``ToolNode``."""
    spec = graph.builder.nodes[name]
    metadata = dict(spec.metadata or {})
    if spec.defer:
        metadata["defer"] = True
    before = _named(graph.interrupt_before, name)
    after = _named(graph.interrupt_after, name)
    if before or after:
        metadata["__interrupt"] = ",".join(
            when for when, on in (("before", before), ("after", after)) if on
        )
    tools = getattr(spec.action, "tools_by_name", None)
    if isinstance(tools, dict) and tools:
        metadata["__tools"] = list(tools)
    return metadata


def _named(names: Any, node: str) -> bool:
    if isinstance(names, (list, tuple, set)):
        return node in names
    return names in ("*", node)


def _depth(xray: int | bool) -> int:
    """How many levels of subgraphs to expand (``True``: a depth no graph reaches)."""
    if isinstance(xray, bool):
        return 1 << 30 if xray else 0
    if not isinstance(xray, int) or xray < 0:
        raise ValueError(f"get_graph(xray=...) takes a bool or a depth of at least 0, got {xray!r}")
    return xray


def _edges(builder: Any) -> list[EdgeSpec]:
    edges: list[EdgeSpec] = [(start, end, None, False) for start, end in builder.edges]
    for starts, end in builder.waiting_edges:
        edges += [(start, end, None, False) for start in starts]
    for source, branches in builder.branches.items():
        for branch in branches:
            for label, target in _branch_targets(branch.path, branch.path_map):
                edges.append((source, target, label, True))
    for name, spec in builder.nodes.items():
        targets = spec.destinations or {t: t for t in _command_targets(spec.action)}
        for target, label in targets.items():
            edges.append((name, target, None if label == target else label, True))
    return list(dict.fromkeys(edges))


def _reachable(edges: list[EdgeSpec]) -> list[EdgeSpec]:
    """The edges out of nodes START leads to (LangGraph draws no others)."""
    reached, frontier = {START}, [START]
    while frontier:
        node = frontier.pop()
        for source, target, *_ in edges:
            if source == node and target not in reached:
                reached.add(target)
                frontier.append(target)
    return [edge for edge in edges if edge[0] in reached]


def _branch_targets(path: Callable[..., Any], path_map: dict[Any, str] | None) -> list[tuple]:
    """(label, target) pairs a conditional edge may take, as far as they are declared."""
    if path_map:
        return [
            (None if str(key) == target else str(key), target) for key, target in path_map.items()
        ]
    return [(None, target) for target in _literal_names(_return_hint(path))]


def _command_targets(action: Any) -> list[str]:
    """The nodes a ``-> Command[Literal[...]]`` annotated node may go to."""
    from relaygraph.runtime.types import Command

    hint = _return_hint(action)
    if get_origin(hint) is not Command:
        return []
    args = get_args(hint)
    return _literal_names(args[0]) if args else []


def _return_hint(func: Any) -> Any:
    target = getattr(func, "func", func)  # functools.partial and friends
    try:
        return typing.get_type_hints(target).get("return")
    except Exception:  # unresolvable annotations only mean "nothing declared"
        return getattr(target, "__annotations__", {}).get("return")


def _literal_names(hint: Any) -> list[str]:
    if get_origin(hint) is Literal:
        return [str(value) for value in get_args(hint)]
    if get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [name for arg in get_args(hint) for name in _literal_names(arg)]
    return []


def _ordered(edges: list[EdgeSpec]) -> list[EdgeSpec]:
    """Edges by source, then target name (LangGraph's order)."""
    return sorted(edges, key=lambda edge: (edge[0], edge[1]))
