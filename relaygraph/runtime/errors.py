"""Errors of the graph runtime. Every one is a :class:`RelaygraphError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from relaygraph.persistence.errors import (
    CheckpointConflict,
    CorruptCheckpointError,
    MissingThreadIdError,
    RelaygraphError,
    SerializationError,
)

if TYPE_CHECKING:
    from relaygraph.runtime.types import Interrupt

__all__ = [
    "CheckpointConflict",
    "CorruptCheckpointError",
    "EmptyChannelError",
    "EmptyInputError",
    "GraphInterrupt",
    "GraphRecursionError",
    "InvalidResumeError",
    "InvalidUpdateError",
    "MissingThreadIdError",
    "NodeError",
    "RelaygraphError",
    "SerializationError",
]


class GraphRecursionError(RelaygraphError, RecursionError):
    """A run took more supersteps than ``config["recursion_limit"]`` allows.

    The default limit is 10007 supersteps, as in LangGraph 1.x.
    """


class InvalidUpdateError(RelaygraphError, ValueError):
    """A node, an input or ``update_state`` produced an update the graph cannot apply."""


class InvalidResumeError(RelaygraphError, RuntimeError):
    """``Command(resume=...)`` cannot be matched to a pending interrupt.

    Nothing is pending, several are pending and the answer is not a map by interrupt id,
    or the map names an unknown interrupt. (A RuntimeError, as LangGraph raises.)
    """


class EmptyChannelError(RelaygraphError, LookupError):
    """A channel was read before it received a value."""


class EmptyInputError(RelaygraphError, ValueError):
    """A run was started with no input and there is no thread state to continue from."""


class NodeError(RelaygraphError):
    """Internal wrapper; never escapes: the node's own exception is re-raised."""


class GraphInterrupt(Exception):
    """Raised inside a node by :func:`relaygraph.interrupt` to pause the run.

    Not an error: the executor catches it, records the interrupt against the task and
    returns control to the caller, who resumes with ``Command(resume=...)``.
    """

    def __init__(self, interrupts: Sequence[Interrupt] = ()) -> None:
        super().__init__(tuple(interrupts))
        self.interrupts: tuple[Interrupt, ...] = tuple(interrupts)
