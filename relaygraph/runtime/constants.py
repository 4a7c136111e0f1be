"""Reserved node and channel names shared by the graph API and the step algorithm."""

from __future__ import annotations

from relaygraph.persistence.base import ERROR, INTERRUPT, RESUME, SCHEDULED

__all__ = [
    "END",
    "ERROR",
    "INPUT",
    "INTERRUPT",
    "NO_WRITES",
    "NULL_TASK_ID",
    "RESERVED_NAMES",
    "RESUME",
    "RESUME_MAP",
    "RETURN",
    "SCHEDULED",
    "START",
    "TASKS",
    "branch_channel",
    "join_channel",
]

START = "__start__"
"""The virtual first node: it turns the graph's input into state writes."""
END = "__end__"
"""The virtual last node: an edge to END ends that branch."""

INPUT = "__input__"
"""Pseudo task that writes a run's input (and ``Command`` updates) into the checkpoint."""
TASKS = "__pregel_tasks"
"""Topic channel that carries ``Send`` packets to the next superstep."""
RETURN = "__return__"
RESUME_MAP = "__resume_map__"
"""Null-task write of a ``Command(resume={interrupt_id: value})`` (answers by interrupt id)."""
NO_WRITES = "__no_writes__"
"""Marker write of a task that finished without writing anything (so it is not re-run)."""
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
"""Task id of writes that belong to no task (a ``Command`` given as input)."""

RESERVED_NAMES = frozenset(
    {START, END, INPUT, TASKS, INTERRUPT, ERROR, RESUME, RESUME_MAP, SCHEDULED, RETURN, NO_WRITES}
)


def branch_channel(node: str) -> str:
    """The trigger channel an edge writes to wake ``node`` in the next superstep."""
    return f"branch:to:{node}"


SUBGRAPH_MODES = "__relaygraph_stream_modes"
"""The ``configurable`` key naming the modes whose events subgraphs pass up to the run
(``stream(subgraphs=True)``; ``Client.submit(subgraphs=True)`` on workers)."""


def join_channel(sources: tuple[str, ...], target: str) -> str:
    """The barrier channel of a fan-in edge ``add_edge([a, b], target)``."""
    return f"join:{'+'.join(sources)}:{target}"
