"""A run's start in one script (start.lua), driven in-process on a real Redis.

The start commits the input checkpoint, appends its events, registers the first step,
puts its tasks on the broker (the outbox) and marks the run running, atomically; whatever
it refuses stores nothing, and the step-by-step start takes every case it does not cover.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.coordination import StepRef
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.leases import LeaseKeeper

from .test_protocol_scripts import (
    CountingConnection,
    Inline,
    _chain,
    decode_node_message,
    local_values,
)


@pytest.fixture
def server() -> Any:
    with EmbeddedRedis(modules=False) as embedded:
        yield embedded


def _snapshot(inline: Inline) -> dict[bytes, Any]:
    return {key: inline.redis.dump(key) for key in inline.redis.keys("*")}


def _changed(inline: Inline, before: dict[bytes, Any], thread_id: str) -> set[bytes]:
    """Keys changed since ``before``, the sweeper's index hints left out."""
    after = _snapshot(inline)
    changed = {key for key in after.keys() | before.keys() if before.get(key) != after.get(key)}
    indexes = {
        inline.coordinator.indexes.of(kind, thread_id).encode() for kind in ("leases", "runs")
    }
    return changed - indexes


@pytest.mark.parametrize("outbox", [False, True], ids=["publish", "outbox"])
def test_a_start_is_three_round_trips_besides_its_publish(
    server: EmbeddedRedis, outbox: bool
) -> None:
    chain = _chain("a", "b")
    inline = Inline(server.url, {"chain": chain}, outbox=outbox)
    inline.submit("chain", "warm-up")  # loads the scripts
    inline.drain()
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="counted")
    CountingConnection.sent = 0
    inline.engine.start_run("counted", run.id)
    # the claim with the run's record, the thread's head, then start.lua (the outbox's
    # message rides in it; without the outbox the confirmation waits for the next trip)
    assert CountingConnection.sent == 3
    info = inline.coordinator.run_info("counted", run.id)
    assert info["status"] == b"running" and info["start_step"] == b"-1"
    first, _ = StepRef.from_member(info["step"])  # the run's pointer to its first step
    if outbox:
        raw = inline.redis.lindex("inline", -1)
        assert raw is not None and not inline.queue.local
        message = decode_node_message(raw)
        fields = inline.coordinator.step_info(message.step)
        assert fields[f"s:{message.task_id}"] == "sent"
        assert fields[f"c:{message.task_id}"] == json.loads(raw)["headers"]["id"]
    else:
        assert len(inline.queue.local) == 1 and inline.redis.llen("inline") == 0
        message = inline.queue[0]
        assert inline.coordinator._sent_later  # confirmed with the next round trip
    head = inline.saver.get_tuple(make_config("counted", "", ""))
    assert head.metadata["source"] == "input" and head.checkpoint["id"] == message.checkpoint_id
    assert first == message.step and inline.coordinator.step_info(first)["state"] == "running"
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "counted").values == local_values(chain)


def test_the_input_events_are_in_the_stream_before_the_first_node(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.submit("chain", "t")
    inline.drain()
    modes = [event.mode for event in run.stream(timeout=10)]
    assert modes[0] == "values" and modes[-1] == "status", modes
    assert inline.status(run) == "success"


def test_a_start_refused_for_an_ended_run_or_another_claim_stores_nothing(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    calls: list[list[str] | None] = []
    real_start = inline.coordinator.start

    def another_worker_took_the_claim(*args: Any, **kwargs: Any) -> Any:
        inline.redis.hset(ThreadKeys("t").run(run.id), "start_worker", "someone-else")
        calls.append(reply := real_start(*args, **kwargs))
        return reply

    inline.coordinator.start = another_worker_took_the_claim  # type: ignore[method-assign]
    before = _snapshot(inline)
    inline.engine.start_run("t", run.id)
    assert calls == [["refused", "claim"]]
    # only the claim itself was written (and the saver's run -> thread registry, another
    # slot, which a commit's put writes ahead as well): no checkpoint, no step, no message
    claim, registry = ThreadKeys("t").run(run.id), inline.saver.run_key(run.id)
    assert _changed(inline, before, "t") <= {claim.encode(), registry.encode()}
    assert inline.redis.hget(claim, "start_worker") == b"someone-else"
    assert inline.saver.get_tuple(make_config("t", "", "")) is None
    assert inline.status(run) == "pending" and not inline.queue

    def cancelled_meanwhile(*args: Any, **kwargs: Any) -> Any:
        inline.redis.hset(ThreadKeys("u").run(other.id), "status", "cancelled")
        calls.append(reply := real_start(*args, **kwargs))
        return reply

    inline.coordinator.start = cancelled_meanwhile  # type: ignore[method-assign]
    other = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="u")
    inline.engine.start_run("u", other.id)
    assert calls[-1] == ["refused", "run"]
    assert inline.saver.get_tuple(make_config("u", "", "")) is None  # nothing committed
    assert inline.status(other) == "cancelled" and not inline.queue


@pytest.mark.parametrize(
    ("sections", "error"),
    [
        ([], "commit section is required"),
        ([("register", ["r", "chain", "1", "task", "a"])], "commit section is required"),
        ([("commit", ["0"] * 8)], "no register"),
        ([("commit", ["0"] * 7), ("register", ["r", "g", "1", "t", "a"])], "commit"),
        ([("commit", ["0"] * 8), ("register", ["r", "g", "1", "t"])], "register"),
        ([("commit", ["0"] * 8), ("register", ["r", "g", "1", "t", "a"]), ("broker", ["x"])],
         "broker"),
        ([("commit", ["0"] * 8), ("register", ["r", "g", "1", "t", "a"]),
          ("publish", ["t", "2", "{}"])], "queue key"),
        ([("register", ["r", "g", "1", "t", "a"]), ("commit", ["0"] * 8)], "order"),
        ([("commit", ["0"] * 8), ("surprise", [])], "malformed section"),
    ],
)  # fmt: skip
def test_a_malformed_start_is_an_error_and_stores_nothing(
    server: EmbeddedRedis, sections: list[tuple[str, list[Any]]], error: str
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    assert inline.coordinator.claim_start("t", run.id, "w")
    step = StepRef("t", "", "cp-1", run.id)
    before = _snapshot(inline)
    with pytest.raises(redis.ResponseError, match=error):
        inline.coordinator.start(
            step, "w", -1, inline.saver.thread_keys("t"), sections, ["task"], queue_keys=["q"]
        )
    assert _changed(inline, before, "t") == set()


def test_a_start_that_died_after_its_input_goes_on_step_by_step(server: EmbeddedRedis) -> None:
    """A start attempt that got as far as recording its first step number (the
    step-by-step path) is finished by the step-by-step path, which applies the input once."""
    chain = _chain("a", "b")
    inline = Inline(server.url, {"chain": chain})
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    inline.coordinator.touch_run("t", run.id, start_step=-1)
    called: list[Any] = []
    inline.coordinator.start = lambda *a, **k: called.append(a)  # type: ignore[method-assign]
    inline.engine.start_run("t", run.id)
    assert called == []
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def test_the_lease_keeper_keeps_a_claim_until_it_is_released() -> None:
    renewals: list[str] = []
    keeper = LeaseKeeper(lambda *args: True, interval=0.05)
    claim = keeper.keep(lambda: renewals.append("claim"))
    deadline = time.monotonic() + 10
    while len(renewals) < 3:
        assert time.monotonic() < deadline, renewals
        time.sleep(0.01)
    assert keeper.release(claim) is True
    seen = len(renewals)
    time.sleep(0.3)
    assert len(renewals) == seen  # a released claim is not renewed again


def test_a_claim_whose_renewal_fails_is_tried_again() -> None:
    attempts: list[str] = []

    def flaky() -> None:
        attempts.append("try")
        if len(attempts) == 1:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    keeper = LeaseKeeper(lambda *args: True, interval=0.04)
    claim = keeper.keep(flaky)
    deadline = time.monotonic() + 10
    while len(attempts) < 3:
        assert time.monotonic() < deadline, attempts
        time.sleep(0.01)
    keeper.release(claim)


def test_a_start_whose_commit_conflicts_is_reported_by_the_step_by_step_start(
    server: EmbeddedRedis,
) -> None:
    """The thread's head moved between the start's read and its script (an update_state):
    start.lua stores nothing, and the step-by-step start meets the same conflict and ends
    the run with it, as it always has; the update stays the thread's head."""
    chain = _chain("a", "b")
    inline = Inline(server.url, {"chain": chain})
    first = inline.submit("chain", "t")
    inline.drain()
    assert inline.status(first) == "success"
    run = inline.client.submit("chain", {"n": 0, "trail": []}, thread_id="t")
    replies: list[Any] = []
    real_start = inline.coordinator.start

    def moved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        inline.client.update_state("chain", "t", {"n": 100})
        replies.append(reply := real_start(*args, **kwargs))
        return reply

    inline.coordinator.start = moved_meanwhile  # type: ignore[method-assign]
    inline.engine.start_run("t", run.id)
    assert replies[0][0] == "conflict"
    assert inline.status(run) == "error" and not inline.queue
    assert inline.client.get_state("chain", "t").values["n"] == 100
