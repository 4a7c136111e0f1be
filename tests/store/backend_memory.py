"""InMemoryStore as a backend of the store conformance suite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from relaygraph.persistence.store.memory import InMemoryStore


@contextlib.contextmanager
def memory_store(index: Any = None, ttl: Any = None) -> Iterator[InMemoryStore]:
    store = InMemoryStore(index=index, ttl=ttl)
    try:
        yield store
    finally:
        store.close()


FACTORIES = {"memory": memory_store}
