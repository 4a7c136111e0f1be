"""Reservations: which worker holds a node message it received but has not started.

A Celery worker receives (prefetches) messages before a pool process runs them, and with
late acks a received message stays off the queue until that worker acks it. If the whole
worker dies before a process takes the task's lease, no lease exists that could expire:
the task only looked 'sent', exactly like a message waiting in a long backlog, and the
sweeper re-enqueued it after ``RELAYGRAPH_QUEUED_GRACE`` (30 s), a grace that must stay
long so a backlog is not enqueued twice.

So the main process of every worker

* marks each node message it receives on the task's step hash, ``r:<task>`` =
  ``"<epoch> <worker>"`` (reserve.lua: only while the task waits under that epoch), and
  moves the task's entry in the sweeper's lease index to a lease TTL from now
  (``ZADD XX LT``: never later than it was) — both sent without waiting for the reply,
  whose reading rides on the next mark, so the hot path pays a socket write, not a round
  trip;
* keeps its liveness in the workers index of its bucket (``rgw:{idx:N}:workers``, worker ->
  deadline ms), renewed every heartbeat interval by a thread of its own.

On a Redis Cluster the mark's script and its index entry live in two slots, usually on two
shards, so there the mark is one pipelined round trip (both shards at once) instead.

The sweeper (:mod:`relaygraph.workers.recovery`) re-enqueues a task reserved by a worker
whose liveness lapsed (requeue_reserved.lua, a new epoch: the dead worker's message is
fenced out), within lease TTL + sweep interval of its death; a task reserved by a live
worker is looked at again when that worker's liveness would lapse, and a task nobody
reserved keeps the queued grace.

Left to the grace: a message lost between the broker handing it over and the mark being
written (microseconds of the consumer's own code), and a worker whose main process lives
but never dispatches (it keeps renewing).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from relaygraph.workers.coordination import Coordinator, StepRef, now_ms
from relaygraph.workers.keys import LEGACY_INDEXES, Indexes

__all__ = ["Liveness", "Reservation", "Reservations", "reservation", "worker_id"]

log = logging.getLogger("relaygraph.workers")

FORGET_MS = 24 * 3600 * 1000
"""Liveness entries of workers dead this long are dropped (a missing worker is dead too)."""


def worker_id(hostname: str) -> str:
    """A reservation id for this process: Celery's node name, pid and a random part (a
    restarted worker with the same name and a reused pid is still another worker)."""
    return f"{hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Reservations:
    """A worker main process's marks of the node messages it received, and its liveness.

    :meth:`start` registers the worker alive and starts the renewing thread; :meth:`mark`
    is called for every node message received (Celery's ``task_received``).
    """

    def __init__(self, coordinator: Coordinator, worker: str, interval: float) -> None:
        self.coordinator = coordinator
        self.worker = worker
        self.interval = interval
        self._cluster = coordinator.cluster
        if not self._cluster:
            pool = coordinator.redis.connection_pool
            self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        self._connection: Any = None  # made on first mark, in this process (see _send)
        self._pid = 0
        self._script = coordinator.script("reserve")
        self._unread: tuple[list[str], list[Any]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Register this worker alive (before any mark names it) and keep it so."""
        if not self._cluster:  # marks send EVALSHA only (a cluster's pipeline loads it)
            self.coordinator.redis.script_load(self._script.script)
        self.renew()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="relaygraph-alive")
        self._thread.start()

    def renew(self) -> None:
        """Push this worker's liveness a lease TTL ahead; drop long-dead workers."""
        now = now_ms()
        index = self.coordinator.indexes.workers(self.worker)
        pipe = self.coordinator.redis.pipeline(transaction=False)
        pipe.zadd(index, {self.worker: now + self.coordinator.ttl_ms})
        pipe.zremrangebyscore(index, "-inf", now - FORGET_MS)
        pipe.execute()

    def mark(self, step: StepRef, task_id: str, epoch: int) -> None:
        """Mark the task reserved by this worker (sent now, its reply read later)."""
        keys = [step.key]
        args: list[Any] = [task_id, epoch, self.worker]
        leases = self.coordinator.indexes.leases(step.thread_id)
        due = now_ms() + self.coordinator.ttl_ms
        if self._cluster:
            self.coordinator._pipeline(
                [("reserve", keys, args)],
                lambda pipe: pipe.zadd(leases, {step.member(task_id): due}, xx=True, lt=True),
            )
            return
        commands = [
            ("EVALSHA", self._script.sha, 1, *keys, *args),
            ("ZADD", leases, "XX", "LT", due, step.member(task_id)),
        ]
        with self._lock:  # the consumer's thread, and flush() from any other
            if self._pid != os.getpid():  # a fork's child: its parent's replies are not its
                self._unread = None
            self._read_unread()
            self._send(commands)
            self._unread = (keys, args)

    def _send(self, commands: list[tuple[Any, ...]]) -> None:
        """Write ``commands`` on this process's mark connection; replies read later."""
        if self._connection is None or self._pid != os.getpid():  # a fork makes its own
            self._connection, self._pid = self._make(), os.getpid()
        try:
            self._connection.send_packed_command(self._connection.pack_commands(commands))
        except BaseException:
            self._connection.disconnect()
            raise

    def flush(self) -> None:
        """Read the replies of the last mark (a test or a shutdown wants them settled)."""
        with self._lock:
            self._read_unread()

    def _read_unread(self) -> None:
        if self._unread is None or self._connection is None:
            return
        keys, args = self._unread
        self._unread = None
        replies: list[Any] = []
        try:
            for _ in range(2):  # the script's reply, the index update's
                try:
                    replies.append(self._connection.read_response())
                except ResponseError as error:  # read whole: the socket stays in step
                    replies.append(error)
        except Exception:  # the connection broke: the sweeper's grace still covers the task
            self._connection.disconnect()  # replies left unread: never reuse the socket
            log.warning("reservation mark: no reply", exc_info=True)
            return
        if isinstance(replies[0], NoScriptError):  # a restarted server: load, mark again
            self._script(keys=keys, args=args)
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
                log.warning("reservation mark failed: %s", reply)

    def stop(self) -> None:
        """Stop renewing (the liveness then lapses after a lease TTL)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except Exception:  # a blip: the liveness has a lease TTL of slack
                log.warning("renewing the worker's liveness failed", exc_info=True)


@dataclass(frozen=True)
class Reservation:
    """A task's reservation mark: the mark as stored and the worker it names."""

    mark: str
    worker: str


def reservation(info: dict[str, str], task_id: str) -> Reservation | None:
    """The reservation of a task still waiting for a worker under its current epoch, from
    its step hash (decoded), or None (not reserved, reserved under an older epoch, or no
    longer waiting)."""
    if info.get(f"s:{task_id}") not in ("sent", "queued"):
        return None
    mark = info.get(f"r:{task_id}")
    if not mark:
        return None
    epoch, _, worker = mark.partition(" ")
    if epoch != info.get(f"e:{task_id}") or not worker:
        return None
    return Reservation(mark, worker)


class Liveness:
    """Workers' liveness deadlines (ms), read once per sweep when first needed: every
    bucket's workers index in one pipelined round trip (and, for one release, the
    unsharded ``rgw:workers`` that workers of the release before keep renewing)."""

    def __init__(self, redis: Any, indexes: Indexes | None = None) -> None:
        self.redis = redis
        self.indexes = indexes or Indexes()
        self._deadlines: dict[str, int] | None = None

    def deadline(self, worker: str) -> int:
        """Until when ``worker`` counts as alive (0: unknown, so dead)."""
        if self._deadlines is None:
            pipe = self.redis.pipeline(transaction=False)
            for key in [LEGACY_INDEXES["workers"], *self.indexes.all("workers")]:
                pipe.zrange(key, 0, -1, withscores=True)
            self._deadlines = {}
            for entries in pipe.execute():
                for name, score in entries:
                    name = name.decode() if isinstance(name, bytes) else name
                    self._deadlines[name] = max(int(score), self._deadlines.get(name, 0))
        return self._deadlines.get(worker, 0)
