"""Checkpoint ids: unique, and sorting as strings in the order they were made."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_checkpoint_id"]

_lock = threading.Lock()
_last = 0


def new_checkpoint_id(after: str | None = None) -> str:
    """A time-ordered UUID (version 7 layout) string, strictly increasing in this process.

    Ids made in the same millisecond (or a clock step back) still increase: the 74 bits
    after the millisecond timestamp are a counter seeded randomly per millisecond.

    ``after`` is the parent checkpoint's id: the new id sorts after it even when the parent
    was made by another process (another worker, in the same millisecond or with a clock
    ahead of this one's), so a thread's history listed newest first starts at its head.

    >>> parent = new_checkpoint_id()
    >>> new_checkpoint_id(after=parent) > parent
    True
    """
    global _last
    floor = _ordinal(after) if after else 0
    with _lock:
        millis = time.time_ns() // 1_000_000
        candidate = (millis << 74) | (int.from_bytes(os.urandom(8), "big") >> 2 & ((1 << 60) - 1))
        value = max(candidate, _last + 1, floor + 1)
        _last = value
    timestamp = value >> 74
    rand_a = (value >> 62) & 0xFFF
    rand_b = value & ((1 << 62) - 1)
    as_int = (timestamp << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=as_int))


def _ordinal(checkpoint_id: str) -> int:
    """The 122-bit counter behind one of our ids (0 for an id of another layout)."""
    try:
        as_int = uuid.UUID(checkpoint_id).int
    except (ValueError, TypeError, AttributeError):
        return 0
    if (as_int >> 76) & 0xF != 0x7:
        return 0  # not version 7 (e.g. LangGraph's uuid6 ids): no order to keep with it
    timestamp = as_int >> 80
    rand_a = (as_int >> 64) & 0xFFF
    rand_b = as_int & ((1 << 62) - 1)
    return (timestamp << 74) | (rand_a << 62) | rand_b
