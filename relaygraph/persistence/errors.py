"""Errors raised by the persistence layer (re-exported from ``relaygraph``)."""

from __future__ import annotations

__all__ = [
    "CheckpointConflict",
    "CheckpointExistsError",
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "MissingThreadIdError",
    "RelaygraphError",
    "SerializationError",
]


class RelaygraphError(Exception):
    """Base class of every error relaygraph raises on purpose."""


class MissingThreadIdError(RelaygraphError, ValueError):
    """A checkpointed call was made without ``configurable.thread_id`` (or with None).

    A ValueError subclass so code written for LangGraph's ValueError still catches it.
    """


class CheckpointConflict(RelaygraphError):
    """A compare-and-set commit lost: the thread's head moved since the caller read it."""

    def __init__(
        self, thread_id: str, checkpoint_ns: str, expected: str | None, actual: str | None
    ):
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"thread {thread_id!r} (namespace {checkpoint_ns!r}) moved: expected head "
            f"{expected!r}, found {actual!r}; the checkpoint was not stored"
        )


class CheckpointExistsError(RelaygraphError, ValueError):
    """A ``put`` named a checkpoint id already stored with other content.

    Checkpoints are immutable: putting the very same checkpoint again is a no-op (a retry
    whose first reply was lost), putting other content under a stored id is refused and
    stores nothing.
    """

    def __init__(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> None:
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.checkpoint_id = checkpoint_id
        super().__init__(
            f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace "
            f"{checkpoint_ns!r}) is already stored with other content; checkpoints are "
            "immutable: store the change under a new checkpoint id"
        )


class CheckpointNotFoundError(RelaygraphError, LookupError):
    """A run or ``update_state`` named a ``checkpoint_id`` the thread does not have.

    LangGraph silently starts a new lineage there; relaygraph refuses, storing nothing.
    """

    def __init__(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> None:
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.checkpoint_id = checkpoint_id
        super().__init__(
            f"thread {thread_id!r} (namespace {checkpoint_ns!r}) has no checkpoint "
            f"{checkpoint_id!r}; nothing was written (omit checkpoint_id to use the latest)"
        )


class SerializationError(RelaygraphError, TypeError):
    """A value cannot be stored (or a stored payload cannot be read back)."""


class CorruptCheckpointError(RelaygraphError):
    """A stored checkpoint payload could not be decoded; names thread and checkpoint."""
