"""``StateGraph``: the builder of a graph of nodes that read and update a shared state."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relaygraph.runtime.constants import END, RESERVED_NAMES, START
from relaygraph.runtime.state import StateSchema
from relaygraph.runtime.types import RetryPolicy

__all__ = ["Branch", "NodeSpec", "StateGraph"]


@dataclass
class Branch:
    """A conditional edge: ``path(state)`` names where to go, optionally via ``path_map``."""

    path: Callable[..., Any]
    path_map: dict[Hashable, str] | None = None

    @property
    def accepts_config(self) -> bool:
        return _accepts(self.path, "config")


@dataclass
class NodeSpec:
    """A node as the builder recorded it."""

    name: str
    action: Callable[..., Any] | Any
    retry_policy: RetryPolicy | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """Executor options: ``queue``, ``time_limit``, ``soft_time_limit`` (distributed runs)."""
    input_schema: Any = None
    destinations: dict[str, str] = field(default_factory=dict)
    """``add_node(destinations=...)``: target node -> edge label (the target itself: no
    label); ``get_graph()`` draws them."""
    defer: bool = False
    """``add_node(defer=True)``: run only when the run has nothing else left to do."""

    @property
    def is_subgraph(self) -> bool:
        return hasattr(self.action, "_is_relaygraph_compiled")


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# LangGraph 1.x arguments relaygraph does not implement: each is refused by name.
_UNSUPPORTED_NODE_ARGS = {
    "error_handler": "node error handlers",
    "timeout": "node timeouts (on workers use time_limit / soft_time_limit)",
    "trace_policy": "trace policies",
}


def _refuse_unsupported(node: Any, cache_policy: Any, unsupported: dict[str, Any]) -> None:
    """Raise for an ``add_node`` argument relaygraph would otherwise have to ignore."""
    name = node if isinstance(node, str) else getattr(node, "__name__", repr(node))
    if cache_policy is not None:
        raise NotImplementedError(
            f"add_node({name!r}, cache_policy=...): node caching is not supported by "
            "relaygraph (docs/deviations.md)"
        )
    for key, value in unsupported.items():
        if key in _UNSUPPORTED_NODE_ARGS:
            if value is None:
                continue
            raise NotImplementedError(
                f"add_node({name!r}, {key}=...): {_UNSUPPORTED_NODE_ARGS[key]} are not "
                "supported by relaygraph (docs/deviations.md)"
            )
        raise TypeError(f"add_node() got an unexpected keyword argument {key!r}")


def _destinations(destinations: dict[str, str] | tuple[str, ...] | None) -> dict[str, str]:
    if destinations is None:
        return {}
    if isinstance(destinations, dict):
        return dict(destinations)
    if isinstance(destinations, (list, tuple)):
        return {target: target for target in destinations}  # no label (as LangGraph draws it)
    raise TypeError(f"add_node(destinations=...) must be a dict or a tuple, got {destinations!r}")


def _hinted_input_schema(action: Any, state_cls: Any) -> Any:
    """The state class a node function's first parameter is annotated with, when it is
    another schema than the graph's (LangGraph's private-channel pattern), else None."""
    if not (inspect.isfunction(action) or inspect.ismethod(action)):
        return None
    try:
        params = list(inspect.signature(action).parameters.values())
        hints = typing.get_type_hints(action)
    except Exception:  # an unresolvable annotation only means "no hint"
        return None
    if not params:
        return None
    hint = hints.get(params[0].name)
    if not isinstance(hint, type) or hint is state_cls or hint is dict:
        return None
    try:
        schema = StateSchema.of(hint)
    except TypeError:
        return None
    return hint if schema.annotations else None


class StateGraph:
    """A graph whose nodes communicate by reading and writing a shared state.

    >>> from typing import TypedDict
    >>> class State(TypedDict):
    ...     n: int
    >>> builder = StateGraph(State)
    >>> builder.add_node("double", lambda s: {"n": s["n"] * 2})  # doctest: +ELLIPSIS
    <relaygraph.runtime.graph.StateGraph object at ...>
    >>> builder.add_edge(START, "double")  # doctest: +ELLIPSIS
    <...>
    >>> builder.compile().invoke({"n": 21})
    {'n': 42}
    """

    def __init__(
        self,
        state_schema: Any = None,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        **legacy: Any,
    ) -> None:
        if state_schema is None:
            state_schema = legacy.pop("input", None) or input_schema
        input_schema = input_schema or legacy.pop("input", None)
        output_schema = output_schema or legacy.pop("output", None)
        if legacy:
            raise TypeError(f"StateGraph() got unexpected arguments: {sorted(legacy)}")
        if state_schema is None:
            raise TypeError(
                "StateGraph() needs a state schema (a TypedDict, dataclass or pydantic model)"
            )
        self.schema = StateSchema.of(state_schema)
        self.input_schema = StateSchema.of(input_schema) if input_schema else self.schema
        self.output_schema = StateSchema.of(output_schema) if output_schema else self.schema
        self.context_schema = context_schema
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.waiting_edges: list[tuple[tuple[str, ...], str]] = []
        self.branches: dict[str, list[Branch]] = {}
        self.compiled = False

    # -- nodes -----------------------------------------------------------------------

    def add_node(
        self,
        node: str | Callable[..., Any],
        action: Callable[..., Any] | Any = None,
        *,
        retry_policy: RetryPolicy | None = None,
        retry: RetryPolicy | None = None,
        metadata: dict[str, Any] | None = None,
        input_schema: Any = None,
        queue: str | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        destinations: dict[str, str] | tuple[str, ...] | None = None,
        defer: bool = False,
        cache_policy: Any = None,
        **unsupported: Any,
    ) -> StateGraph:
        """Add a node: a function of the state (sync or async) returning an update.

        The function may also take ``config``, ``runtime`` (a :class:`Runtime`), ``writer``
        and, keyword-only, ``store``. ``retry`` (or ``retry_policy``) retries it on
        failure; ``queue`` and the time limits apply when the graph runs on Celery workers.
        ``destinations`` names where a node returning ``Command(goto=...)`` may go (kept
        for introspection; like LangGraph, it changes nothing at run time).
        ``defer=True`` runs the node only when the run has nothing else left to do (its
        edges' writes wait until then), as in LangGraph 1.x. ``cache_policy`` (node
        caching) is not supported: ``NotImplementedError`` rather than being ignored, and
        an argument relaygraph does not know is a ``TypeError``.
        """
        _refuse_unsupported(node, cache_policy, unsupported)
        if isinstance(retry or retry_policy, (list, tuple)):
            policies = list(retry or retry_policy)  # type: ignore[arg-type]
            if len(policies) != 1:
                raise NotImplementedError(
                    "add_node(retry_policy=[...]) with several policies is not supported by "
                    "relaygraph: pass one RetryPolicy (its retry_on can test several errors)"
                )
            retry, retry_policy = policies[0], None
        if action is None:
            if isinstance(node, str):
                raise TypeError(f"add_node({node!r}) needs an action: add_node(name, function)")
            action = node
            name = getattr(node, "name", None) or getattr(node, "__name__", None)
            if not isinstance(name, str):
                raise TypeError(f"cannot infer a node name from {node!r}: pass add_node(name, fn)")
        else:
            if not isinstance(node, str):
                raise TypeError(f"a node name must be a string, got {node!r}")
            name = node
        self._check_name(name)
        if not callable(action) and not hasattr(action, "_is_relaygraph_compiled"):
            raise TypeError(f"node {name!r}: action {action!r} is not callable")
        options = {
            k: v
            for k, v in (
                ("queue", queue),
                ("time_limit", time_limit),
                ("soft_time_limit", soft_time_limit),
            )
            if v is not None
        }
        if input_schema is None:
            input_schema = _hinted_input_schema(action, self.schema.cls)
        self.nodes[name] = NodeSpec(
            name=name,
            action=action,
            retry_policy=retry or retry_policy,
            metadata=dict(metadata or {}),
            options=options,
            input_schema=input_schema,
            destinations=_destinations(destinations),
            defer=bool(defer),
        )
        return self

    def _check_name(self, name: str) -> None:
        if name in self.nodes:
            raise ValueError(f"node {name!r} is already present")
        if name in RESERVED_NAMES:
            raise ValueError(f"node name {name!r} is reserved")
        for char in ("|", ":"):
            if char in name:
                raise ValueError(f"node name {name!r} must not contain {char!r}")

    def add_sequence(
        self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]
    ) -> StateGraph:
        """Add nodes chained by edges in the given order."""
        if not nodes:
            raise ValueError("add_sequence() needs at least one node")
        previous: str | None = None
        for item in nodes:
            if isinstance(item, tuple):
                name, action = item
                self.add_node(name, action)
            else:
                self.add_node(item)
                name = getattr(item, "name", None) or item.__name__
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    # -- edges -----------------------------------------------------------------------

    def add_edge(self, start_key: str | Sequence[str], end_key: str) -> StateGraph:
        """Run ``end_key`` after ``start_key``; a list of starts waits for all of them."""
        if isinstance(start_key, str):
            if start_key == END:
                raise ValueError("END cannot be the start of an edge")
            if end_key == START:
                raise ValueError("START cannot be the end of an edge")
            self.edges.append((start_key, end_key))
            return self
        starts = tuple(start_key)
        if not starts:
            raise ValueError("add_edge() with a list needs at least one start node")
        if END in starts:
            raise ValueError("END cannot be the start of an edge")
        if end_key in (START, END):
            raise ValueError(f"a fan-in edge cannot end at {end_key!r}")
        self.waiting_edges.append((starts, end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | list[str] | None = None,
    ) -> StateGraph:
        """After ``source``, go where ``path(state)`` says: a node name, a list, or ``Send``s."""
        if isinstance(path_map, list):
            path_map = {name: name for name in path_map}
        self.branches.setdefault(source, []).append(Branch(path, path_map))
        return self

    def set_entry_point(self, key: str) -> StateGraph:
        """Same as ``add_edge(START, key)``."""
        return self.add_edge(START, key)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: dict[Hashable, str] | list[str] | None = None
    ) -> StateGraph:
        """Same as ``add_conditional_edges(START, path, path_map)``."""
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph:
        """Same as ``add_edge(key, END)``."""
        return self.add_edge(key, END)

    # -- compile ---------------------------------------------------------------------

    def validate(self) -> None:
        """Check that every edge names existing nodes and that the graph has an entry."""
        known = set(self.nodes)
        for start, end in self.edges:
            if start != START and start not in known:
                raise ValueError(f"edge starts at unknown node {start!r}")
            if end != END and end not in known:
                raise ValueError(f"edge ends at unknown node {end!r}")
        for starts, end in self.waiting_edges:
            for start in starts:
                if start != START and start not in known:
                    raise ValueError(f"edge starts at unknown node {start!r}")
            if end not in known:
                raise ValueError(f"edge ends at unknown node {end!r}")
        for source, branches in self.branches.items():
            if source != START and source not in known:
                raise ValueError(f"conditional edge starts at unknown node {source!r}")
            for branch in branches:
                for target in (branch.path_map or {}).values():
                    if target != END and target not in known:
                        raise ValueError(
                            f"conditional edge from {source!r} maps to unknown node {target!r}"
                        )
        has_entry = (
            any(start == START for start, _ in self.edges)
            or START in self.branches
            or any(START in starts for starts, _ in self.waiting_edges)
        )
        if not has_entry:
            raise ValueError(
                "Graph must have an entrypoint: add at least one edge from START to another node"
            )

    def compile(
        self,
        checkpointer: Any = None,
        *,
        store: Any = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        debug: bool = False,
        name: str | None = None,
        cache: Any = None,
    ) -> Any:
        """Validate the graph and return a runnable :class:`CompiledStateGraph`.

        ``checkpointer`` saves the state after every superstep (per ``thread_id``);
        ``checkpointer=True`` on a subgraph gives it a thread of its own that lasts across
        its parent's runs. ``store`` is handed to nodes that take a ``store`` argument.
        ``cache`` (LangGraph's node cache) and ``debug=True`` (console printing) are not
        supported: ``NotImplementedError``.
        """
        from relaygraph.runtime.pregel import CompiledStateGraph

        if cache is not None:
            raise NotImplementedError(
                "compile(cache=...): node caching is not supported by relaygraph "
                "(docs/deviations.md)"
            )
        if debug:
            raise NotImplementedError(
                "compile(debug=True): console printing is not supported by relaygraph; "
                "use stream_mode='debug' (docs/deviations.md)"
            )

        self.validate()
        for names in (interrupt_before, interrupt_after):
            if names and names != "*":
                for node in [names] if isinstance(names, str) else names:
                    if node not in self.nodes:
                        raise ValueError(f"interrupt node {node!r} is not in the graph")
        self.compiled = True
        return CompiledStateGraph(
            self,
            checkpointer=checkpointer,
            store=store,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            debug=debug,
            name=name or "LangGraph",
        )
