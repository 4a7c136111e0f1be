"""RedisSaver: checkpoints on plain Redis data structures (Redis >= 7, Valkey, Redis Cluster).

Every key of a thread carries the hash tag ``{<thread id>}``, so every script touches one
cluster slot. A thread owns a fixed set of twelve keys (see ``redis_lua/_common.lua`` for
the layout): headers, per-(channel, version) blobs, pending writes and the sorted-set
indexes all live in a few hashes and sorted sets, whatever the length of its history. That
keeps retention cheap: ``delete_thread`` is one ``DEL``, a TTL refresh a dozen ``EXPIRE``.

Writes and reads are Lua scripts (``redis_lua/*.lua``), each one round trip:

* ``commit``: stores header + changed blobs + index entries and moves the head only if it
  is still the expected one (compare-and-set); a lost race stores nothing and raises
  :class:`CheckpointConflict`. An append-only list is also sealed into immutable chunks of
  ``_CHUNK`` items (:meth:`RedisSaver._chunk_args`), so that a reader with no cache (another
  worker) fetches one chunk per ``_CHUNK`` items rather than one blob per step;
* ``read``: header, every blob the checkpoint needs (append chains followed through plain
  base pointers, so Lua never decodes msgpack) and the pending writes. The client tells the
  script which versions it already holds resolved, so reading the head of a long
  conversation transfers only what changed since the last read;
* ``writes``: pending writes, first write per (task, index) wins (HSETNX);
* ``window``/``drop``/``dump``/``restore``: listing, retention and copying.

Runs are found through one small set per run id (``<prefix>:run:{<run id>}``) holding the
threads it touched, pipelined in front of the commit (one round trip; on a cluster, where
it lives in another slot, once per run and thread, or on every commit with a TTL).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgpack

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
    EMPTY,
    ResolvedCache,
    blobs_for_put,
    decode_blob,
    decode_header,
    encode_blob,
    encode_empty_blob,
    encode_header,
    load_channel_values,
)
from relaygraph.persistence.errors import (
    CheckpointConflict,
    CheckpointExistsError,
    CorruptCheckpointError,
    SerializationError,
)
from relaygraph.persistence.serde import Serializer

try:  # redis is the optional "redis" extra; the module still imports without it
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from relaygraph.persistence.redis_lane import ScriptLane
except ImportError:  # pragma: no cover
    NoScriptError = type("NoScriptError", (Exception,), {})  # type: ignore[assignment,misc]
    RedisConnectionError = RedisTimeoutError = NoScriptError  # type: ignore[misc]
    ScriptLane = None  # type: ignore[assignment,misc]

__all__ = [
    "COMMIT_ATTEMPTS",
    "AsyncRedisSaver",
    "PreparedPut",
    "PreparedRead",
    "RedisSaver",
    "thread_tag",
]

_LUA_DIR = Path(__file__).with_name("redis_lua")
_SCRIPTS = ("commit", "writes", "read", "window", "drop", "dump", "restore")
# The order of KEYS every script receives (matches the constants in _common.lua).
_KEY_NAMES = ("heads", "hdr", "cv", "ix", "ixt", "blob", "base", "wv", "wx", "run", "rx", "seq")
_SEP = "\0"
_BLOBS_AT = 8  # where the commit script's per-blob arguments start (see commit.lua)
_WINDOW = 256  # index entries fetched per round trip when listing
# Items per sealed chunk of an append-only list (see RedisSaver._chunk_args): a cold read
# of n items fetches about n / _CHUNK chunks plus at most _CHUNK steps' blobs.
_CHUNK = 32
# A refused commit's status -> the _put_args keyword naming the channels to send otherwise.
_RESEND = {"missing_base": "missing_bases", "missing_blob": "unstored", "missing_chunks": "rechunk"}
COMMIT_ATTEMPTS = 4
"""Sends of one commit at most: the first, then one per kind of blobs the script asks for
again (:data:`_RESEND`)."""


@cache
def _script_source(name: str) -> str:
    common = (_LUA_DIR / "_common.lua").read_text()
    return common + "\n" + (_LUA_DIR / f"{name}.lua").read_text()


def thread_tag(thread_id: str) -> str:
    """The hash-tag body of a thread: the id with ``%``, ``{`` and ``}`` percent-encoded.

    Braces would end (or confuse) the ``{...}`` tag; encoding ``%`` too keeps the mapping
    one-to-one, so two thread ids never share keys.
    """
    return thread_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _plain(name: str, value: str) -> str:
    if _SEP in value:
        raise ValueError(f"{name} must not contain NUL characters: {value!r}")
    return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Header:
    """A stored header: the checkpoint without values, its parent and metadata."""

    checkpoint: Checkpoint
    parent_id: str | None
    metadata: CheckpointMetadata


class _ScopedCache:
    """Adapts the saver's shared :class:`ResolvedCache` to one thread and namespace.

    ``known`` holds values snapshotted before a read (the script skipped their blobs);
    every other value resolved is remembered in the shared cache and as a hint for the
    next read.
    """

    def __init__(self, saver: RedisSaver, scope: str, known: dict[tuple[str, str], Any]):
        self._saver = saver
        self._scope = scope
        self._known = known

    def get(self, channel: str, version: str) -> Any:
        value = self._known.get((channel, version), EMPTY)
        if value is not EMPTY:
            return list(value)
        return self._saver._cache.get(self._scope + channel, version)

    def put(
        self, channel: str, version: str, value: Any, base: tuple[str, int] | None = None
    ) -> None:
        if isinstance(value, list) and (channel, version) not in self._known:
            self._saver._cache.put(self._scope + channel, version, value, base)
            self._saver._remember(self._scope, channel, version)


class RedisSaver(BaseCheckpointSaver):
    """A checkpoint saver on Redis, sync and asyncio on one object.

    Build it from a URL (``RedisSaver.from_conn_string("redis://...")``, also ``rediss://``
    and URLs with credentials) or from clients you own (``client=`` a ``redis.Redis`` /
    ``redis.cluster.RedisCluster``, ``aclient=`` their asyncio twins; both must return
    bytes, i.e. ``decode_responses=False``). With a URL, ``cluster=None`` detects Redis
    Cluster. ``prefix`` starts every key; ``ttl`` (seconds) expires a whole thread after
    that long without a write (or a read, with ``refresh_on_read``).

    An LRU of ``cache_size`` resolved lists (0 turns it off) holds message histories whose
    items are all immutable (scalars, frozen models such as messages): reading a thread's
    head then transfers and decodes only the blobs added since this saver last read it, so
    a step costs the same at 1,000 messages as at 10. Each read gets its own list.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        aclient: Any = None,
        url: str | None = None,
        cluster: bool | None = None,
        prefix: str = "rg",
        ttl: float | None = None,
        refresh_on_read: bool = True,
        serde: Serializer | None = None,
        cache_size: int = 256,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if client is None and aclient is None and url is None:
            raise ValueError("RedisSaver needs a client, an aclient or a url")
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain braces (they make hash tags)")
        for given in (client, aclient):
            if given is not None and _decodes_responses(given):
                raise ValueError("RedisSaver needs a client with decode_responses=False")
        self.prefix = prefix
        self.ttl = None if not ttl else max(1, math.ceil(ttl))
        self.refresh_on_read = refresh_on_read
        self._url = url
        self._cluster = cluster
        self._client_kwargs = dict(client_kwargs or {})
        self._client = client
        self._owns_client = client is None
        self._aclient = aclient  # the caller's; else one client per event loop, made here
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]
        ] = weakref.WeakKeyDictionary()
        self._scripts: dict[str, Any] = {}
        self._lane: ScriptLane | None = None  # get_tuple's and put's own connections
        self._ascripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._cache = ResolvedCache(cache_size)
        # Per thread and namespace: channel -> (version, True when it has no value there).
        self._hints: OrderedDict[str, dict[str, tuple[str, bool]]] = OrderedDict()
        self._hint_limit = max(16, cache_size)
        self._runs_seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    # -- construction and clients ----------------------------------------------------

    @classmethod
    def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **kwargs: Any
    ) -> RedisSaver:
        """A saver owning clients made from ``url``; also a (async) context manager."""
        return cls(url=url, cluster=cluster, **kwargs)

    def __enter__(self) -> RedisSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RedisSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Close the sync client if this saver made it."""
        with self._lock:
            client, self._client = (self._client, None) if self._owns_client else (None, None)
            self._scripts = {}
            lane, self._lane = self._lane, None
        if lane is not None:
            lane.close()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the clients this saver made: sync, and asyncio of the running loop.

        Clients made for other (finished) loops cannot be closed from this one; they are
        dropped.
        """
        self.close()
        loop = asyncio.get_running_loop()
        with self._lock:
            made = self._aclients.get(loop)
            self._aclients = weakref.WeakKeyDictionary()
            self._ascripts = {}
        if made is not None:
            await made[0].aclose()

    def _is_cluster_url(self) -> bool:
        if self._cluster is None:
            import redis

            probe = redis.Redis.from_url(self._url, **self._client_kwargs)
            try:
                info = probe.info("cluster")
                self._cluster = bool(int(info.get("cluster_enabled", 0)))
            finally:
                probe.close()
        return bool(self._cluster)

    def _sync(self) -> tuple[Any, dict[str, Any]]:
        """The sync client and its registered scripts (made on first use)."""
        with self._lock:
            if self._client is None:
                if self._url is None:
                    raise TypeError(
                        "this RedisSaver has only an asyncio client: use the a* methods, "
                        "or build it with from_conn_string(url) or client="
                    )
                import redis
                from redis.cluster import RedisCluster

                if self._is_cluster_url():
                    self._client = RedisCluster.from_url(self._url, **self._client_kwargs)
                else:
                    self._client = redis.Redis.from_url(self._url, **self._client_kwargs)
            if not self._scripts:
                self._scripts = _register(self._client)
                if not _is_cluster_client(self._client) and hasattr(
                    self._client, "connection_pool"
                ):
                    self._lane = ScriptLane(self._client)
            return self._client, self._scripts

    def _eval(self, client: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
        """One script, by sha, on this thread's lane when there is one (see redis_lane)."""
        lane = self._lane
        if lane is not None and client is self._client:
            try:
                return lane.evalsha(script.sha, keys, args)
            except NoScriptError:  # first use on this server: load it, run it once
                return script(keys=keys, args=args, client=client)
            except (RedisConnectionError, RedisTimeoutError):
                pass  # again through the client, with its own retry policy
        return _call(client, script, keys, args)

    async def _async(self) -> tuple[Any, dict[str, Any]]:
        """The asyncio client (the caller's, or this loop's own) and its registered scripts.

        An asyncio connection belongs to the event loop that opened it, so a saver made
        from a URL keeps one client per loop: it works from ``asyncio.run`` after
        ``asyncio.run``, and from several loops in several threads at once.
        """
        if self._aclient is not None:
            with self._lock:
                if not self._ascripts:
                    self._ascripts = _register(self._aclient)
                return self._aclient, self._ascripts
        loop = asyncio.get_running_loop()
        made = self._aclients.get(loop)
        if made is not None:
            return made
        if self._url is None:
            raise TypeError(
                "this RedisSaver has only a sync client: use the sync methods, or build "
                "it with from_conn_string(url) or aclient="
            )
        import redis.asyncio as aredis
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

        if self._cluster is None:
            probe = aredis.Redis.from_url(self._url, **self._client_kwargs)
            try:
                info = await probe.info("cluster")
                self._cluster = bool(int(info.get("cluster_enabled", 0)))
            finally:
                await probe.aclose()
        if self._cluster:
            aclient = AsyncRedisCluster.from_url(self._url, **self._client_kwargs)
        else:
            aclient = aredis.Redis.from_url(self._url, **self._client_kwargs)
        made = (aclient, _register(aclient))
        with self._lock:
            self._aclients[loop] = made
        return made

    @property
    def is_cluster(self) -> bool:
        """True when the saver talks to a Redis Cluster."""
        if self._client is not None:
            return _is_cluster_client(self._client)
        if self._aclient is not None:
            return _is_cluster_client(self._aclient)
        return self._is_cluster_url()

    # -- keys ------------------------------------------------------------------------

    def thread_keys(self, thread_id: str) -> list[str]:
        """Every key of a thread, in the order the scripts expect."""
        base = f"{self.prefix}:{{{thread_tag(thread_id)}}}:"
        return [base + name for name in _KEY_NAMES]

    def run_key(self, run_id: str) -> str:
        """The set of threads a run committed checkpoints on."""
        return f"{self.prefix}:run:{{{thread_tag(run_id)}}}"

    def stored_bytes(self, thread_id: str) -> int:
        """Bytes Redis uses for a thread's keys (``MEMORY USAGE``, exact), for benchmarks."""
        client, _ = self._sync()
        total = 0
        for key in self.thread_keys(str(thread_id)):
            total += int(client.memory_usage(key, samples=0) or 0)
        return total

    def _read_ttl(self) -> int:
        return self.ttl if (self.ttl and self.refresh_on_read) else 0

    # -- resolved-value hints ----------------------------------------------------------

    @staticmethod
    def _scope(thread_id: str, checkpoint_ns: str) -> str:
        return f"{thread_id}{_SEP}{checkpoint_ns}{_SEP}"

    def _remember(self, scope: str, channel: str, version: str, empty: bool = False) -> None:
        """Hint that ``channel`` at ``version`` is resolved (``empty``: it has no value)."""
        if not self._cache.maxsize:
            return  # the cache is off: every read is a full read
        with self._lock:
            hints = self._hints.setdefault(scope, {})
            hints[channel] = (version, empty)
            self._hints.move_to_end(scope)
            while len(self._hints) > self._hint_limit:
                self._hints.popitem(last=False)

    def _known(self, thread_id: str, checkpoint_ns: str) -> dict[tuple[str, str], Any]:
        """Values of this namespace the cache still holds, and channel versions known to
        hold no value (:data:`EMPTY`): the read script skips their blobs."""
        scope = self._scope(thread_id, checkpoint_ns)
        with self._lock:
            hints = dict(self._hints.get(scope, {}))
        known = {}
        for channel, (version, empty) in hints.items():
            if empty:  # versions are immutable: a version without a value stays so
                known[channel, version] = EMPTY
                continue
            value = self._cache.get(scope + channel, version)
            if value is not EMPTY:
                known[channel, version] = value
        return known

    def _remember_empty(self, scope: str, checkpoint: Checkpoint) -> None:
        """Hint the channel versions a checkpoint just read from storage has no value at."""
        values = checkpoint.get("channel_values") or {}
        for channel, version in (checkpoint.get("channel_versions") or {}).items():
            if channel not in values:
                self._remember(scope, channel, str(version), empty=True)

    # -- encoding ----------------------------------------------------------------------

    def _put_args(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        expected_head: Any,
        missing_bases: frozenset[str] = frozenset(),
        unstored: frozenset[str] = frozenset(),
        rechunk: frozenset[str] = frozenset(),
    ) -> tuple[str, str, str, str | None, list[Any]]:
        thread_id = thread_id_of(config)
        ns = _plain("checkpoint_ns", checkpoint_ns_of(config))
        checkpoint_id = _plain("checkpoint id", str(checkpoint["id"]))
        parent_id = checkpoint_id_of(config)
        metadata = dict(metadata or {})
        versions = {ch: str(v) for ch, v in (checkpoint.get("channel_versions") or {}).items()}
        for channel in checkpoint.get("channel_values") or {}:
            if channel not in versions:
                raise ValueError(
                    f"checkpoint {checkpoint_id!r}: channel {channel!r} has a value but no "
                    "version in channel_versions, so it cannot be stored"
                )
        cv = _SEP.join(
            f"{_plain('channel', ch)}{_SEP}{_plain('version', str(v))}"
            for ch, v in versions.items()
        )
        stored_header = msgpack.packb(
            [
                encode_header(checkpoint),
                parent_id,
                self.serde.dumps(metadata, where="checkpoint metadata"),
            ],
            use_bin_type=True,
        )
        # Only versions the checkpoint really has; plus those the script found unstored.
        wanted = {ch: str(v) for ch, v in new_versions.items() if versions.get(ch) == str(v)}
        wanted.update({ch: versions[ch] for ch in unstored if ch in versions})
        blobs = blobs_for_put(
            self.serde,
            checkpoint,
            wanted,
            lambda channel, _version: channel not in missing_bases,
        )
        if expected_head is ANY_HEAD:
            expect, expected = "*", ""
        elif expected_head is None:
            expect, expected = "-", ""
        else:
            expect, expected = "=", str(expected_head)
        run_id = metadata.get("run_id")
        run = "" if run_id is None else str(run_id)
        args: list[Any] = [
            *(self.ttl or 0, ns, checkpoint_id, expect, expected),
            *(stored_header, cv, run),
        ]
        values = checkpoint.get("channel_values") or {}
        for (channel, version), blob in blobs.items():
            kind, base, _ = decode_blob(blob)
            base_version = base[0] if kind == "append" and base else ""
            channel, version = _plain("channel", channel), _plain("version", version)
            if base is not None and len(values[channel]) // _CHUNK > base[1] // _CHUNK:
                sealed = self._chunk_args(
                    channel, version, values[channel], base, from_start=channel in rechunk
                )
                args += sealed
                base_version = sealed[-3]  # the last chunk sealed
                blob = encode_blob(
                    self.serde,
                    values[channel],
                    (base_version, len(values[channel]) // _CHUNK * _CHUNK),
                    where=f"channel {channel!r}",
                )
            args += [channel, version, base_version, blob]
        return thread_id, ns, checkpoint_id, run or None, args

    def _chunk_args(
        self,
        channel: str,
        version: str,
        value: list[Any],
        base: tuple[str, int],
        *,
        from_start: bool = False,
    ) -> list[Any]:
        """Commit arguments sealing the chunks an append to ``value`` completes.

        Chunk ``j`` holds items ``[j * _CHUNK, (j + 1) * _CHUNK)`` under the synthetic
        version ``<version>\0<end>``, written once; the commit script links it to the
        chunk before it (see ``chunk_blob`` in commit.lua). The version's own blob then
        appends to the last chunk, so a cold read of a long list fetches one chunk per
        ``_CHUNK`` items plus the blobs of the steps since the last seal. ``from_start``
        seals every chunk of the list (the script found no chunk to link the first new
        one to: a list stored before chunks existed), once.
        """
        out: list[Any] = []
        base_version, base_len = base
        dumps = getattr(self.serde, "dumps_list", self.serde.dumps)  # flat for messages
        first = 0 if from_start else base_len // _CHUNK
        for j in range(first, len(value) // _CHUNK):
            start, end = j * _CHUNK, (j + 1) * _CHUNK
            payload = dumps(value[start:end], where=f"channel {channel!r}")
            out += [channel, f"{version}{_SEP}{end}", f"{_SEP}{start}{_SEP}{base_version}", payload]
        return out

    def _put_result(
        self,
        result: Any,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        expected_head: Any,
        attempt: int,
    ) -> tuple[str, frozenset[str]] | None:
        """None when committed, else what to resend: (a :data:`_RESEND` status, channels).

        Raises :class:`CheckpointConflict` when the compare-and-set lost.
        """
        status = _text(result[0])
        if status == "ok":
            return None
        if status == "exists":
            raise CheckpointExistsError(thread_id, ns, checkpoint_id)
        if status == "conflict":
            actual = _text(result[1]) if len(result) > 1 and result[1] else None
            expected = None if expected_head is None else str(expected_head)
            raise CheckpointConflict(thread_id, ns, expected, actual)
        if status in _RESEND and attempt < COMMIT_ATTEMPTS - 1:
            return status, frozenset(_text(channel) for channel in result[1:])
        raise RuntimeError(f"unexpected commit result {result!r}")

    def _writes_args(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[str, list[Any]]:
        thread_id = thread_id_of(config)
        ns = _plain("checkpoint_ns", checkpoint_ns_of(config))
        checkpoint_id = checkpoint_id_of(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs a config naming a checkpoint_id")
        _plain("task id", task_id)
        args: list[Any] = [self.ttl or 0, ns, _plain("checkpoint id", checkpoint_id)]
        for index, (channel, value) in enumerate(writes):
            special = channel in SPECIAL_WRITE_INDEX
            idx = SPECIAL_WRITE_INDEX[channel] if special else index
            payload = self.serde.dumps(value, where=f"write {channel!r} of task {task_id!r}")
            envelope = msgpack.packb([task_id, channel, task_path, payload], use_bin_type=True)
            args += [task_id, idx, "1" if special else "0", envelope]
        return thread_id, args

    def _read_args(
        self, known: dict[tuple[str, str], Any], ns: str, mode: str, targets: Sequence[str]
    ) -> list[Any]:
        fields = [f"{ns}{_SEP}{channel}{_SEP}{version}" for channel, version in known]
        return [self._read_ttl(), len(fields), *fields, mode, *targets]

    def _decode_header(self, raw: bytes, thread_id: str, ns: str, checkpoint_id: str) -> _Header:
        try:
            header, parent_id, metadata = msgpack.unpackb(raw, raw=False)
            checkpoint = decode_header(header)
            meta = self.serde.loads(metadata, where="checkpoint metadata")
            if not isinstance(meta, dict):
                raise SerializationError("metadata is not a mapping")
        except Exception as exc:
            raise CorruptCheckpointError(
                f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace {ns!r}) "
                f"has a corrupt header: {exc}"
            ) from exc
        return _Header(checkpoint, parent_id, meta)

    def _decode_writes(
        self, raws: Sequence[bytes], thread_id: str, ns: str, checkpoint_id: str
    ) -> list[PendingWrite]:
        out = []
        for raw in raws:
            try:
                task_id, channel, _task_path, payload = msgpack.unpackb(raw, raw=False)
                value = self.serde.loads(payload, where=f"write {channel!r}")
            except Exception as exc:
                raise CorruptCheckpointError(
                    f"checkpoint {checkpoint_id!r} of thread {thread_id!r} (namespace {ns!r}) "
                    f"has a corrupt pending write: {exc}"
                ) from exc
            out.append(PendingWrite(task_id, channel, value))
        return out

    def _build_tuples(
        self,
        thread_id: str,
        result: Any,
        known: dict[tuple[str, str], Any],
        cache: ResolvedCache | None = None,
        headers: dict[tuple[str, str], _Header] | None = None,
    ) -> list[CheckpointTuple]:
        """CheckpointTuples from a ``read`` script result (missing checkpoints left out)."""
        entries, flat_blobs = result
        blobs: dict[str, bytes] = {}
        for i in range(0, len(flat_blobs), 2):
            blobs[_text(flat_blobs[i])] = flat_blobs[i + 1]
        # Resolve oldest first, so each append chain is walked once and reused by the newer.
        decoded: list[tuple[int, CheckpointTuple]] = []
        order = sorted(range(len(entries)), key=lambda i: _text(entries[i][1]))
        for position in order:
            entry = entries[position]
            ns, checkpoint_id = _text(entry[0]), _text(entry[1])
            if entry[2] is None:
                continue
            header = (headers or {}).get((ns, checkpoint_id)) or self._decode_header(
                entry[2], thread_id, ns, checkpoint_id
            )
            checkpoint = header.checkpoint
            scope = self._scope(thread_id, ns)
            scoped: Any = _ScopedCache(self, scope, known)
            if cache is not None:
                scoped = _ListCache(cache, ns + _SEP, scoped)

            def fetch(channel: str, version: str, _ns: str = ns) -> bytes | None:
                return blobs.get(f"{_ns}{_SEP}{channel}{_SEP}{version}")

            versions = checkpoint["channel_versions"]
            checkpoint["channel_values"] = load_channel_values(
                versions,
                fetch,
                serde=self.serde,
                thread_id=thread_id,
                checkpoint_ns=ns,
                checkpoint_id=checkpoint_id,
                cache=scoped,
                channels=[c for c in versions if known.get((c, str(versions[c]))) is not EMPTY],
            )
            if cache is None:
                self._remember_empty(scope, checkpoint)
            writes = self._decode_writes(entry[4], thread_id, ns, checkpoint_id)
            parent = make_config(thread_id, ns, header.parent_id) if header.parent_id else None
            decoded.append(
                (
                    position,
                    CheckpointTuple(
                        config=make_config(thread_id, ns, checkpoint_id),
                        checkpoint=checkpoint,
                        metadata=header.metadata,
                        parent_config=parent,
                        pending_writes=writes,
                    ),
                )
            )
        decoded.sort(key=lambda item: item[0])
        return [item for _, item in decoded]

    def _note_run(self, run_id: str | None, thread_id: str) -> bool:
        """True when the run -> thread registry entry still has to be written."""
        if run_id is None:
            return False
        with self._lock:
            return (run_id, thread_id) not in self._runs_seen

    def _ran(self, run_id: str, thread_id: str) -> None:
        with self._lock:
            self._runs_seen[run_id, thread_id] = None
            while len(self._runs_seen) > 4096:
                self._runs_seen.popitem(last=False)

    # -- listing helpers -------------------------------------------------------------

    def _window_args(self, plan: _ListPlan, upper: str, size: int) -> list[Any]:
        return [self._read_ttl(), plan.index, upper, plan.lower, size]

    def _window_matches(
        self, plan: _ListPlan, flat: Sequence[Any], filter: dict[str, Any] | None
    ) -> tuple[list[tuple[str, str]], dict[tuple[str, str], _Header], str | None]:
        """Window entries whose metadata matches, their headers and the last member seen."""
        matched: list[tuple[str, str]] = []
        headers: dict[tuple[str, str], _Header] = {}
        last = None
        for i in range(0, len(flat), 2):
            last = _text(flat[i])
            ns, checkpoint_id = plan.target_of(last)
            header = self._decode_header(flat[i + 1], plan.thread_id, ns, checkpoint_id)
            if metadata_matches(header.metadata, filter):
                matched.append((ns, checkpoint_id))
                headers[ns, checkpoint_id] = header
        return matched, headers, last

    def _heads_pattern(self) -> str:
        return f"{_glob_escape(self.prefix)}:{{*}}:heads"

    def _thread_ids_from_keys(self, keys: Sequence[Any]) -> list[str]:
        out = []
        head = f"{self.prefix}:{{"
        for key in keys:
            text = _text(key)
            if text.startswith(head) and text.endswith("}:heads"):
                tag = text[len(head) : -len("}:heads")]
                out.append(tag.replace("%7D", "}").replace("%7B", "{").replace("%25", "%"))
        return sorted(out)

    # -- sync API --------------------------------------------------------------------

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the head; one round trip."""
        read = self.prepare_read(config)
        client, scripts = self._sync()
        return self.finish_read(read, self._eval(client, scripts["read"], read.keys, read.args))

    def put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
    ) -> dict[str, Any]:
        """Commit a checkpoint (compare-and-set with ``expected_head``); one round trip."""
        client, scripts = self._sync()
        resend: dict[str, frozenset[str]] = {}
        for attempt in range(COMMIT_ATTEMPTS):
            thread_id, ns, checkpoint_id, run_id, args = self._put_args(
                config, checkpoint, metadata, new_versions, expected_head, **resend
            )
            keys = self.thread_keys(thread_id)
            result = self._commit(client, scripts["commit"], keys, args, run_id, thread_id)
            outcome = self._put_result(result, thread_id, ns, checkpoint_id, expected_head, attempt)
            if outcome is None:
                self._prime(thread_id, ns, checkpoint, args)
                return make_config(thread_id, ns, checkpoint_id)
            _merge_resend(resend, outcome)
        raise AssertionError("unreachable")

    def _prime(self, thread_id: str, ns: str, checkpoint: Checkpoint, args: list[Any]) -> None:
        """Remember the lists just committed, and the channel versions it stored without a
        value (``args``: the commit's): the next read of the head skips their blobs."""
        if not self._cache.maxsize:
            return
        scope = self._scope(thread_id, ns)
        scoped = _ScopedCache(self, scope, {})
        versions = checkpoint.get("channel_versions") or {}
        appends = checkpoint.get("channel_appends") or {}
        for channel, value in (checkpoint.get("channel_values") or {}).items():
            if isinstance(value, list) and channel in versions:
                scoped.put(channel, versions[channel], value, appends.get(channel))
        empty = encode_empty_blob()
        for i in range(_BLOBS_AT, len(args), 4):  # channel, version, base, blob
            if args[i + 3] == empty and _SEP not in args[i + 1]:  # not a sealed chunk
                self._remember(scope, args[i], args[i + 1], empty=True)

    def _needs_registry(self, run_id: str | None, thread_id: str) -> bool:
        """Whether a commit must also record run -> thread (always with a TTL, to refresh it)."""
        return run_id is not None and (bool(self.ttl) or self._note_run(run_id, thread_id))

    def _registry_pipe(self, pipe: Any, run_id: str, thread_id: str) -> None:
        key = self.run_key(run_id)
        pipe.sadd(key, thread_id)
        if self.ttl:
            pipe.expire(key, self.ttl)

    def _commit(
        self,
        client: Any,
        script: Any,
        keys: list[str],
        args: list[Any],
        run_id: str | None,
        thread_id: str,
    ) -> Any:
        """Run the commit script; with a run id, record run -> thread in the same round trip.

        The run registry lives in the run's own slot, so on a cluster it is a separate
        command; on one server it is pipelined in front of the script.
        """
        if run_id is None or not self._needs_registry(run_id, thread_id):
            return self._eval(client, script, keys, args)
        if _is_cluster_client(client):
            self._register_run(client, run_id, thread_id)
            result = _call(client, script, keys, args)
        else:
            pipe = client.pipeline(transaction=False)
            self._registry_pipe(pipe, run_id, thread_id)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            result = pipe.execute(raise_on_error=False)[-1]
            if isinstance(result, NoScriptError):
                result = script(keys=keys, args=args, client=client)
            elif isinstance(result, Exception):
                raise result
        self._ran(run_id, thread_id)
        return result

    async def _acommit(
        self,
        client: Any,
        script: Any,
        keys: list[str],
        args: list[Any],
        run_id: str | None,
        thread_id: str,
    ) -> Any:
        """Async :meth:`_commit`."""
        if run_id is None or not self._needs_registry(run_id, thread_id):
            return await _acall(client, script, keys, args)
        if _is_cluster_client(client):
            await self._aregister_run(client, run_id, thread_id)
            result = await _acall(client, script, keys, args)
        else:
            pipe = client.pipeline(transaction=False)
            self._registry_pipe(pipe, run_id, thread_id)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            result = (await pipe.execute(raise_on_error=False))[-1]
            if isinstance(result, NoScriptError):
                result = await script(keys=keys, args=args, client=client)
            elif isinstance(result, Exception):
                raise result
        self._ran(run_id, thread_id)
        return result

    def _register_run(self, client: Any, run_id: str, thread_id: str) -> None:
        key = self.run_key(run_id)
        pipe = client.pipeline(transaction=False)
        pipe.sadd(key, thread_id)
        if self.ttl:
            pipe.expire(key, self.ttl)
        pipe.execute()

    def put_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes; first write per (task, index) wins. One round trip."""
        thread_id, args = self._writes_args(config, writes, task_id, task_path)
        if len(args) == 3:
            return
        client, scripts = self._sync()
        scripts["writes"](keys=self.thread_keys(thread_id), args=args, client=client)

    def list(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, from the sorted-set index in windows; no cap.

        A config without a ``checkpoint_ns`` key lists every namespace of the thread; one
        with a ``checkpoint_id`` lists that checkpoint only; ``config=None`` lists every
        thread (found by scanning for thread heads: the one listing that scans keys).
        """
        if limit is not None and limit <= 0:
            return
        if config is None:
            streams = [
                self._list_thread({"configurable": {"thread_id": t}}, filter, before, None)
                for t in self._all_thread_ids()
            ]
            items: Iterator[CheckpointTuple] = heapq.merge(*streams, key=_newest, reverse=True)
        else:
            items = self._list_thread(config, filter, before, limit)
        yield from itertools.islice(items, limit)

    def _list_thread(
        self,
        config: dict[str, Any],
        filter: dict[str, Any] | None,
        before: dict[str, Any] | None,
        limit: int | None,
    ) -> Iterator[CheckpointTuple]:
        plan = _ListPlan.of(config, before)
        client, scripts = self._sync()
        keys = self.thread_keys(plan.thread_id)
        if plan.only_id is not None:
            if plan.before_id is not None and plan.only_id >= plan.before_id:
                return
            result = scripts["read"](keys=keys, args=plan.only_args(), client=client)
            for item in self._build_tuples(plan.thread_id, result, {}):
                if metadata_matches(item.metadata, filter):
                    yield item
            return
        cache = ResolvedCache(_WINDOW * 4)
        upper = plan.upper
        while True:
            size = plan.window_size(filter, limit)
            flat = scripts["window"](
                keys=keys, args=self._window_args(plan, upper, size), client=client
            )
            matched, headers, last = self._window_matches(plan, flat, filter)
            if matched:
                result = scripts["read"](keys=keys, args=_ids_args(matched), client=client)
                yield from self._build_tuples(plan.thread_id, result, {}, cache, headers)
            if last is None or len(flat) < 2 * size:
                return
            upper = f"({last}"

    def _all_thread_ids(self) -> list[str]:
        client, _ = self._sync()
        keys = list(client.scan_iter(match=self._heads_pattern(), count=1000))
        return self._thread_ids_from_keys(keys)

    def delete_thread(self, thread_id: str) -> None:
        """Delete everything a thread owns: one ``DEL`` of its keys, and its entry in the
        run registry of each run that committed on it (a run's set goes when emptied)."""
        client, _ = self._sync()
        thread_id = str(thread_id)
        keys = self.thread_keys(thread_id)
        runs = self._runs_of(client.zrange(keys[10], 0, -1))
        client.delete(*keys)
        self._unregister(runs, thread_id)
        if runs:
            pipe = client.pipeline(transaction=False)
            for run_id in sorted(runs):
                pipe.srem(self.run_key(run_id), thread_id)
            pipe.execute()

    def _unregister(self, runs: set[str], thread_id: str) -> None:
        """Forget that ``runs`` recorded ``thread_id`` (its next commit records it again)."""
        with self._lock:
            for run_id in runs:
                self._runs_seen.pop((run_id, thread_id), None)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history to an empty thread (ValueError if it is not)."""
        client, scripts = self._sync()
        source, target = str(source_thread_id), str(target_thread_id)
        dumps = scripts["dump"](keys=self.thread_keys(source), args=[], client=client)
        if not any(dumps):
            return
        status = scripts["restore"](
            keys=self.thread_keys(target),
            args=[self.ttl or 0, *[d or "" for d in dumps]],
            client=client,
        )
        if _text(status) == "exists":
            raise ValueError(
                f"copy_thread: target thread {target!r} already has checkpoints; "
                "delete it first or choose another thread id"
            )
        for run_id in self._runs_of(client.zrange(self.thread_keys(target)[10], 0, -1)):
            self._register_run(client, run_id, target)

    @staticmethod
    def _runs_of(members: Sequence[Any]) -> set[str]:
        return {_text(member).split(_SEP, 1)[0] for member in members}

    def prune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Keep the newest ``keep_last`` checkpoints per namespace; drop unreachable blobs."""
        if keep_last < 1:
            raise ValueError(f"prune: keep_last must be at least 1, got {keep_last}")
        if isinstance(thread_ids, str):
            thread_ids = [thread_ids]
        client, scripts = self._sync()
        for thread_id in thread_ids:
            scripts["drop"](
                keys=self.thread_keys(str(thread_id)),
                args=[self.ttl or 0, "prune", keep_last],
                client=client,
            )

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and writes) whose metadata ``run_id`` is in ``run_ids``."""
        run_ids = [str(r) for r in ([run_ids] if isinstance(run_ids, str) else run_ids)]
        if not run_ids:
            return
        client, scripts = self._sync()
        threads: set[str] = set()
        for run_id in run_ids:
            threads |= {_text(t) for t in client.smembers(self.run_key(run_id))}
        for thread_id in sorted(threads):
            scripts["drop"](
                keys=self.thread_keys(thread_id),
                args=[self.ttl or 0, "runs", *run_ids],
                client=client,
            )
        for run_id in run_ids:
            client.delete(self.run_key(run_id))
        with self._lock:
            for key in [k for k in self._runs_seen if k[0] in run_ids]:
                del self._runs_seen[key]

    # -- protocol hooks: the distributed executor composes these into its own scripts --

    def script_source(self, name: str) -> str:
        """The Lua source of one of the saver's scripts (prelude included).

        The distributed executor wraps it in a Lua function of its own scripts, so a
        commit and the coordination state it depends on change in one atomic script.
        """
        if name not in _SCRIPTS:
            raise ValueError(f"unknown RedisSaver script {name!r}; known: {', '.join(_SCRIPTS)}")
        return _script_source(name)

    def prepare_read(self, config: dict[str, Any]) -> PreparedRead:
        """What :meth:`get_tuple` sends, for a caller that pipelines it with other commands.

        Run ``read`` with ``keys`` and ``args``, then hand the reply to :meth:`finish_read`.
        """
        thread_id = thread_id_of(config)
        ns = _plain("checkpoint_ns", checkpoint_ns_of(config))
        checkpoint_id = checkpoint_id_of(config)
        known = self._known(thread_id, ns)
        if checkpoint_id is None:
            args = self._read_args(known, ns, "head", [ns])
        else:
            args = self._read_args(known, ns, "ids", [ns, checkpoint_id])
        return PreparedRead(thread_id, self.thread_keys(thread_id), args, known)

    def finish_read(self, prepared: PreparedRead, reply: Any) -> CheckpointTuple | None:
        """The checkpoint tuple from a ``read`` reply of :meth:`prepare_read`'s request."""
        tuples = self._build_tuples(prepared.thread_id, reply, prepared.known)
        return tuples[0] if tuples else None

    def prepare_put(
        self,
        config: dict[str, Any],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: dict[str, str],
        *,
        expected_head: str | Any | None = ANY_HEAD,
        resend: dict[str, frozenset[str]] | None = None,
    ) -> PreparedPut:
        """The ``commit`` script's keys and arguments for :meth:`put`'s commit.

        The caller runs them inside its own script; a reply other than ``{"ok"}`` means
        nothing was stored. A reply asking for blobs again (:meth:`asks_resend`) is
        answered by preparing again with ``resend``; any other the caller hands to
        :meth:`put`. After ``{"ok"}`` it must call :meth:`put_done`.
        """
        thread_id, ns, checkpoint_id, run_id, args = self._put_args(
            config, checkpoint, metadata, new_versions, expected_head, **(resend or {})
        )
        return PreparedPut(thread_id, ns, checkpoint_id, run_id, self.thread_keys(thread_id), args)

    @staticmethod
    def asks_resend(reply: Sequence[Any], resend: dict[str, frozenset[str]]) -> bool:
        """Whether a ``commit`` script's ``reply`` refused for want of blobs (a base gone, a
        list to re-chunk); if so ``resend`` now also names them: pass it to
        :meth:`prepare_put` and run the commit again (as :meth:`put` does itself)."""
        status = _text(reply[0]) if reply else ""
        if status not in _RESEND:
            return False
        _merge_resend(resend, (status, frozenset(_text(channel) for channel in reply[1:])))
        return True

    def registry_commands(self, pipe: Any, prepared: PreparedPut) -> None:
        """Queue on ``pipe`` the run -> thread record a commit of ``prepared`` needs, if any.

        It lives in the run's own slot, so it is never part of the thread's script.
        """
        if prepared.run_id is not None and self._needs_registry(
            prepared.run_id, prepared.thread_id
        ):
            self._registry_pipe(pipe, prepared.run_id, prepared.thread_id)

    def put_done(self, prepared: PreparedPut, checkpoint: Checkpoint) -> dict[str, Any]:
        """Book-keeping after an outside script committed ``prepared``; its config."""
        if prepared.run_id is not None:
            self._ran(prepared.run_id, prepared.thread_id)
        self._prime(prepared.thread_id, prepared.ns, checkpoint, prepared.args)
        return make_config(prepared.thread_id, prepared.ns, prepared.checkpoint_id)

    def prepare_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> list[Any]:
        """The ``writes`` script's arguments for :meth:`put_writes` (keys: ``thread_keys``)."""
        return self._writes_args(config, writes, task_id, task_path)[1]

    # -- async API -------------------------------------------------------------------

    async def aget_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """Async :meth:`get_tuple` (native asyncio, one round trip)."""
        read = self.prepare_read(config)
        client, scripts = await self._async()
        reply = await _acall(client, scripts["read"], read.keys, read.args)
        return self.finish_read(read, reply)

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
        client, scripts = await self._async()
        resend: dict[str, frozenset[str]] = {}
        for attempt in range(COMMIT_ATTEMPTS):
            thread_id, ns, checkpoint_id, run_id, args = self._put_args(
                config, checkpoint, metadata, new_versions, expected_head, **resend
            )
            keys = self.thread_keys(thread_id)
            result = await self._acommit(client, scripts["commit"], keys, args, run_id, thread_id)
            outcome = self._put_result(result, thread_id, ns, checkpoint_id, expected_head, attempt)
            if outcome is None:
                self._prime(thread_id, ns, checkpoint, args)
                return make_config(thread_id, ns, checkpoint_id)
            _merge_resend(resend, outcome)
        raise AssertionError("unreachable")

    async def _aregister_run(self, client: Any, run_id: str, thread_id: str) -> None:
        key = self.run_key(run_id)
        await client.sadd(key, thread_id)
        if self.ttl:
            await client.expire(key, self.ttl)

    async def aput_writes(
        self,
        config: dict[str, Any],
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        thread_id, args = self._writes_args(config, writes, task_id, task_path)
        if len(args) == 3:
            return
        client, scripts = await self._async()
        await scripts["writes"](keys=self.thread_keys(thread_id), args=args, client=client)

    async def alist(
        self,
        config: dict[str, Any] | None,
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        if limit is not None and limit <= 0:
            return
        if config is None:
            streams = [
                self._alist_thread({"configurable": {"thread_id": t}}, filter, before, None)
                for t in await self._aall_thread_ids()
            ]
            items = _amerge_newest(streams)
        else:
            items = self._alist_thread(config, filter, before, limit)
        count = 0
        async for item in items:
            yield item
            count += 1
            if limit is not None and count >= limit:
                break
        await items.aclose()

    async def _alist_thread(
        self,
        config: dict[str, Any],
        filter: dict[str, Any] | None,
        before: dict[str, Any] | None,
        limit: int | None,
    ) -> AsyncIterator[CheckpointTuple]:
        plan = _ListPlan.of(config, before)
        client, scripts = await self._async()
        keys = self.thread_keys(plan.thread_id)
        if plan.only_id is not None:
            if plan.before_id is not None and plan.only_id >= plan.before_id:
                return
            result = await scripts["read"](keys=keys, args=plan.only_args(), client=client)
            for item in self._build_tuples(plan.thread_id, result, {}):
                if metadata_matches(item.metadata, filter):
                    yield item
            return
        cache = ResolvedCache(_WINDOW * 4)
        upper = plan.upper
        while True:
            size = plan.window_size(filter, limit)
            flat = await scripts["window"](
                keys=keys, args=self._window_args(plan, upper, size), client=client
            )
            matched, headers, last = self._window_matches(plan, flat, filter)
            if matched:
                result = await scripts["read"](keys=keys, args=_ids_args(matched), client=client)
                for item in self._build_tuples(plan.thread_id, result, {}, cache, headers):
                    yield item
            if last is None or len(flat) < 2 * size:
                return
            upper = f"({last}"

    async def _aall_thread_ids(self) -> list[str]:
        client, _ = await self._async()
        keys = [key async for key in client.scan_iter(match=self._heads_pattern(), count=1000)]
        return self._thread_ids_from_keys(keys)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        client, _ = await self._async()
        thread_id = str(thread_id)
        keys = self.thread_keys(thread_id)
        runs = self._runs_of(await client.zrange(keys[10], 0, -1))
        await client.delete(*keys)
        self._unregister(runs, thread_id)
        for run_id in sorted(runs):
            await client.srem(self.run_key(run_id), thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        client, scripts = await self._async()
        source, target = str(source_thread_id), str(target_thread_id)
        dumps = await scripts["dump"](keys=self.thread_keys(source), args=[], client=client)
        if not any(dumps):
            return
        status = await scripts["restore"](
            keys=self.thread_keys(target),
            args=[self.ttl or 0, *[d or "" for d in dumps]],
            client=client,
        )
        if _text(status) == "exists":
            raise ValueError(
                f"copy_thread: target thread {target!r} already has checkpoints; "
                "delete it first or choose another thread id"
            )
        members = await client.zrange(self.thread_keys(target)[10], 0, -1)
        for run_id in self._runs_of(members):
            await self._aregister_run(client, run_id, target)

    async def aprune(self, thread_ids: Sequence[str], *, keep_last: int = 1) -> None:
        """Async :meth:`prune`."""
        if keep_last < 1:
            raise ValueError(f"prune: keep_last must be at least 1, got {keep_last}")
        if isinstance(thread_ids, str):
            thread_ids = [thread_ids]
        client, scripts = await self._async()
        for thread_id in thread_ids:
            await scripts["drop"](
                keys=self.thread_keys(str(thread_id)),
                args=[self.ttl or 0, "prune", keep_last],
                client=client,
            )

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        run_ids = [str(r) for r in ([run_ids] if isinstance(run_ids, str) else run_ids)]
        if not run_ids:
            return
        client, scripts = await self._async()
        threads: set[str] = set()
        for run_id in run_ids:
            threads |= {_text(t) for t in await client.smembers(self.run_key(run_id))}
        for thread_id in sorted(threads):
            await scripts["drop"](
                keys=self.thread_keys(thread_id),
                args=[self.ttl or 0, "runs", *run_ids],
                client=client,
            )
        for run_id in run_ids:
            await client.delete(self.run_key(run_id))
        with self._lock:
            for key in [k for k in self._runs_seen if k[0] in run_ids]:
                del self._runs_seen[key]


@dataclass(frozen=True)
class PreparedRead:
    """A ``read`` request built by :meth:`RedisSaver.prepare_read`."""

    thread_id: str
    keys: list[str]
    args: list[Any]
    known: dict[tuple[str, str], Any]


@dataclass(frozen=True)
class PreparedPut:
    """A ``commit`` request built by :meth:`RedisSaver.prepare_put`."""

    thread_id: str
    ns: str
    checkpoint_id: str
    run_id: str | None
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True)
class _ListPlan:
    """What one thread's listing reads: which index, between which lexicographic bounds."""

    thread_id: str
    ns: str | None  # None: every namespace (the thread-wide index)
    only_id: str | None
    before_id: str | None
    index: str
    upper: str
    lower: str

    @classmethod
    def of(cls, config: dict[str, Any], before: dict[str, Any] | None) -> _ListPlan:
        thread_id = thread_id_of(config)
        configurable = config.get("configurable") or {}
        ns = checkpoint_ns_of(config) if "checkpoint_ns" in configurable else None
        before_id = checkpoint_id_of(before) if before else None
        if ns is None:
            index, upper, lower = "ixt", (f"({before_id}{_SEP}" if before_id else "+"), "-"
        else:
            _plain("checkpoint_ns", ns)
            upper = f"({ns}{_SEP}{before_id}" if before_id else f"({ns}\x01"
            index, lower = "ix", f"[{ns}{_SEP}"
        only_id = checkpoint_id_of(config)
        return cls(thread_id, ns, only_id, before_id, index, upper, lower)

    def target_of(self, member: str) -> tuple[str, str]:
        """(ns, id) of an index member."""
        first, second = member.split(_SEP, 1)
        return (second, first) if self.index == "ixt" else (first, second)

    def only_args(self) -> list[Any]:
        return _ids_args([(self.ns or "", str(self.only_id))])

    @staticmethod
    def window_size(filter: dict[str, Any] | None, limit: int | None) -> int:
        return _WINDOW if (filter or limit is None) else max(1, min(_WINDOW, limit))


def _ids_args(targets: Sequence[tuple[str, str]]) -> list[Any]:
    """``read`` script arguments for the given (ns, id) checkpoints (no TTL refresh)."""
    return [0, 0, "ids", *[part for pair in targets for part in pair]]


def _newest(item: CheckpointTuple) -> tuple[str, str, str]:
    configurable = item.config["configurable"]
    return (
        configurable["checkpoint_id"],
        configurable["thread_id"],
        configurable["checkpoint_ns"],
    )


async def _amerge_newest(
    streams: Sequence[AsyncIterator[CheckpointTuple]],
) -> AsyncIterator[CheckpointTuple]:
    """Merge async streams that are each newest first into one newest-first stream."""
    heap: list[tuple[Any, int, CheckpointTuple]] = []

    async def advance(i: int) -> None:
        try:
            item = await anext(streams[i])
        except StopAsyncIteration:
            return
        key = tuple(_Reversed(part) for part in _newest(item))
        heapq.heappush(heap, (key, i, item))

    for i in range(len(streams)):
        await advance(i)
    while heap:
        _, i, item = heapq.heappop(heap)
        yield item
        await advance(i)


@dataclass(frozen=True, order=False)
class _Reversed:
    """A string that sorts in reverse (for a min-heap giving the newest first)."""

    value: str

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value


AsyncRedisSaver = RedisSaver
"""LangGraph-style alias: the one class serves sync and asyncio code."""


class _ListCache:
    """A per-``list`` cache in front of the saver's scoped cache (keeps chains walked once)."""

    def __init__(self, local: ResolvedCache, scope: str, scoped: _ScopedCache) -> None:
        self._local = local
        self._scope = scope
        self._scoped = scoped

    def get(self, channel: str, version: str) -> Any:
        value = self._local.get(self._scope + channel, version)
        return value if value is not EMPTY else self._scoped.get(channel, version)

    def put(self, channel: str, version: str, value: Any) -> None:
        self._local.put(self._scope + channel, version, value)


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _register(client: Any) -> dict[str, Any]:
    """Every saver script registered on ``client`` (sha computed locally, loaded on first use)."""
    return {name: client.register_script(_script_source(name)) for name in _SCRIPTS}


def _call(client: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
    """Run a registered script by its sha (redis-py's Script wrapper costs ~15 us a call
    on the hot paths); a server that does not know it yet gets it loaded."""
    try:
        return client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        return script(keys=keys, args=args, client=client)


async def _acall(client: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
    """Async :func:`_call`."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        return await script(keys=keys, args=args, client=client)


def _merge_resend(resend: dict[str, frozenset[str]], outcome: tuple[str, frozenset[str]]) -> None:
    """Fold a refused commit's answer into the keyword arguments of the next attempt."""
    status, channels = outcome
    name = _RESEND[status]
    resend[name] = resend.get(name, frozenset()) | channels


def _decodes_responses(client: Any) -> bool:
    try:
        kwargs = client.get_connection_kwargs()
    except Exception:
        return False
    return bool(kwargs.get("decode_responses"))


def _is_cluster_client(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster | AsyncRedisCluster)
