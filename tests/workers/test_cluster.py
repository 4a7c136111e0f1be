"""The distributed executor on a Redis Cluster (the suite's embedded 3-master cluster).

Driven in-process, as test_protocol_scripts.py does on one server: an engine whose node
messages wait in a list, a client built from the cluster URL, so these stay cheap. The
broker is never the cluster (Celery's Redis transport cannot run on one): start messages
go to kombu's in-memory transport and the tests start runs themselves.
"""

from __future__ import annotations

import collections
import itertools
import json
import time
import zlib
from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from relaygraph import MemorySaver
from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.redis_server import EmbeddedCluster, EmbeddedRedis
from relaygraph.workers import metrics
from relaygraph.workers.client import Client
from relaygraph.workers.connect import (
    BrokerOnClusterError,
    check_broker,
    is_cluster_client,
    redis_client,
)
from relaygraph.workers.coordination import Coordinator, now_ms
from relaygraph.workers.engine import Engine, NodeMessage
from relaygraph.workers.keys import DEFAULT_BUCKETS, LEGACY_INDEXES, Indexes, bucket_of
from relaygraph.workers.recovery import Sweeper
from relaygraph.workers.registry import GraphRegistry
from relaygraph.workers.settings import WorkerSettings

from . import graphs

GRAPHS = {"linear": graphs.linear, "fanout": graphs.fanout, "ask": graphs.ask}
EMPTY = {"items": [], "total": 0}


class ClusterInline:
    """An engine and a client on ``url`` (a cluster node, or a single Redis) whose node
    messages wait in a list until run; start messages go to an in-memory broker."""

    def __init__(self, url: str, **options: Any) -> None:
        self.settings = WorkerSettings(
            redis_url=url,
            broker_url="memory://",
            lease_ttl=5,
            default_queue="inline",
            **options,
        )
        self.redis = redis_client(url)
        self.saver = RedisSaver.from_conn_string(url)
        self.coordinator = Coordinator(
            self.redis, saver=self.saver, **self.settings.coordinator_options()
        )
        self.queue: collections.deque[NodeMessage] = collections.deque()
        self.engine = Engine(
            GraphRegistry(GRAPHS),
            self.saver,
            self.coordinator,
            self.settings,
            lambda message, *_args, **_options: self.queue.append(message),
        )
        self.client = Client(settings=self.settings, graphs=GRAPHS)

    def submit(self, graph: str, thread_id: str, input: Any = EMPTY) -> Any:
        run = self.client.submit(graph, input, thread_id=thread_id)
        self.engine.start_run(thread_id, run.id)
        return run

    def drain(self) -> None:
        while self.queue:
            self.engine.run_node(self.queue.popleft())

    def status(self, run: Any) -> str:
        return self.coordinator.run_status(run.thread_id, run.id) or ""


def local(graph: Any, *inputs: Any) -> tuple[dict[str, Any], list[tuple]]:
    """The oracle: values and history of ``inputs`` run in turn on the local executor."""
    compiled = graph.builder.compile(checkpointer=MemorySaver())
    config = {"configurable": {"thread_id": "oracle"}}
    for input in inputs:
        compiled.invoke(input, config)
    history = [
        (s.metadata["step"], s.metadata["source"], s.next)
        for s in compiled.get_state_history(config)
    ]
    return compiled.get_state(config).values, history


def remote(inline: ClusterInline, graph: str, thread_id: str) -> tuple[dict[str, Any], list]:
    history = [
        (s.metadata["step"], s.metadata["source"], s.next)
        for s in inline.client.get_state_history(graph, thread_id)
    ]
    return inline.client.get_state(graph, thread_id).values, history


def node_of(cluster: RedisCluster, key: str) -> str:
    return cluster.get_node_from_key(key).name


# -- the bucket mapping (no server) -------------------------------------------------------


def test_buckets_are_stable_and_spread_threads_and_slots_evenly() -> None:
    indexes = Indexes()
    assert indexes.buckets == DEFAULT_BUCKETS == 16
    # stable: CRC-32 of the id, whatever the process or Python version (no hash seed)
    assert bucket_of("t1", 16) == zlib.crc32(b"t1") % 16 == 7
    assert indexes.leases("t1") == "rgw:{idx:7}:leases"
    assert Indexes(1).runs("anything") == "rgw:{idx:0}:runs"
    assert bucket_of("thread-ü", 7) == zlib.crc32("thread-ü".encode()) % 7
    with pytest.raises(ValueError):
        Indexes(0)
    # a bucket's indexes and its sweep lock share one slot; buckets use distinct slots
    for bucket in range(16):
        slots = {key_slot(indexes.key(kind, bucket).encode()) for kind in LEGACY_INDEXES}
        slots.add(key_slot(indexes.lock(bucket).encode()))
        assert len(slots) == 1
    slots = [key_slot(indexes.key("leases", n).encode()) for n in range(16)]
    assert len(set(slots)) == 16
    # ... spread over the three equal slot ranges of a 3-master cluster
    per_shard = collections.Counter(slot * 3 // 16384 for slot in slots)
    assert sorted(per_shard) == [0, 1, 2] and min(per_shard.values()) >= 3, per_shard
    # threads spread evenly over the buckets
    load = collections.Counter(bucket_of(f"thread-{n}", 16) for n in range(16_000))
    assert len(load) == 16 and 900 < min(load.values()) <= max(load.values()) < 1100, load


# -- runs on the cluster ----------------------------------------------------------------


def test_runs_through_a_cluster_url_match_the_local_executor(
    redis_cluster: EmbeddedCluster,
) -> None:
    inline = ClusterInline(redis_cluster.url)
    assert is_cluster_client(inline.redis) and is_cluster_client(inline.client.redis)
    runs = {
        f"{graph}-{n}": inline.submit(graph, f"{graph}-{n}")
        for graph in ("linear", "fanout")
        for n in range(2)
    }
    inline.drain()
    for thread_id, run in runs.items():
        assert inline.status(run) == "success", run.error
        graph = thread_id.split("-")[0]
        assert remote(inline, graph, thread_id) == local(GRAPHS[graph], EMPTY)
    # interrupt, then resume through the client
    run = inline.submit("ask", "ask-1")
    inline.drain()
    assert inline.status(run) == "interrupted"
    resumed = inline.client.resume("ask", "ask-1", "Ada")
    inline.engine.start_run("ask-1", resumed.id)
    inline.drain()
    assert inline.status(resumed) == "success", resumed.error
    from relaygraph import Command

    assert remote(inline, "ask", "ask-1") == local(graphs.ask, EMPTY, Command(resume="Ada"))
    assert inline.client.get_state("ask", "ask-1").values["items"] == ["hello Ada"]
    # the run indexes of the finished runs are empty again, in every bucket
    for key in inline.coordinator.indexes.all("runs"):
        assert inline.redis.zcard(key) == 0
    inline.client.delete("linear-0")
    assert inline.client.get_state("linear", "linear-0").values == {}


def test_index_entries_sit_in_their_threads_buckets_on_every_shard(
    redis_cluster: EmbeddedCluster,
) -> None:
    inline = ClusterInline(redis_cluster.url)
    threads = [f"spread-{n}" for n in range(12)]
    for thread_id in threads:
        inline.submit("linear", thread_id)  # started; its first node waits in the queue
    indexes = inline.coordinator.indexes
    used = {key for key in indexes.all("leases") if inline.redis.zcard(key)}
    assert used == {indexes.leases(t) for t in threads}
    assert len(used) == 12  # 12 threads, 16 buckets: no two share one
    shards = {node_of(inline.redis, key) for key in used}
    assert len(shards) == 3, shards
    for thread_id in threads:
        members = inline.redis.zrange(indexes.leases(thread_id), 0, -1)
        assert any(json.loads(m)[0] == thread_id for m in members)
        assert inline.redis.zscore(
            indexes.runs(thread_id), json.dumps([thread_id, _run_of(inline, thread_id)])
        )
    inline.drain()


def _run_of(inline: ClusterInline, thread_id: str) -> str:
    from relaygraph.workers.keys import ThreadKeys

    return inline.redis.get(ThreadKeys(thread_id).active).decode()


def _thread_on_another_shard(cluster: RedisCluster, indexes: Indexes) -> str:
    """A thread whose lease bucket lives on another shard than the thread's own keys."""
    from relaygraph.workers.keys import ThreadKeys

    for n in itertools.count():
        thread_id = f"far-{n}"
        own = ThreadKeys(thread_id).run("x")
        if node_of(cluster, own) != node_of(cluster, indexes.leases(thread_id)):
            return thread_id
    raise AssertionError("unreachable")


def test_the_sweeper_recovers_an_expired_lease_in_a_bucket_on_another_shard(
    redis_cluster: EmbeddedCluster,
) -> None:
    inline = ClusterInline(redis_cluster.url)
    indexes = inline.coordinator.indexes
    thread_id = _thread_on_another_shard(inline.redis, indexes)
    run = inline.submit("linear", thread_id)
    message = inline.queue.popleft()
    step = message.step
    # a worker takes the lease and dies: its lease expires
    acquired = inline.coordinator.acquire(step, message.task_id, 0, 3, "dead-worker")
    assert acquired.status == "ok"
    inline.redis.hset(step.key, f"d:{message.task_id}", now_ms() - 1)
    inline.redis.zadd(indexes.leases(thread_id), {step.member(message.task_id): 0})
    # another sweeper holds the bucket: this one leaves it alone until the lock lapses
    bucket = bucket_of(thread_id, indexes.buckets)
    inline.redis.set(indexes.lock(bucket), "someone-else", px=60_000)
    sweeper = Sweeper(inline.engine)
    assert sweeper.sweep().requeued == []
    inline.redis.delete(indexes.lock(bucket))
    report = sweeper.sweep()
    assert report.requeued == [f"{thread_id}/{message.node}@1"], report
    assert inline.redis.get(indexes.lock(bucket)) == sweeper.token.encode()
    assert sweeper.sweep().requeued == []  # the holder sweeps its bucket again at once
    inline.drain()
    assert inline.status(run) == "success", run.error
    assert remote(inline, "linear", thread_id) == local(graphs.linear, EMPTY)


@pytest.mark.parametrize("topology", ["single", "cluster"])
def test_the_sweeper_moves_entries_of_the_unsharded_indexes_into_their_buckets(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """An upgrade in place: the release before kept one unsharded index (on one server)."""
    if topology == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        url = request.getfixturevalue("redis_search_url")
    inline = ClusterInline(url)
    run = inline.submit("linear", "old")
    message = inline.queue.popleft()  # sent by a worker of the release before, lost
    member = message.step.member(message.task_id)
    leases = inline.coordinator.indexes.leases("old")
    inline.redis.zrem(leases, member)  # as that release wrote it: in rgw:leases
    inline.redis.zadd(LEGACY_INDEXES["leases"], {member: 0, "not json": 0})
    inline.redis.hset(message.step.key, f"q:{message.task_id}", 0)  # past the grace
    sweeper = Sweeper(inline.engine)
    sweeper.sweep()  # moves it
    assert inline.redis.zcard(LEGACY_INDEXES["leases"]) == 0
    assert inline.redis.zscore(leases, member) == 0
    assert sweeper.sweep().requeued == [f"old/{message.node}@1"]
    inline.drain()
    assert inline.status(run) == "success"


# -- the broker, commit replicas, the API ------------------------------------------------


def test_a_broker_on_a_cluster_node_is_refused_with_a_clear_error(
    redis_cluster: EmbeddedCluster, redis_search_url: str
) -> None:
    with pytest.raises(BrokerOnClusterError, match="RELAYGRAPH_BROKER_URL"):
        check_broker(redis_cluster.url)
    check_broker(redis_search_url)  # a single Redis
    check_broker("amqp://guest:guest@127.0.0.1:5672//")  # not probed
    settings = WorkerSettings(redis_url=redis_cluster.url, graphs="")  # broker = redis_url
    with Client(settings=settings, graphs=GRAPHS) as client:
        with pytest.raises(BrokerOnClusterError):
            client.submit("linear", EMPTY, thread_id="t")
        assert client.redis.keys("*") == []  # refused before anything was stored
    from typer.testing import CliRunner

    from relaygraph.cli import app as cli
    from relaygraph.workers.app import app as celery_app

    previous = celery_app.relaygraph_settings
    celery_app.relaygraph_settings = settings
    try:
        result = CliRunner().invoke(cli, ["worker"])
    finally:
        celery_app.relaygraph_settings = previous
    assert result.exit_code == 2, result.output
    assert "Redis Cluster" in result.output


def _shortfalls() -> float:
    return metrics.REPLICA_SHORTFALLS._value.get()


def test_commit_replicas_waits_for_a_replica_after_each_commit() -> None:
    no_delay = ["--repl-diskless-sync-delay", "0"]  # the replica syncs at once
    with EmbeddedRedis(modules=False, extra_args=no_delay) as primary:
        args = ["--replicaof", primary.host, str(primary.port)]
        with EmbeddedRedis(modules=False, extra_args=args) as replica:
            replica_client = replica.client()
            deadline = time.monotonic() + 10
            while replica_client.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica never synced"
                time.sleep(0.01)
            inline = ClusterInline(primary.url, commit_replicas=1, commit_replicas_timeout=5)
            before = _shortfalls()
            run = inline.submit("linear", "t")
            inline.drain()
            assert inline.status(run) == "success"
            assert _shortfalls() == before  # every commit reached the replica in time
            # what the replica holds is the thread's head, without waiting any further
            head = inline.saver.get_tuple(make_config("t", "", ""))
            copy = RedisSaver(client=replica_client).get_tuple(make_config("t", "", ""))
            assert copy is not None and copy.checkpoint["id"] == head.checkpoint["id"]
            # two replicas asked, one there: each commit stands, and says so
            inline = ClusterInline(primary.url, commit_replicas=2, commit_replicas_timeout=0.02)
            run = inline.submit("linear", "u")
            inline.drain()
            assert inline.status(run) == "success"
            assert _shortfalls() >= before + 3  # the three steps' commits


def test_commit_replicas_on_a_cluster_waits_on_the_threads_shard(
    redis_cluster: EmbeddedCluster,
) -> None:
    inline = ClusterInline(redis_cluster.url, commit_replicas=1, commit_replicas_timeout=0.01)
    before = _shortfalls()
    run = inline.submit("linear", "replicated")
    inline.drain()
    assert inline.status(run) == "success"  # the fixture has no replicas: WAIT says 0
    assert _shortfalls() > before
    assert remote(inline, "linear", "replicated") == local(graphs.linear, EMPTY)


def test_the_api_submits_and_reads_runs_on_a_cluster(redis_cluster: EmbeddedCluster) -> None:
    from fastapi.testclient import TestClient

    from relaygraph.api.app import create_app
    from relaygraph.api.settings import ApiSettings

    inline = ClusterInline(redis_cluster.url)
    settings = ApiSettings(redis_url=redis_cluster.url, broker_url="memory://", api_key=None)
    app = create_app(settings, graphs=GRAPHS)
    with TestClient(app) as http:
        assert http.get("/ok").status_code == 200
        thread = http.post("/threads", json={"metadata": {"who": "cluster"}}).json()
        thread_id = thread["thread_id"]
        body = {"assistant_id": "linear", "input": EMPTY}
        run = http.post(f"/threads/{thread_id}/runs", json=body).json()
        inline.engine.start_run(thread_id, run["run_id"])  # the worker's part
        inline.drain()
        joined = http.get(f"/threads/{thread_id}/runs/{run['run_id']}/join")
        assert joined.status_code == 200, joined.text
        assert joined.json()["items"] == ["a", "b", "c"]
        state = http.get(f"/threads/{thread_id}/state").json()
        assert state["values"] == local(graphs.linear, EMPTY)[0]
        found = http.post("/threads/search", json={"metadata": {"who": "cluster"}}).json()
        assert [t["thread_id"] for t in found] == [thread_id]
        assert app.state.backend.client.coordinator.cluster


def test_the_api_assistants_crons_and_thread_ttls_on_a_cluster(
    redis_cluster: EmbeddedCluster,
) -> None:
    """The API's own keys (assistants, crons, TTLs) live in many slots: their scripts and
    pipelines work on a cluster, and a replica's cron tick fires a due cron there."""
    from fastapi.testclient import TestClient

    from relaygraph.api import thread_ttl
    from relaygraph.api.app import create_app
    from relaygraph.api.crons import DUE
    from relaygraph.api.settings import ApiSettings

    inline = ClusterInline(redis_cluster.url)
    settings = ApiSettings(redis_url=redis_cluster.url, broker_url="memory://", api_key=None)
    app = create_app(settings, graphs=GRAPHS)
    backend = app.state.backend
    with TestClient(app) as http:
        made = http.post("/assistants", json={"graph_id": "linear", "metadata": {"k": 1}})
        aid = made.json()["assistant_id"]
        assert http.patch(f"/assistants/{aid}", json={"name": "two"}).json()["version"] == 2
        versions = http.post(f"/assistants/{aid}/versions", json={}).json()
        assert [v["version"] for v in versions] == [2, 1]
        found = http.post("/assistants/search", json={"metadata": {"k": 1}}).json()
        assert [a["assistant_id"] for a in found] == [aid]
        thread_id = http.post("/threads", json={"ttl": {"ttl": 1}}).json()["thread_id"]
        body = {"assistant_id": aid, "input": EMPTY}
        first = http.post(f"/threads/{thread_id}/runs", json=body).json()
        assert first["assistant_id"] == aid
        inline.engine.start_run(thread_id, first["run_id"])
        inline.drain()
        cron = http.post(
            f"/threads/{thread_id}/runs/crons",
            json={"assistant_id": aid, "schedule": "0 0 1 1 *", "input": EMPTY},
        ).json()
        backend.redis.zadd(DUE, {cron["cron_id"]: 0})  # due now: the app's tick fires it
        deadline = time.monotonic() + 20
        while len(runs := http.get(f"/threads/{thread_id}/runs").json()) < 2:
            assert time.monotonic() < deadline, "the cron did not fire"
            time.sleep(0.1)
        assert runs[0]["metadata"]["cron_id"] == cron["cron_id"]
        inline.engine.start_run(thread_id, runs[0]["run_id"])
        inline.drain()
        searched = http.post("/runs/crons/search", json={"thread_id": thread_id}).json()
        assert [c["cron_id"] for c in searched] == [cron["cron_id"]]
        assert searched[0]["next_run_date"].startswith(str(time.gmtime().tm_year + 1))
        assert http.delete(f"/runs/crons/{cron['cron_id']}").status_code == 204
        # idle past its TTL (a minute): the sweep deletes the thread
        assert thread_ttl.sweep(backend, now=now_ms() + 120_000) == [thread_id]
        assert http.get(f"/threads/{thread_id}").status_code == 404
        assert http.delete(f"/assistants/{aid}").status_code == 204


def test_a_lease_asked_ahead_on_a_cluster_survives_a_moved_slot(
    redis_cluster: EmbeddedCluster,
) -> None:
    from redis.exceptions import MovedError

    inline = ClusterInline(redis_cluster.url)
    inline.submit("linear", "moved")
    message = inline.queue.popleft()
    # each of the two commands goes to its own shard's connection, answered later...
    answer = inline.coordinator.acquire_later(message.step, message.task_id, 0, 3, "w1")
    assert answer().status == "ok"
    # ...and a redirect (a resharding moved the slot) is run again through the client
    lane = inline.coordinator._lane
    real_send = lane.send

    def redirected(commands: list[tuple[Any, ...]]) -> Any:
        real_send(commands)()  # as if they had gone to a node that no longer serves them
        return lambda: [MovedError("1 127.0.0.1:1"), MovedError("1 127.0.0.1:1")]

    lane.send = redirected
    other = inline.coordinator.acquire_later(message.step, message.task_id, 0, 3, "w2")
    assert other().status == "busy"  # answered by the real script: w1 holds the lease
    member = message.step.member(message.task_id)
    assert inline.redis.zscore(inline.coordinator.indexes.leases("moved"), member)
