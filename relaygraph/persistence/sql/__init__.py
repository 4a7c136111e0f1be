"""What the SQLite and PostgreSQL savers share, one job per module.

* ``query.py``: the sans-IO protocol: operations yield :class:`Query` objects, drivers run
  them (:func:`run_sync`, :func:`run_async`) in one transaction;
* ``dialect.py``: how each database spells what the operations need (:data:`SQLITE`,
  :data:`POSTGRES`);
* ``statements.py``: the shared SQL text; ``postgres_sql.py``: PostgreSQL's one-statement
  read and put (a plain statement, and the ``relaygraph_put`` function of migrations 0002
  and 0003 for the puts it does not settle);
* ``ops.py``: the shared step logic (read, compare-and-set put, writes, listing, retention);
* ``rows.py``: rows <-> checkpoints (serializing a put, building tuples);
* ``cache.py``: the cache of resolved message histories;
* ``saver.py``: :class:`SqlSaver`, the saver API; ``sqlite.py`` and ``postgres.py`` add
  connections and drivers.
"""

from __future__ import annotations

from relaygraph.persistence.sql.dialect import POSTGRES, SQLITE, Dialect
from relaygraph.persistence.sql.query import Op, Query, run_async, run_sync
from relaygraph.persistence.sql.saver import LIST_PAGE_SIZE, SetupRequiredError, SqlSaver

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
