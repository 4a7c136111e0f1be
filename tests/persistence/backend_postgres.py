"""PostgresSaver as a backend of the saver conformance suite.

Every test process gets its own schema (``rg_test_<random>``), set up once and dropped when
the process exits; each saver starts from empty tables. The server comes from
``RELAYGRAPH_TEST_POSTGRES`` (default: 127.0.0.1:5432, database ``test``, user postgres);
tests are skipped when it cannot be reached.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from relaygraph.persistence.postgres import PostgresSaver

SERVER = os.environ.get(
    "RELAYGRAPH_TEST_POSTGRES", "host=127.0.0.1 port=5432 dbname=test user=postgres"
)
TABLES = (
    "relaygraph_writes",
    "relaygraph_blobs",
    "relaygraph_checkpoints",
    "relaygraph_heads",
    "relaygraph_threads",
)


def new_schema() -> str:
    """Create an empty schema and arrange for it to be dropped at exit; returns its name."""
    name = f"rg_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable ({SERVER}): {exc}")
    atexit.register(drop_schema, name)
    return name


def drop_schema(name: str) -> None:
    """Drop a test schema and everything in it."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def conninfo(schema: str) -> str:
    """A connection string whose search_path is ``schema``."""
    return make_conninfo(SERVER, options=f"-c search_path={schema}")


@functools.cache
def _shared_schema() -> str:
    schema = new_schema()
    with PostgresSaver.from_conn_string(conninfo(schema)) as saver:
        saver.setup()
    return schema


@contextlib.contextmanager
def postgres_saver() -> Iterator[PostgresSaver]:
    schema = _shared_schema()
    with psycopg.connect(conninfo(schema), autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES))
    with PostgresSaver.from_conn_string(conninfo(schema), pool_size=4) as saver:
        yield saver


FACTORIES = {"postgres": postgres_saver}
MARKS = [pytest.mark.xdist_group("postgres")]
