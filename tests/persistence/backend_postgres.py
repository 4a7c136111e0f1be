"""PostgresSaver as a backend of the saver conformance suite.

Every test process gets its own schema (``rg_test_<random>``), set up once and dropped when
the process exits; each saver starts from empty tables. The server is
``$RELAYGRAPH_TEST_POSTGRES_URL`` when set, else this process's embedded PostgreSQL
(``tests/servers.py``), started on first use; one that cannot be started is an error.
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
import servers
from psycopg import sql
from psycopg.conninfo import make_conninfo

from relaygraph.persistence.postgres import PostgresSaver

TABLES = (
    "relaygraph_writes",
    "relaygraph_blobs",
    "relaygraph_checkpoints",
    "relaygraph_heads",
    "relaygraph_threads",
)


def __getattr__(name: str) -> str:
    # ``SERVER`` (the connection string) is looked up on use, so that importing this module
    # (every collection does) starts no server.
    if name == "SERVER":
        return servers.postgres_url()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_schema() -> str:
    """Create an empty schema and arrange for it to be dropped at exit; returns its name."""
    server = servers.postgres_url()
    name = f"rg_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    atexit.register(drop_schema, name)
    return name


def drop_schema(name: str) -> None:
    """Drop a test schema and everything in it."""
    server = servers.postgres_url()
    with contextlib.suppress(psycopg.Error), psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def conninfo(schema: str) -> str:
    """A connection string whose search_path is ``schema``."""
    return make_conninfo(servers.postgres_url(), options=f"-c search_path={schema}")


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
