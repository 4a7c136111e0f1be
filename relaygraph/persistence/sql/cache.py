"""The SQL savers' cache of resolved message histories, shared by a saver's reads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from relaygraph.persistence.blobs import EMPTY, ResolvedCache

if TYPE_CHECKING:
    from relaygraph.persistence.sql.rows import Key

__all__ = ["ResolvedValues", "ScopedValues"]


class ResolvedValues:
    """Resolved list values (message histories) by blob key, shared by a saver's reads.

    Versions are immutable, so an entry stays right until its thread is deleted or pruned
    (the saver then clears the cache) or a put stores a version again (cleared too). Another
    process re-creating a deleted thread with the same version strings is not seen: relaygraph
    versions carry a random suffix, so only hand-made versions can collide that way.

    It also remembers, per thread and namespace, the last version of each channel it took
    in (:meth:`known`): a read can then ask the database for every blob but those.
    """

    def __init__(self, size: int) -> None:
        self._cache = ResolvedCache(size)
        self._hints: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        # Per thread and namespace: channel -> its last version known to hold no value.
        self._empty: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._hint_limit = max(16, size)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the cache holds nothing (``cache_size=0``)."""
        return self._cache.maxsize > 0

    @staticmethod
    def _channel(thread_id: str, checkpoint_ns: str, channel: str) -> str:
        return f"{thread_id}\x00{checkpoint_ns}\x00{channel}"

    def get(self, key: Key) -> Any:
        """A copy of the cached value, or EMPTY."""
        return self._cache.get(self._channel(*key[:3]), key[3])

    def put(self, key: Key, value: Any, base: tuple[str, int] | None = None) -> None:
        """Remember a resolved list (``base``: the cached list it extends, see ResolvedCache)."""
        if not self._cache.maxsize or not isinstance(value, list):
            return
        self._cache.put(self._channel(*key[:3]), key[3], value, base)
        with self._lock:
            hints = self._hints.setdefault((key[0], key[1]), {})
            hints[key[2]] = key[3]
            self._hints.move_to_end((key[0], key[1]))
            while len(self._hints) > self._hint_limit:
                self._hints.popitem(last=False)

    def known(self, thread_id: str, checkpoint_ns: str) -> dict[Key, Any]:
        """The values of this namespace's last remembered versions that are still cached."""
        with self._lock:
            hints = dict(self._hints.get((thread_id, checkpoint_ns), {}))
        out: dict[Key, Any] = {}
        for channel, version in hints.items():
            key = (thread_id, checkpoint_ns, channel, version)
            value = self.get(key)
            if value is not EMPTY:
                out[key] = value
        return out

    def mark_empty(self, thread_id: str, checkpoint_ns: str, versions: dict[str, str]) -> None:
        """Remember channel versions that hold no value (an empty blob): versions are
        immutable, so a version without a value stays so, and a read need not fetch it."""
        if not self.enabled or not versions:
            return
        with self._lock:
            known = self._empty.setdefault((thread_id, checkpoint_ns), {})
            known.update(versions)
            self._empty.move_to_end((thread_id, checkpoint_ns))
            while len(self._empty) > self._hint_limit:
                self._empty.popitem(last=False)

    def empty(self, thread_id: str, checkpoint_ns: str) -> set[Key]:
        """The keys of this namespace remembered by :meth:`mark_empty`."""
        with self._lock:
            known = self._empty.get((thread_id, checkpoint_ns))
            if not known:
                return set()
            return {(thread_id, checkpoint_ns, c, v) for c, v in known.items()}

    def clear(self) -> None:
        """Forget everything."""
        self._cache.clear()
        with self._lock:
            self._hints.clear()
            self._empty.clear()


class ScopedValues:
    """What resolve_channel sees: the values a read pinned, then the saver's cache."""

    def __init__(self, cache: ResolvedValues, pinned: dict[Key, Any], thread_id: str, ns: str):
        self._cache, self._pinned, self._scope = cache, pinned, (thread_id, ns)

    def get(self, channel: str, version: str) -> Any:
        key = (*self._scope, channel, version)
        if key in self._pinned:
            value = self._pinned[key]
            return list(value) if isinstance(value, list) else value
        return self._cache.get(key)

    def put(self, channel: str, version: str, value: Any) -> None:
        self._cache.put((*self._scope, channel, version), value)
