"""PostgreSQL data written before migration 0002 (one statement per put and read) still reads.

The database is made as the previous release left it: migration 0001 only, written by the
multi-statement put (no version arrays on its checkpoint rows). After ``setup()`` a current
saver reads it (through the snapshot read), and a conversation continues on top of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest

from relaygraph import END, START, AIMessage, HumanMessage, MessagesState, StateGraph
from relaygraph.persistence import migrations
from relaygraph.persistence.postgres import PostgresSaver
from relaygraph.persistence.sql import POSTGRES, SetupRequiredError
from relaygraph.persistence.sql.statements import MIGRATIONS_TABLE

from .backend_postgres import conninfo, new_schema

pytestmark = pytest.mark.xdist_group("postgres")


class _BeforeOneRoundTrip(PostgresSaver):
    """The saver as it was before migration 0002: several statements per put and read."""

    dialect = dataclasses.replace(POSTGRES, one_round_trip=False)


def _graph(saver: Any) -> Any:
    def respond(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [AIMessage(content="echo: " + state["messages"][-1].content)]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=saver)


def _contents(saver: Any, config: dict[str, Any]) -> list[str]:
    found = saver.get_tuple(config)
    return [m.content for m in found.checkpoint["channel_values"]["messages"]]


def test_a_database_written_by_the_previous_layout_reads_back_and_grows() -> None:
    url = conninfo(new_schema())
    with psycopg.connect(url, autocommit=True) as conn:  # as the previous release set it up
        conn.execute(MIGRATIONS_TABLE)
        for statement in migrations.load("postgres")[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO relaygraph_migrations VALUES (1, '0001_initial.sql', 0)")
    config = {"configurable": {"thread_id": "t"}}
    with _BeforeOneRoundTrip(url) as old:
        old._ready = True  # its schema is complete for it
        graph = _graph(old)
        for turn in range(3):
            graph.invoke({"messages": [HumanMessage(content=f"q{turn}")]}, config)
        written = [(t.config, t.metadata, t.checkpoint) for t in old.list(config)]
    expected = [f"{kind}{turn}" for turn in range(3) for kind in ("q", "echo: q")]

    with PostgresSaver(url) as saver:
        with pytest.raises(SetupRequiredError, match=r"version 1 of \d"):
            saver.get_tuple(config)
        saver.setup()
        assert _contents(saver, config) == expected
        assert [(t.config, t.metadata, t.checkpoint) for t in saver.list(config)] == written
        graph = _graph(saver)
        for turn in range(3, 5):
            graph.invoke({"messages": [HumanMessage(content=f"q{turn}")]}, config)
        expected += [f"{kind}{turn}" for turn in range(3, 5) for kind in ("q", "echo: q")]
        assert _contents(saver, config) == expected
        first = list(saver.list(config))[-1].config  # an old row, read by checkpoint id
        assert saver.get_tuple(first).checkpoint["id"] == written[-1][2]["id"]
    with PostgresSaver(url, cache_size=0) as cold:  # the chain spans both layouts
        cold.setup()
        assert _contents(cold, config) == expected
    with psycopg.connect(url) as conn:  # not autocommit: each read is one transaction
        given = PostgresSaver(conn)
        assert given.get_tuple(first).checkpoint["id"] == written[-1][2]["id"]
        assert _contents(given, config) == expected


def test_migration_0003_replaces_the_put_function_and_keeps_every_outcome() -> None:
    """A database at migration 0002 (relaygraph_put as one statement) gets 0003's function
    from setup(); the thread it wrote grows on, and the put's outcomes are unchanged: the
    same checkpoint again is a no-op, a stale expected head conflicts, other content under a
    stored id is refused."""
    from relaygraph.persistence.errors import CheckpointConflict, CheckpointExistsError

    url = conninfo(new_schema())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MIGRATIONS_TABLE)
        for migration in migrations.load("postgres")[:2]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO relaygraph_migrations VALUES (%s, %s, 0)",
                [migration.version, migration.name],
            )
    config = {"configurable": {"thread_id": "t"}}
    with PostgresSaver(url) as old:
        old._ready = True  # migration 0002's function serves it
        graph = _graph(old)
        for turn in range(2):
            graph.invoke({"messages": [HumanMessage(content=f"q{turn}")]}, config)
    with PostgresSaver(url) as saver:
        with pytest.raises(SetupRequiredError, match="version 2 of 3"):
            saver.get_tuple(config)
        saver.setup()
        with psycopg.connect(url, autocommit=True) as conn:
            body = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'relaygraph_put'")
            assert "GET DIAGNOSTICS" in body.fetchone()[0]
        graph = _graph(saver)
        graph.invoke({"messages": [HumanMessage(content="q2")]}, config)
        expected = [f"{kind}{turn}" for turn in range(3) for kind in ("q", "echo: q")]
        assert _contents(saver, config) == expected
        head = saver.get_tuple(config)
        parent = head.parent_config
        assert parent is not None
        # the same checkpoint again (a retry): a no-op
        again = saver.put(parent, head.checkpoint, head.metadata, {})
        assert again == head.config
        # a stale expected head: refused, nothing stored
        child = {**head.checkpoint, "id": head.checkpoint["id"][:-1] + "~"}
        with pytest.raises(CheckpointConflict):
            saver.put(
                head.config,
                child,
                head.metadata,
                {},
                expected_head=parent["configurable"]["checkpoint_id"],
            )
        assert saver.get_tuple(config).checkpoint["id"] == head.checkpoint["id"]
        # other content under a stored id: refused
        with pytest.raises(CheckpointExistsError):
            saver.put(parent, head.checkpoint, {**head.metadata, "changed": True}, {})
        assert _contents(saver, config) == expected
