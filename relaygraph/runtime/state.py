"""State schemas: TypedDict, dataclass or pydantic model -> channels, inputs and updates."""

from __future__ import annotations

import collections.abc
import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from relaygraph.runtime.channels import MISSING, BaseChannel, BinaryOperatorAggregate, LastValue
from relaygraph.runtime.errors import InvalidUpdateError

__all__ = ["StateSchema"]


# A TypedDict key's ``Required[...]`` / ``NotRequired[...]`` says nothing about its channel
# (typing_extensions re-exports these very objects on 3.11+, the oldest Python we run on).
_REQUIRED_WRAPPERS = frozenset({typing.Required, typing.NotRequired})

# Abstract collection types a key may be declared with, and the empty value of each
# (LangGraph's BinaryOperatorAggregate starts ``Sequence[...]`` at ``[]`` and so on).
_CONCRETE: dict[Any, type] = {
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Set: set,
    collections.abc.MutableSet: set,
    collections.abc.Mapping: dict,
    collections.abc.MutableMapping: dict,
}


def _without_required(annotation: Any) -> Any:
    """``annotation`` without its ``Required[...]`` / ``NotRequired[...]`` wrappers."""
    while get_origin(annotation) in _REQUIRED_WRAPPERS:
        annotation = get_args(annotation)[0]
    return annotation


def _reducer_of(annotation: Any) -> Callable[[Any, Any], Any] | None:
    """The reducer of ``Annotated[T, reducer]``, or None for a plain last-value key."""
    annotation = _without_required(annotation)
    if get_origin(annotation) is typing.Annotated:
        for meta in reversed(get_args(annotation)[1:]):
            if callable(meta) and not isinstance(meta, type):
                return meta
    return None


def _initial_value(annotation: Any) -> Any:
    """An empty value of the key's type for a reducer's first fold (``[]`` for lists)."""
    annotation = _without_required(annotation)
    base = get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation
    origin = get_origin(base) or base
    origin = _CONCRETE.get(origin, origin)
    if origin in (list, dict, set, int, float, str, tuple):
        return origin()
    return MISSING


@dataclass(frozen=True)
class StateSchema:
    """What the graph knows about one state class."""

    cls: Any
    kind: str  # "typeddict" | "dataclass" | "pydantic" | "dict"
    annotations: dict[str, Any]

    @classmethod
    def of(cls, schema: Any) -> StateSchema:
        """Introspect ``schema``; a clear error for a type that cannot be a state."""
        if schema is None or schema is dict:
            return cls(schema, "dict", {})
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            hints = get_type_hints(schema, include_extras=True)
            fields = {
                name: hints.get(name, field.annotation)
                for name, field in schema.model_fields.items()
            }
            return cls(schema, "pydantic", fields)
        if dataclasses.is_dataclass(schema) and isinstance(schema, type):
            hints = get_type_hints(schema, include_extras=True)
            fields = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(schema)}
            return cls(schema, "dataclass", fields)
        if isinstance(schema, type) and hasattr(schema, "__annotations__"):
            hints = get_type_hints(schema, include_extras=True)
            return cls(schema, "typeddict", {k: v for k, v in hints.items() if not _is_classvar(v)})
        raise TypeError(
            f"a state schema must be a TypedDict, a dataclass or a pydantic model, got {schema!r}"
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """The state keys, in declaration order."""
        return tuple(self.annotations)

    def channels(self) -> dict[str, BaseChannel]:
        """One channel per key: a reducer channel for ``Annotated`` keys, else last-value."""
        result: dict[str, BaseChannel] = {}
        for key, annotation in self.annotations.items():
            reducer = _reducer_of(annotation)
            if reducer is None:
                result[key] = LastValue(key)
            else:
                result[key] = BinaryOperatorAggregate(key, reducer, _initial_value(annotation))
        return result

    def defaults(self) -> dict[str, Any]:
        """Field defaults of a dataclass or pydantic schema (used to build node inputs)."""
        if self.kind == "dataclass":
            out = {}
            for f in dataclasses.fields(self.cls):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = f.default_factory()
            return out
        if self.kind == "pydantic":
            return {
                name: field.get_default(call_default_factory=True)
                for name, field in self.cls.model_fields.items()
                if not field.is_required()
            }
        return {}

    def to_node_input(self, values: dict[str, Any]) -> Any:
        """The node's view of the state: a dict, or an instance of the schema class."""
        if self.kind in ("typeddict", "dict"):
            return values
        if self.kind == "pydantic":
            return self.cls(**values)
        return self.cls(**{**self.defaults(), **values})

    def update_pairs(self, update: Any, *, source: str) -> list[tuple[str, Any]]:
        """A node's return value as ``(key, value)`` writes to state keys.

        Accepts a mapping or an instance of the schema class; keys outside the schema are
        dropped as LangGraph does, but an update that names none of the keys is an error.
        """
        if update is None:
            return []
        if isinstance(update, BaseModel):
            # A model instance is a whole state: every field is written (as LangGraph does).
            items = {
                k: getattr(update, k)
                for k, f in type(update).model_fields.items()
                # LangGraph leaves out only a None that is the default and was not given
                if not (
                    getattr(update, k) is None
                    and f.default is None
                    and k not in update.model_fields_set
                )
            }
        elif dataclasses.is_dataclass(update) and not isinstance(update, type):
            items = {f.name: getattr(update, f.name) for f in dataclasses.fields(update)}
        elif isinstance(update, Mapping):
            items = dict(update)
        else:
            raise InvalidUpdateError(
                f"Expected a dict from {source!r}, got {type(update).__name__}: {update!r}"
            )
        if self.kind == "dict":
            return list(items.items())
        pairs = [(k, v) for k, v in items.items() if k in self.annotations]
        if items and not pairs:
            raise InvalidUpdateError(
                f"Expected {source!r} to update at least one of {list(self.annotations)}, "
                f"got {items!r}"
            )
        return pairs


def _is_classvar(annotation: Any) -> bool:
    return annotation is typing.ClassVar or get_origin(annotation) is typing.ClassVar
