"""Regenerate docs/benchmarks.md's tables and PNG plots from the saved benchmark results.

    python bench/report.py [--results DIR] [--doc FILE] [--img DIR]

Reads every ``bench/results/<name>.json`` (written by the benchmarks through
``bench/_results.py``), draws each table that has a plot to ``docs/img/bench-<name>-<n>.png``
(``n`` is the table's position in the file, from 1), and rewrites what lies between
``<!-- bench:<name>:begin -->`` and ``<!-- bench:<name>:end -->`` in docs/benchmarks.md:
the command and date, the tables, their notes and image links. Everything outside the
markers (targets, explanations) is hand-written and kept as it is. A results file without
markers in the doc is reported (its plots are still drawn); markers without a results file
keep their content. ``make report`` runs this; ``make bench`` runs every benchmark first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import RESULTS, Plot, Table, load, row_texts  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
PLOT_KINDS = ("bar", "line")
# 6 x 3.5 inches at 100 dpi: 600 x 350 px, a few tens of KB per PNG.
FIGSIZE, DPI = (6.0, 3.5), 100


class ReportError(Exception):
    """A results file or the doc cannot be turned into the report; the message names it."""


@dataclass
class Results:
    """One benchmark's saved results, checked."""

    path: Path
    name: str
    command: str
    date: str
    machine: str
    tables: list[Table]


@dataclass
class Outcome:
    """What a report run did, for its summary and the tests."""

    images: list[Path] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def begin_marker(name: str) -> str:
    """The line that opens benchmark ``name``'s generated part of the doc."""
    return f"<!-- bench:{name}:begin -->"


def end_marker(name: str) -> str:
    """The line that closes benchmark ``name``'s generated part of the doc."""
    return f"<!-- bench:{name}:end -->"


MARKER = re.compile(r"<!-- bench:([A-Za-z0-9_.-]+):(begin|end) -->")


# -- reading results -----------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_table(raw: Any, where: str) -> None:
    """Raise ReportError (prefixed with ``where``) unless ``raw`` is a well-formed table."""
    if not isinstance(raw, dict):
        raise ReportError(f"{where}: a table must be an object, not {type(raw).__name__}")
    for key in ("title", "columns", "rows"):
        if key not in raw:
            raise ReportError(f"{where}: missing {key!r}")
    columns = raw["columns"]
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise ReportError(f"{where}: 'columns' must be a non-empty list of names")
    if not isinstance(raw["rows"], list):
        raise ReportError(f"{where}: 'rows' must be a list")
    for n, row in enumerate(raw["rows"], 1):
        if not isinstance(row, list) or len(row) != len(columns):
            size = len(row) if isinstance(row, list) else type(row).__name__
            raise ReportError(f"{where}: row {n} has {size} cells for {len(columns)} columns")
    plot = raw.get("plot")
    if plot is None:
        return
    if not isinstance(plot, dict) or not {"kind", "x", "y", "ylabel"} <= plot.keys():
        raise ReportError(f"{where}: 'plot' needs kind, x, y and ylabel")
    if plot["kind"] not in PLOT_KINDS:
        raise ReportError(f"{where}: plot kind {plot['kind']!r} is not one of {PLOT_KINDS}")
    if not isinstance(plot["y"], list) or not plot["y"]:
        raise ReportError(f"{where}: plot 'y' must be a non-empty list of columns")
    for column in [plot["x"], *plot["y"]]:
        if column not in columns:
            raise ReportError(f"{where}: plot column {column!r} is not a column of the table")
    for column in plot["y"]:
        index = columns.index(column)
        for n, row in enumerate(raw["rows"], 1):
            if row[index] is not None and not _is_number(row[index]):
                raise ReportError(f"{where}: plotted column {column!r}, row {n} is not a number")
    if plot["kind"] == "line":
        index = columns.index(plot["x"])
        if not all(_is_number(row[index]) for row in raw["rows"]):
            raise ReportError(f"{where}: line plot x column {plot['x']!r} must be all numbers")


def read_results(path: Path) -> Results:
    """Load and check one results file; any problem is a ReportError naming the file."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable JSON results file ({exc})") from exc
    if not isinstance(raw, dict):
        raise ReportError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    for key in ("name", "command", "date", "tables"):
        if key not in raw:
            raise ReportError(f"{path}: missing {key!r}")
    if raw["name"] != path.stem:
        raise ReportError(f"{path}: its name {raw['name']!r} does not match the file name")
    if not isinstance(raw["tables"], list):
        raise ReportError(f"{path}: 'tables' must be a list")
    for n, table in enumerate(raw["tables"], 1):
        _check_table(table, f"{path}: table {n}")
    try:
        loaded = load(path)
    except (TypeError, ValueError) as exc:  # e.g. a key Table or Plot does not know
        raise ReportError(f"{path}: {exc}") from exc
    return Results(
        path=path,
        name=raw["name"],
        command=str(raw["command"]),
        date=str(raw["date"]),
        machine=str(raw.get("machine", "")),
        tables=loaded["tables"],
    )


# -- plots ---------------------------------------------------------------------------------


def _values(table: Table, column: str) -> list[float]:
    index = table.columns.index(column)
    return [math.nan if row[index] is None else float(row[index]) for row in table.rows]


def draw(table: Table, path: Path) -> Path:
    """Draw ``table`` by its plot into a small PNG at ``path`` (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot: Plot = table.plot  # type: ignore[assignment]
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        if plot.kind == "bar":
            # Horizontal bars: the case labels are long; the first row is drawn on top.
            labels = [textwrap.fill(str(v), 30) for v in _column(table, plot.x)]
            count, height = len(labels), 0.8 / len(plot.y)
            for k, column in enumerate(plot.y):
                positions = [i + (k - (len(plot.y) - 1) / 2) * height for i in range(count)]
                ax.barh(positions, _values(table, column), height=height, label=column)
            ax.set_yticks(range(count), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(plot.ylabel + (" (log scale)" if plot.log else ""), fontsize=8)
            if plot.log:
                ax.set_xscale("log")
        else:
            x = _values(table, plot.x)
            for column in plot.y:
                ax.plot(x, _values(table, column), marker="o", markersize=3, label=column)
            ax.set_xlabel(plot.x, fontsize=8)
            ax.set_ylabel(plot.ylabel + (" (log scale)" if plot.log else ""), fontsize=8)
            if plot.log:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)  # a growth reads true only from zero
        ax.set_title(table.title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        # No timestamp or software metadata: the same results give the same bytes.
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def _column(table: Table, column: str) -> list[Any]:
    index = table.columns.index(column)
    return [row[index] for row in table.rows]


def image_path(img_dir: Path, name: str, number: int) -> Path:
    """Where plot ``number`` (the table's position, from 1) of benchmark ``name`` goes."""
    return img_dir / f"bench-{name}-{number}.png"


# -- Markdown ------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """``table`` as a GitHub Markdown table (cells formatted as the benchmark prints them)."""
    lines = [
        "| " + " | ".join(_escape(c) for c in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in row_texts(table)]
    return "\n".join(lines)


def section(results: Results, images: dict[int, Path], doc: Path) -> str:
    """The generated Markdown between one benchmark's markers (without the markers)."""
    machine = f" on {results.machine}" if results.machine else ""
    parts = [
        f"<!-- generated by bench/report.py from {_shown(results.path)}: "
        "edit outside the markers -->",
        f"`{results.command}`, {results.date}{machine}.",
    ]
    for number, table in enumerate(results.tables, 1):
        block = [f"**{_escape(table.title)}**", "", markdown_table(table)]
        if table.notes:
            block += ["", "<br>\n".join(_escape(note) for note in table.notes)]
        if number in images:
            link = Path(os.path.relpath(images[number], doc.parent)).as_posix()
            block += ["", f"![{_escape(table.title)}]({link})"]
        parts.append("\n".join(block))
    return "\n\n".join(parts)


def replace_section(text: str, name: str, body: str) -> str | None:
    """``text`` with the part between ``name``'s markers replaced by ``body``.

    None when the doc has no markers for ``name``; a ReportError when they are broken
    (one without the other, twice, or the end before the begin).
    """
    begin, end = begin_marker(name), end_marker(name)
    nb, ne = text.count(begin), text.count(end)
    if nb == 0 and ne == 0:
        return None
    if nb != 1 or ne != 1:
        raise ReportError(f"{begin} appears {nb} time(s) and {end} {ne} time(s); need one each")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise ReportError(f"{end} comes before {begin}")
    return f"{text[:start]}\n{body}\n{text[stop:]}"


def marked_names(text: str) -> list[str]:
    """The benchmark names that have a begin marker in ``text``, in order."""
    return [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "begin"]


# -- the report ----------------------------------------------------------------------------


def report(results_dir: Path = RESULTS, doc: Path = DOC, img_dir: Path = IMG) -> Outcome:
    """Draw every results file's plots and regenerate its part of ``doc``.

    Every results file is checked before anything is written, so a malformed one
    changes nothing.
    """
    paths = sorted(results_dir.glob("*.json"))
    every = [read_results(path) for path in paths]
    try:
        text = original = doc.read_text()
    except OSError as exc:
        raise ReportError(f"{doc}: cannot read the benchmarks doc ({exc})") from exc
    outcome = Outcome()
    for results in every:
        images = {}
        for number, table in enumerate(results.tables, 1):
            if table.plot is not None and table.rows:
                images[number] = draw(table, image_path(img_dir, results.name, number))
        for stale in img_dir.glob(f"bench-{results.name}-*.png"):
            if stale not in images.values():
                stale.unlink()  # a plot the benchmark no longer makes
        outcome.images += images.values()
        try:
            replaced = replace_section(text, results.name, section(results, images, doc))
        except ReportError as exc:
            raise ReportError(f"{doc}: {exc}") from exc
        if replaced is None:
            outcome.unplaced.append(results.name)
        else:
            text = replaced
            outcome.updated.append(results.name)
    have = {results.name for results in every}
    outcome.kept = [name for name in marked_names(text) if name not in have]
    if text != original:
        doc.write_text(text)
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate, print what was done; exit status 2 on a ReportError."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    parser.add_argument("--img", type=Path, default=IMG, help="where the PNG plots go")
    args = parser.parse_args(argv)
    try:
        outcome = report(args.results, args.doc, args.img)
    except ReportError as exc:
        print(f"bench/report.py: error: {exc}", file=sys.stderr)
        return 2
    for path in outcome.images:
        print(f"plot     {_shown(path)} ({path.stat().st_size // 1024} KB)")
    for name in outcome.updated:
        print(f"updated  {_shown(args.doc)}: {name}")
    for name in outcome.kept:
        print(f"kept     {_shown(args.doc)}: {name} (no {name}.json in {_shown(args.results)})")
    for name in outcome.unplaced:
        print(
            f"NOT IN DOC: {_shown(args.results / (name + '.json'))} has no "
            f"{begin_marker(name)} ... {end_marker(name)} in {_shown(args.doc)}; "
            "add the two markers where its tables belong",
            file=sys.stderr,
        )
    return 0


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it (POSIX separators)."""
    path = path.resolve()
    return (path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).as_posix()


if __name__ == "__main__":
    sys.exit(main())
