"""The statements a warm SQL saver step runs: a put and the read of the head that follows.

SqliteSaver: a put reads the thread's expiry, the id's stored row and the blobs it relies on
in one statement; a warm read of the head is one statement (the checkpoint and its writes),
with no blob query (the new list value was primed by the put, the cleared channels' empty
versions are remembered). PostgresSaver: a put is one plain statement, and the function
``relaygraph_put`` runs only when that statement did not move the head (here: a conflict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import relaygraph.persistence.postgres as postgres_module
import relaygraph.persistence.sqlite as sqlite_module
from relaygraph import END, START, AIMessage, HumanMessage, MessagesState, StateGraph
from relaygraph.persistence.errors import CheckpointConflict
from relaygraph.persistence.postgres import PostgresSaver
from relaygraph.persistence.sqlite import SqliteSaver

from .backend_postgres import conninfo, new_schema

pytestmark = pytest.mark.xdist_group("postgres")


def _graph(saver: Any) -> Any:
    def respond(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [AIMessage(content="echo: " + state["messages"][-1].content)]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=saver)


def _record(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    """Every statement the module's driver runs from now on (first line of its SQL)."""
    seen: list[str] = []
    original = module._execute_on

    def spy(target: Any, query: Any) -> Any:
        seen.append(" ".join(query.sql.split()))
        return original(target, query)

    monkeypatch.setattr(module, "_execute_on", spy)
    return seen


def _turns(saver: Any, thread: str, turns: int) -> dict[str, Any]:
    graph, config = _graph(saver), {"configurable": {"thread_id": thread}}
    for turn in range(turns):
        graph.invoke({"messages": [HumanMessage(content=f"q{turn}")]}, config)
    return config


def test_a_warm_sqlite_read_of_the_head_is_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteSaver(tmp_path / "s.db") as saver:
        config = _turns(saver, "t", 3)
        seen = _record(monkeypatch, sqlite_module)
        found = saver.get_tuple(config)
        assert len(seen) == 1 and "relaygraph_writes" in seen[0], seen
        assert [m.content for m in found.checkpoint["channel_values"]["messages"]][-2:] == [
            "q2",
            "echo: q2",
        ]
        # a reader without a cache (another process) reads the same
        with SqliteSaver(tmp_path / "s.db", cache_size=0) as cold:
            again = cold.get_tuple(config)
        assert again.checkpoint["channel_values"] == found.checkpoint["channel_values"]
        assert again.checkpoint["channel_versions"] == found.checkpoint["channel_versions"]


def test_a_sqlite_put_reads_once_before_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteSaver(tmp_path / "s.db") as saver:
        config = _turns(saver, "t", 2)
        head = saver.get_tuple(config)
        seen = _record(monkeypatch, sqlite_module)
        checkpoint = {**head.checkpoint, "id": head.checkpoint["id"][:-4] + "ffff"}
        saver.put(
            head.config,
            checkpoint,
            head.metadata,
            {},
            expected_head=head.config["configurable"]["checkpoint_id"],
        )
        reads = [s for s in seen if s.startswith(("SELECT", "WITH"))]
        assert len(reads) == 1, seen
        assert len(seen) == 3, seen  # the read, the head's compare-and-set, the header


def test_a_postgres_put_is_one_plain_statement_and_a_conflict_asks_the_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with PostgresSaver.from_conn_string(conninfo(new_schema())) as saver:
        saver.setup()
        config = _turns(saver, "t", 2)
        head = saver.get_tuple(config)
        seen = _record(monkeypatch, postgres_module)
        expected = head.config["configurable"]["checkpoint_id"]
        checkpoint = {**head.checkpoint, "id": expected[:-4] + "ffff"}
        saver.put(head.config, checkpoint, head.metadata, {}, expected_head=expected)
        assert len(seen) == 1 and seen[0].startswith("WITH h AS"), seen
        seen.clear()
        stale = {**head.checkpoint, "id": expected[:-4] + "fffe"}
        with pytest.raises(CheckpointConflict):
            saver.put(head.config, stale, head.metadata, {}, expected_head=expected)
        assert len(seen) == 2 and "relaygraph_put" in seen[1], seen
        assert saver.get_tuple(config).checkpoint["id"] == checkpoint["id"]
        assert (
            saver.get_tuple(
                {"configurable": {**config["configurable"], "checkpoint_id": stale["id"]}}
            )
            is None
        )
