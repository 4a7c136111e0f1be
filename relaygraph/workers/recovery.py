"""The recovery sweeper: finds work a dead worker left behind and hands it to another.

It runs in every worker (a background thread) and as ``relaygraph recover``. It scans
three global indexes and, for each entry, re-checks the thread's own keys in a script
before acting, so any number of sweepers can run at once:

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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from relaygraph.persistence.base import make_config
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.workers import metrics
from relaygraph.workers.coordination import StepRef, now_ms
from relaygraph.workers.engine import Engine, NodeMessage
from relaygraph.workers.keys import BARRIERS, LEASES, RUNS, ThreadKeys
from relaygraph.workers.reservations import Liveness, reservation

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

    def __init__(self, engine: Engine, *, batch: int = 500) -> None:
        self.engine = engine
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> SweepReport:
        """One pass over the indexes."""
        report = SweepReport()
        queue = self.engine.settings.default_queue
        metrics.set_queue_depth(queue, int(self.engine.coordinator.redis.llen(queue)))
        self._sweep_leases(report)
        self._sweep_barriers(report)
        self._sweep_runs(report)
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

    def _each(
        self, index: str, report: SweepReport, handle: Callable[[bytes, SweepReport], None]
    ) -> None:
        """``handle`` every due entry of ``index``; one that raises is logged and put back
        a lease TTL later, and the pass goes on (one bad entry never stops recovery)."""
        stale = now_ms() - 2 * self.engine.coordinator.ttl_ms if index == RUNS else now_ms()
        redis = self.engine.coordinator.redis
        for member in redis.zrangebyscore(index, 0, stale, start=0, num=self.batch):
            try:
                handle(member, report)
            except Exception as exc:
                log.exception("recovery: %s entry %r failed", index, member)
                report.failed.append(f"{index} {member!r}: {type(exc).__name__}: {exc}")
                later = now_ms() + self.engine.coordinator.ttl_ms  # not on every pass
                if index == RUNS:  # run entries are due once stale
                    later -= 2 * self.engine.coordinator.ttl_ms
                try:
                    redis.zadd(index, {member: later}, xx=True)
                except Exception:  # Redis itself is down: the next pass sees it again
                    log.debug("recovery: could not postpone %r", member, exc_info=True)

    def _sweep_leases(self, report: SweepReport) -> None:
        liveness = Liveness(self.engine.coordinator.redis)  # the workers read once a pass
        self._each(LEASES, report, lambda member, rep: self._sweep_lease(member, rep, liveness))

    def _sweep_lease(self, member: bytes, report: SweepReport, liveness: Liveness) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        grace_ms = int(engine.settings.queued_grace * 1000)
        step, task_id = StepRef.from_member(member)
        info = coordinator.step_info(step)
        status = info.get(f"s:{task_id}")
        if status is None or status in ("done", "error", "interrupted"):
            redis.zrem(LEASES, member)
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
                redis.zrem(LEASES, member)
            else:
                redis.zadd(LEASES, {member: max(deadline, now_ms() + 100)})
            return
        redis.zadd(LEASES, {member: now_ms() + coordinator.ttl_ms})  # until confirmed sent
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

    def _sweep_barriers(self, report: SweepReport) -> None:
        self._each(BARRIERS, report, self._sweep_barrier)

    def _sweep_barrier(self, member: bytes, report: SweepReport) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        step, _ = StepRef.from_member(member)
        info = coordinator.step_info(step)
        if info.get("state") != "barrier":
            redis.zrem(BARRIERS, member)
            return
        if coordinator.claim_barrier(step):
            redis.zadd(BARRIERS, {member: now_ms() + coordinator.ttl_ms})
            try:
                engine.barrier(info["graph"], step, info["run"])
            except (CorruptCheckpointError, SerializationError) as exc:
                engine.fail_unreadable(step.thread_id, info["run"], step, exc)
                return
            metrics.count_recovery("barrier")
            report.barriers.append(f"{step.thread_id}@{step.checkpoint_id}")

    def _sweep_runs(self, report: SweepReport) -> None:
        self._each(RUNS, report, self._sweep_run)

    def _sweep_run(self, member: bytes, report: SweepReport) -> None:
        engine = self.engine
        redis, coordinator = engine.coordinator.redis, engine.coordinator
        thread_id, run_id = json.loads(member)
        try:
            record = engine.run_record(thread_id, run_id)
        except LookupError:  # a rejected submission, or a deleted thread
            redis.zrem(RUNS, member)
            return
        if record.get("status") not in ("pending", "running"):
            redis.zrem(RUNS, member)
            return
        if record.get("status") == "pending":
            active = redis.get(ThreadKeys(thread_id).active)
            if active is None or active.decode() != run_id:
                # queued behind the active run: handing over starts it, not the sweeper
                redis.zrem(RUNS, member)
                return
        try:
            head = engine.saver.get_tuple(make_config(thread_id, "", ""))
        except (CorruptCheckpointError, SerializationError) as exc:
            engine.fail_unreadable(thread_id, run_id, None, exc)
            redis.zrem(RUNS, member)
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
                redis.zadd(BARRIERS, {step.member(): int(info.get("bd") or 0)}, nx=True)
        elif state == "running":
            open_tasks = [
                key[2:]
                for key, status in info.items()
                if key.startswith("s:") and status in ("queued", "sent", "running")
            ]
            grace_ms = int(engine.settings.queued_grace * 1000)
            for task_id in open_tasks:
                deadline = _stuck_at(info, task_id, grace_ms, coordinator.ttl_ms)
                redis.zadd(LEASES, {step.member(task_id): deadline}, nx=True)

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
