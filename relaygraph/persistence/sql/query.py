"""The sans-IO protocol between the SQL savers' operations and their drivers.

Every saver operation is written once, as a generator that yields :class:`Query` objects,
receives their results and returns its answer (an :data:`Op`). A driver runs such a
generator in one transaction on its connection: :func:`run_sync` and :func:`run_async` feed
it the results of a sync or async ``execute(query)``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

__all__ = ["SNAPSHOT", "Fetch", "Op", "Query", "run_async", "run_sync"]

T = TypeVar("T")
Fetch = Literal["none", "one", "all", "rowcount", "snapshot"]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement for a driver to run. SQL uses ``?`` placeholders in every dialect.

    ``many`` runs the statement once per parameter tuple in ``params``; ``fetch`` says what
    to send back: nothing, one row (or None), all rows, or the affected row count
    (``"snapshot"``: see :data:`SNAPSHOT`).
    """

    sql: str
    params: Sequence[Any] | None = None
    fetch: Fetch = "none"
    many: bool = False


Op = Generator[Query, Any, T]
"""A sans-IO database operation: yields queries, receives their results, returns a value."""

SNAPSHOT = Query("", fetch="snapshot")
"""Yielded by a read that a driver may start outside a transaction (``lazy``): from here on
every statement must see one snapshot. A driver that already runs the operation in a
transaction answers None and does nothing."""


def run_sync(op: Op[T], execute: Callable[[Query], Any]) -> T:
    """Drive ``op`` with a sync ``execute(query) -> result`` (the caller owns the transaction)."""
    try:
        query = next(op)
        while True:
            query = op.send(execute(query))
    except StopIteration as stop:
        return stop.value


async def run_async(op: Op[T], execute: Callable[[Query], Any]) -> T:
    """Drive ``op`` with an async ``execute(query) -> awaitable result``."""
    try:
        query = next(op)
        while True:
            query = op.send(await execute(query))
    except StopIteration as stop:
        return stop.value
