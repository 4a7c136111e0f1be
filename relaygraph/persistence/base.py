"""The checkpoint saver interface every backend implements.

A *checkpoint* is the state of one thread (and one checkpoint namespace, for subgraphs)
after one superstep. Savers store checkpoints, the *pending writes* of tasks that ran
against a checkpoint but whose step has not committed yet, and a per-namespace *head*: the
id of the newest checkpoint. The distributed executor relies on two guarantees that every
saver gives:

* ``put(..., expected_head=X)`` commits only if the head is still ``X`` (compare-and-set),
  otherwise it raises :class:`CheckpointConflict` and stores nothing;
* ``put_writes`` is idempotent per ``(task_id, index)``: the first write wins, so a task
  that runs twice never duplicates its writes.
"""

from __future__ import annotations

import asyncio
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypedDict

from relaygraph.persistence.errors import CheckpointConflict, MissingThreadIdError
from relaygraph.persistence.serde import Serializer

__all__ = [
    "ANY_HEAD",
    "ERROR",
    "INTERRUPT",
    "RESUME",
    "SPECIAL_WRITE_INDEX",
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointConflict",
    "CheckpointMetadata",
    "CheckpointTuple",
    "PendingWrite",
    "checkpoint_ns_of",
    "checkpoint_id_of",
    "next_version",
    "thread_id_of",
]

# Special write channels. Their writes replace an earlier write of the same task and channel
# (a retried task updates its error; a resumed interrupt is re-recorded); every other write
# is first-wins per (task_id, index).
ERROR = "__error__"
INTERRUPT = "__interrupt__"
RESUME = "__resume__"
SCHEDULED = "__scheduled__"
SPECIAL_WRITE_INDEX: dict[str, int] = {ERROR: -1, SCHEDULED: -2, INTERRUPT: -3, RESUME: -4}


class _AnyHead:
    """Sentinel for ``put(expected_head=ANY_HEAD)``: commit without compare-and-set."""

    def __repr__(self) -> str:
        return "ANY_HEAD"


ANY_HEAD: Any = _AnyHead()


class Checkpoint(TypedDict, total=False):
    """One superstep's state of a thread.

    ``channel_values`` holds the value of every non-empty channel. ``channel_appends``
    optionally says that a list channel's new value extends an older version of the same
    channel: ``{channel: (base_version, base_len)}`` means
    ``channel_values[channel][:base_len]`` equals the value stored at ``base_version``,
    so a saver may store only the suffix (append-only message lists then cost a step only
    their new messages).
    """

    v: int
    id: str
    ts: str
    channel_values: dict[str, Any]
    channel_versions: dict[str, str]
    versions_seen: dict[str, dict[str, str]]
    updated_channels: list[str] | None
    channel_appends: dict[str, tuple[str, int]]


CheckpointMetadata = dict[str, Any]
"""``source`` (input/loop/update/fork), ``step``, ``parents`` and scalar custom keys."""


class PendingWrite(NamedTuple):
    """A write recorded by a task against a checkpoint that has not been superseded."""

    task_id: str
    channel: str
    value: Any


@dataclass(frozen=True)
class CheckpointTuple:
    """A stored checkpoint with its config, metadata, parent and pending writes."""

    config: dict[str, Any]
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    parent_config: dict[str, Any] | None = None
    pending_writes: list[PendingWrite] = field(default_factory=list)


def next_version(current: str | None) -> str:
    """Return a channel version greater than ``current`` and unique across branches.

    The zero-padded counter keeps string order equal to numeric order; the random suffix
    makes two branches forked from one checkpoint never share a version, so a value that
    one branch still reads is never overwritten by another (design invariant 10).
    """
    if current is None:
        counter = 0
    else:
        counter = int(str(current).split(".", 1)[0])
    return f"{counter + 1:032d}.{secrets.token_hex(8)}"


def thread_id_of(config: Mapping[str, Any] | None) -> str:
    """The config's ``thread_id`` as a string; a clear error when it is missing or None."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise MissingThreadIdError(
            "A checkpointer requires a thread_id: pass "
            'config={"configurable": {"thread_id": "..."}}'
            + (" (thread_id was None)" if "thread_id" in configurable else "")
        )
    return str(thread_id)


def checkpoint_ns_of(config: Mapping[str, Any] | None) -> str:
    """The config's checkpoint namespace ("" for the root graph)."""
    return str(((config or {}).get("configurable") or {}).get("checkpoint_ns") or "")


def checkpoint_id_of(config: Mapping[str, Any] | None) -> str | None:
    """The checkpoint id the config points at, or None for "the latest"."""
    return ((config or {}).get("configurable") or {}).get("checkpoint_id") or None


def make_config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> dict[str, Any]:
    """The config that addresses one stored checkpoint."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """True when every key of ``filter`` is equal in ``metadata`` (the ``list`` filter)."""
    if not filter:
        return True
    return all(k in metadata and metadata[k] == v for k, v in filter.items())


class BaseCheckpointSaver(ABC):
    """Stores checkpoints, pending writes and heads; sync and async on one object.

    Subclasses implement the sync methods; the async twins run them in a worker thread
    unless a subclass overrides them with native async I/O.
    """

    serde: Serializer

    def __init__(self, *, serde: Serializer | None = None) -> None:
        self.serde = serde or Serializer()

    # -- reading ---------------------------------------------------------------------

    @abstractmethod
    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint ``config`` addresses (the head when it names no checkpoint_id)."""

    @abstractmethod
    def list(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, of one thread (and namespace, when the config names one).

        ``before`` keeps only checkpoints older than the one it addresses; ``filter``
        keeps those whose metadata has every given key with the given value.
        """

    def get(self, config: dict[str, Any]) -> Checkpoint | None:
        """The checkpoint alone, or None."""
        saved = self.get_tuple(config)
        return saved.checkpoint if saved else None

    # -- writing ---------------------------------------------------------------------

    @abstractmethod
    def put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Store ``checkpoint`` as a child of the checkpoint ``config`` names and make it the head.

        ``new_versions`` names the channels whose values changed since the parent: only those
        need writing. With ``expected_head`` (None meaning "the thread has no checkpoint"),
        the commit happens only if the namespace's head is still that id; otherwise
        :class:`CheckpointConflict` is raised and nothing is stored. Returns the config of
        the stored checkpoint.
        """

    @abstractmethod
    def put_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes against the checkpoint ``config`` names.

        Idempotent: the first write per ``(task_id, index)`` wins, except that the special
        channels of :data:`SPECIAL_WRITE_INDEX` replace an earlier write of theirs.
        """

    # -- retention -------------------------------------------------------------------

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and head of a thread, in every namespace."""

    @abstractmethod
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history to another thread id (which must be empty)."""

    @abstractmethod
    def prune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Keep only the newest ``keep_last`` checkpoints of each namespace of each thread."""

    @abstractmethod
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``."""

    def get_next_version(self, current: str | None, channel: str | None = None) -> str:
        """The version a channel gets when its value changes (see :func:`next_version`)."""
        return next_version(current)

    # -- async twins -----------------------------------------------------------------

    async def aget_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def aget(self, config: dict[str, Any]) -> Checkpoint | None:
        """Async :meth:`get`."""
        saved = await self.aget_tuple(config)
        return saved.checkpoint if saved else None

    async def alist(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Async :meth:`put`."""
        return await asyncio.to_thread(
            self.put, config, checkpoint, metadata, new_versions, expected_head=expected_head
        )

    async def aput_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Async :meth:`prune`."""
        await asyncio.to_thread(self.prune, thread_ids, keep_last=keep_last)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)
