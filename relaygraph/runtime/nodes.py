"""Compiled nodes: how a node is called and how its result becomes channel writes.

A node's result turns into writes in three parts: its state update (through the schema),
its static edges (a write to each successor's trigger channel, or to a fan-in barrier),
and its conditional edges (evaluated on the state as the node's own update leaves it;
node names become trigger writes, ``Send`` packets go to the ``TASKS`` topic).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relaygraph.runtime.channels import BaseChannel
from relaygraph.runtime.constants import END, START, TASKS, branch_channel, join_channel
from relaygraph.runtime.errors import InvalidUpdateError
from relaygraph.runtime.graph import Branch, NodeSpec, StateGraph
from relaygraph.runtime.state import StateSchema
from relaygraph.runtime.types import Command, RetryPolicy, Send

__all__ = ["ASYNC_TWIN", "CompiledNode", "ParentCommand", "call_function", "compile_nodes"]

ASYNC_TWIN = "relaygraph_acall"
"""A sync node object may name its coroutine twin (same arguments) under this attribute:
async runs await the twin instead of running the object on a thread."""


class ParentCommand(Exception):
    """Raised by a subgraph's node that returned ``Command(graph=Command.PARENT)``."""

    def __init__(self, command: Command) -> None:
        super().__init__(command)
        self.command = command


@dataclass
class _Signature:
    takes_config: bool
    takes_store: bool
    is_async: bool
    takes_runtime: bool = False
    takes_writer: bool = False
    takes_extras: bool = field(init=False, default=False)
    """True when the call needs a ``runtime`` or ``writer`` argument built for it (a
    plain attribute: it is read on every node call)."""

    def __post_init__(self) -> None:
        self.takes_extras = self.takes_runtime or self.takes_writer


def _signature_of(func: Callable[..., Any]) -> _Signature:
    target = func
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects
    )
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return _Signature(False, False, is_async)
    # As LangGraph: extra arguments are passed by name only, to parameters that ask for them.
    return _Signature(
        "config" in params,
        "store" in params,
        is_async,
        takes_runtime="runtime" in params,
        takes_writer="writer" in params,
    )


def _add_extras(kwargs: dict[str, Any], signature: _Signature, config: dict, store: Any) -> None:
    """The ``runtime`` / ``writer`` arguments (built only for functions that take them)."""
    from relaygraph.runtime.context import get_stream_writer
    from relaygraph.runtime.runtime import runtime_for

    writer = get_stream_writer()
    if signature.takes_runtime:
        kwargs["runtime"] = runtime_for(config, store, writer)
    if signature.takes_writer:
        kwargs["writer"] = writer


def call_function(
    func: Callable[..., Any], signature: _Signature, arg: Any, config: dict, store: Any
) -> Any:
    """Call ``func(arg[, config][, store=store])``; runs a coroutine function to completion."""
    kwargs: dict[str, Any] = {}
    if signature.takes_store:
        kwargs["store"] = store
    if signature.takes_config:
        kwargs["config"] = config
    if signature.takes_extras:
        _add_extras(kwargs, signature, config, store)
    result = func(arg, **kwargs)
    if inspect.isawaitable(result):
        return _run_coroutine(result)
    return result


def _run_coroutine(awaitable: Any) -> Any:
    async def wrapper() -> Any:
        return await awaitable

    return asyncio.run(wrapper())


async def acall_function(
    func: Callable[..., Any], signature: _Signature, arg: Any, config: dict, store: Any
) -> Any:
    """Async :func:`call_function`: awaits coroutine functions, runs sync ones in a thread."""
    kwargs: dict[str, Any] = {}
    if signature.takes_store:
        kwargs["store"] = store
    if signature.takes_config:
        kwargs["config"] = config
    if signature.takes_extras:
        _add_extras(kwargs, signature, config, store)
    if signature.is_async:
        return await func(arg, **kwargs)
    twin = getattr(func, ASYNC_TWIN, None)
    if twin is not None:  # a sync node object with an async way to run (ToolNode)
        return await twin(arg, **kwargs)
    import contextvars

    ctx = contextvars.copy_context()
    result = await asyncio.to_thread(ctx.run, func, arg, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass
class CompiledNode:
    """A node ready to run: its action, triggers and outgoing edges."""

    name: str
    action: Any
    signature: _Signature
    triggers: tuple[str, ...]
    edges: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    branches: list[tuple[Branch, _Signature]] = field(default_factory=list)
    retry_policy: RetryPolicy | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    input_schema: StateSchema | None = None

    @property
    def is_subgraph(self) -> bool:
        return getattr(self.action, "_is_relaygraph_compiled", False)

    def static_writes(self) -> list[tuple[str, Any]]:
        """Writes that wake this node's static successors."""
        writes: list[tuple[str, Any]] = [(branch_channel(t), None) for t in self.edges]
        writes.extend((channel, self.name) for channel in self.joins)
        return writes


def branch_writes(
    node: CompiledNode,
    result: Any,
    branch: Branch,
    known_nodes: Sequence[str],
) -> list[tuple[str, Any]]:
    """The writes a conditional edge's ``result`` asks for."""
    items = result if isinstance(result, (list, tuple)) else [result]
    writes: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, Send):
            if item.node not in known_nodes:
                raise InvalidUpdateError(f"Send from {node.name!r} to unknown node {item.node!r}")
            writes.append((TASKS, item))
            continue
        target = _map_target(branch.path_map, item, node.name)
        if target == END:
            continue
        if target not in known_nodes:
            raise InvalidUpdateError(
                f"conditional edge from {node.name!r} returned {item!r}, which is not a node"
            )
        writes.append((branch_channel(target), None))
    return writes


def _map_target(path_map: dict[Hashable, str] | None, item: Any, source: str) -> str:
    if path_map is None:
        return item
    try:
        return path_map[item]
    except (KeyError, TypeError):
        raise InvalidUpdateError(
            f"conditional edge from {source!r} returned {item!r}, which its path map "
            f"{sorted(map(str, path_map))} does not name"
        ) from None


def goto_writes(command: Command, known_nodes: Sequence[str]) -> list[tuple[str, Any]]:
    """The writes of a ``Command(goto=...)``."""
    writes: list[tuple[str, Any]] = []
    for target in command.goto_targets():
        if isinstance(target, Send):
            if target.node not in known_nodes:
                raise InvalidUpdateError(f"Command(goto=Send) to unknown node {target.node!r}")
            writes.append((TASKS, target))
        elif target == END:
            continue
        elif target not in known_nodes:
            raise InvalidUpdateError(f"Command(goto={target!r}): no such node")
        else:
            writes.append((branch_channel(target), None))
    return writes


def compile_nodes(builder: StateGraph) -> tuple[dict[str, CompiledNode], dict[str, BaseChannel]]:
    """The compiled nodes (START included) and the extra trigger channels they need."""
    from relaygraph.runtime.channels import (
        DeferredBarrierValue,
        DeferredValue,
        EphemeralValue,
        NamedBarrierValue,
    )

    def start_action(state: Any) -> Any:
        return state

    specs: dict[str, NodeSpec] = {START: NodeSpec(name=START, action=start_action)}
    specs.update(builder.nodes)
    extra: dict[str, BaseChannel] = {START: EphemeralValue(START)}
    nodes: dict[str, CompiledNode] = {}
    for name, spec in specs.items():
        triggers = (START,) if name == START else (branch_channel(name),)
        if name != START:
            trigger = branch_channel(name)
            extra[trigger] = (
                DeferredValue(trigger) if spec.defer else EphemeralValue(trigger, guard=False)
            )
        nodes[name] = CompiledNode(
            name=name,
            action=spec.action,
            signature=_signature_of(spec.action)
            if not getattr(spec.action, "_is_relaygraph_compiled", False)
            else _Signature(True, False, False),
            triggers=triggers,
            retry_policy=spec.retry_policy,
            options=dict(spec.options),
            metadata=dict(spec.metadata),
            input_schema=StateSchema.of(spec.input_schema) if spec.input_schema else None,
        )
    for start, end in builder.edges:
        if end != END:
            nodes[start].edges.append(end)
    for starts, end in builder.waiting_edges:
        channel = join_channel(starts, end)
        barrier = DeferredBarrierValue if builder.nodes[end].defer else NamedBarrierValue
        extra[channel] = barrier(channel, frozenset(starts))
        nodes[end].triggers = (*nodes[end].triggers, channel)
        for start in starts:
            nodes[start].joins.append(channel)
    for source, branches in builder.branches.items():
        for branch in branches:
            nodes[source].branches.append((branch, _signature_of(branch.path)))
    return nodes, extra
