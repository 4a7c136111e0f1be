"""bench/report.py turns saved results into docs tables and PNG plots (no benchmark runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench._results import Plot, Table, save  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DOC = """# Benchmarks

Hand-written intro that must survive.

## Tiny

<!-- bench:tiny:begin -->
old generated table
<!-- bench:tiny:end -->

Targets: hand-written prose after the markers.

## Waiting

<!-- bench:waiting:begin -->
A paragraph kept until waiting.json exists.
<!-- bench:waiting:end -->
"""


def tiny_results() -> dict:
    """A small results file in bench/_results.py's format: a bar table and a line table."""
    bars = Table(
        "Tiny comparison",
        ["case", "them", "us"],
        notes=["lower is better"],
        plot=Plot("bar", x="case", y=["them", "us"], ylabel="ms", log=True),
        formats={"them": ".3f"},
    )
    bars.add("echo | pipe", 1.8254, 0.451)
    bars.add("linear", 0.458, None)
    line = Table(
        "Tiny growth",
        ["turns", "us"],
        plot=Plot("line", x="turns", y=["us"], ylabel="ms per turn"),
    )
    for turns in (20, 40, 60):
        line.add(turns, 0.5 + turns / 1000)
    text = Table("No plot here", ["what", "value"])
    text.add("recovery", "5.1 s")
    return {
        "name": "tiny",
        "command": "python bench/tiny.py --quick",
        "date": "2026-12-01",
        "machine": "x86_64, CPython 3.11",
        "tables": [_as_dict(bars), _as_dict(line), _as_dict(text)],
    }


def _as_dict(table: Table) -> dict:
    from dataclasses import asdict

    return asdict(table)


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    """A temporary results folder, doc and image folder."""
    results, img = tmp_path / "results", tmp_path / "docs" / "img"
    results.mkdir()
    doc = tmp_path / "docs" / "benchmarks.md"
    doc.parent.mkdir()
    doc.write_text(DOC)
    return {"results": results, "doc": doc, "img": img}


def write(place: dict[str, Path], name: str, payload: object) -> Path:
    path = place["results"] / f"{name}.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_renders_tables_between_markers_and_keeps_hand_written_text(place) -> None:
    write(place, "tiny", tiny_results())
    outcome = report.report(place["results"], place["doc"], place["img"])
    text = place["doc"].read_text()

    assert outcome.updated == ["tiny"] and outcome.kept == ["waiting"] and not outcome.unplaced
    # Everything outside the markers is untouched, the old generated content is gone.
    assert text.startswith("# Benchmarks\n\nHand-written intro that must survive.\n")
    assert "Targets: hand-written prose after the markers." in text
    assert "old generated table" not in text
    # A marker without results keeps what it holds.
    assert "A paragraph kept until waiting.json exists." in text
    # The table, formatted as the benchmark prints it (per-column spec, en dash for None,
    # a pipe in a cell escaped), its notes, the command and date, the image links.
    assert "| case | them | us |\n|---|---|---|\n" in text
    assert "| echo \\| pipe | 1.825 | 0.45 |" in text
    assert "| linear | 0.458 | \u2013 |" in text
    assert "lower is better" in text
    assert "`python bench/tiny.py --quick`, 2026-12-01 on x86_64, CPython 3.11." in text
    assert "![Tiny comparison](img/bench-tiny-1.png)" in text
    assert "![Tiny growth](img/bench-tiny-2.png)" in text
    assert "| recovery | 5.1 s |" in text and "bench-tiny-3.png" not in text


def test_plots_are_small_valid_pngs(place) -> None:
    write(place, "tiny", tiny_results())
    outcome = report.report(place["results"], place["doc"], place["img"])

    assert sorted(p.name for p in outcome.images) == ["bench-tiny-1.png", "bench-tiny-2.png"]
    for path in outcome.images:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (600, 350)
        assert len(data) < 100_000


def test_regenerating_is_stable_and_drops_stale_plots(place) -> None:
    write(place, "tiny", tiny_results())
    report.report(place["results"], place["doc"], place["img"])
    first_doc = place["doc"].read_text()
    first_png = (place["img"] / "bench-tiny-1.png").read_bytes()
    stale = place["img"] / "bench-tiny-9.png"
    stale.write_bytes(PNG_SIGNATURE)

    report.report(place["results"], place["doc"], place["img"])
    assert place["doc"].read_text() == first_doc  # markers survive their own rewrite
    assert (place["img"] / "bench-tiny-1.png").read_bytes() == first_png
    assert not stale.exists()


def test_results_without_markers_are_reported(place, capsys) -> None:
    write(place, "tiny", tiny_results())
    write(place, "orphan", {**tiny_results(), "name": "orphan"})
    before = place["doc"].read_text()

    status = report.main(
        ["--results", str(place["results"]), "--doc", str(place["doc"]), "--img", str(place["img"])]
    )
    err = capsys.readouterr().err
    assert status == 0
    assert "NOT IN DOC" in err and "orphan.json" in err and "<!-- bench:orphan:begin -->" in err
    assert (place["img"] / "bench-orphan-1.png").exists()
    assert "bench-orphan" not in place["doc"].read_text()
    assert place["doc"].read_text() != before  # tiny's section still got regenerated


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("{not json", "not a readable JSON results file"),
        ({"name": "bad", "command": "x", "date": "d"}, "missing 'tables'"),
        ({"name": "other", "command": "x", "date": "d", "tables": []}, "does not match"),
        (
            {"name": "bad", "command": "x", "date": "d",
             "tables": [{"title": "t", "columns": ["a", "b"], "rows": [[1]]}]},
            "table 1: row 1 has 1 cells for 2 columns",
        ),
        (
            {"name": "bad", "command": "x", "date": "d",
             "tables": [{"title": "t", "columns": ["a", "b"], "rows": [["x", "y"]],
                         "plot": {"kind": "bar", "x": "a", "y": ["b"], "ylabel": "ms"}}]},
            "plotted column 'b', row 1 is not a number",
        ),
        (
            {"name": "bad", "command": "x", "date": "d",
             "tables": [{"title": "t", "columns": ["a"], "rows": [],
                         "plot": {"kind": "pie", "x": "a", "y": ["a"], "ylabel": "ms"}}]},
            "plot kind 'pie'",
        ),
    ],
)  # fmt: skip
def test_a_malformed_results_file_is_a_clear_error_naming_it(place, payload, says) -> None:
    write(place, "tiny", tiny_results())
    bad = write(place, "bad", payload)
    before = place["doc"].read_text()

    with pytest.raises(report.ReportError) as caught:
        report.report(place["results"], place["doc"], place["img"])
    assert str(bad) in str(caught.value) and says in str(caught.value)
    assert place["doc"].read_text() == before  # checked before anything is written
    assert not place["img"].exists()


def test_the_command_line_exits_2_naming_the_bad_file(place) -> None:
    bad = write(place, "bad", "[]")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), "--results", str(place["results"]),
         "--doc", str(place["doc"]), "--img", str(place["img"])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"error: {bad}: expected a JSON object" in done.stderr


def test_broken_markers_are_an_error_naming_the_doc(place) -> None:
    write(place, "tiny", tiny_results())
    place["doc"].write_text(DOC.replace("<!-- bench:tiny:end -->", ""))
    with pytest.raises(report.ReportError, match=r"benchmarks\.md: .*bench:tiny:end"):
        report.report(place["results"], place["doc"], place["img"])


def test_save_then_report_round_trips(place, monkeypatch) -> None:
    """What bench/_results.save writes is what report.py reads."""
    import bench._results as results_module

    monkeypatch.setattr(results_module, "RESULTS", place["results"])
    table = Table("Saved", ["n", "ms"], plot=Plot("line", x="n", y=["ms"], ylabel="ms"))
    table.add(1, 0.25)
    table.add(2, 0.5)
    save("tiny", [table], "python bench/tiny.py")
    report.report(place["results"], place["doc"], place["img"])
    assert "| 1 | 0.25 |" in place["doc"].read_text()


def test_the_real_doc_has_markers_for_every_benchmark(tmp_path: Path) -> None:
    """docs/benchmarks.md can take each benchmark's results, and report.py runs on it."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = {p.stem for p in (ROOT / "bench").glob("[!_]*.py")} - {"report"}
    for name in sorted(scripts | {"persistence"}):  # persistence.py is being written
        assert report.replace_section(text, name, "x") is not None, name
    doc = tmp_path / "benchmarks.md"
    shutil.copy(ROOT / "docs" / "benchmarks.md", doc)
    outcome = report.report(ROOT / "bench" / "results", doc, tmp_path / "img")
    assert not outcome.unplaced
