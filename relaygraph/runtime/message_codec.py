"""Fast decoding of stored langchain_core messages.

langchain_core's message constructors validate through pydantic and their own validators
(about 100 us a message), which would make reading a long conversation cold cost tens of
milliseconds. A stored message was valid when it was written, so when its stored fields
have exactly the shape the class declares, it is rebuilt directly (about 5 us); anything
else — a missing or unknown field, a value of another type — goes through the class's
full validation, which raises a clear error for a corrupt payload.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

    def decode(fields: dict[str, Any], unset: list[str]) -> Any:
        if type(fields) is not dict or fields.get("type") != own_type:
            return None
        if tuple(fields) == exact:  # the common shape: checked and used as it is
            shape = tuple(map(type, fields.values()))
            known = shapes.get(shape)
            if known is None:  # once per combination of field types
                known = shapes[shape] = all(map(issubclass, shape, kinds))
            if not known:
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
        for name in dict_lists:
            items = values[name]
            if items and not all(isinstance(item, dict) for item in items):
                return None
        if has_status and values["status"] not in statuses:
            return None
        key = tuple(unset)
        was_set = set_fields.get(key)
        if was_set is None:
            was_set = set_fields[key] = frozenset(declared).difference(unset)
        message = new(cls)
        _set(message, "__dict__", values)
        fields_set = set(was_set).union(extra) if extra else set(was_set)
        _set(message, "__pydantic_fields_set__", fields_set)
        _set(message, "__pydantic_extra__", extra)
        _set(message, "__pydantic_private__", None)
        return message

    return decode


def register_fast_decoders(classes: list[type]) -> None:
    """Register the fast decoder for every class whose fields are all known here."""
    for cls in classes:
        decode = _decoder_for(cls)
        if decode is not None:
            register_decoder(cls, decode)
