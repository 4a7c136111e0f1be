"""``InMemorySaver``: the checkpointer for tests, notebooks and single-process use.

It keeps everything in this process, but stores exactly what a durable saver stores:
serialized headers, metadata, writes and per-channel blobs (:mod:`relaygraph.persistence.
blobs`). So a value that could not be saved to SQLite or Redis fails here too, at ``put``
time, and nothing a caller does to a value after ``put`` (or to one it read back) can
change what is stored.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from relaygraph.persistence.base import (
    ANY_HEAD,
    SPECIAL_WRITE_INDEX,
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    checkpoint_id_of,
    checkpoint_ns_of,
    make_config,
    metadata_matches,
    thread_id_of,
)
from relaygraph.persistence.blobs import (
    ResolvedCache,
    blobs_for_put,
    decode_blob,
    decode_header,
    encode_header,
    load_channel_values,
)
from relaygraph.persistence.errors import CheckpointConflict, CheckpointExistsError
from relaygraph.persistence.serde import Serializer

__all__ = ["InMemorySaver", "MemorySaver"]


@dataclass
class _Stored:
    """One checkpoint as stored: serialized header and metadata, plus its parent's id."""

    header: bytes
    metadata: bytes
    parent_id: str | None
    versions: dict[str, str]  # decoded copy of the header's, for garbage collection


@dataclass
class _Namespace:
    """A thread's checkpoints in one namespace, their writes, blobs and head."""

    checkpoints: dict[str, _Stored] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # checkpoint ids, ascending
    head: str | None = None
    # checkpoint id -> (task_id, index) -> (task_id, channel, serialized value, task_path)
    writes: dict[str, dict[tuple[str, int], tuple[str, str, bytes, str]]] = field(
        default_factory=dict
    )
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def copy(self) -> _Namespace:
        return _Namespace(
            checkpoints=dict(self.checkpoints),
            order=list(self.order),
            head=self.head,
            writes={cid: dict(w) for cid, w in self.writes.items()},
            blobs=dict(self.blobs),
        )


class _ScopedCache:
    """One thread's and namespace's view of the saver-wide cache of resolved values."""

    def __init__(self, cache: ResolvedCache, thread_id: str, checkpoint_ns: str) -> None:
        self._cache = cache
        self._prefix = f"{thread_id}\x00{checkpoint_ns}\x00"

    def get(self, channel: str, version: str) -> Any:
        return self._cache.get(self._prefix + channel, version)

    def put(
        self, channel: str, version: str, value: Any, base: tuple[str, int] | None = None
    ) -> None:
        self._cache.put(self._prefix + channel, version, value, base)


class InMemorySaver(BaseCheckpointSaver):
    """Checkpoints in a dict of this process, with the full saver contract.

    Thread-safe (one lock). Values are stored serialized, so callers never share objects
    with the store — except immutable ones: an LRU of ``cache_size`` resolved lists (message
    histories) keeps reading a long thread's head from decoding its whole history again.
    Only lists whose items are all immutable (scalars, frozen pydantic models such as
    messages) are cached, and each read gets its own copy of the list.
    """

    def __init__(self, *, serde: Serializer | None = None, cache_size: int = 256) -> None:
        super().__init__(serde=serde)
        self._threads: dict[str, dict[str, _Namespace]] = {}
        self._lock = threading.RLock()
        self._cache = ResolvedCache(cache_size)

    # -- reading ---------------------------------------------------------------------

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the namespace's head when it names none."""
        thread_id = thread_id_of(config)
        checkpoint_ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        with self._lock:
            space = self._threads.get(thread_id, {}).get(checkpoint_ns)
            if space is None:
                return None
            checkpoint_id = checkpoint_id or space.head
            if checkpoint_id is None or checkpoint_id not in space.checkpoints:
                return None
            return self._load(thread_id, checkpoint_ns, space, checkpoint_id)

    def list(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by id) of one thread, one namespace, or everything.

        A config without a ``checkpoint_ns`` key lists every namespace of the thread; a
        ``checkpoint_id`` in the config lists that checkpoint only; ``config=None`` lists
        every thread.
        """
        configurable = (config or {}).get("configurable") or {}
        only_id = checkpoint_id_of(config)
        before_id = checkpoint_id_of(before)
        with self._lock:
            if config is None:
                threads = list(self._threads)
            else:
                threads = [thread_id_of(config)]
            candidates: list[tuple[str, str, str]] = []
            for thread_id in threads:
                spaces = self._threads.get(thread_id, {})
                for checkpoint_ns, space in spaces.items():
                    if "checkpoint_ns" in configurable and checkpoint_ns != checkpoint_ns_of(
                        config
                    ):
                        continue
                    for checkpoint_id in space.order:
                        if only_id is not None and checkpoint_id != only_id:
                            continue
                        if before_id is not None and checkpoint_id >= before_id:
                            continue
                        candidates.append((checkpoint_id, thread_id, checkpoint_ns))
            candidates.sort(reverse=True)
            results: list[CheckpointTuple] = []
            for checkpoint_id, thread_id, checkpoint_ns in candidates:
                if limit is not None and len(results) >= limit:
                    break
                space = self._threads[thread_id][checkpoint_ns]
                if filter:
                    stored = space.checkpoints[checkpoint_id]
                    metadata = self.serde.loads(stored.metadata, where="checkpoint metadata")
                    if not metadata_matches(metadata, filter):
                        continue
                results.append(self._load(thread_id, checkpoint_ns, space, checkpoint_id))
        return iter(results)

    def _load(
        self, thread_id: str, checkpoint_ns: str, space: _Namespace, checkpoint_id: str
    ) -> CheckpointTuple:
        stored = space.checkpoints[checkpoint_id]
        checkpoint = decode_header(stored.header)
        checkpoint["channel_values"] = load_channel_values(
            checkpoint["channel_versions"],
            lambda channel, version: space.blobs.get((channel, version)),
            serde=self.serde,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            cache=_ScopedCache(self._cache, thread_id, checkpoint_ns)
            if self._cache.maxsize
            else None,
        )
        metadata = self.serde.loads(stored.metadata, where="checkpoint metadata")
        writes = [
            PendingWrite(task_id, channel, self.serde.loads(value, where=f"write {channel!r}"))
            for task_id, channel, value, _ in space.writes.get(checkpoint_id, {}).values()
        ]
        parent = (
            make_config(thread_id, checkpoint_ns, stored.parent_id) if stored.parent_id else None
        )
        return CheckpointTuple(
            config=make_config(thread_id, checkpoint_ns, checkpoint_id),
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=parent,
            pending_writes=writes,
        )

    # -- writing ---------------------------------------------------------------------

    def put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Store ``checkpoint`` as a child of ``config``'s checkpoint and make it the head."""
        thread_id = thread_id_of(config)
        checkpoint_ns = checkpoint_ns_of(config)
        parent_id = checkpoint_id_of(config)
        checkpoint_id = checkpoint["id"]
        versions = dict(checkpoint.get("channel_versions") or {})
        for channel in checkpoint.get("channel_values") or {}:
            if channel not in versions:
                raise ValueError(
                    f"checkpoint {checkpoint_id!r}: channel {channel!r} has a value but no "
                    "version in channel_versions, so it cannot be stored"
                )
        header = encode_header(checkpoint)
        meta = self.serde.dumps(metadata, where="checkpoint metadata")
        with self._lock:
            spaces = self._threads.get(thread_id, {})
            space = spaces.get(checkpoint_ns) or _Namespace()
            # Immutable: the same checkpoint again is a no-op (a retry), other content under
            # a stored id is refused (after the compare-and-set, which speaks first).
            stored = space.checkpoints.get(checkpoint_id)
            if stored is not None and (stored.header, stored.metadata, stored.parent_id) == (
                header,
                meta,
                parent_id,
            ):
                return make_config(thread_id, checkpoint_ns, checkpoint_id)
            if expected_head is not ANY_HEAD and space.head != expected_head:
                raise CheckpointConflict(thread_id, checkpoint_ns, expected_head, space.head)
            if stored is not None:
                raise CheckpointExistsError(thread_id, checkpoint_ns, checkpoint_id)
            # Also write any version the caller forgot in new_versions but nothing stores.
            wanted = dict(new_versions)
            for channel, version in versions.items():
                if channel not in wanted and (channel, version) not in space.blobs:
                    wanted[channel] = version
            wanted = {c: v for c, v in wanted.items() if versions.get(c) == v}
            blobs = blobs_for_put(
                self.serde, checkpoint, wanted, lambda c, v: (c, v) in space.blobs
            )
            # Everything is serialized: from here on nothing can fail half-way.
            if any(space.blobs.get(key, blob) != blob for key, blob in blobs.items()):
                self._cache.clear()  # a version re-stored with other content
            space.blobs.update(blobs)
            if checkpoint_id not in space.checkpoints:
                bisect.insort(space.order, checkpoint_id)
            space.checkpoints[checkpoint_id] = _Stored(header, meta, parent_id, versions)
            space.head = checkpoint_id
            self._threads.setdefault(thread_id, {})[checkpoint_ns] = space
        if self._cache.maxsize:
            # The caller's lists are the values just stored: the next read needs no decoding
            # (only lists of immutable items are kept, see ResolvedCache).
            scoped = _ScopedCache(self._cache, thread_id, checkpoint_ns)
            values = checkpoint.get("channel_values") or {}
            appends = checkpoint.get("channel_appends") or {}
            for channel, version in wanted.items():
                if isinstance(values.get(channel), list):
                    scoped.put(channel, version, values[channel], appends.get(channel))
        return make_config(thread_id, checkpoint_ns, checkpoint_id)

    def put_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes; first write per (task_id, index) wins, special ones replace."""
        thread_id = thread_id_of(config)
        checkpoint_ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs a config naming a checkpoint_id")
        encoded = [
            (
                channel,
                SPECIAL_WRITE_INDEX.get(channel, index),
                self.serde.dumps(value, where=f"write {channel!r} of task {task_id!r}"),
            )
            for index, (channel, value) in enumerate(writes)
        ]
        with self._lock:
            space = self._threads.setdefault(thread_id, {}).setdefault(checkpoint_ns, _Namespace())
            task_writes = space.writes.setdefault(checkpoint_id, {})
            for channel, index, data in encoded:
                key = (task_id, index)
                if key in task_writes and channel not in SPECIAL_WRITE_INDEX:
                    continue
                task_writes[key] = (task_id, channel, data, task_path)

    # -- retention -------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Forget a thread entirely (every namespace)."""
        with self._lock:
            if self._threads.pop(str(thread_id), None) is not None:
                self._cache.clear()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's history, writes and heads to an empty thread id."""
        source, target = str(source_thread_id), str(target_thread_id)
        with self._lock:
            if self._has_checkpoints(target):
                raise ValueError(
                    f"copy_thread: target thread {target!r} already has checkpoints; "
                    "delete it first or choose another thread id"
                )
            spaces = self._threads.get(source, {})
            self._threads[target] = {ns: space.copy() for ns, space in spaces.items()}
            if not self._threads[target]:
                del self._threads[target]

    def _has_checkpoints(self, thread_id: str) -> bool:
        return any(space.checkpoints for space in self._threads.get(thread_id, {}).values())

    def prune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Keep the newest ``keep_last`` checkpoints (and always the head) per namespace."""
        if keep_last < 1:
            raise ValueError(f"prune: keep_last must be at least 1, got {keep_last}")
        if isinstance(thread_ids, str):
            thread_ids = [thread_ids]
        with self._lock:
            for thread_id in thread_ids:
                for space in self._threads.get(str(thread_id), {}).values():
                    keep = set(space.order[-keep_last:])
                    if space.head is not None:
                        keep.add(space.head)
                    self._drop(space, [cid for cid in space.order if cid not in keep])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by the given runs."""
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        doomed_runs = {str(run_id) for run_id in run_ids}
        with self._lock:
            for thread_id, spaces in list(self._threads.items()):
                for space in spaces.values():
                    doomed = []
                    for checkpoint_id, stored in space.checkpoints.items():
                        metadata = self.serde.loads(stored.metadata, where="checkpoint metadata")
                        run_id = metadata.get("run_id")
                        if run_id is not None and str(run_id) in doomed_runs:
                            doomed.append(checkpoint_id)
                    self._drop(space, doomed)
                if not self._has_checkpoints(thread_id) and not any(
                    space.writes for space in spaces.values()
                ):
                    del self._threads[thread_id]

    def _drop(self, space: _Namespace, checkpoint_ids: Sequence[str]) -> None:
        """Remove checkpoints and their writes, move the head back, and drop unused blobs."""
        if not checkpoint_ids:
            return
        for checkpoint_id in checkpoint_ids:
            del space.checkpoints[checkpoint_id]
            space.writes.pop(checkpoint_id, None)
        space.order = [cid for cid in space.order if cid in space.checkpoints]
        if space.head not in space.checkpoints:
            space.head = space.order[-1] if space.order else None
        # Keep every blob a remaining checkpoint reads, following append chains to their base.
        live: set[tuple[str, str]] = set()
        for stored in space.checkpoints.values():
            for key in stored.versions.items():
                while key not in live and key in space.blobs:
                    live.add(key)
                    kind, base, _ = decode_blob(space.blobs[key])
                    if kind != "append" or base is None:
                        break
                    key = (key[0], base[0])
        space.blobs = {key: blob for key, blob in space.blobs.items() if key in live}

    # -- async twins: nothing here does I/O, so no thread hop ---------------------------

    async def aget_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        return self.get_tuple(config)

    async def alist(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        for item in self.list(config, filter=filter, before=before, limit=limit):
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
        return self.put(config, checkpoint, metadata, new_versions, expected_head=expected_head)

    async def aput_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        self.delete_thread(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Async :meth:`prune`."""
        self.prune(thread_ids, keep_last=keep_last)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        self.delete_for_runs(run_ids)

    # -- introspection (tests, benchmarks) ---------------------------------------------

    def stored_bytes(self, thread_id: str | None = None) -> int:
        """Bytes held for one thread (or all): headers, metadata, writes and blobs."""
        with self._lock:
            threads = [str(thread_id)] if thread_id is not None else list(self._threads)
            total = 0
            for tid in threads:
                for space in self._threads.get(tid, {}).values():
                    stored = space.checkpoints.values()
                    total += sum(len(s.header) + len(s.metadata) for s in stored)
                    total += sum(len(b) for b in space.blobs.values())
                    total += sum(len(w[2]) for ws in space.writes.values() for w in ws.values())
            return total


MemorySaver = InMemorySaver
"""LangGraph's older name for the in-memory checkpointer."""
