"""Redis key names of the distributed executor.

Every key of one thread carries the thread's hash tag, so each Lua script touches one
Redis Cluster slot (design invariant 7). The global indexes the recovery
sweeper scans are sharded into buckets (:class:`Indexes`), each bucket one slot of its own;
they are hints: the authoritative state is always in the thread's own keys.
"""

from __future__ import annotations

import zlib

__all__ = [
    "DEFAULT_BUCKETS",
    "INDEX_KINDS",
    "LEGACY_INDEXES",
    "Indexes",
    "ThreadKeys",
    "bucket_of",
    "hash_tag",
]

PREFIX = "rgw"  # the saver uses "rg"; the same hash tag keeps both in one slot
DEFAULT_BUCKETS = 16
"""Buckets each global index is split into (``RELAYGRAPH_INDEX_BUCKETS``)."""
INDEX_KINDS = ("leases", "barriers", "runs", "workers")
"""The sweeper's indexes, each a sorted set per bucket:

* ``leases``: running/queued task -> lease deadline (ms);
* ``barriers``: step in its barrier -> barrier deadline (ms);
* ``runs``: active run -> time of its last progress (ms);
* ``workers``: worker main process -> liveness deadline (ms); see reservations.py.
"""
LEGACY_INDEXES = {kind: f"{PREFIX}:{kind}" for kind in INDEX_KINDS}
"""The unsharded indexes of releases before the buckets (one slot each): the sweeper
moves what it finds there into the buckets, so an upgrade in place loses no entry."""


def bucket_of(name: str, buckets: int) -> int:
    """The bucket of a thread id (or a worker id): CRC-32 of its UTF-8 bytes, modulo
    ``buckets`` — the same in every process and Python version.

    >>> bucket_of("t1", 16), bucket_of("t1", 16) == bucket_of("t1", 16)
    (7, True)
    """
    return zlib.crc32(name.encode()) % buckets


class Indexes:
    """The global indexes the recovery sweeper scans, sharded into ``buckets`` buckets.

    Bucket ``n`` holds ``rgw:{idx:n}:leases``, ``:barriers``, ``:runs``, ``:workers`` and
    its sweep lock ``rgw:{idx:n}:sweeper``: one hash tag, so one cluster slot per bucket,
    and the buckets spread over the slots (and the shards). A thread's entries all sit in
    the bucket of its id; a worker's liveness in the bucket of its id. Every process of a
    fleet must use the same bucket count (entries in buckets past the count are not swept).
    """

    def __init__(self, buckets: int = DEFAULT_BUCKETS) -> None:
        if buckets < 1:
            raise ValueError(f"index buckets must be at least 1, got {buckets}")
        self.buckets = buckets

    @staticmethod
    def key(kind: str, bucket: int) -> str:
        """The ``kind`` index of bucket ``bucket``."""
        return f"{PREFIX}:{{idx:{bucket}}}:{kind}"

    @staticmethod
    def lock(bucket: int) -> str:
        """The key a sweeper holds while it sweeps bucket ``bucket`` (same slot)."""
        return f"{PREFIX}:{{idx:{bucket}}}:sweeper"

    def of(self, kind: str, name: str) -> str:
        """The ``kind`` index holding entries of thread (or worker) ``name``."""
        return self.key(kind, bucket_of(name, self.buckets))

    def leases(self, thread_id: str) -> str:
        """Running/queued tasks of the thread -> lease deadline (ms)."""
        return self.of("leases", thread_id)

    def barriers(self, thread_id: str) -> str:
        """Steps of the thread in their barrier -> barrier deadline (ms)."""
        return self.of("barriers", thread_id)

    def runs(self, thread_id: str) -> str:
        """Active runs of the thread -> time of their last progress (ms)."""
        return self.of("runs", thread_id)

    def workers(self, worker: str) -> str:
        """The worker's liveness entry -> deadline (ms)."""
        return self.of("workers", worker)

    def all(self, kind: str) -> list[str]:
        """Every bucket's ``kind`` index, bucket 0 first."""
        return [self.key(kind, n) for n in range(self.buckets)]


def hash_tag(thread_id: str) -> str:
    """``{tag}``: the same hash tag the RedisSaver gives the thread's checkpoint keys, so
    coordination keys and checkpoints of one thread live in one cluster slot."""
    from relaygraph.persistence.redis import thread_tag

    return "{" + thread_tag(thread_id) + "}"


class ThreadKeys:
    """The keys of one thread."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.base = f"{PREFIX}:{hash_tag(thread_id)}"

    def step(self, checkpoint_ns: str, checkpoint_id: str, run_id: str) -> str:
        """Hash of one run's superstep: its tasks' status, epoch, attempts, lease deadline."""
        return f"{self.base}:step:{checkpoint_ns}:{checkpoint_id}:{run_id}"

    @property
    def active(self) -> str:
        """The id of the thread's active run."""
        return f"{self.base}:active"

    @property
    def queue(self) -> str:
        """Runs waiting for the active one (multitask strategy ``enqueue``)."""
        return f"{self.base}:queue"

    @property
    def runs(self) -> str:
        """Sorted set of the thread's runs: score +inf while unfinished, else the finish time
        (ms); finished ones leave it after the run TTL. What ``Client.delete`` removes."""
        return f"{self.base}:runs"

    def run(self, run_id: str) -> str:
        """Hash of a run: status, graph, input, config, error."""
        return f"{self.base}:run:{run_id}"

    def events(self, run_id: str) -> str:
        """Stream of a run's events."""
        return f"{self.base}:events:{run_id}"

    def event_keys(self, run_id: str) -> str:
        """Set of the event keys already written to a run's stream."""
        return f"{self.base}:evkeys:{run_id}"
