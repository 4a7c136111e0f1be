"""Versioned SQL migrations of the SQL savers, one folder per dialect.

A file ``NNNN_name.sql`` is migration ``NNNN``; :func:`load` returns them in order. The
folder is a package so the ``.sql`` files ship as package data.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

__all__ = ["Migration", "load"]

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Migration(NamedTuple):
    """One migration file: its number, its name and its statements."""

    version: int
    name: str
    statements: tuple[str, ...]


def load(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` ("sqlite" or "postgres"), oldest first."""
    folder = resources.files(__name__) / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match.group(1)), entry.name, _split(text)))
    found.sort()
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


def _split(text: str) -> tuple[str, ...]:
    # Statements end with ";" at the end of a line, except inside a $$-quoted body (a
    # function's); "--" comment lines are dropped.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    statements, current, quoted = [], [], False
    for line in lines:
        quoted ^= line.count("$$") % 2 == 1
        current.append(line)
        if not quoted and re.search(r";\s*$", line):
            statements.append("\n".join(current).strip()[:-1].strip())
            current = []
    statements.append("\n".join(current).strip())
    return tuple(part for part in statements if part)
