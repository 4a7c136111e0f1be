"""bench/persistence.py runs end to end at the tiniest sizes and saves well-formed tables.

A smoke test only: it checks the shape of what the benchmark saves, never its numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.xdist_group("bench-persistence")


def test_tiny_run_saves_every_table(tmp_path: Path, postgres_url: str) -> None:
    args = [
        *("--quick", "--turns", "6", "--rounds", "1", "--long-rounds", "1"),
        *("--store-sizes", "150", "--queries", "4", "--puts", "2"),
        *("--results", str(tmp_path)),
    ]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "persistence.py"), *args],
        cwd=ROOT,
        env={**os.environ, "RELAYGRAPH_BENCH_POSTGRES": postgres_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    saved = json.loads((tmp_path / "persistence.json").read_text())
    assert saved["name"] == "persistence"
    assert saved["command"] == "python bench/persistence.py " + " ".join(args[:-2])
    titles = [table["title"] for table in saved["tables"]]
    assert titles[0].startswith("Checkpoint savers") and titles[-1] == "Targets (issues 3 and 14)"
    assert any(title.startswith("Memory store") for title in titles)
    savers = saved["tables"][0]
    assert savers["columns"][1:3] == ["relaygraph Redis", "LangGraph Redis"]
    labels = [row[0] for row in savers["rows"]]
    assert labels[:4] == [
        "put, 10 messages",
        "get_tuple, 10 messages",
        "get_tuple cold, 10 messages",
        "put + get_tuple, 10 messages",
    ]
    for row in savers["rows"]:
        assert all(cell is None or cell > 0 for cell in row[1:3]), row
    targets = saved["tables"][-1]
    assert all(row[2] in ("yes", "**no**", "-") for row in targets["rows"])
    assert {row[3] for row in targets["rows"]} == {3, 14}
    assert targets["notes"][-1].endswith("targets met")
    assert done.stdout.rstrip().splitlines()[-1].endswith("targets met")
