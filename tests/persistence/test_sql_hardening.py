"""SQL savers: stored data that does not decode as expected is a CorruptCheckpointError."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from relaygraph.persistence.errors import CorruptCheckpointError
from relaygraph.persistence.serde import default_serializer
from relaygraph.persistence.sqlite import SqliteSaver

from .saver_contract import Thread, _config


@pytest.mark.parametrize("stored", [[1, 2], "text", 5, None])
def test_sqlite_metadata_that_is_not_a_mapping_is_corrupt(tmp_path: Path, stored: object) -> None:
    path = tmp_path / "c.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        thread = Thread(saver, "victim")
        head = thread.commit({"a": 1})
        with sqlite3.connect(path) as raw:
            raw.execute(
                "UPDATE relaygraph_checkpoints SET metadata = ?",
                [default_serializer.dumps(stored)],
            )
        with pytest.raises(CorruptCheckpointError, match=f"{head}.*'victim'.*not a mapping"):
            saver.get_tuple(_config("victim"))
        with pytest.raises(CorruptCheckpointError, match="not a mapping"):
            list(saver.list(_config("victim")))


def test_postgres_metadata_that_is_not_a_mapping_is_corrupt() -> None:
    import psycopg

    from . import backend_postgres

    with backend_postgres.postgres_saver() as saver:
        thread = Thread(saver, "victim")
        head = thread.commit({"a": 1})
        schema = backend_postgres._shared_schema()
        with psycopg.connect(backend_postgres.conninfo(schema), autocommit=True) as raw:
            raw.execute(
                "UPDATE relaygraph_checkpoints SET metadata = %s",
                [default_serializer.dumps([1, 2])],
            )
        with pytest.raises(CorruptCheckpointError, match=f"{head}.*'victim'.*not a mapping"):
            saver.get_tuple(_config("victim"))


# -- ids PostgreSQL cannot hold as keys: refused up front, naming the field -------------


@pytest.mark.parametrize(
    ("thread_id", "problem"),
    [("bad\0id", "NUL"), ("x" * 10_000, "10000 bytes"), ("é" * 501, "1002 bytes")],
    ids=["nul", "10kb", "multibyte"],
)
def test_postgres_refuses_thread_ids_it_cannot_key(thread_id: str, problem: str) -> None:
    from . import backend_postgres

    with backend_postgres.postgres_saver() as saver:
        thread = Thread(saver, thread_id)
        with pytest.raises(ValueError, match=f"thread_id.*{problem}|{problem}.*thread_id"):
            thread.commit({"a": 1})
        with pytest.raises(ValueError, match="thread_id"):
            saver.get_tuple(_config(thread_id))
        with pytest.raises(ValueError, match="thread_id"):
            list(saver.list(_config(thread_id)))
        with pytest.raises(ValueError, match="thread_id"):
            saver.put_writes(_config(thread_id, "c1"), [("a", 1)], "task")
        # the longest allowed id works, and nothing else was stored
        ok = Thread(saver, "y" * 1000)
        ok.commit({"a": 1})
        assert saver.get_tuple(_config("y" * 1000)) is not None
        assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["y" * 1000]


def test_postgres_refuses_task_and_channel_ids_it_cannot_key() -> None:
    from . import backend_postgres

    with backend_postgres.postgres_saver() as saver:
        thread = Thread(saver, "t")
        head = thread.commit({"a": 1})
        with pytest.raises(ValueError, match="task_id"):
            saver.put_writes(_config("t", head), [("a", 1)], "k" * 300)
        with pytest.raises(ValueError, match="channel"):
            thread.commit({"c" * 300: 1})
        with pytest.raises(ValueError, match=r"checkpoint_ns.*NUL"):
            Thread(saver, "t", ns="sub\0graph").commit({"a": 1})


@pytest.mark.parametrize("bad", ["nul\0id", "x" * 10_000], ids=["nul", "10kb"])
def test_postgres_retention_calls_refuse_ids_it_cannot_key(bad: str) -> None:
    """delete_thread, copy_thread (either side), prune and delete_for_runs name the field
    too (before: the driver's DataError for NUL; a copy could create a thread under an id
    every later read refuses); a metadata filter key with NUL is matched in Python."""
    from . import backend_postgres

    with backend_postgres.postgres_saver() as saver:
        head = Thread(saver, "kept").commit({"a": 1}, **{"odd\0key": "v"})
        calls = {
            "thread_id": [
                lambda: saver.delete_thread(bad),
                lambda: saver.copy_thread(bad, "copy"),
                lambda: saver.copy_thread("kept", bad),
                lambda: saver.prune([bad], keep_last=1),
            ],
            "run_id": [lambda: saver.delete_for_runs([bad])],
        }
        for field, tries in calls.items():
            for call in tries:
                with pytest.raises(ValueError, match=field):
                    call()
        listed = saver.list(_config("kept"), filter={"odd\0key": "v"})
        assert [t.checkpoint["id"] for t in listed] == [head]
        assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["kept"]


def test_sqlite_keeps_long_and_nul_thread_ids(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.db")) as saver:
        for thread_id in ("x" * 10_000, "nul\0inside"):
            Thread(saver, thread_id).commit({"a": 1})
            saved = saver.get_tuple(_config(thread_id))
            assert saved is not None and saved.config["configurable"]["thread_id"] == thread_id
