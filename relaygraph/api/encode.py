"""Graph values as JSON: messages, interrupts, tuples and the like as the SDK expects them."""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

from relaygraph.runtime.types import Interrupt, Send

__all__ = ["iso", "to_json"]


def iso(ms: int | float | str | bytes | None) -> str | None:
    """Milliseconds since the epoch (as Redis keeps them) as an ISO 8601 UTC timestamp."""
    if ms is None or ms == b"" or ms == "":
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat()


def to_json(value: Any) -> Any:
    """``value`` made of JSON types only (a message becomes its dict, as LangChain's does).

    >>> to_json({"a": (1, {2}), "i": Interrupt("name?", "x")})
    {'a': [1, [2]], 'i': {'value': 'name?', 'id': 'x'}}
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, Interrupt):
        return {"value": to_json(value.value), "id": value.id}
    if isinstance(value, Send):
        return {"node": value.node, "arg": to_json(value.arg)}
    if isinstance(value, BaseModel):
        return to_json(value.model_dump(mode="json"))
    if hasattr(value, "_asdict"):  # a NamedTuple: a list, as JSON has no tuples
        return [to_json(v) for v in value]
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "model_dump"):  # a LangChain message or another pydantic-like object
        return to_json(value.model_dump())
    return repr(value)
