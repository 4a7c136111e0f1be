"""The "Targets" table every benchmark ends with: an issue's targets, met or not, counted.

A benchmark checks each target of its issues on the run's own numbers and builds one
:class:`Target` per target. A target the run did not measure (a partial run, a size the
run did not reach, a number that could not be computed) has ``met=None``: it is neither met
nor missed, so :func:`targets_table` leaves it out of the rows (naming it in a note) and
:func:`met_line` out of the count. The table's last note, and the benchmark's last printed
line, is ``"N of M targets met"`` over the measured targets only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench._results import Table

COLUMNS = ["target", "measured", "met", "issue"]


@dataclass
class Target:
    """One target of an issue: what it asks, what was measured, met or not.

    ``met`` is None when this run did not measure the target.
    """

    what: str
    measured: str
    met: bool | None
    issue: int


def measured(found: Sequence[Target]) -> list[Target]:
    """The targets this run measured (met or missed), in order."""
    return [t for t in found if t.met is not None]


def met_line(found: Sequence[Target]) -> str:
    """``"N of M targets met"``, M counting only the targets the run measured."""
    judged = measured(found)
    return f"{sum(1 for t in judged if t.met)} of {len(judged)} targets met"


def targets_table(found: Sequence[Target], title: str) -> Table:
    """The measured targets, one row each, with how many were met as the last note.

    Targets the run did not measure get no row (a row would read as met or missed); a
    note before the count names them.
    """
    table = Table(title, list(COLUMNS))
    for target in measured(found):
        table.add(target.what, target.measured, "yes" if target.met else "**no**", target.issue)
    skipped = [t for t in found if t.met is None]
    if skipped:
        table.notes.append(
            "not measured by this run (not counted): "
            + "; ".join(f"{t.what} (issue {t.issue})" for t in skipped)
        )
    table.notes.append(met_line(found))
    return table


def title(issues: Sequence[int]) -> str:
    """``"Targets (issues 4, 17 and 14)"`` for ``[4, 17, 14]``."""
    names = [str(n) for n in issues]
    if len(names) == 1:
        return f"Targets (issue {names[0]})"
    return f"Targets (issues {', '.join(names[:-1])} and {names[-1]})"
