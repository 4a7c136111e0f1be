"""The recovery sweeper: finds work a dead worker left behind and hands it to another.

It runs in every worker (a background thread) and as ``relaygraph recover``. It scans
three global indexes, each sharded into buckets (one cluster slot per bucket, see
:class:`~relaygraph.workers.keys.Indexes`); a pass sweeps the buckets whose sweep lock it
holds (one sweeper per bucket at a time) and, for each entry, re-checks the thread's own
keys in a script before acting, so any number of sweepers can run at once:

* task leases that expired (a worker died mid-node), tasks whose message a dead worker
  had received but not started (see reservations.py) or tasks queued but never picked
  up: a new epoch, and the task is enqueued again (the old holder is fenced out);
* barriers whose holder died between a step's last task and its commit: taken over;
* runs with no progress for a while whose head has no scheduled step (a worker died
  between committing a checkpoint and enqueueing the next step): scheduled again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from relaygraph.persistence.base import make_config
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.workers import metrics
from relaygraph.workers.coordination import StepRef, now_ms
from relaygraph.workers.engine import Engine, NodeMessage
from relaygraph.workers.keys import LEGACY_INDEXES, ThreadKeys
from relaygraph.workers.reservations import FORGET_MS, Liveness, reservation

__all__ = ["SweepReport", "Sweeper"]

log = logging.getLogger("relaygraph.recovery")


@dataclass
class SweepReport:
    """What one sweep did."""

    requeued: list[str] = field(default_factory=list)
    barriers: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Entries that raised (logged; the pass went on with the others)."""

    def __bool__(self) -> bool:
        return bool(self.requeued or self.barriers or self.rescheduled or self.failed)


class Sweeper:
    """Re-enqueues expired tasks, takes over stuck barriers, reschedules stalled runs."""

    def __init__(self, engine: Engine, *, batch: int = 500, token: str | None = None) -> None:
        self.engine = engine
        self.batch = batch
        # Sweepers of one engine (one process) share the bucket locks they take.
        self.token = token or f"{engine.worker_name}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> SweepReport:
        """One pass over the indexes."""
        report = SweepReport()
        queue = self.engine.settings.default_queue
        coordinator = self.engine.coordinator
        metrics.set_queue_depth(queue, int(coordinator.redis.llen(queue)))
        lock_ms = max(100, int(self.engine.settings.sweep_interval * 1000))
        buckets = coordinator.lock_buckets(self.token, lock_ms)
        due = self._read(buckets)
        liveness = Liveness(coordinator.redis, coordinator.indexes)  # read once a pass
        for key, members in due["leases"]:
            self._each(key, members, report, lambda k, m, r: self._sweep_lease(k, m, r, liveness))
        for key, members in due["barriers"]:
            self._each(key, members, report, self._sweep_barrier)
        for key, members in due["runs"]:
            self._each(key, members, report, self._sweep_run, runs=True)
        if report:
            log.info(
                "recovery: requeued %d task(s), took over %d barrier(s), rescheduled %d "
                "run(s), %d entr(ies) failed",
                len(report.requeued),
                len(report.barriers),
                len(report.rescheduled),
                len(report.failed),
            )
        return report

    def _read(self, buckets: list[int]) -> dict[str, list[tuple[str, list[bytes]]]]:
        """The due entries of ``buckets``' indexes per kind (``(index key, members)``), in
        one round trip (a non-transactional pipeline: on a cluster, to every shard at
        once), and the unsharded indexes of older releases moved into their buckets."""
        coordinator = self.engine.coordinator
        indexes, redis, now = coordinator.indexes, coordinator.redis, now_ms()
        stale_run = now - 2 * coordinator.ttl_ms  # run entries are due once stale
        pipe = redis.pipeline(transaction=False)
        reads: list[tuple[str, str]] = []
        for kind in ("leases", "barriers", "runs"):
            pipe.zrange(LEGACY_INDEXES[kind], 0, self.batch - 1, withscores=True)
        for bucket in buckets:
            for kind in ("leases", "barriers", "runs"):
                key = indexes.key(kind, bucket)
                pipe.zrangebyscore(
                    key, 0, stale_run if kind == "runs" else now, start=0, num=self.batch
                )
                reads.append((kind, key))
            pipe.zremrangebyscore(indexes.key("workers", bucket), "-inf", now - FORGET_MS)
        replies = pipe.execute()
        legacy, replies = replies[:3], [r for n, r in enumerate(replies[3:]) if n % 4 != 3]
        try:
            self._drain_legacy(dict(zip(("leases", "barriers", "runs"), legacy, strict=True)))
        except Exception:  # never at the buckets' expense: the next pass tries again
            log.exception("recovery: moving the unsharded index entries failed")
        due: dict[str, list[tuple[str, list[bytes]]]] = {"leases": [], "barriers": [], "runs": []}
        for (kind, key), members in zip(reads, replies, strict=True):
            if members:
                due[kind].append((key, members))
        return due

    def _drain_legacy(self, found: dict[str, list[tuple[bytes, float]]]) -> None:
        """Move entries of the unsharded indexes (``rgw:leases``, ...: written by a release
        before the buckets, or by its workers still running in a rolling upgrade) into
        their buckets, keeping the earlier due time. To be dropped a release after the
        buckets came in."""
        if not any(found.values()):
            return
        indexes, redis = self.engine.coordinator.indexes, self.engine.coordinator.redis
        pipe = redis.pipeline(transaction=False)
        for kind, entries in found.items():
            for member, score in entries:
                try:
                    thread_id = json.loads(member)[0]
                except (ValueError, TypeError, IndexError, KeyError):
                    log.warning("recovery: dropped a malformed %s entry %r", kind, member)
                else:
                    pipe.zadd(indexes.of(kind, str(thread_id)), {member: score}, lt=True)
                # after, on the one connection a single Redis (the old release's) has:
                # an entry is never in neither
                pipe.zrem(LEGACY_INDEXES[kind], member)
        pipe.execute()
        log.info(
            "recovery: moved %d entr(ies) of the unsharded indexes into their buckets",
            sum(len(entries) for entries in found.values()),
        )

    def _each(
        self,
        index: str,
        members: list[bytes],
        report: SweepReport,
        handle: Callable[[str, bytes, SweepReport], None],
        runs: bool = False,
    ) -> None:
        """``handle`` every due entry of ``index``; one that raises is logged and put back
        a lease TTL later, and the pass goes on (one bad entry never stops recovery)."""
        redis = self.engine.coordinator.redis
        for member in members:
            try:
                handle(index, member, report)
            except Exception as exc:
                log.exception("recovery: %s entry %r failed", index, member)
                report.failed.append(f"{index} {member!r}: {type(exc).__name__}: {exc}")
                later = now_ms() + self.engine.coordinator.ttl_ms  # not on every pass
                if runs:  # run entries are due once stale
                    later -= 2 * self.engine.coordinator.ttl_ms
                try:
                    redis.zadd(index, {member: later}, xx=True)
                except Exception:  # Redis itself is down: the next pass sees it again
                    log.debug("recovery: could not postpone %r", member, exc_info=True)

    def _sweep_lease(
        self, index: str, member: bytes, report: SweepReport, liveness: Liveness
    ) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        grace_ms = int(engine.settings.queued_grace * 1000)
        step, task_id = StepRef.from_member(member)
        info = coordinator.step_info(step)
        status = info.get(f"s:{task_id}")
        if status is None or status in ("done", "error", "interrupted"):
            redis.zrem(index, member)
            return
        # Resolve what the message needs before the epoch is raised: a lookup that
        # fails must not leave a task fenced out with nothing sent for it.
        name = info.get(f"n:{task_id}", "")
        graph = engine.graph(info["graph"], None)
        options = graph.nodes[name].options
        # A message a worker received but never started: its worker's liveness, not the
        # queued grace, says when it is lost (see reservations.py).
        held = reservation(info, task_id)
        if held is not None and liveness.deadline(held.worker) < now_ms():
            epoch = coordinator.requeue_reserved(step, task_id, held.mark)
        else:
            epoch = coordinator.requeue(step, task_id, grace_ms)
        if epoch < 0:
            deadline = _stuck_at(info, task_id, grace_ms, coordinator.ttl_ms)
            if held is not None:  # look again when its worker's liveness would lapse
                deadline = min(deadline, liveness.deadline(held.worker) + 1)
            if info.get("state") != "running":
                redis.zrem(index, member)
            else:
                redis.zadd(index, {member: max(deadline, now_ms() + 100)})
            return
        redis.zadd(index, {member: now_ms() + coordinator.ttl_ms})  # until confirmed sent
        if status == "running":
            metrics.count_lease_expiry()
        metrics.count_recovery("task")
        message = NodeMessage(
            info["graph"],
            step.thread_id,
            step.checkpoint_ns,
            step.checkpoint_id,
            task_id,
            epoch,
            info["run"],
            node=name,
        )
        engine.send(message, options)
        report.requeued.append(f"{step.thread_id}/{name}@{epoch}")

    def _sweep_barrier(self, index: str, member: bytes, report: SweepReport) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        step, _ = StepRef.from_member(member)
        info = coordinator.step_info(step)
        if info.get("state") != "barrier":
            redis.zrem(index, member)
            return
        if coordinator.claim_barrier(step):
            redis.zadd(index, {member: now_ms() + coordinator.ttl_ms})
            try:
                engine.barrier(info["graph"], step, info["run"])
            except (CorruptCheckpointError, SerializationError) as exc:
                engine.fail_unreadable(step.thread_id, info["run"], step, exc)
                return
            metrics.count_recovery("barrier")
            report.barriers.append(f"{step.thread_id}@{step.checkpoint_id}")

    def _sweep_run(self, index: str, member: bytes, report: SweepReport) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        thread_id, run_id = json.loads(member)
        try:
            record = engine.run_record(thread_id, run_id)
        except LookupError:  # a rejected submission, or a deleted thread
            redis.zrem(index, member)
            return
        except SerializationError as exc:  # its config cannot be read: fail it, not postpone
            engine.fail_unreadable_record(thread_id, run_id, exc)
            redis.zrem(index, member)
            return
        if record.get("status") not in ("pending", "running"):
            redis.zrem(index, member)
            return
        if record.get("status") == "pending":
            active = redis.get(ThreadKeys(thread_id).active)
            if active is None or active.decode() != run_id:
                # queued behind the active run: handing over starts it, not the sweeper
                redis.zrem(index, member)
                return
        try:
            head = engine.saver.get_tuple(make_config(thread_id, "", ""))
        except (CorruptCheckpointError, SerializationError) as exc:
            engine.fail_unreadable(thread_id, run_id, None, exc)
            redis.zrem(index, member)
            return
        if record.get("status") == "pending" or head is None:
            coordinator.touch_run(thread_id, run_id)
            engine.start_run(thread_id, run_id)
            report.rescheduled.append(f"{thread_id}/{run_id} (start)")
            return
        step = StepRef(thread_id, "", head.checkpoint["id"], run_id)
        if redis.exists(step.key):
            coordinator.touch_run(thread_id, run_id)
            self._reindex(step, report)
            return
        graph = engine.graph(record["graph"], record.get("fingerprint"))
        run = engine._run_for(graph, record, thread_id)
        run.load(head)
        coordinator.touch_run(thread_id, run_id)
        engine.schedule(graph, run, record)
        metrics.count_recovery("run")
        report.rescheduled.append(f"{thread_id}/{run_id}")

    def _reindex(self, step: StepRef, report: SweepReport) -> None:
        """Put a stalled step back into the indexes the other sweeps scan.

        A worker that died between a script and its index update (a finished step's
        barrier not yet indexed, say) left the step where no index points at it; the run
        index finds the run again, and this makes the step findable.
        """
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        info = coordinator.step_info(step)
        state = info.get("state")
        if state == "barrier":
            if int(info.get("bd") or 0) < now_ms() and coordinator.claim_barrier(step):
                engine.barrier(info["graph"], step, info["run"])
                metrics.count_recovery("barrier")
                report.barriers.append(f"{step.thread_id}@{step.checkpoint_id}")
            else:
                barriers = coordinator.indexes.barriers(step.thread_id)
                redis.zadd(barriers, {step.member(): int(info.get("bd") or 0)}, nx=True)
        elif state == "running":
            open_tasks = [
                key[2:]
                for key, status in info.items()
                if key.startswith("s:") and status in ("queued", "sent", "running")
            ]
            grace_ms = int(engine.settings.queued_grace * 1000)
            leases = coordinator.indexes.leases(step.thread_id)
            for task_id in open_tasks:
                deadline = _stuck_at(info, task_id, grace_ms, coordinator.ttl_ms)
                redis.zadd(leases, {step.member(task_id): deadline}, nx=True)

    # -- background thread --------------------------------------------------------------

    def start_background(self, interval: float) -> None:
        """Sweep every ``interval`` seconds in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except Exception:  # keep sweeping: one bad entry must not stop recovery
                    log.exception("recovery sweep failed")

        self._thread = threading.Thread(target=loop, daemon=True, name="relaygraph-sweeper")
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _stuck_at(info: dict[str, str], task_id: str, grace_ms: int, ttl_ms: int) -> int:
    """When an open task counts as stuck (ms), as requeue.lua decides it."""
    status = info.get(f"s:{task_id}")
    if status == "running":
        return int(info.get(f"d:{task_id}") or 0)
    since = int(info.get(f"q:{task_id}") or 0)
    return since + (ttl_ms if status == "queued" else grace_ms)
