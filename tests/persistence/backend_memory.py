"""InMemorySaver as a backend of the saver conformance suite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from relaygraph.persistence.memory import InMemorySaver


@contextlib.contextmanager
def memory_saver() -> Iterator[InMemorySaver]:
    yield InMemorySaver()


FACTORIES = {"memory": memory_saver}
