"""Hardening of the distributed executor: a poisoned thread never kills a worker."""

from __future__ import annotations

import json
import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import msgpack
import pytest
import redis

from relaygraph import START, StateGraph
from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.client import Client, RunRejectedError
from relaygraph.workers.coordination import Coordinator, StepRef
from relaygraph.workers.keys import Indexes, ThreadKeys
from relaygraph.workers.recovery import Sweeper

from .fleet import Fleet
from .test_protocol_scripts import Inline, _age, _chain

INPUT = {"items": [], "total": 0}


def poisoned_blob(depth: int = 400) -> bytes:
    """A full blob whose payload nests ``depth`` tuple extensions (1.9 KB at 400): before
    the serializer capped nesting, reading it killed the process with SIGSEGV."""
    data = msgpack.packb(0)
    for _ in range(depth):
        data = msgpack.packb(msgpack.ExtType(2, b"\x91" + data))
    return b"F" + data


def poison_thread(url: str, thread_id: str) -> int:
    """Overwrite every stored channel value of a thread with :func:`poisoned_blob`."""
    client = redis.Redis.from_url(url)
    key = f"rg:{{{thread_id}}}:blob"
    fields = client.hkeys(key)
    client.hset(key, mapping={field: poisoned_blob() for field in fields})
    client.close()
    return len(fields)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_meeting_a_corrupt_thread_fails_that_run_and_keeps_serving(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    fleet = Fleet(redis_server.url, tmp_path)
    try:
        worker = fleet.start("w1")
        assert client.submit("linear", INPUT, thread_id="bad").wait(timeout=60) == "success"
        assert poison_thread(redis_server.url, "bad") > 0
        poisoned = client.submit("linear", INPUT, thread_id="bad")
        assert poisoned.wait(timeout=60) == "error"
        assert "'bad'" in (poisoned.error or "")
        assert "nested more than 16 deep" in (poisoned.error or "")
        # The same worker process serves the next thread.
        good = client.submit("linear", INPUT, thread_id="good")
        assert good.wait(timeout=60) == "success", good.error
        assert client.get_state("linear", "good").values["total"] == 3
        assert worker.poll() is None
        assert "WorkerLostError" not in fleet.log("w1")
        assert "SIGSEGV" not in fleet.log("w1")
    finally:
        fleet.stop()


@pytest.fixture
def server() -> Any:
    with EmbeddedRedis(modules=False) as embedded:
        yield embedded


def test_a_node_task_on_a_corrupt_checkpoint_fails_the_run() -> None:
    with EmbeddedRedis(modules=False) as server:
        inline = Inline(server.url, {"chain": _chain("a", "b")})
        run = inline.submit("chain", "bad")
        assert poison_thread(server.url, "bad") > 0
        message = inline.queue.popleft()
        # on another worker: the process that started the run would run its first node from
        # the state it committed, without reading the thread
        inline.engine._warm.clear()
        assert inline.engine.run_node(message) == "unreadable"
        assert inline.status(run) == "error"
        error = inline.coordinator.run_info("bad", run.id)["error"].decode()
        assert "CorruptCheckpointError" in error and "'bad'" in error
        assert inline.coordinator.step_info(message.step)["state"] == "failed"
        # A redelivery of the same message does nothing: the run is over.
        assert inline.engine.run_node(message) in ("cancelled", "unreadable")
        other = inline.submit("chain", "good")
        inline.drain()
        assert inline.status(other) == "success"


@pytest.mark.parametrize("field", ["config", "input"])
def test_a_run_whose_record_cannot_be_read_is_failed_at_its_start(
    server: EmbeddedRedis, field: str
) -> None:
    """A run record whose stored config or input nests too deep (crafted or corrupt) fails
    its run with the reason at its start, and the thread takes the next run."""
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    inline.redis.hset(ThreadKeys("t").run(run.id), field, poisoned_blob()[1:])
    inline.engine.start_run("t", run.id)
    assert inline.status(run) == "error"
    assert "nested more than 16 deep" in inline.coordinator.run_info("t", run.id)["error"].decode()
    assert not inline.queue
    other = inline.submit("chain", "t")  # 'reject': the thread is free again
    inline.drain()
    assert inline.status(other) == "success"


def test_a_pending_run_whose_record_cannot_be_read_is_failed_by_the_sweeper(
    server: EmbeddedRedis,
) -> None:
    """Not postponed pass after pass with the thread blocked: failed, its entry dropped."""
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    inline.redis.hset(ThreadKeys("t").run(run.id), "config", poisoned_blob()[1:])
    inline.redis.zadd(runs_index("t"), {_run_member("t", run.id): 0})  # its start was lost
    report = Sweeper(inline.engine).sweep()
    assert report.failed == [], report
    assert inline.status(run) == "error"
    assert inline.redis.zscore(runs_index("t"), _run_member("t", run.id)) is None
    assert inline.submit("chain", "t").id


# -- submission: no crash window between the run record and its start -------------------


class ClientDied(BaseException):
    """The submitting process dies right after the submit script."""


def _dies_after(call: Any) -> Any:
    def dying(*args: Any, **kwargs: Any) -> Any:
        call(*args, **kwargs)
        raise ClientDied()

    return dying


def runs_index(thread_id: str) -> str:
    return Indexes().runs(thread_id)


def _run_member(thread_id: str, run_id: str) -> bytes:
    import json

    return json.dumps([thread_id, run_id]).encode()


def test_a_run_whose_submitter_died_before_its_start_message_is_started_by_the_sweeper(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    dying = Client(server.url, graphs={"chain": _chain("a", "b")})
    dying.coordinator.submit_run = _dies_after(dying.coordinator.submit_run)  # type: ignore[method-assign]
    with pytest.raises(ClientDied):
        dying.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    (member,) = inline.redis.zrange(runs_index("t"), 0, -1)  # indexed with the submission itself
    run_id = json.loads(member)[1]
    inline.redis.zadd(runs_index("t"), {member: 0})  # no progress for longer than the sweeper waits
    report = Sweeper(inline.engine).sweep()
    assert report.rescheduled == [f"t/{run_id} (start)"], report
    inline.drain()
    assert inline.coordinator.run_status("t", run_id) == "success"
    # and the thread takes 'reject' submissions again
    assert inline.submit("chain", "t").id


def test_a_queued_or_rejected_submission_is_never_started_by_the_sweeper(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    first = inline.submit("chain", "t")
    queued = inline.client.submit(
        "chain", {"n": 0, "trail": []}, thread_id="t", multitask_strategy="enqueue"
    )
    with pytest.raises(RunRejectedError):
        inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    assert inline.redis.zscore(runs_index("t"), _run_member("t", queued.id)) is None
    # A client that died before taking its entries out again: the sweeper drops them.
    inline.redis.zadd(
        runs_index("t"), {_run_member("t", queued.id): 0, _run_member("t", "gone"): 0}
    )
    report = Sweeper(inline.engine).sweep()
    assert report.rescheduled == [] and report.failed == [], report
    assert inline.coordinator.run_status("t", queued.id) == "pending"
    assert inline.redis.zscore(runs_index("t"), _run_member("t", queued.id)) is None
    assert inline.redis.zscore(runs_index("t"), _run_member("t", "gone")) is None
    inline.drain()  # the first run ends and hands the thread to the queued one
    assert inline.status(first) == "success"
    assert inline.coordinator.run_status("t", queued.id) == "success"


# -- the sweeper: one bad entry never stops a pass ----------------------------------------


def test_one_bad_lease_entry_does_not_stop_the_pass_nor_raise_its_epoch(
    server: EmbeddedRedis,
) -> None:
    graphs = {"chain": _chain("a", "b"), "other": _chain("x")}
    inline = Inline(server.url, graphs)
    sweeper = Sweeper(inline.engine)
    bad = inline.submit("other", "bad")
    good = inline.submit("chain", "good")
    bad_message, good_message = inline.queue.popleft(), inline.queue.popleft()
    # The bad step names a graph this worker does not have.
    inline.redis.hset(bad_message.step.key, "graph", "missing")
    for message in (bad_message, good_message):
        _age(inline, message.step, message.task_id, 10**7)
    report = sweeper.sweep()
    assert len(report.failed) == 1 and "missing" in report.failed[0], report
    assert [r.split("@")[1] for r in report.requeued] == ["1"]
    assert report.requeued[0].startswith("good/")
    epoch = inline.redis.hget(bad_message.step.key, f"e:{bad_message.task_id}")
    assert epoch == b"0"  # not fenced out with nothing sent for it
    # postponed, not dropped: a worker that has the graph can still recover it
    leases = inline.coordinator.indexes.leases("bad")
    due = inline.redis.zscore(leases, bad_message.step.member(bad_message.task_id))
    assert due is not None and due > 0
    inline.drain()
    assert inline.status(good) == "success"
    assert inline.status(bad) == "pending" or inline.status(bad) == "running"


def test_a_stalled_run_on_a_corrupt_thread_is_failed_by_the_sweeper(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.submit("chain", "bad")
    inline.queue.popleft()  # its worker died; nothing will run the message
    inline.redis.delete(
        StepRef(
            "bad", "", inline.saver.get_tuple(make_config("bad", "", "")).checkpoint["id"], run.id
        ).key
    )
    poison_thread(server.url, "bad")
    inline.redis.zadd(runs_index("bad"), {_run_member("bad", run.id): 0})
    other = inline.submit("chain", "good")
    report = Sweeper(inline.engine).sweep()
    assert report.failed == [], report
    assert inline.status(run) == "error"
    assert "CorruptCheckpointError" in inline.coordinator.run_info("bad", run.id)["error"].decode()
    inline.drain()
    assert inline.status(other) == "success"


# -- the barrier checks the run's status inside its commit script ----------------------


class Fan(TypedDict):
    trail: Annotated[list[str], operator.add]


def _fan() -> Any:
    builder = StateGraph(Fan)
    for name in ("left", "right", "after"):
        builder.add_node(name, lambda state, _name=name: {"trail": [_name]})
    builder.add_edge(START, "left").add_edge(START, "right")
    builder.add_edge(["left", "right"], "after")
    return builder.compile()


def test_a_run_cancelled_while_its_barrier_folds_commits_nothing(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"fan": _fan()})
    run = inline.client.submit("fan", {"trail": []}, thread_id="t")
    inline.engine.start_run("t", run.id)
    inline.engine.run_node(inline.queue.popleft())  # __start__: a one-task hop
    head = inline.saver.get_tuple(make_config("t", "", ""))
    real_get_tuple = inline.saver.get_tuple

    def cancelled_meanwhile(config: dict[str, Any]) -> Any:
        # The barrier has read the run's status (running); a cancel lands now.
        inline.redis.hset(ThreadKeys("t").run(run.id), "status", "cancelled")
        return real_get_tuple(config)

    left, right = inline.queue.popleft(), inline.queue.popleft()
    inline.engine.run_node(left)
    inline.saver.get_tuple = cancelled_meanwhile  # type: ignore[method-assign]
    try:
        inline.engine.run_node(right)  # the last task: runs the barrier
    finally:
        del inline.saver.get_tuple
    after = inline.saver.get_tuple(make_config("t", "", ""))
    assert after.checkpoint["id"] == head.checkpoint["id"]  # nothing committed
    assert not inline.queue
    assert inline.coordinator.step_info(left.step)["state"] == "cancelled"


@pytest.mark.parametrize("cancelled", [True, False], ids=["cancelled", "active"])
def test_a_barrier_commit_resending_blobs_checks_the_run_inside_its_script_too(
    server: EmbeddedRedis, cancelled: bool
) -> None:
    """The barrier's commit script asked for blobs again (a base gone, a list stored before
    chunks): the resend goes through commit_step.lua as well, so a cancel that landed in
    between still stops it (before: the saver's own put committed without a look at the
    run); with the run still active the resend commits, events included."""
    inline = Inline(server.url, {"fan": _fan()})
    run = inline.client.submit("fan", {"trail": []}, thread_id="t")
    inline.engine.start_run("t", run.id)
    inline.engine.run_node(inline.queue.popleft())  # __start__: a one-task hop
    head = inline.saver.get_tuple(make_config("t", "", ""))
    real_commit_step = inline.coordinator.commit_step
    replies: list[str] = []

    def asks_for_blobs_first(*args: Any, **kwargs: Any) -> Any:
        if not replies:  # refused as the script refuses: nothing stored
            replies.append("missing_base")
            if cancelled:
                inline.redis.hset(ThreadKeys("t").run(run.id), "status", "cancelled")
            return ["missing_base", "trail"]
        reply = real_commit_step(*args, **kwargs)
        replies.append(reply[0])
        return reply

    inline.coordinator.commit_step = asks_for_blobs_first  # type: ignore[method-assign]
    left, right = inline.queue.popleft(), inline.queue.popleft()
    inline.engine.run_node(left)
    inline.engine.run_node(right)  # the last task: runs the barrier
    after = inline.saver.get_tuple(make_config("t", "", ""))
    if cancelled:
        assert replies == ["missing_base", "refused"]
        assert after.checkpoint["id"] == head.checkpoint["id"]  # nothing committed
        assert not inline.queue
    else:
        assert replies == ["missing_base", "ok"]
        assert after.checkpoint["id"] != head.checkpoint["id"]
        inline.drain()
        assert inline.status(run) == "success"
        assert sorted(client_trail(inline, "t")) == ["after", "left", "right"]


def client_trail(inline: Inline, thread_id: str) -> list[str]:
    return list(inline.client.get_state("fan", thread_id).values["trail"])


# -- retention of run records, steps and events ------------------------------------------


def _finished_runs(coordinator: Coordinator, first: int, count: int) -> None:
    """``count`` runs through the scripts a real run goes through (submit, a step's
    registration, an event, the step's end, the run's end), pipelined: direct script
    calls, as the coordinator makes them, without a round trip each."""
    scripts = coordinator._scripts
    pipe = coordinator.redis.pipeline(transaction=False)
    for n in range(first, first + count):
        keys, run_id = ThreadKeys(f"thread-{n % 50}"), f"run-{n}"
        step = StepRef(keys.thread_id, "", f"checkpoint-{n}", run_id)
        now = str(int(time.time() * 1000))

        def call(name: str, script_keys: list[str], args: list[Any]) -> None:
            pipe.evalsha(scripts[name].sha, len(script_keys), *script_keys, *args)

        call(
            "submit_run",
            [keys.active, keys.run(run_id), keys.queue, keys.runs],
            [run_id, "enqueue", now, "graph", "g", "input", b"x" * 64],
        )
        call("register_step", [step.key, keys.run(run_id)], [run_id, "g", now, "task", "node"])
        call("emit_event", [keys.events(run_id), keys.event_keys(run_id)], ["e", 100, 2, "m", "v"])
        pipe.hset(step.key, "state", "committed")  # what set_step_state sends
        pipe.expire(step.key, coordinator.run_ttl)
        call(
            "finish_run",
            [keys.active, keys.run(run_id), keys.queue, keys.runs],
            [run_id, "success", now, "", coordinator.run_ttl],
        )
    for reply in pipe.execute(raise_on_error=False):
        assert not isinstance(reply, Exception), reply


def _wait_for_dbsize(client: redis.Redis, at_most: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while True:
        list(client.scan_iter(count=10_000))  # touching keys expires them now
        size = int(client.dbsize())
        if size <= at_most or time.monotonic() > deadline:
            return size
        time.sleep(0.2)


@pytest.mark.slow
def test_ten_thousand_finished_runs_leave_bounded_memory_after_the_retention(
    server: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(server.url)
    coordinator = Coordinator(client, lease_ttl=5, run_ttl=1)
    for name in ("submit_run", "register_step", "emit_event", "finish_run"):
        client.script_load(coordinator._scripts[name].script)
    _finished_runs(coordinator, 0, 1)
    baseline_memory = int(client.info("memory")["used_memory"])
    for first in range(1, 10_000, 1000):
        _finished_runs(coordinator, first, min(1000, 10_000 - first))
    # Everything is there during the retention window...
    last = ThreadKeys(f"thread-{9999 % 50}")
    assert client.exists(last.run("run-9999"), last.step("", "checkpoint-9999", "run-9999"))
    assert client.hget(last.run("run-9999"), "status") == b"success"
    assert client.ttl(last.run("run-9999")) > 0
    # ...and gone after it: no run records, steps, events or run indexes.
    remaining = _wait_for_dbsize(client, at_most=0)
    assert remaining == 0, sorted(client.scan_iter(count=1000))[:20]
    memory = int(client.info("memory")["used_memory"])
    assert memory < baseline_memory + 1_000_000, (baseline_memory, memory)
    client.close()


def test_a_finished_step_and_run_get_the_run_ttl(server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(server.url)
    for run_ttl, expected in ((60, range(1, 61)), (0, [-1])):
        coordinator = Coordinator(client, lease_ttl=5, run_ttl=run_ttl)
        run_id = f"r{run_ttl}"
        coordinator.submit_run("t", run_id, "enqueue", {"graph": "g"})
        step = StepRef("t", "", "c", run_id)
        coordinator.register_step(step, run_id, "g", [("task", "node")])
        coordinator.set_step_state(step, "committed")
        coordinator.finish_run("t", run_id, "success")
        assert client.ttl(step.key) in expected
        assert client.ttl(ThreadKeys("t").run(run_id)) in expected
    client.close()


def test_client_delete_removes_every_key_of_a_thread_without_a_scan(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.submit("chain", "other")
    inline.drain()
    before = set(inline.redis.scan_iter(count=1000))
    first = inline.submit("chain", "doomed")
    inline.drain()
    queued = inline.client.submit(
        "chain", {"n": 0, "trail": []}, thread_id="doomed", multitask_strategy="enqueue"
    )
    second = inline.submit("chain", "doomed", multitask_strategy="interrupt")
    assert inline.status(first) == "success" and inline.status(second) == "running"
    assert queued.id
    scans: list[Any] = []
    real_scan = inline.client.redis.scan_iter
    inline.client.redis.scan_iter = lambda *a, **k: scans.append(a) or real_scan(*a, **k)  # type: ignore[method-assign]
    inline.client.delete("doomed")
    assert scans == []
    leftover = set(inline.redis.scan_iter(count=1000)) - before
    assert leftover == set(), sorted(leftover)


def test_a_queued_run_handed_the_thread_by_a_dying_process_is_started_by_the_sweeper(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    first = inline.submit("chain", "t")
    queued = inline.client.submit(
        "chain", {"n": 0, "trail": []}, thread_id="t", multitask_strategy="enqueue"
    )
    inline.queue.popleft()  # the first run's worker dies...
    # ...right after finish_run handed the thread over, before it started the next run
    assert inline.coordinator.finish_run("t", first.id, "error", "died") == queued.id
    member = _run_member("t", queued.id)
    assert inline.redis.zscore(runs_index("t"), member) is not None
    inline.redis.zadd(runs_index("t"), {member: 0})
    report = Sweeper(inline.engine).sweep()
    assert report.rescheduled == [f"t/{queued.id} (start)"], report
    inline.drain()
    assert inline.coordinator.run_status("t", queued.id) == "success"


@pytest.mark.parametrize(("thread_ttl", "expected"), [(90.0, 90), (None, None)])
def test_the_workers_and_the_clients_saver_take_the_thread_ttl(
    server: EmbeddedRedis, thread_ttl: float | None, expected: int | None
) -> None:
    """RELAYGRAPH_THREAD_TTL reaches the saver a worker's engine and a client write with,
    and a committed thread then expires (unset: it is kept)."""
    from relaygraph.workers.app import build_engine, create_app
    from relaygraph.workers.settings import WorkerSettings

    settings = WorkerSettings(redis_url=server.url, thread_ttl=thread_ttl)
    engine = build_engine(create_app(settings), registry=None)
    client = Client(settings=settings, graphs={"chain": _chain("a", "b")})
    try:
        assert engine.saver.ttl == expected
        assert client.saver.ttl == expected
        client.update_state("chain", "t", {"n": 1, "trail": ["x"]})
        ttls = {client.redis.ttl(key) for key in client.redis.scan_iter(match="rg:{t}:*")}
        assert ttls
        if expected:
            assert all(0 < ttl <= expected for ttl in ttls), ttls
        else:
            assert ttls == {-1}, ttls
    finally:
        client.close()
