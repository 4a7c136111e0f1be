"""Use any relaygraph saver as a LangGraph checkpointer.

:class:`LangGraphCheckpointer` implements LangGraph's ``BaseCheckpointSaver`` on top of a
relaygraph :class:`~relaygraph.persistence.base.BaseCheckpointSaver`, so a LangGraph graph can
keep its threads in relaygraph's SQLite, PostgreSQL or Redis savers::

    from langgraph.graph import StateGraph
    from relaygraph.persistence.langgraph import LangGraphCheckpointer
    from relaygraph.persistence.sqlite import SqliteSaver

    graph = builder.compile(checkpointer=LangGraphCheckpointer(SqliteSaver(":memory:")))

relaygraph's own serializer is an allow-list that knows nothing of LangChain objects, so every
channel value and every write is first turned into a ``(type, bytes)`` pair with LangGraph's
serializer (``serde``, strict by default: see ``allowed_types``) and stored as that pair; a
list value is stored as a list of pairs, so that a step which only appended to it (a
message list) stores only the new items. The checkpoint header (ids, versions,
``versions_seen``, ``updated_channels``) and the metadata are stored as they are; LangGraph's
int versions are kept as zero-padded strings and read back as ints. Reading reverses all
this. Stored data is never unpickled, whatever ``serde`` allows.

Requires the ``langgraph`` extra (``pip install relaygraph[langgraph]``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

try:
    from langgraph.checkpoint.base import (
        BaseCheckpointSaver as LGBaseCheckpointSaver,
    )
    from langgraph.checkpoint.base import (
        ChannelVersions,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.base import (
        Checkpoint as LGCheckpoint,
    )
    from langgraph.checkpoint.base import (
        CheckpointMetadata as LGCheckpointMetadata,
    )
    from langgraph.checkpoint.base import (
        CheckpointTuple as LGCheckpointTuple,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "relaygraph.persistence.langgraph needs LangGraph: pip install 'relaygraph[langgraph]'"
    ) from exc

from relaygraph.persistence import base as rg
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError

__all__ = ["PENDING_SENDS_CHANNEL", "LangGraphCheckpointer", "as_langgraph"]

PENDING_SENDS_CHANNEL = "__relaygraph_lg_pending_sends__"
"""Hidden channel that carries a pre-v4 checkpoint's ``pending_sends`` (only when non-empty)."""

Pair = tuple[str, bytes]
"""A value as LangGraph's serializer makes it: ``(type, bytes)``."""

_EMPTY = "empty"  # LangGraph's own "no value" marker; read as absent if ever stored
_PICKLE = "pickle"


def _strict_serde(allowed_types: Iterable[type | tuple[str, ...]]) -> JsonPlusSerializer:
    # LangGraph's built-in safe types (messages, Send, Interrupt, datetimes, ...) plus the
    # given ones; under LANGGRAPH_STRICT_MSGPACK a compiled graph also adds its state
    # schema's types through ``with_allowlist``.
    return JsonPlusSerializer(allowed_msgpack_modules=list(allowed_types) or None)


class LangGraphCheckpointer(LGBaseCheckpointSaver[str]):
    """A LangGraph checkpointer that stores everything in a relaygraph saver.

    Args:
        saver: the relaygraph saver that holds the data (any backend).
        serde: LangGraph serializer for channel values and writes. Defaults to a strict
            ``JsonPlusSerializer``: LangGraph's safe types (messages, ``Send``,
            ``Interrupt``, datetimes, ...) plus ``allowed_types``; any other class is read
            back as its fields (a dict), with LangGraph's "Blocked deserialization" warning,
            instead of importing the module that stored data names. A serializer with
            ``pickle_fallback=True`` is refused.
        allowed_types: classes (or ``(module, name)`` tuples) of your state that the
            default serializer may rebuild, e.g. your dataclasses and pydantic models.

    Commits are unconditional (LangGraph has no compare-and-set); the relaygraph saver
    still gives each checkpoint its parent and keeps writes idempotent per
    ``(task_id, index)``.
    """

    saver: rg.BaseCheckpointSaver

    def __init__(
        self,
        saver: rg.BaseCheckpointSaver,
        *,
        serde: SerializerProtocol | None = None,
        allowed_types: Iterable[type | tuple[str, ...]] = (),
    ) -> None:
        allowed_types = list(allowed_types)
        if serde is not None and allowed_types:
            raise TypeError("pass either serde or allowed_types, not both")
        if getattr(serde, "pickle_fallback", False):
            raise ValueError(
                "LangGraphCheckpointer refuses a serializer with pickle_fallback=True: "
                "relaygraph never unpickles stored data"
            )
        super().__init__(serde=serde or _strict_serde(allowed_types))
        self.saver = saver
        self._lists = _ListTracker()

    # -- value conversion ------------------------------------------------------------

    def _dumps(self, value: Any) -> tuple[str, bytes]:
        type_, data = self.serde.dumps_typed(value)
        if type_ == _PICKLE:
            raise SerializationError(
                f"{type(value).__qualname__} can only be stored by pickling, which relaygraph "
                "never does"
            )
        return type_, data

    def _loads(self, stored: Any, *, where: str) -> Any:
        if (
            not isinstance(stored, (tuple, list))
            or len(stored) != 2
            or not isinstance(stored[0], str)
            or not isinstance(stored[1], (bytes, bytearray))
        ):
            raise CorruptCheckpointError(
                f"{where}: expected a (type, bytes) pair written by LangGraphCheckpointer, "
                f"found {type(stored).__name__}"
            )
        type_, data = stored
        if type_ == _PICKLE:
            raise CorruptCheckpointError(f"{where}: refusing to unpickle stored data")
        return self.serde.loads_typed((type_, bytes(data)))

    def _dumps_channel(self, value: Any) -> Pair | list[Pair]:
        # A list is stored item by item, so that the saver can keep only the items a step
        # appended (see _ListTracker); any other value as one pair.
        if type(value) is list:
            return [self._dumps(item) for item in value]
        return self._dumps(value)

    def _loads_channel(self, stored: Any, *, where: str) -> Any:
        if isinstance(stored, list) and not (stored and isinstance(stored[0], str)):
            return [self._loads(item, where=f"{where}[{i}]") for i, item in enumerate(stored)]
        return self._loads(stored, where=where)

    def _to_relaygraph(
        self, config: dict[str, Any], checkpoint: LGCheckpoint, new_versions: ChannelVersions
    ) -> tuple[rg.Checkpoint, dict[str, Any]]:
        """The relaygraph checkpoint and new versions for a LangGraph checkpoint.

        Only the channels in ``new_versions`` are serialized: the saver stores a value per
        (channel, version) and reads unchanged channels from their older versions. A changed
        channel without a value is left out, which the saver records as empty. A list that
        only grew since the parent checkpoint is marked in ``channel_appends``.
        """
        values = checkpoint["channel_values"]
        stored_values: dict[str, Any] = {
            ch: self._dumps_channel(values[ch]) for ch in new_versions if ch in values
        }
        versions = _versions_out(checkpoint["channel_versions"])
        versions_out = _versions_out(new_versions)
        pending_sends = checkpoint.get("pending_sends") or []
        if pending_sends:
            # Pre-v4 checkpoints only; keyed by the checkpoint id so no two share a version.
            stored_values[PENDING_SENDS_CHANNEL] = self._dumps(list(pending_sends))
            versions[PENDING_SENDS_CHANNEL] = checkpoint["id"]
            versions_out[PENDING_SENDS_CHANNEL] = checkpoint["id"]
        converted: rg.Checkpoint = {
            "v": checkpoint["v"],
            "id": checkpoint["id"],
            "ts": checkpoint["ts"],
            "channel_values": stored_values,
            "channel_versions": versions,
            "versions_seen": {k: _versions_out(v) for k, v in checkpoint["versions_seen"].items()},
            "updated_channels": checkpoint.get("updated_channels"),
        }
        appends = self._lists.appends(config, stored_values)
        if appends:
            converted["channel_appends"] = appends
        return converted, versions_out

    def _stored(self, config: dict[str, Any], converted: rg.Checkpoint) -> None:
        self._lists.remember(config, converted["channel_versions"], converted["channel_values"])

    def _from_relaygraph(
        self, saved: rg.CheckpointTuple, *, track: bool = False
    ) -> LGCheckpointTuple:
        """The LangGraph tuple for a stored relaygraph tuple.

        With ``track``, its lists are remembered as the base of the next put (a run reads
        the head with get_tuple, then commits its children).
        """
        conf = saved.config.get("configurable", {})
        where = (
            f"thread {conf.get('thread_id')!r} namespace {conf.get('checkpoint_ns', '')!r} "
            f"checkpoint {conf.get('checkpoint_id')!r}"
        )
        stored = saved.checkpoint
        values: dict[str, Any] = {}
        pending_sends: list[Any] = []
        for ch, blob in (stored.get("channel_values") or {}).items():
            if ch == PENDING_SENDS_CHANNEL:
                pending_sends = self._loads(blob, where=f"{where} pending_sends")
            elif not (isinstance(blob, (tuple, list)) and blob and blob[0] == _EMPTY):
                values[ch] = self._loads_channel(blob, where=f"{where} channel {ch!r}")
        if track:
            self._lists.remember(
                saved.config, stored.get("channel_versions") or {}, stored.get("channel_values")
            )
        versions = _versions_in(stored.get("channel_versions") or {})
        versions.pop(PENDING_SENDS_CHANNEL, None)
        checkpoint: LGCheckpoint = {
            "v": stored.get("v", 1),
            "id": stored["id"],
            "ts": stored.get("ts", ""),
            "channel_values": values,
            "channel_versions": versions,
            "versions_seen": {
                k: _versions_in(v) for k, v in (stored.get("versions_seen") or {}).items()
            },
            "updated_channels": stored.get("updated_channels"),
            "pending_sends": pending_sends,  # type: ignore[typeddict-unknown-key]
        }
        writes = [
            (w.task_id, w.channel, self._loads(w.value, where=f"{where} write {w.channel!r}"))
            for w in saved.pending_writes
        ]
        return LGCheckpointTuple(
            config=_copy_config(saved.config),
            checkpoint=checkpoint,
            metadata=dict(saved.metadata),  # type: ignore[arg-type]
            parent_config=_copy_config(saved.parent_config) if saved.parent_config else None,
            pending_writes=writes,
        )

    def _writes(self, writes: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return [(channel, self._dumps(value)) for channel, value in writes]

    # -- sync API --------------------------------------------------------------------

    def get_tuple(self, config: dict[str, Any]) -> LGCheckpointTuple | None:  # type: ignore[override]
        """The checkpoint ``config`` addresses (the thread's latest without checkpoint_id)."""
        saved = self.saver.get_tuple(config)
        return self._from_relaygraph(saved, track=True) if saved else None

    def list(  # type: ignore[override]
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[LGCheckpointTuple]:
        """Checkpoints newest first; ``filter`` matches metadata keys, ``before`` pages."""
        for saved in self.saver.list(config, filter=filter, before=before, limit=limit):
            yield self._from_relaygraph(saved)

    def put(  # type: ignore[override]
        self,
        config: dict[str, Any],
        checkpoint: LGCheckpoint,
        metadata: LGCheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> dict[str, Any]:
        """Store ``checkpoint`` as a child of the checkpoint ``config`` names."""
        converted, versions = self._to_relaygraph(config, checkpoint, new_versions)
        meta = dict(get_serializable_checkpoint_metadata(config, metadata))  # type: ignore[arg-type]
        stored = self.saver.put(config, converted, meta, versions)
        self._stored(stored, converted)
        return stored

    def put_writes(  # type: ignore[override]
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes (idempotent per ``(task_id, index)``)."""
        self.saver.put_writes(config, self._writes(writes), task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread."""
        self.saver.delete_thread(str(thread_id))
        self._lists.forget(str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is listed."""
        if run_ids:
            self.saver.delete_for_runs(list(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history (every namespace, with writes) to another thread."""
        self.saver.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"`` keeps the newest checkpoint per namespace; ``"delete"`` all."""
        ids = [str(t) for t in thread_ids]
        _check_strategy(strategy)
        if strategy == "delete":
            for thread_id in ids:
                self.saver.delete_thread(thread_id)
                self._lists.forget(thread_id)
        elif ids:
            self.saver.prune(ids, keep_last=1)

    def get_next_version(self, current: str | int | float | None, channel: Any = None) -> str:  # type: ignore[override]
        """A version greater than ``current``, unique across branches (relaygraph's rule)."""
        return self.saver.get_next_version(
            None if current is None else str(_version_out(current)), channel
        )

    # -- async API -------------------------------------------------------------------

    async def aget_tuple(self, config: dict[str, Any]) -> LGCheckpointTuple | None:  # type: ignore[override]
        """Async :meth:`get_tuple`."""
        saved = await self.saver.aget_tuple(config)
        return self._from_relaygraph(saved, track=True) if saved else None

    async def alist(  # type: ignore[override]
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LGCheckpointTuple]:
        """Async :meth:`list`."""
        async for saved in self.saver.alist(config, filter=filter, before=before, limit=limit):
            yield self._from_relaygraph(saved)

    async def aput(  # type: ignore[override]
        self,
        config: dict[str, Any],
        checkpoint: LGCheckpoint,
        metadata: LGCheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> dict[str, Any]:
        """Async :meth:`put`."""
        converted, versions = self._to_relaygraph(config, checkpoint, new_versions)
        meta = dict(get_serializable_checkpoint_metadata(config, metadata))  # type: ignore[arg-type]
        stored = await self.saver.aput(config, converted, meta, versions)
        self._stored(stored, converted)
        return stored

    async def aput_writes(  # type: ignore[override]
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await self.saver.aput_writes(config, self._writes(writes), task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self.saver.adelete_thread(str(thread_id))
        self._lists.forget(str(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        if run_ids:
            await self.saver.adelete_for_runs(list(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self.saver.acopy_thread(str(source_thread_id), str(target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        ids = [str(t) for t in thread_ids]
        _check_strategy(strategy)
        if strategy == "delete":
            for thread_id in ids:
                await self.saver.adelete_thread(thread_id)
                self._lists.forget(thread_id)
        elif ids:
            await self.saver.aprune(ids, keep_last=1)


def as_langgraph(
    saver: rg.BaseCheckpointSaver,
    *,
    serde: SerializerProtocol | None = None,
    allowed_types: Iterable[type | tuple[str, ...]] = (),
) -> LangGraphCheckpointer:
    """Wrap a relaygraph saver as a LangGraph checkpointer (see :class:`LangGraphCheckpointer`)."""
    return LangGraphCheckpointer(saver, serde=serde, allowed_types=allowed_types)


def _check_strategy(strategy: str) -> None:
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")


def _copy_config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "configurable": dict(config.get("configurable") or {})}


# LangGraph versions may be ints (its default counter); relaygraph's are strings. A
# non-negative int becomes its 32-digit zero-padded form, which sorts like the int, sorts
# below the versions relaygraph's ``next_version`` derives from it, and is read back as the
# int (relaygraph's own versions always carry a ".suffix", so they never look like one).
_PADDED_INT = 32


def _version_out(version: Any) -> Any:
    if type(version) is int and version >= 0:
        return f"{version:0{_PADDED_INT}d}"
    return version


def _version_in(version: Any) -> Any:
    if isinstance(version, str) and len(version) == _PADDED_INT and version.isdigit():
        return int(version)
    return version


def _versions_out(versions: Mapping[str, Any]) -> dict[str, Any]:
    return {ch: _version_out(v) for ch, v in versions.items()}


def _versions_in(versions: Mapping[str, Any]) -> dict[str, Any]:
    return {ch: _version_in(v) for ch, v in versions.items()}


class _ListTracker:
    """The serialized items of recently stored list channels, to spot append-only steps.

    When a put's list starts with exactly the items (byte for byte) of the same channel in
    the parent checkpoint, the saver is told so through ``channel_appends`` and stores only
    the new items: a conversation of n steps costs O(n) bytes, not O(n^2). A miss (evicted,
    another process wrote the parent, the list was edited) only means a full value is
    stored. Bounded LRUs; thread-safe.
    """

    def __init__(self, max_checkpoints: int = 256, max_lists: int = 64) -> None:
        self._max_checkpoints = max_checkpoints
        self._max_lists = max_lists
        self._versions: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._lists: OrderedDict[tuple[str, str, str, str], list[Pair]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _where(config: Mapping[str, Any] | None) -> tuple[str, str, str | None] | None:
        configurable = (config or {}).get("configurable") or {}
        if configurable.get("thread_id") is None:
            return None
        return (
            str(configurable["thread_id"]),
            str(configurable.get("checkpoint_ns") or ""),
            configurable.get("checkpoint_id"),
        )

    def remember(self, config: Mapping[str, Any], versions: Mapping[str, Any], values: Any) -> None:
        """Record a stored (or read) checkpoint's versions and its list values."""
        where = self._where(config)
        if where is None or where[2] is None:
            return
        thread, ns, checkpoint_id = where
        with self._lock:
            self._versions[thread, ns, checkpoint_id] = dict(versions)
            self._versions.move_to_end((thread, ns, checkpoint_id))
            while len(self._versions) > self._max_checkpoints:
                self._versions.popitem(last=False)
            for channel, value in (values or {}).items():
                if isinstance(value, list) and channel in versions:
                    key = (thread, ns, channel, str(versions[channel]))
                    self._lists[key] = value
                    self._lists.move_to_end(key)
            while len(self._lists) > self._max_lists:
                self._lists.popitem(last=False)

    def forget(self, thread_id: str) -> None:
        """Drop what is remembered of a deleted thread (its versions may be reused)."""
        with self._lock:
            for key in [k for k in self._versions if k[0] == thread_id]:
                del self._versions[key]
            for key in [k for k in self._lists if k[0] == thread_id]:
                del self._lists[key]

    def appends(
        self, config: Mapping[str, Any], values: Mapping[str, Any]
    ) -> dict[str, tuple[str, int]]:
        """``channel_appends`` for the lists of a child of the checkpoint ``config`` names."""
        where = self._where(config)
        if where is None or where[2] is None:
            return {}
        thread, ns, parent_id = where
        out: dict[str, tuple[str, int]] = {}
        with self._lock:
            parent_versions = self._versions.get((thread, ns, parent_id))
            if parent_versions is None:
                return {}
            for channel, value in values.items():
                base_version = parent_versions.get(channel)
                if not isinstance(value, list) or not isinstance(base_version, str):
                    continue
                base = self._lists.get((thread, ns, channel, base_version))
                if base and len(base) <= len(value) and value[: len(base)] == base:
                    out[channel] = (base_version, len(base))
        return out
