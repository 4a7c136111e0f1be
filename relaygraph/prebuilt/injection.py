"""Tool arguments the graph fills in: ``InjectedState``, ``InjectedStore``, ``ToolRuntime``.

A tool parameter annotated with one of these is hidden from the model's tool schema
(langchain_core leaves ``InjectedToolArg`` subclasses out) and filled by :class:`ToolNode`
right before the call. ``InjectedToolCallId`` is langchain_core's own: the tool fills it
from the tool call it is invoked with.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from langchain_core.tools import BaseTool, InjectedToolArg, InjectedToolCallId
from langchain_core.tools.base import (
    _DirectlyInjectedToolArg,
    _is_injected_arg_type,
    get_all_basemodel_annotations,
)

__all__ = [
    "InjectedArgs",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "ToolRuntime",
    "injected_args_of",
]

StateT = TypeVar("StateT")
ContextT = TypeVar("ContextT")


class InjectedState(InjectedToolArg):
    """Marks a tool argument that receives the graph state (or one key of it).

    ``Annotated[dict, InjectedState]`` receives the whole state;
    ``Annotated[list, InjectedState("messages")]`` receives ``state["messages"]``.
    The model never sees the argument.
    """

    def __init__(self, field: str | None = None) -> None:
        self.field = field


class InjectedStore(InjectedToolArg):
    """Marks a tool argument that receives the store the graph was compiled with."""


@dataclass
class ToolRuntime(_DirectlyInjectedToolArg, Generic[ContextT, StateT]):
    """What a tool parameter annotated ``ToolRuntime`` (or named ``runtime``) receives."""

    state: Any
    context: Any
    config: dict[str, Any]
    stream_writer: Callable[[Any], None]
    tool_call_id: str | None
    store: Any
    tools: list[BaseTool] = field(default_factory=list)


@dataclass
class InjectedArgs:
    """Which parameters of one tool the graph fills in, found once per tool.

    ``state`` maps a parameter to the state key it receives (None: the whole state).
    """

    state: dict[str, str | None]
    store: str | None
    runtime: str | None
    all_injected: set[str]
    optional_state: set[str]

    def __bool__(self) -> bool:
        return bool(self.state or self.store or self.runtime or self.all_injected)


def _marker(annotation: Any, kind: type) -> Any:
    """The ``kind`` marker in ``annotation`` (an instance, or True for the bare class)."""
    if isinstance(annotation, kind):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, kind):
        return True
    origin = get_origin(annotation)
    if origin is typing.Annotated or origin is Union:
        found = [m for m in (_marker(a, kind) for a in get_args(annotation)) if m is not None]
        if len(found) > 1:
            raise ValueError(
                f"a tool argument may be annotated with {kind.__name__} only once, got {found}"
            )
        return found[0] if found else None
    if isinstance(origin, type) and issubclass(origin, kind):
        return True
    return None


def injected_args_of(tool: BaseTool) -> InjectedArgs:
    """Read ``tool``'s signature and schema for the arguments the graph must fill."""
    schema = tool.get_input_schema()
    annotations: dict[str, Any] = {}
    func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    if func is not None:
        # Unresolvable hints: the schema alone tells what to inject.
        with contextlib.suppress(Exception):
            annotations.update(get_type_hints(func, include_extras=True))
    annotations.update(get_all_basemodel_annotations(schema))
    fields = getattr(schema, "model_fields", {})
    result = InjectedArgs({}, None, None, set(), set())
    for name, annotation in annotations.items():
        if name == "return":
            continue
        if _is_injected_arg_type(annotation):
            result.all_injected.add(name)
        if name == "runtime" or _marker(annotation, ToolRuntime) is not None:
            result.runtime = name
        state = _marker(annotation, InjectedState)
        if state is not None:
            key = state.field if isinstance(state, InjectedState) else None
            result.state[name] = key
            if key and name in fields and not fields[name].is_required():
                result.optional_state.add(name)
        if _marker(annotation, InjectedStore) is not None:
            result.store = name
    return result
