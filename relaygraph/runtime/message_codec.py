"""Fast decoding of stored langchain_core messages.

langchain_core's message constructors validate through pydantic and their own validators
(about 100 us a message), which would make reading a long conversation cold cost tens of
milliseconds. A stored message was valid when it was written, so when its stored fields
have exactly the shape the class declares, it is rebuilt directly (about 2 us in a list
of messages, read straight from its flat entries); anything else — a missing or unknown
field, a value of another type — goes through the class's full validation, which raises a
clear error for a corrupt payload.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from relaygraph.persistence.serde import register_decoder

__all__ = ["register_fast_decoders"]

_NONE = type(None)
# The declared type of every field langchain_core's message classes have, as isinstance
# checks. A class with a field not listed here is always validated in full.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "content": (str, list),
    "additional_kwargs": (dict,),
    "response_metadata": (dict,),
    "type": (str,),
    "name": (str, _NONE),
    "id": (str, _NONE),
    "tool_calls": (list,),
    "invalid_tool_calls": (list,),
    "usage_metadata": (dict, _NONE),
    "tool_call_chunks": (list,),
    "chunk_position": (str, _NONE),
    "tool_call_id": (str,),
    "artifact": (object,),
    "status": (str,),
    "role": (str,),
}
_LIST_OF_DICTS = ("tool_calls", "invalid_tool_calls", "tool_call_chunks")
_set = object.__setattr__


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    # pydantic's BaseModel keeps these in slots: their descriptors set them a little
    # faster than object.__setattr__ looking the name up every time.
    slot = BaseModel.__dict__.get(name)
    setter = getattr(slot, "__set__", None)
    return setter if setter is not None else lambda obj, value: _set(obj, name, value)


_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


def _decoder_for(cls: type) -> Callable[[dict[str, Any], list[str]], Any] | None:
    declared = list(cls.model_fields)  # type: ignore[attr-defined]
    if any(name not in _FIELD_TYPES for name in declared):
        return None
    checks = [(name, _FIELD_TYPES[name]) for name in declared]
    exact = tuple(declared)  # the stored shape of a message without extras
    kinds = [_FIELD_TYPES[name] for name in declared]
    dict_lists = [name for name in _LIST_OF_DICTS if name in declared]
    has_status = "status" in declared
    own_type = cls.model_fields["type"].default  # type: ignore[attr-defined]
    statuses = ("success", "error")
    set_fields: dict[tuple[str, ...], frozenset[str]] = {}  # by the stored unset names
    shapes: dict[tuple[type, ...], bool] = {}  # field types -> all as declared
    new = cls.__new__

    def known_shape(shape: tuple[type, ...]) -> bool:
        known = shapes.get(shape)
        if known is None:  # once per combination of field types
            known = shapes[shape] = all(map(issubclass, shape, kinds))
        return known

    def checked(values: dict[str, Any]) -> bool:
        for name in dict_lists:
            items = values[name]
            if items and not all(isinstance(item, dict) for item in items):
                return False
        return not has_status or values["status"] in statuses

    def built(values: dict[str, Any], extra: dict[str, Any], unset: list[str]) -> Any:
        key = tuple(unset)
        was_set = set_fields.get(key)
        if was_set is None:
            was_set = set_fields[key] = frozenset(declared).difference(unset)
        message = new(cls)
        _set(message, "__dict__", values)
        _set_fields_set(message, set(was_set).union(extra) if extra else set(was_set))
        _set_extra(message, extra)
        _set_private(message, None)
        return message

    def decode(fields: dict[str, Any], unset: list[str]) -> Any:
        if type(fields) is not dict or fields.get("type") != own_type:
            return None
        if tuple(fields) == exact:  # the common shape: checked and used as it is
            if not known_shape(tuple(map(type, fields.values()))):
                return None
            values = fields
            extra: dict[str, Any] = {}
        else:
            values = {}
            for name, types in checks:
                value = fields.get(name, _NONE)
                if value is _NONE or not isinstance(value, types):
                    return None
                values[name] = value
            extra = {k: v for k, v in fields.items() if k not in values}
            if any(not isinstance(key, str) for key in extra):
                return None
        return built(values, extra, unset) if checked(values) else None

    values_of, types_of = _entry_readers(exact)

    def build(entry: list[Any], unset: list[str]) -> Any:
        """A flat entry ``[shape, unset, *values]`` of exactly the declared fields."""
        if not known_shape(types_of(entry)):
            return None
        values = values_of(entry)
        if values["type"] != own_type or not checked(values):
            return None
        return built(values, {}, unset)

    def for_shape(keys: tuple[str, ...]) -> Callable[[list[Any], list[str]], Any] | None:
        return build if keys == exact else None

    decode.for_shape = for_shape  # type: ignore[attr-defined]
    return decode


def _entry_readers(
    names: tuple[str, ...],
) -> tuple[Callable[[list[Any]], dict[str, Any]], Callable[[list[Any]], tuple[type, ...]]]:
    """Two functions of a flat entry ``[shape, unset, *values]``: its values as a dict by
    ``names``, and their types. Compiled from the names of a class's declared fields (never
    from stored data): a dict display and a tuple of ``type()`` calls cost half of building
    them with ``zip`` and ``map`` over a slice, which a cold read of a long conversation
    does for every message."""
    if not all(isinstance(name, str) and name.isidentifier() for name in names):
        raise ValueError(f"field names must be identifiers: {names!r}")
    items = ", ".join(f"{name!r}: e[{i}]" for i, name in enumerate(names, 2))
    types = ", ".join(f"type(e[{i}])" for i in range(2, len(names) + 2))
    # Compiled from identifiers checked above and indexes: no stored text reaches eval.
    values_of = eval(f"lambda e: {{{items}}}")
    types_of = eval(f"lambda e: ({types},)")
    return values_of, types_of


def register_fast_decoders(classes: list[type]) -> None:
    """Register the fast decoder for every class whose fields are all known here."""
    for cls in classes:
        decode = _decoder_for(cls)
        if decode is not None:
            register_decoder(cls, decode)
