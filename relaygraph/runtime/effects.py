"""The effects a run asks its driver for: saver calls, task execution, stream output.

The run loop (:mod:`relaygraph.runtime.loop`) is a generator that yields these and gets
the result sent back, so one loop serves the sync driver, the asyncio driver and (with
its own driver) the distributed executor, and the loop itself does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relaygraph.runtime.algorithm import Task

__all__ = ["Emit", "Execute", "SaverCall", "TaskOutcome", "TaskRun"]


@dataclass
class SaverCall:
    """Call ``saver.<method>(*args, **kwargs)`` (or its ``a``-prefixed twin) and send back."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Emit:
    """A stream chunk for the caller: ``mode`` and payload, with the namespace it came from."""

    mode: str
    payload: Any
    namespace: tuple[str, ...] = ()


@dataclass
class TaskRun:
    """One task to execute, with everything the node call needs."""

    task: Task
    node: Any  # CompiledNode
    input: Any
    config: dict[str, Any]
    resume_values: list[Any] = field(default_factory=list)
    remaining_steps: int | None = None
    """Supersteps left before the recursion limit (LangGraph's ``RemainingSteps``)."""


@dataclass
class TaskOutcome:
    """What running a task produced."""

    task: Task
    writes: list[tuple[str, Any]] = field(default_factory=list)
    update: Any = None
    error: BaseException | None = None
    interrupts: tuple[Any, ...] = ()
    new_resume_values: list[Any] | None = None
    custom: list[Any] = field(default_factory=list)
    claimed_null_resume: bool = False


@dataclass
class Execute:
    """Run these tasks (concurrently); send back their outcomes in the same order.

    ``channels`` is the state the tasks read (for conditional edges); ``null_resume`` the
    run's unclaimed ``Command(resume=...)`` answer.
    """

    runs: list[TaskRun]
    channels: dict[str, Any] = field(default_factory=dict)
    null_resume: Any = None
    live: bool = False
    """The run streams what nodes write while they run: a lone task must not block the
    consumer either (it runs on a thread of its own)."""
