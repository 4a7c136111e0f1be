"""The node task's protocol on a real Redis, driven in-process (no broker, no subprocess).

An :class:`Engine` whose ``enqueue`` appends to a list runs a thread's tasks one by one,
so these tests can count round trips, play a zombie worker at an exact point, and feed the
scripts malformed input; the fleet tests cover the same protocol across real processes.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, TypedDict

import pytest
import redis

from relaygraph import MemorySaver, StateGraph
from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.app import create_app, send_options
from relaygraph.workers.client import Client
from relaygraph.workers.coordination import Coordinator, StepRef, now_ms
from relaygraph.workers.engine import Engine, NodeMessage
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.leases import LeaseKeeper
from relaygraph.workers.outbox import Outbox, outbox_applies
from relaygraph.workers.recovery import Sweeper
from relaygraph.workers.registry import GraphRegistry
from relaygraph.workers.settings import WorkerSettings


class Count(TypedDict):
    n: int
    trail: list[str]


def _bump(name: str) -> Any:
    def node(state: Count) -> dict[str, Any]:
        return {"n": state["n"] + 1, "trail": [*state["trail"], name]}

    return node


def _chain(*names: str, hold: dict[str, threading.Event] | None = None) -> Any:
    builder = StateGraph(Count)
    for name in names:
        step = _bump(name)
        if hold and name in hold:
            gate = hold[name]

            def held(state: Count, _step: Any = step, _gate: Any = gate) -> dict[str, Any]:
                assert _gate.wait(30)
                return _step(state)

            builder.add_node(name, held)
        else:
            builder.add_node(name, step)
    builder.set_entry_point(names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    return builder.compile()


class CountingConnection(redis.Connection):
    """One count per packed send: one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


class Messages:
    """Node messages waiting to run: the ones the engine enqueued, then the Celery
    messages hop.lua pushed on the broker list (the outbox), decoded."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.local: collections.deque[NodeMessage] = collections.deque()
        self.client, self.key = client, key
        self.from_broker = 0

    def append(self, message: NodeMessage) -> None:
        self.local.append(message)

    def popleft(self) -> NodeMessage:
        if self.local:
            return self.local.popleft()
        raw = self.client.rpop(self.key)
        if raw is None:
            raise IndexError("no node message waiting")
        self.from_broker += 1
        return decode_node_message(raw)

    def __getitem__(self, index: int) -> NodeMessage:
        """The next message (index 0), left waiting."""
        assert index == 0
        if self.local:
            return self.local[0]
        raw = self.client.lindex(self.key, -1)
        if raw is None:
            raise IndexError("no node message waiting")
        return decode_node_message(raw)

    def __len__(self) -> int:
        return len(self.local) + int(self.client.llen(self.key))


def decode_node_message(raw: bytes) -> NodeMessage:
    """The NodeMessage of a Celery task message as kombu's Redis transport stores it."""
    envelope = json.loads(raw)
    assert envelope["headers"]["task"] == "relaygraph.node"
    _args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return NodeMessage(
        kwargs["graph"],
        kwargs["thread_id"],
        kwargs["checkpoint_ns"],
        kwargs["checkpoint_id"],
        kwargs["task_id"],
        kwargs["epoch"],
        kwargs["run_id"],
        kwargs["step"],
        kwargs["node"],
    )


class Inline:
    """An engine on a private Redis whose node messages wait in a list until run.

    ``outbox``: a Celery app on the same Redis builds a hop's next messages and hop.lua
    pushes them on the broker's list, as on a worker; other messages still go to the list.
    """

    def __init__(self, url: str, graphs: dict[str, Any], outbox: bool = False) -> None:
        kwargs = {"connection_class": CountingConnection}
        # Its own queue: the client puts start tasks on the default one (not run here).
        self.settings = WorkerSettings(redis_url=url, lease_ttl=5, default_queue="inline")
        self.redis = redis.Redis.from_url(url, **kwargs)
        self.saver = RedisSaver.from_conn_string(url, client_kwargs=kwargs)
        self.coordinator = Coordinator(self.redis, lease_ttl=5, saver=self.saver)
        self.queue = Messages(redis.Redis.from_url(url), self.settings.default_queue)
        self.celery = create_app(self.settings) if outbox else None
        self.engine = Engine(
            GraphRegistry(graphs),
            self.saver,
            self.coordinator,
            self.settings,
            self._enqueue,
            outbox=Outbox(self.celery, send_options) if self.celery is not None else None,
        )
        self.client = Client(url, graphs=graphs)

    def _enqueue(self, message: NodeMessage, queue: str, name: str, **options: Any) -> None:
        self.queue.append(message)

    def submit(self, graph: str, thread_id: str, **options: Any) -> Any:
        run = self.client.submit(graph, {"n": 0, "trail": []}, thread_id=thread_id, **options)
        self.engine.start_run(thread_id, run.id)
        return run

    def drain(self) -> None:
        while self.queue:
            self.engine.run_node(self.queue.popleft())

    def status(self, run: Any) -> str:
        return self.coordinator.run_status(run.thread_id, run.id) or ""


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(modules=False) as embedded:
        yield embedded


def local_values(graph: Any) -> dict[str, Any]:
    compiled = graph.builder.compile(checkpointer=MemorySaver())
    return compiled.invoke({"n": 0, "trail": []}, {"configurable": {"thread_id": "oracle"}})


@pytest.fixture(params=[False, True], ids=["publish", "outbox"])
def outbox(request: pytest.FixtureRequest) -> bool:
    """Whether hops push their next tasks in the commit script (the broker is this Redis)."""
    return request.param


def test_a_node_of_a_one_task_step_is_two_round_trips_besides_its_publish(
    server: EmbeddedRedis, outbox: bool
) -> None:
    chain = _chain("a", "b", "c", "d")
    inline = Inline(server.url, {"chain": chain}, outbox=outbox)
    inline.submit("chain", "warm")
    inline.drain()
    run = inline.submit("chain", "counted")
    inline.queue.from_broker = 0
    inline.engine.run_node(inline.queue.popleft())  # reads the new run's record once
    counts = []
    while inline.queue:
        message = inline.queue.popleft()
        CountingConnection.sent = 0
        inline.engine.run_node(message)
        counts.append(CountingConnection.sent)
    # a, b, c: the lease (sent before the node runs, answered after), then one script
    # (commit, writes, next step, events; with the outbox also the next task's message).
    # d, the last, ends the run instead.
    assert counts[:3] == [2, 2, 2], counts
    # __start__ by start.lua; a, b, c and d by hop.lua
    assert inline.queue.from_broker == (5 if outbox else 0)
    assert inline.status(run) == "success"
    values = inline.client.get_state("chain", "counted").values
    assert values == local_values(chain)


def test_a_process_reuses_the_state_it_committed_unless_an_attempt_died_there(
    server: EmbeddedRedis,
) -> None:
    chain = _chain("a", "b", "c")
    inline = Inline(server.url, {"chain": chain})
    reads: list[str] = []
    real_get_tuple, real_prepare_read = inline.saver.get_tuple, inline.saver.prepare_read
    inline.saver.get_tuple = lambda config: reads.append("get") or real_get_tuple(config)
    inline.saver.prepare_read = lambda config: reads.append("read") or real_prepare_read(config)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: read (start_run committed it)
    reads.clear()
    inline.engine.run_node(inline.queue.popleft())  # a: this process committed its input
    assert reads == []
    message = inline.queue.popleft()  # b: as if an attempt had died running it here
    inline.redis.hset(message.step.key, f"a:{message.task_id}", 1)
    inline.engine.run_node(message)
    assert reads[:1] == ["get"]  # (get_tuple builds its read with prepare_read)
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def test_a_message_without_its_node_name_still_runs(server: EmbeddedRedis) -> None:
    chain = _chain("a", "b", "c")
    inline = Inline(server.url, {"chain": chain})
    run = inline.submit("chain", "t")
    while inline.queue:  # as sent by a worker of the previous release
        inline.engine.run_node(replace(inline.queue.popleft(), node=""))
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def _wait_status(inline: Inline, message: NodeMessage, status: str) -> None:
    """Wait (up to 10 s) until the message's task has ``status`` in its step."""
    deadline = time.monotonic() + 10
    key, field = message.step.key, f"s:{message.task_id}"
    while inline.redis.hget(key, field) != status.encode():
        assert time.monotonic() < deadline, f"task never became {status}"
        time.sleep(0.01)


def _expire_and_requeue(inline: Inline, message: NodeMessage) -> int:
    """What the sweeper does to a task whose worker stopped renewing: a new epoch."""
    step = message.step
    inline.redis.hset(step.key, f"d:{message.task_id}", now_ms() - 1)
    epoch = inline.coordinator.requeue(step, message.task_id, queued_grace_ms=0)
    assert epoch == message.epoch + 1
    return epoch


def test_a_zombie_that_finishes_after_its_takeover_stores_nothing(
    server: EmbeddedRedis,
) -> None:
    gate = threading.Event()
    chain = _chain("a", "b", "c", hold={"b": gate})
    inline = Inline(server.url, {"chain": chain})
    run = inline.submit("chain", "t")
    while inline.queue[0].node != "b":  # __start__, a
        inline.engine.run_node(inline.queue.popleft())
    zombie_message = inline.queue.popleft()  # b, epoch 0
    outcome: list[str] = []
    zombie = threading.Thread(target=lambda: outcome.append(inline.engine.run_node(zombie_message)))
    zombie.start()
    _wait_status(inline, zombie_message, "running")
    epoch = _expire_and_requeue(inline, zombie_message)
    head_before = inline.saver.get_tuple(make_config("t", "", ""))
    gate.set()  # the zombie's node returns now, under a superseded epoch
    zombie.join(10)
    assert outcome == ["done"] or outcome == ["fenced"]
    head_after = inline.saver.get_tuple(make_config("t", "", ""))
    assert head_after.checkpoint["id"] == head_before.checkpoint["id"]
    assert [w for w in head_after.pending_writes if w[0] == zombie_message.task_id] == []
    assert not inline.queue, "the zombie scheduled a next step"
    events = inline.redis.xrange(ThreadKeys("t").events(run.id))
    assert not [e for e in events if b"updates" in e[1].values() and b"b" in e[1][b"data"]]
    # the replacement runs the task and the thread finishes as in-process
    inline.engine.run_node(replace(zombie_message, epoch=epoch))
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def test_finish_task_with_a_stale_epoch_stores_no_writes(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    run = inline.submit("chain", "t")
    message = inline.queue.popleft()
    step, task_id = message.step, message.task_id
    acquired = inline.coordinator.acquire(step, task_id, 0, 3, "zombie")
    assert acquired.status == "ok"
    _expire_and_requeue(inline, message)
    config = make_config("t", "", message.checkpoint_id)
    writes = inline.saver.prepare_writes(config, [("n", 99)], task_id)
    keys = inline.saver.thread_keys("t")
    reply = inline.coordinator.finish_task(step, task_id, 0, "done", keys, [("writes", writes)])
    assert reply == "stale"
    assert inline.saver.get_tuple(config).pending_writes == []
    assert inline.redis.hget(step.key, f"s:{task_id}") == b"queued"
    assert inline.status(run) == "running"


@pytest.mark.parametrize(
    "sections",
    [
        [("writes", ["x"])],  # no commit first
        [("commit", []), ("commit", [])],
        [("commit", []), ("bogus", ["1"])],
        [("commit", ["only", "two"]), ("event", ["k", "1"])],
        [("commit", ["0"] * 8), ("publish", ["task", "1"])],
        [("commit", ["0"] * 8), ("publish", ["task", "1", "message"])],  # no queue key given
        [("commit", ["0"] * 8), ("broker", ["task"])],
    ],
    ids=[
        "no-commit-first",
        "two-commits",
        "unknown-section",
        "commit-args-short",
        "publish-not-triples",
        "publish-names-no-queue",
        "broker-not-pairs",
    ],
)
def test_a_malformed_hop_is_an_error_and_stores_nothing(
    server: EmbeddedRedis, sections: list[tuple[str, list[Any]]]
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    step = message.step
    assert inline.coordinator.acquire(step, message.task_id, 0, 3, "w").status == "ok"
    before = {key: inline.redis.dump(key) for key in inline.redis.keys("*")}
    with pytest.raises(redis.ResponseError, match="hop"):
        inline.coordinator.hop(
            step, message.task_id, 0, inline.saver.thread_keys("t"), sections, None, []
        )
    after = {key: inline.redis.dump(key) for key in inline.redis.keys("*")}
    changed = {key for key in after if before.get(key) != after[key]}
    indexes = {inline.coordinator.indexes.of(kind, "t").encode() for kind in ("leases", "runs")}
    assert changed <= indexes, changed  # the indexes are hints


def test_a_run_cancelled_while_its_node_runs_commits_nothing(
    server: EmbeddedRedis, outbox: bool
) -> None:
    gate = threading.Event()
    chain = _chain("a", "b", "c", hold={"a": gate})
    inline = Inline(server.url, {"chain": chain}, outbox=outbox)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__
    message = inline.queue.popleft()  # a, which waits for the gate
    head = inline.saver.get_tuple(make_config("t", "", ""))
    worker = threading.Thread(target=inline.engine.run_node, args=(message,))
    worker.start()
    _wait_status(inline, message, "running")
    run.cancel()
    gate.set()
    worker.join(10)
    now = inline.saver.get_tuple(make_config("t", "", ""))
    assert now.checkpoint["id"] == head.checkpoint["id"]
    assert not inline.queue
    assert inline.coordinator.step_info(message.step)["state"] == "cancelled"
    assert inline.status(run) == "cancelled"


def _age(inline: Inline, step: StepRef, task_id: str, by_ms: int) -> None:
    """Make a task look queued ``by_ms`` ago, and due in the sweeper's lease index now."""
    inline.redis.hset(step.key, f"q:{task_id}", now_ms() - by_ms)
    inline.redis.zadd(inline.coordinator.indexes.leases(step.thread_id), {step.member(task_id): 0})


def test_a_step_whose_publisher_died_is_re_enqueued_after_a_lease_ttl(
    server: EmbeddedRedis,
) -> None:
    chain = _chain("a", "b", "c")
    inline = Inline(server.url, {"chain": chain})
    sweeper = Sweeper(inline.engine)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__
    inline.engine.send_all = lambda *args, **kwargs: None  # dies after the hop script
    inline.engine.run_node(inline.queue.popleft())  # a: commits, registers b, never sends
    del inline.engine.send_all
    assert not inline.queue
    head = inline.saver.get_tuple(make_config("t", "", ""))
    step = StepRef("t", "", head.checkpoint["id"], run.id)
    info = inline.coordinator.step_info(step)
    (task_id,) = [key[2:] for key in info if key.startswith("s:")]
    assert info[f"s:{task_id}"] == "queued"  # registered, its publish never confirmed
    _age(inline, step, task_id, inline.coordinator.ttl_ms - 1000)
    assert sweeper.sweep().requeued == []  # its publisher may still be sending it
    _age(inline, step, task_id, inline.coordinator.ttl_ms + 1)
    report = sweeper.sweep()
    assert len(report.requeued) == 1 and report.requeued[0].endswith("b@1"), report
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


def test_a_deferred_publish_confirmation_is_sent_without_a_next_task(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: sends a, confirms later
    message = inline.queue[0]
    _wait_status(inline, message, "sent")


def test_a_task_waiting_on_the_broker_is_not_re_enqueued_before_the_grace(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    sweeper = Sweeper(inline.engine)
    run = inline.submit("chain", "t")
    inline.coordinator.flush_sent()  # the start's confirmation waits for a next round trip
    message = inline.queue[0]  # published and confirmed: 'sent', in a backlog
    step, task_id = message.step, message.task_id
    assert inline.redis.hget(step.key, f"s:{task_id}") == b"sent"
    _age(inline, step, task_id, inline.coordinator.ttl_ms + 1000)  # older than a lease TTL
    assert sweeper.sweep().requeued == []
    _age(inline, step, task_id, int(inline.settings.queued_grace * 1000) + 1000)
    assert len(sweeper.sweep().requeued) == 1
    inline.drain()  # the original and the re-enqueued copy: one of them runs it
    assert inline.status(run) == "success"


def _modes(inline: Inline, run: Any) -> set[str]:
    events = inline.redis.xrange(ThreadKeys(run.thread_id).events(run.id))
    return {fields[b"mode"].decode() for _, fields in events}


def test_a_run_records_the_stream_modes_it_asked_for(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    default = inline.submit("chain", "t1")
    inline.drain()
    assert _modes(inline, default) == {"values", "updates", "status"}  # no debug by default
    keys = ThreadKeys("t1")
    for key in (keys.events(default.id), keys.event_keys(default.id)):  # retention holds
        assert 0 < inline.redis.ttl(key) <= inline.settings.stream_ttl
    debug = inline.submit("chain", "t2", stream_mode=["updates", "debug"])
    inline.drain()
    assert _modes(inline, debug) == {"updates", "debug", "status"}
    assert inline.status(debug) == "success"


@pytest.mark.parametrize("modes", [["values", "everything"], [], "bogus"])
def test_an_unknown_stream_mode_is_refused_before_anything_is_stored(
    server: EmbeddedRedis, modes: Any
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    with pytest.raises(ValueError, match="stream_mode must be one or more of"):
        inline.submit("chain", "t", stream_mode=modes)
    assert inline.redis.keys("*") == []


def test_a_thread_moved_while_its_node_ran_fails_the_run_and_keeps_the_move(
    server: EmbeddedRedis, outbox: bool
) -> None:
    gate = threading.Event()
    inline = Inline(server.url, {"chain": _chain("a", "b", hold={"a": gate})}, outbox=outbox)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__
    message = inline.queue.popleft()  # a, which waits for the gate
    worker = threading.Thread(target=inline.engine.run_node, args=(message,))
    worker.start()
    _wait_status(inline, message, "running")
    moved = inline.client.update_state("chain", "t", {"n": 100}, as_node="a")
    gate.set()  # the hop's compare-and-set loses: nothing of it is stored
    worker.join(10)
    head = inline.saver.get_tuple(make_config("t", "", ""))
    assert head.checkpoint["id"] == moved["configurable"]["checkpoint_id"]
    assert head.checkpoint["channel_values"]["n"] == 100
    assert not inline.queue
    assert inline.status(run) == "error"
    assert "moved under the run" in inline.coordinator.run_info("t", run.id)["error"].decode()


# -- the outbox: a hop's next tasks go on the broker in the commit script ---------------


def test_an_outbox_message_is_the_one_send_task_publishes(server: EmbeddedRedis) -> None:
    settings = WorkerSettings(redis_url=server.url, default_queue="inline")
    celery = create_app(settings)
    message = NodeMessage("chain", "t", "", "cp-1", "task-1", 0, "run-1", 3, "a")
    options = send_options(message, "inline", "node chain.a", "broker-1", time_limit=30.0)
    celery.send_task(**options)
    published = json.loads(redis.Redis.from_url(server.url).rpop("inline"))
    outbox = Outbox(celery, send_options)
    send = (message, "inline", "node chain.a", "broker-1", {"time_limit": 30.0})
    # the first build declares the queue, later ones do not: the same message each time
    commands = outbox.build([send])
    again = outbox.build([send])
    assert commands is not None and len(commands) == 1
    assert again is not None and len(again) == 1
    name, (key, payload) = commands[0]
    assert (name, key) == ("lpush", "inline")
    assert again[0][:1] == ("lpush",) and again[0][1][0] == "inline"
    built, rebuilt = json.loads(payload), json.loads(again[0][1][1])
    for envelope in (published, built, rebuilt):  # a fresh tag per publish; nothing else
        assert envelope["properties"].pop("delivery_tag")
    assert built == published
    assert rebuilt == published
    assert built["headers"]["timelimit"] == [30.0, None]
    assert decode_node_message(payload.encode()) == message


@pytest.mark.parametrize(
    ("change", "applies"),
    [
        ({}, True),
        ({"outbox": False}, False),
        ({"sent_events": True}, False),  # a task-sent event is one more broker write
        ({"broker_url": "redis://127.0.0.1:6379/5"}, False),  # not the checkpoint Redis
        ({"broker_url": "amqp://guest@127.0.0.1//"}, False),
    ],
)
def test_the_outbox_applies_only_when_the_broker_is_the_checkpoint_redis(
    change: dict[str, Any], applies: bool
) -> None:
    settings = WorkerSettings(redis_url="redis://127.0.0.1:6379/4", **change)
    assert outbox_applies(settings, create_app(settings)) is applies


def test_the_outbox_does_not_apply_with_a_broker_key_prefix() -> None:
    settings = WorkerSettings(redis_url="redis://127.0.0.1:6379/4")
    celery = create_app(settings)
    celery.conf.broker_transport_options = {"global_keyprefix": "app:"}
    assert not outbox_applies(settings, celery)


def test_an_outbox_on_a_channel_that_cannot_batch_builds_nothing(server: EmbeddedRedis) -> None:
    settings = WorkerSettings(redis_url=server.url, default_queue="inline")
    celery = create_app(settings)
    # client-side retries make kombu publish at once instead of batching: nothing to hand over
    celery.conf.broker_transport_options = {"retry_on_timeout": True}
    message = NodeMessage("chain", "t", "", "cp-1", "task-1", 0, "run-1", 3, "a")
    built = Outbox(celery, send_options).build([(message, "inline", "node chain.a", "b-1", {})])
    assert built is None
    assert redis.Redis.from_url(server.url).llen("inline") == 0  # and nothing was published


def test_a_hop_puts_the_next_task_on_the_broker_already_sent(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")}, outbox=True)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: its hop pushes a
    raw = inline.redis.lindex("inline", -1)
    assert raw is not None and inline.redis.llen("inline") == 1
    message = decode_node_message(raw)
    step = inline.coordinator.step_info(message.step)
    assert step[f"s:{message.task_id}"] == "sent"  # no confirmation to send, none deferred
    assert step[f"c:{message.task_id}"] == json.loads(raw)["headers"]["id"]  # what cancel revokes
    assert not inline.coordinator._sent_later
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(_chain("a", "b"))


def test_a_hop_whose_messages_need_more_than_a_push_publishes_them_after(
    server: EmbeddedRedis,
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")}, outbox=True)
    inline.engine.outbox.build = lambda sends: None  # e.g. a queue with an expiry
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__
    assert len(inline.queue.local) == 1 and inline.redis.llen("inline") == 0
    inline.drain()
    assert inline.status(run) == "success"


def test_an_outbox_that_fails_leaves_the_publish_to_after_the_commit(
    server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")}, outbox=True)

    def broken(sends: Any) -> None:
        raise ConnectionError("broker unreachable")

    inline.engine.outbox.build = broken
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: committed, then published
    assert "outbox" in caplog.text
    assert len(inline.queue.local) == 1 and inline.redis.llen("inline") == 0
    inline.drain()
    assert inline.status(run) == "success"


def test_a_lease_asked_ahead_is_answered_after_the_script_cache_was_flushed(
    server: EmbeddedRedis,
) -> None:
    chain = _chain("a", "b", "c")
    inline = Inline(server.url, {"chain": chain}, outbox=True)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: a is warm here
    inline.redis.script_flush()  # as after a Redis restart: EVALSHA gets NOSCRIPT
    inline.drain()
    assert inline.status(run) == "success"
    assert inline.client.get_state("chain", "t").values == local_values(chain)


@pytest.mark.parametrize("lane", [False, True], ids=["pipeline", "lane"])
def test_an_ordered_pipeline_keeps_its_order_when_the_server_forgot_its_scripts(
    server: EmbeddedRedis, lane: bool
) -> None:
    inline = Inline(server.url, {"chain": _chain("a")})
    coordinator, raw = inline.coordinator, inline.redis
    coordinator._scripts["first"] = raw.register_script("redis.call('SET', KEYS[1], 'set')")
    coordinator._scripts["second"] = raw.register_script(
        "redis.call('RPUSH', KEYS[2], redis.call('GET', KEYS[1]) or 'unset')"
    )
    calls = [("first", ["{o}k"], []), ("second", ["{o}k", "{o}seen"], [])]

    def forget_the_first() -> None:  # as after a restart, the second already used again
        raw.script_flush()
        raw.script_load(coordinator._scripts["second"].script)

    forget_the_first()
    coordinator._pipeline(calls, lane=lane, ordered=True)
    assert raw.lrange("{o}seen", 0, -1) == [b"set"]  # the first ran first
    raw.delete("{o}k", "{o}seen")
    forget_the_first()
    coordinator._pipeline(calls, lane=lane)  # unordered: the first is run again after
    assert raw.lrange("{o}seen", 0, -1) == [b"unset"]


def test_a_warm_task_of_a_cancelled_run_drops_what_its_node_did(server: EmbeddedRedis) -> None:
    ran: list[str] = []

    def a(state: Count) -> dict[str, Any]:
        ran.append("a")
        return {"n": state["n"] + 1, "trail": [*state["trail"], "a"]}

    graph = StateGraph(Count).add_node("a", a).add_node("b", _bump("b"))
    graph = graph.set_entry_point("a").add_edge("a", "b").compile()
    inline = Inline(server.url, {"chain": graph}, outbox=True)
    run = inline.submit("chain", "t")
    inline.engine.run_node(inline.queue.popleft())  # __start__: a is warm here
    head = inline.saver.get_tuple(make_config("t", "", ""))
    run.cancel()
    assert inline.engine.run_node(inline.queue.popleft()) == "cancelled"
    assert ran == ["a"]  # it ran while its lease answer travelled: at least once
    assert (
        inline.saver.get_tuple(make_config("t", "", "")).checkpoint["id"] == (head.checkpoint["id"])
    )
    assert not inline.queue
    assert inline.status(run) == "cancelled"


# -- leases ------------------------------------------------------------------------------


def test_a_heartbeat_renews_only_its_own_workers_lease(server: EmbeddedRedis) -> None:
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.submit("chain", "t")
    message = inline.queue.popleft()
    step, coordinator = message.step, inline.coordinator
    assert coordinator.acquire(step, message.task_id, 0, 3, "worker-1").status == "ok"
    assert coordinator.heartbeat(step, message.task_id, 0, worker="worker-1")
    # another process running the same task ahead of its (busy) lease answer
    assert not coordinator.heartbeat(step, message.task_id, 0, worker="worker-2")
    assert coordinator.heartbeat(step, message.task_id, 0)  # no name: the epoch alone
    assert not coordinator.heartbeat(step, message.task_id, 1, worker="worker-1")


def test_the_lease_keeper_renews_a_long_node_and_notices_a_takeover() -> None:
    renewals: list[str] = []
    fenced = {"t2"}

    def heartbeat(step: Any, task_id: str, epoch: int) -> bool:
        renewals.append(task_id)
        return task_id not in fenced

    keeper = LeaseKeeper(heartbeat, interval=0.05)
    long_node = keeper.hold("step", "t1", 0)
    taken_over = keeper.hold("step", "t2", 0)
    deadline = time.monotonic() + 10
    while renewals.count("t1") < 3 or taken_over.held:
        assert time.monotonic() < deadline, renewals
        time.sleep(0.01)
    assert keeper.release(long_node) is True
    assert keeper.release(taken_over) is False
    assert renewals.count("t2") == 1  # a fenced lease is not renewed again
    seen = len(renewals)
    time.sleep(0.3)
    assert len(renewals) == seen  # released leases are not renewed


def test_the_lease_keeper_says_once_that_redis_is_down_and_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = threading.Event()
    down.set()
    ticks: list[str] = []

    def on_tick() -> None:
        ticks.append("tick")
        if down.is_set():
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    def heartbeat(*args: Any) -> bool:
        if down.is_set():
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")
        return True

    keeper = LeaseKeeper(heartbeat, interval=0.04, on_tick=on_tick)
    with caplog.at_level(logging.WARNING, logger="relaygraph.workers"):
        lease = keeper.hold("step", "t", 0)
        deadline = time.monotonic() + 10
        while len(ticks) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        down.clear()
        while len(ticks) < 15:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        keeper.release(lease)
    said = [record.getMessage() for record in caplog.records]
    unreachable = [text for text in said if "Redis unreachable" in text]
    assert len(unreachable) == 1 and "Error 111" in unreachable[0], said
    assert not any(record.exc_info for record in caplog.records)  # one line, no traceback
    assert said.count("lease keeper: Redis reachable again") == 1


def test_a_short_node_costs_no_renewal() -> None:
    renewals: list[str] = []
    keeper = LeaseKeeper(lambda *args: renewals.append("beat") or True, interval=5)
    lease = keeper.hold("step", "t", 0)
    assert keeper.release(lease) is True
    assert renewals == []


def test_marking_a_run_running_never_overwrites_an_ended_run(server: EmbeddedRedis) -> None:
    """A cancel landing between a worker's status check and its "running" write wins: the
    run keeps its final status and the worker is told to schedule nothing."""
    client = redis.Redis.from_url(server.url)
    coordinator = Coordinator(client, lease_ttl=2)
    key = ThreadKeys("t").run("r1")
    client.hset(key, mapping={"status": "pending"})
    assert coordinator.touch_run("t", "r1", status="running", step="s1") is True
    assert client.hget(key, "status") == b"running" and client.hget(key, "step") == b"s1"
    client.hset(key, "status", "cancelled")
    assert coordinator.touch_run("t", "r1", status="running", step="s2") is False
    assert client.hget(key, "status") == b"cancelled" and client.hget(key, "step") == b"s2"
    assert coordinator.touch_run("t", "gone", status="running") is False
    assert not client.exists(ThreadKeys("t").run("gone"))  # a deleted run is not recreated
    assert coordinator.touch_run("t", "r1", start_step=3) is True  # other fields as before


def test_a_hop_of_a_saver_with_a_ttl_leaves_every_thread_key_expiring(
    server: EmbeddedRedis,
) -> None:
    """hop.lua refreshes the thread's keys once (its writes section's refresh covers the
    keys its commit created): each of them still carries the saver's TTL."""
    inline = Inline(server.url, {"chain": _chain("a", "b")})
    inline.saver.ttl = 3600
    run = inline.submit("chain", "t")
    inline.drain()
    assert inline.status(run) == "success"
    keys = [key for key in inline.saver.thread_keys("t") if inline.redis.exists(key)]
    assert len(keys) >= 10  # heads, headers, versions, indexes, blobs, writes...
    for key in keys:
        assert 3500 < inline.redis.ttl(key) <= 3600, key
