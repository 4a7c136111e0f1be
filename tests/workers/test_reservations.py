"""Reservations: a node message a worker received but never started is re-enqueued within a
lease TTL of that worker's death, while a message waiting in a backlog keeps the grace."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.coordination import now_ms
from relaygraph.workers.keys import LEGACY_INDEXES
from relaygraph.workers.recovery import Sweeper
from relaygraph.workers.reservations import Liveness, Reservations, reservation

from .test_protocol_scripts import Inline, _chain, local_values, server  # noqa: F401


def _leases(inline: Inline, message: Any) -> str:
    """The lease index (bucket) of the message's thread."""
    return inline.coordinator.indexes.leases(message.step.thread_id)


def _workers(inline: Inline, worker: str) -> str:
    """The liveness index (bucket) of ``worker``."""
    return inline.coordinator.indexes.workers(worker)


def _reserved(inline: Inline, worker: str) -> Reservations:
    held = Reservations(inline.coordinator, worker, interval=60)
    held.start()
    return held


def _lapse(inline: Inline, worker: str) -> None:
    """The worker died a lease TTL ago: its liveness deadline has passed."""
    inline.redis.zadd(_workers(inline, worker), {worker: now_ms() - 1})


def _index_now(inline: Inline, message: Any) -> None:
    inline.redis.zadd(_leases(inline, message), {message.step.member(message.task_id): 0})


def test_a_task_reserved_by_a_dead_worker_is_re_enqueued_long_before_the_grace(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    chain = _chain("a", "b")
    inline = Inline(server.url, {"chain": chain})
    sweeper = Sweeper(inline.engine)
    run = inline.submit("chain", "t")
    message = inline.queue.popleft()  # received by the worker, which dies before starting it
    held = _reserved(inline, "w1")
    held.mark(message.step, message.task_id, message.epoch)
    held.flush()
    info = inline.coordinator.step_info(message.step)
    assert info[f"r:{message.task_id}"] == f"{message.epoch} w1"
    # the mark moved the task's index entry to a lease TTL from now (from the grace's end)
    due = inline.redis.zscore(_leases(inline, message), message.step.member(message.task_id))
    assert due <= now_ms() + inline.coordinator.ttl_ms
    _index_now(inline, message)
    assert sweeper.sweep().requeued == []  # its worker is alive: it will start it
    assert inline.redis.hget(message.step.key, f"e:{message.task_id}") == b"0"
    # while the worker lives, the sweeper looks again when its liveness would lapse
    assert inline.redis.zscore(_leases(inline, message), message.step.member(message.task_id)) <= (
        now_ms() + inline.coordinator.ttl_ms + 1
    )
    _lapse(inline, "w1")
    _index_now(inline, message)
    report = sweeper.sweep()
    assert report.requeued == [f"t/{message.node}@1"], report
    assert reservation(inline.coordinator.step_info(message.step), message.task_id) is None
    # the dead worker's copy, delivered again later, is fenced out: the new epoch runs
    assert inline.engine.run_node(message) == "stale"
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def test_a_backlog_nobody_reserved_keeps_the_queued_grace(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    sweeper = Sweeper(inline.engine)
    inline.submit("chain", "t")
    message = inline.queue[0]
    inline.redis.hset(message.step.key, f"q:{message.task_id}", now_ms() - 10_000)
    _index_now(inline, message)
    _lapse(inline, "w-gone")  # a dead worker that never received this message
    assert sweeper.sweep().requeued == []
    due = inline.redis.zscore(_leases(inline, message), message.step.member(message.task_id))
    assert due > now_ms() + 10_000  # next look: at the grace's end


def test_a_mark_of_an_older_epoch_does_not_re_enqueue(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    sweeper = Sweeper(inline.engine)
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    held = _reserved(inline, "w1")
    held.mark(message.step, message.task_id, message.epoch)
    held.flush()
    # the sweeper re-enqueued the task for another reason (the grace): epoch 1, unreserved
    inline.redis.hset(message.step.key, f"q:{message.task_id}", now_ms() - 60_000)
    _index_now(inline, message)
    assert len(sweeper.sweep().requeued) == 1
    _lapse(inline, "w1")
    _index_now(inline, message)
    assert sweeper.sweep().requeued == []  # w1's mark names epoch 0: not this message
    assert inline.redis.hget(message.step.key, f"e:{message.task_id}") == b"1"


def test_reserve_marks_only_a_waiting_task_under_its_epoch_and_creates_no_key(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    held = _reserved(inline, "w1")
    field = f"r:{message.task_id}"
    held.mark(message.step, message.task_id, message.epoch + 1)  # a stale message
    held.flush()
    assert inline.redis.hget(message.step.key, field) is None
    inline.engine.run_node(message)  # done now
    held.mark(message.step, message.task_id, message.epoch)  # a duplicate delivery
    held.flush()
    assert inline.redis.hget(message.step.key, field) is None
    gone = replace(message, checkpoint_id="no-such-checkpoint")
    held.mark(gone.step, gone.task_id, gone.epoch)
    held.flush()
    assert not inline.redis.exists(gone.step.key)
    assert inline.redis.zscore(_leases(inline, gone), gone.step.member(gone.task_id)) is None


def test_a_mark_after_a_server_restart_loads_its_script_again(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    held = _reserved(inline, "w1")
    inline.redis.script_flush()
    held.mark(message.step, message.task_id, message.epoch)
    held.flush()
    assert inline.redis.hget(message.step.key, f"r:{message.task_id}") == b"0 w1"


def test_liveness_is_renewed_and_long_dead_workers_are_forgotten(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    recent = now_ms() - 1000  # dead a second ago: kept (and dead)
    # in w1's bucket, which its renewal prunes (the sweeper prunes every bucket it sweeps)
    index = _workers(inline, "w1")
    inline.redis.zadd(index, {"ancient": now_ms() - 2 * 24 * 3600 * 1000, "recent": recent})
    inline.redis.zadd(LEGACY_INDEXES["workers"], {"old-release": recent + 1})
    held = Reservations(inline.coordinator, "w1", interval=0.05)
    held.start()
    try:
        first = inline.redis.zscore(index, "w1")
        assert first >= now_ms() + inline.coordinator.ttl_ms - 1000
        deadline = now_ms() + 5000
        while inline.redis.zscore(index, "w1") == first:
            assert now_ms() < deadline, "liveness never renewed"
    finally:
        held.stop()
    assert inline.redis.zscore(index, "ancient") is None
    liveness = Liveness(inline.redis, inline.coordinator.indexes)
    assert liveness.deadline("recent") == recent
    assert liveness.deadline("old-release") == recent + 1  # a worker not upgraded yet
    assert liveness.deadline("never-seen") == 0


def test_a_duplicate_delivery_does_not_put_off_the_look_at_an_expiring_lease(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    step, member = message.step, message.step.member(message.task_id)
    assert inline.coordinator.acquire(step, message.task_id, 0, 3, "w1").status == "ok"
    due = inline.redis.zscore(_leases(inline, message), member)
    time.sleep(0.05)
    # the broker redelivers the message (its pool process was killed): the lease still
    # runs, so the copy is answered busy, and the index keeps the lease's own deadline
    assert inline.coordinator.acquire(step, message.task_id, 0, 3, "w2").status == "busy"
    assert inline.redis.zscore(_leases(inline, message), member) == due


def test_a_retry_held_by_a_dead_worker_is_re_enqueued_when_due_not_before(
    server: EmbeddedRedis,  # noqa: F811
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    sweeper = Sweeper(inline.engine)
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    step, task_id = message.step, message.task_id
    held = _reserved(inline, "w1")
    held.mark(step, task_id, message.epoch)
    held.flush()
    inline.redis.hset(step.key, f"q:{task_id}", now_ms() + 60_000)  # a retry due in a minute
    _lapse(inline, "w1")
    _index_now(inline, message)
    assert sweeper.sweep().requeued == []
    inline.redis.hset(step.key, f"q:{task_id}", now_ms() - 1)  # due now
    _index_now(inline, message)
    assert len(sweeper.sweep().requeued) == 1
