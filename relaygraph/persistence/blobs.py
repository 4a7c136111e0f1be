"""The storage shape every checkpoint saver shares: a small header plus per-channel blobs.

A checkpoint is stored as

* a **header** (:func:`encode_header`): id, ts, v, channel_versions, versions_seen and
  updated_channels. The saver keeps the metadata and parent id next to it, in whatever
  form its backend indexes best;
* one **blob** per ``(channel, version)`` that changed in that checkpoint (``put``'s
  ``new_versions``), made by :func:`encode_blob`. Blobs are immutable and shared by every
  later checkpoint that still has that version, so a step rewrites only what changed.

A blob is one of three kinds (:func:`decode_blob`):

``full``   the serialized value;
``append`` the serialized list of items appended to the value stored at ``base`` =
           ``(base_version, base_len)``: value = value_at(base_version)[:base_len] + items.
           Append-only channels (messages) thus cost a step only their new items, and a
           conversation of n steps O(n) bytes rather than O(n^2);
``empty``  the channel has no value at this version (it was cleared).

:func:`blobs_for_put` applies this to a whole ``put``; :func:`resolve_channel` and
:func:`load_channel_values` read values back, walking append chains iteratively, with an
optional :class:`ResolvedCache` so that reading a long thread's head stays cheap.

Byte layout: ``F`` + payload | ``A`` + 4-byte big-endian n + n bytes of msgpack
``[base_version, base_len]`` + payload | ``E``. Payloads are :class:`Serializer` bytes.
"""

from __future__ import annotations

import contextlib
import contextvars
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, Protocol

import msgpack

from relaygraph.persistence.base import Checkpoint
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.persistence.serde import Serializer

__all__ = [
    "EMPTY",
    "BlobKind",
    "Fetch",
    "ResolvedCache",
    "ValueCache",
    "blobs_for_put",
    "decode_blob",
    "decode_header",
    "encode_blob",
    "encode_empty_blob",
    "encode_header",
    "isolated_reads",
    "load_channel_values",
    "share_instances_of",
    "resolve_channel",
]

BlobKind = Literal["full", "append", "empty"]
Fetch = Callable[[str, str], "bytes | None"]
"""``fetch(channel, version)``: the stored blob, or None when there is none."""

_FULL, _APPEND, _EMPTY_TAG = b"F", b"A", b"E"
_LEN = struct.Struct(">I")
_HEADER_KEYS = ("v", "id", "ts", "channel_versions", "versions_seen", "updated_channels")


class _Empty:
    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Any = _Empty()
"""What :func:`resolve_channel` returns for a channel that has no value at a version."""


# -- header ----------------------------------------------------------------------------


def encode_header(checkpoint: Checkpoint) -> bytes:
    """The checkpoint without its values: id, ts, v, versions and updated channels."""
    header = {key: checkpoint.get(key) for key in _HEADER_KEYS}
    header["v"] = header["v"] or 1
    header["channel_versions"] = header["channel_versions"] or {}
    header["versions_seen"] = header["versions_seen"] or {}
    return msgpack.packb(header, use_bin_type=True)


def decode_header(data: bytes) -> Checkpoint:
    """A :class:`Checkpoint` with empty ``channel_values`` (the saver fills them in).

    Raises :class:`SerializationError` when the bytes are not a header.
    """
    try:
        raw = msgpack.unpackb(data, raw=False)
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ValueError("not a checkpoint header")
        return Checkpoint(
            v=raw["v"],
            id=raw["id"],
            ts=raw["ts"],
            channel_values={},
            channel_versions=raw["channel_versions"],
            versions_seen=raw["versions_seen"],
            updated_channels=raw["updated_channels"],
            channel_appends={},
        )
    except Exception as exc:
        raise SerializationError(f"corrupt checkpoint header: {exc!r}") from exc


# -- blobs -----------------------------------------------------------------------------


def encode_blob(
    serde: Serializer,
    value: Any,
    base: tuple[str, int] | None = None,
    *,
    where: str | None = None,
) -> bytes:
    """A blob holding ``value``; with ``base=(version, n)`` only ``value[n:]`` is stored.

    ``value`` must then be a list whose first ``n`` items equal the value at ``version``
    (the runtime's ``checkpoint["channel_appends"]`` promise). Serialization errors name
    ``where``.
    """
    if base is None:
        return _FULL + serde.dumps(value, where=where)
    version, length = base
    if not isinstance(value, list) or len(value) < length:
        raise ValueError(f"append blob for {where or 'value'}: value does not extend its base")
    head = msgpack.packb([version, length], use_bin_type=True)
    return b"".join((_APPEND, _LEN.pack(len(head)), head, serde.dumps(value[length:], where=where)))


def encode_empty_blob() -> bytes:
    """The blob of a channel version that has no value."""
    return _EMPTY_TAG


def decode_blob(data: bytes) -> tuple[BlobKind, tuple[str, int] | None, bytes]:
    """Split a blob into ``(kind, base, payload)``; payload is still serialized.

    Raises ValueError when ``data`` is not a blob.
    """
    tag = data[:1]
    if tag == _FULL:
        return "full", None, data[1:]
    if tag == _APPEND:
        (size,) = _LEN.unpack_from(data, 1)
        start = 1 + _LEN.size
        version, length = msgpack.unpackb(data[start : start + size], raw=False)
        if not isinstance(version, str) or not isinstance(length, int) or length < 0:
            raise ValueError("bad append base")
        return "append", (version, length), data[start + size :]
    if tag == _EMPTY_TAG and len(data) == 1:
        return "empty", None, b""
    raise ValueError(f"unknown blob tag {tag!r}")


def blobs_for_put(
    serde: Serializer,
    checkpoint: Checkpoint,
    new_versions: Mapping[str, str],
    has_blob: Callable[[str, str], bool],
) -> dict[tuple[str, str], bytes]:
    """The blobs a ``put`` must store: ``{(channel, version): blob}`` for ``new_versions``.

    A channel listed in ``checkpoint["channel_appends"]`` becomes an append blob when
    ``has_blob(channel, base_version)`` says the saver holds the base, otherwise a full one.
    A channel absent from ``channel_values`` gets an empty blob. Everything is serialized
    before the caller stores anything, so an unstorable value fails the whole put.
    """
    values = checkpoint.get("channel_values") or {}
    appends = checkpoint.get("channel_appends") or {}
    out: dict[tuple[str, str], bytes] = {}
    for channel, version in new_versions.items():
        if channel not in values:
            out[channel, version] = _EMPTY_TAG
            continue
        base = appends.get(channel)
        if base is not None and (base[0] == version or not has_blob(channel, base[0])):
            base = None
        where = f"channel {channel!r}"
        out[channel, version] = encode_blob(
            serde, values[channel], tuple(base) if base else None, where=where
        )
    return out


# -- reading ---------------------------------------------------------------------------


class ValueCache(Protocol):
    """What :func:`resolve_channel` needs of a cache (e.g. :class:`ResolvedCache`)."""

    def get(self, channel: str, version: str) -> Any:
        """The cached value, or :data:`EMPTY`."""

    def put(self, channel: str, version: str, value: Any) -> None:
        """Remember a resolved value."""


_IMMUTABLE_TYPES: dict[type, bool] = {t: True for t in (str, bytes, int, float, bool, type(None))}
_SHARED_BASES: list[type] = []


def share_instances_of(base: type) -> None:
    """Let caches share instances of ``base`` (and its subclasses) between reads.

    For classes that are immutable by convention though not frozen, such as
    langchain_core's messages: a long conversation's warm read then costs a list copy, not
    a decode of its history. Reads a caller may change go through :func:`isolated_reads`.
    """
    if base not in _SHARED_BASES:
        _SHARED_BASES.append(base)
        _IMMUTABLE_TYPES.clear()
        _IMMUTABLE_TYPES.update({t: True for t in (str, bytes, int, float, bool, type(None))})


def _shareable(item: Any) -> bool:
    """True when readers may share ``item``: immutable scalars, frozen or shared models."""
    kind = type(item)
    known = _IMMUTABLE_TYPES.get(kind)
    if known is not None:
        return known
    if kind in (tuple, frozenset):
        return all(map(_shareable, item))
    return _shareable_type(kind)


def _all_shareable(items: list[Any]) -> bool:
    """:func:`_shareable` for every item, checking each distinct class once (C-speed scan)."""
    for kind in set(map(type, items)):
        if kind in (tuple, frozenset):
            if not all(_shareable(item) for item in items if type(item) is kind):
                return False
        elif not _shareable_type(kind):
            return False
    return True


def _shareable_type(kind: type) -> bool:
    known = _IMMUTABLE_TYPES.get(kind)
    if known is None:  # per class, so a long history costs one lookup per item
        config = getattr(kind, "model_config", None)
        known = bool(isinstance(config, dict) and config.get("frozen")) or any(
            issubclass(kind, base) for base in _SHARED_BASES
        )
        _IMMUTABLE_TYPES[kind] = known
    return known


_READ_MEMO: contextvars.ContextVar[ResolvedCache | None] = contextvars.ContextVar(
    "relaygraph_isolated_reads", default=None
)


@contextlib.contextmanager
def isolated_reads() -> Iterator[None]:
    """Within the block, savers decode values afresh instead of sharing their caches' objects.

    For reads handed to a caller who may change what they get (``graph.get_state``,
    history): nothing the caller does to those values, and nothing a node did in place to
    a message it received, shows in them or in later reads. Values read twice inside one
    block share one decode (a history's checkpoints share their messages).
    """
    token = _READ_MEMO.set(ResolvedCache(4096))
    try:
        yield
    finally:
        _READ_MEMO.reset(token)


class ResolvedCache:
    """A small thread-safe LRU of resolved list values, keyed by ``(channel, version)``.

    It keeps reading a long conversation's head from costing the whole history. Versions
    are immutable, so entries never go stale. Lists go in and come out as shallow copies
    (a caller appending to its list cannot change the cache); the items themselves are
    shared, so they must be immutable: frozen models, or classes given to
    :func:`share_instances_of` (messages). Other values are not cached. Inside
    :func:`isolated_reads` the block's own memo stands in for every cache.
    """

    def __init__(self, maxsize: int = 128) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, channel: str, version: str) -> Any:
        """A copy of the cached list, or :data:`EMPTY` when it is not cached."""
        memo = _READ_MEMO.get()
        if memo is not None and memo is not self:
            return memo.get(channel, version)
        with self._lock:
            value = self._data.get((channel, version))
            if value is None:
                return EMPTY
            self._data.move_to_end((channel, version))
        return list(value)

    def put(
        self, channel: str, version: str, value: Any, base: tuple[str, int] | None = None
    ) -> None:
        """Remember a resolved list (evicting the least recently used).

        ``base`` = ``(version, length)`` says ``value`` extends the list cached at that
        version item for item: only the new items then need the immutability check.
        """
        memo = _READ_MEMO.get()
        if memo is not None and memo is not self:
            memo.put(channel, version, value, base)
            return
        if self.maxsize <= 0 or not isinstance(value, list):
            return
        with self._lock:  # a version's value never changes: held already, nothing to check
            held = self._data.get((channel, version))
            if held is not None and len(held) == len(value):
                self._data.move_to_end((channel, version))
                return
        checked = 0
        if base is not None:
            with self._lock:
                cached = self._data.get((channel, base[0]))
            if cached is not None and len(cached) == base[1] <= len(value):
                checked = base[1]
        if not _all_shareable(value[checked:] if checked else value):
            return  # mutable items (dicts, lists, unfrozen models) must not be shared
        value = list(value)
        with self._lock:
            self._data[channel, version] = value
            self._data.move_to_end((channel, version))
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


def resolve_channel(
    channel: str,
    version: str,
    fetch: Fetch,
    *,
    serde: Serializer,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    cache: ValueCache | None = None,
) -> Any:
    """The value of ``channel`` at ``version`` (:data:`EMPTY` when it has none).

    Follows append blobs down to a full blob (or a cached value) iteratively, then
    rebuilds the list once, so the cost is linear in the number of items. A missing blob,
    a corrupt payload or a broken chain raises :class:`CorruptCheckpointError` naming the
    thread, namespace, checkpoint and channel.
    """

    def corrupt(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(
            f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace "
            f"{checkpoint_ns!r}): channel {channel!r} {problem}"
        )

    # Walk down: collect (version, base_len, suffix payload) until a resolvable bottom.
    chain: list[tuple[str, int, bytes]] = []
    current = version
    seen: set[str] = set()
    while True:
        cached = cache.get(channel, current) if cache is not None else EMPTY
        if cached is not EMPTY:
            bottom = cached
            break
        if current in seen:
            raise corrupt(f"has an append cycle at version {current!r}")
        seen.add(current)
        data = fetch(channel, current)
        if data is None:
            where = "" if current == version else f" (base of version {version!r})"
            raise corrupt(f"has no stored value for version {current!r}{where}")
        try:
            kind, base, payload = decode_blob(bytes(data))
        except Exception as exc:
            raise corrupt(f"has a corrupt blob at version {current!r}: {exc!r}") from exc
        if kind == "empty":
            if chain:
                raise corrupt(f"appends to version {current!r}, which has no value")
            return EMPTY
        if kind == "full":
            bottom = _load(serde, payload, corrupt, current)
            break
        assert base is not None
        chain.append((current, base[1], payload))
        current = base[0]

    value = bottom
    if chain:
        if not isinstance(value, list):
            raise corrupt(f"appends to version {current!r}, whose value is not a list")
        for at, base_len, payload in reversed(chain):
            if len(value) < base_len:
                raise corrupt(
                    f"version {at!r} extends {base_len} items but its base has {len(value)}"
                )
            suffix = _load(serde, payload, corrupt, at)
            if not isinstance(suffix, list):
                raise corrupt(f"has an append blob at version {at!r} that is not a list")
            del value[base_len:]
            value.extend(suffix)
    if cache is not None and isinstance(value, list):
        cache.put(channel, version, value)
    return value


def _load(
    serde: Serializer, payload: bytes, corrupt: Callable[[str], Exception], version: str
) -> Any:
    try:
        return serde.loads(payload, where=f"version {version!r}")
    except SerializationError as exc:
        raise corrupt(f"cannot be read at version {version!r}: {exc}") from exc


def load_channel_values(
    channel_versions: Mapping[str, str],
    fetch: Fetch,
    *,
    serde: Serializer,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    cache: ValueCache | None = None,
    channels: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``channel_values`` for a header's versions (channels without a value left out)."""
    values: dict[str, Any] = {}
    for channel in channels if channels is not None else channel_versions:
        value = resolve_channel(
            channel,
            channel_versions[channel],
            fetch,
            serde=serde,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            cache=cache,
        )
        if value is not EMPTY:
            values[channel] = value
    return values
