"""The one format every benchmark saves its tables in, so plots and docs are made from it.

A benchmark builds :class:`Table` objects (the numbers it prints), prints them with
:func:`print_table` and saves them with :func:`save` to ``bench/results/<name>.json``.
``bench/report.py`` turns every saved file into the Markdown tables of
``docs/benchmarks.md`` and PNG plots: a table with a :class:`Plot` gets one.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Plot:
    """How to draw a table: bars per row (``kind="bar"``) or lines over a numeric x column.

    ``x`` names the column giving the labels (bar) or the x values (line); ``y`` names the
    columns drawn, one bar group member or one line each.
    """

    kind: str
    x: str
    y: list[str]
    ylabel: str
    log: bool = False


@dataclass
class Table:
    """A titled table: column names, rows of cells (numbers or text), notes under it."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: Plot | None = None
    #: Optional format spec per column name (e.g. ``{"relaygraph": ".3f"}``) for the
    #: printed and Markdown cells; other columns use :func:`cell_text`'s default.
    formats: dict[str, str] = field(default_factory=dict)

    def add(self, *cells: Any) -> None:
        """Append a row; the number of cells must match the columns."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title!r}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))


def cell_text(value: Any, spec: str | None = None) -> str:
    """A cell as printed: floats with 2 decimals below 100, 1 above, None as an en dash.

    ``spec`` (a format spec such as ``".3f"``) overrides the default for numbers.
    """
    if value is None:
        return "\u2013"  # an en dash
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def row_texts(table: Table) -> list[list[str]]:
    """Every row's cells as text, each column in its format (see :attr:`Table.formats`)."""
    specs = [table.formats.get(column) for column in table.columns]
    return [[cell_text(c, spec) for c, spec in zip(row, specs, strict=True)] for row in table.rows]


def print_table(table: Table) -> None:
    """Print a table aligned in columns for the terminal."""
    texts = [table.columns, *row_texts(table)]
    widths = [max(len(row[i]) for row in texts) for i in range(len(table.columns))]
    print(f"\n{table.title}")
    for n, row in enumerate(texts):
        first = row[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        print(f"  {first}  {rest}")
        if n == 0:
            print("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))
    for note in table.notes:
        print(f"  {note}")


def save(name: str, tables: list[Table], command: str) -> Path:
    """Write ``bench/results/<name>.json``: the tables and the command that made them."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "name": name,
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "tables": [asdict(t) for t in tables],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a results file back, tables as :class:`Table` objects."""
    payload = json.loads(path.read_text())
    tables = []
    for raw in payload["tables"]:
        plot = Plot(**raw["plot"]) if raw.get("plot") else None
        tables.append(Table(**{**raw, "plot": plot}))
    return {**payload, "tables": tables}
