"""What the SQL savers add to the shared contract: setup, and several processes at once."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from relaygraph.persistence.base import Checkpoint, make_config, next_version
from relaygraph.persistence.errors import CheckpointConflict
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.persistence.postgres import PostgresSaver
from relaygraph.persistence.sql import SetupRequiredError
from relaygraph.persistence.sqlite import SqliteSaver

from .backend_postgres import conninfo, new_schema

pytestmark = pytest.mark.xdist_group("postgres")


def _checkpoint(n: int) -> Checkpoint:
    version = next_version(None)
    return Checkpoint(
        v=1,
        id=new_checkpoint_id(),
        ts=dt.datetime.now(dt.UTC).isoformat(),
        channel_values={"n": n},
        channel_versions={"n": version},
        versions_seen={},
        updated_channels=["n"],
        channel_appends={},
    )


def test_a_postgres_database_never_set_up_says_to_call_setup() -> None:
    with PostgresSaver.from_conn_string(conninfo(new_schema())) as saver:
        with pytest.raises(SetupRequiredError, match=r"setup\(\)"):
            saver.get_tuple({"configurable": {"thread_id": "t"}})
        saver.setup()
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None


def test_a_sqlite_file_without_auto_setup_says_to_call_setup(tmp_path: Path) -> None:
    with SqliteSaver(str(tmp_path / "c.db"), auto_setup=False) as saver:
        with pytest.raises(SetupRequiredError, match=r"setup\(\)"):
            saver.put({"configurable": {"thread_id": "t"}}, _checkpoint(0), {}, {})
        saver.setup()
        saver.setup()  # idempotent
        saver.put({"configurable": {"thread_id": "t"}}, _checkpoint(0), {}, {"n": "x"})


def _setup(url: str) -> str:
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
    return "ok"


def test_two_processes_set_up_one_postgres_database_at_once() -> None:
    url = conninfo(new_schema())
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(_setup, [url, url]) == ["ok", "ok"]
    with PostgresSaver.from_conn_string(url) as saver:
        saver.put({"configurable": {"thread_id": "t"}}, _checkpoint(1), {}, {})
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}).checkpoint[
            "channel_values"
        ] == {"n": 1}


def _commit_child(args: tuple[str, str, str, int]) -> str:
    path, thread, head, n = args
    with SqliteSaver.from_conn_string(path) as saver:
        checkpoint = _checkpoint(n)
        try:
            saver.put(
                make_config(thread, "", head),
                checkpoint,
                {},
                dict(checkpoint["channel_versions"]),
                expected_head=head,
            )
        except CheckpointConflict:
            return ""
        return checkpoint["id"]


def test_processes_racing_on_one_sqlite_file_commit_exactly_one_step_each(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    with SqliteSaver.from_conn_string(path) as saver:
        first = _checkpoint(0)
        saver.put({"configurable": {"thread_id": "t"}}, first, {}, dict(first["channel_versions"]))
        head = first["id"]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        for step in range(5):
            winners = [w for w in pool.map(_commit_child, [(path, "t", head, step)] * 4) if w]
            assert len(winners) == 1, winners
            head = winners[0]
    with SqliteSaver.from_conn_string(path) as saver:
        history = list(saver.list({"configurable": {"thread_id": "t"}}))
        assert len(history) == 6 and history[0].checkpoint["id"] == head
        parents = [h.parent_config["configurable"]["checkpoint_id"] for h in history[:-1]]
        assert parents == [h.checkpoint["id"] for h in history[1:]]  # one unbroken chain


def test_postgres_array_parameters_carry_any_channel_and_version_text() -> None:
    """Channel names and versions travel to PostgreSQL as array literals (text_array):
    quotes, backslashes, commas, braces, blanks and the word NULL arrive intact."""
    odd = ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "", 'ü\\"', "messages"]
    with PostgresSaver.from_conn_string(conninfo(new_schema())) as saver:
        saver.setup()
        config = {"configurable": {"thread_id": "odd", "checkpoint_ns": ""}}
        parent = None
        for step in range(3):
            versions = {name: f'{step}.v"{name}\\' for name in odd}
            checkpoint = Checkpoint(
                v=1,
                id=new_checkpoint_id(),
                ts=dt.datetime.now(dt.UTC).isoformat(),
                channel_values={name: [name, step] for name in odd},
                channel_versions=versions,
                versions_seen={},
                updated_channels=odd,
                channel_appends={},
            )
            put_config = config if parent is None else parent
            parent = saver.put(put_config, checkpoint, {"step": step}, versions)
            for reader in (saver, PostgresSaver.from_conn_string(saver._conninfo or "")):
                got = reader.get_tuple(config)
                assert got is not None
                assert got.checkpoint["channel_versions"] == versions
                assert got.checkpoint["channel_values"] == {n: [n, step] for n in odd}
                if reader is not saver:
                    reader.close()
