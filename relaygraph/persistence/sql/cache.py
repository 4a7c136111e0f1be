"""The SQL savers' cache of resolved message histories, shared by a saver's reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygraph.persistence.blobs import ResolvedCache

if TYPE_CHECKING:
    from relaygraph.persistence.sql.rows import Key

__all__ = ["ResolvedValues", "ScopedValues"]


class ResolvedValues:
    """Resolved list values (message histories) by blob key, shared by a saver's reads.

    Versions are immutable, so an entry stays right until its thread is deleted or pruned
    (the saver then clears the cache) or a put stores a version again (cleared too). Another
    process re-creating a deleted thread with the same version strings is not seen: relaygraph
    versions carry a random suffix, so only hand-made versions can collide that way.
    """

    def __init__(self, size: int) -> None:
        self._cache = ResolvedCache(size)

    @staticmethod
    def _channel(thread_id: str, checkpoint_ns: str, channel: str) -> str:
        return f"{thread_id}\x00{checkpoint_ns}\x00{channel}"

    def get(self, key: Key) -> Any:
        """A copy of the cached value, or EMPTY."""
        return self._cache.get(self._channel(*key[:3]), key[3])

    def put(self, key: Key, value: Any) -> None:
        """Remember a resolved list."""
        self._cache.put(self._channel(*key[:3]), key[3], value)

    def clear(self) -> None:
        """Forget everything."""
        self._cache.clear()


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
