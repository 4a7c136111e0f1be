"""SqliteSaver as backends of the saver conformance suite: a WAL file and ``:memory:``."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from relaygraph.persistence.sqlite import SqliteSaver


@contextlib.contextmanager
def sqlite_file_saver() -> Iterator[SqliteSaver]:
    with tempfile.TemporaryDirectory(prefix="rg-sqlite-") as folder:
        with SqliteSaver.from_conn_string(str(Path(folder) / "checkpoints.db")) as saver:
            yield saver


@contextlib.contextmanager
def sqlite_memory_saver() -> Iterator[SqliteSaver]:
    with SqliteSaver.from_conn_string(":memory:") as saver:
        yield saver


FACTORIES = {"sqlite-file": sqlite_file_saver, "sqlite-memory": sqlite_memory_saver}
