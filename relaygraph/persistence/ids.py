"""Checkpoint ids: unique, and sorting as strings in the order they were made."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_checkpoint_id"]

_lock = threading.Lock()
_last = 0


def new_checkpoint_id() -> str:
    """A time-ordered UUID (version 7 layout) string, strictly increasing in this process.

    Ids made in the same millisecond (or a clock step back) still increase: the 74 bits
    after the millisecond timestamp are a counter seeded randomly per millisecond.
    """
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        candidate = (millis << 74) | (int.from_bytes(os.urandom(8), "big") >> 2 & ((1 << 60) - 1))
        value = candidate if candidate > _last else _last + 1
        _last = value
    timestamp = value >> 74
    rand_a = (value >> 62) & 0xFFF
    rand_b = value & ((1 << 62) - 1)
    as_int = (timestamp << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=as_int))
