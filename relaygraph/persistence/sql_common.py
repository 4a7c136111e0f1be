"""Former home of the shared SQL saver code, now the :mod:`relaygraph.persistence.sql`
package; these names stay importable from here."""

from __future__ import annotations

from relaygraph.persistence.sql import (
    LIST_PAGE_SIZE,
    POSTGRES,
    SQLITE,
    Dialect,
    Op,
    Query,
    SetupRequiredError,
    SqlSaver,
    run_async,
    run_sync,
)

__all__ = [
    "LIST_PAGE_SIZE",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "Op",
    "Query",
    "SetupRequiredError",
    "SqlSaver",
    "run_async",
    "run_sync",
]
