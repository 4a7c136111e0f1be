"""RedisSaver specifics beyond the shared contract: round trips, key layout, cluster, scale,
TTL, corruption, atomicity and compare-and-set under real concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from relaygraph.persistence.base import ANY_HEAD, ERROR, Checkpoint, next_version
from relaygraph.persistence.errors import CheckpointConflict, CorruptCheckpointError
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.persistence.redis import RedisSaver, thread_tag
from relaygraph.persistence.redis_server import EmbeddedCluster, EmbeddedRedis

# -- helpers ---------------------------------------------------------------------------


def cfg(thread_id: str, checkpoint_id: str | None = None, ns: str = "") -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class Chat:
    """A thread whose ``messages`` channel only grows (append blobs) plus a counter."""

    def __init__(self, saver: RedisSaver, thread_id: str | None = None, ns: str = "") -> None:
        self.saver = saver
        self.thread_id = thread_id or f"t-{uuid.uuid4().hex[:10]}"
        self.ns = ns
        self.messages: list[tuple[str, str]] = []  # immutable items: the read cache shares them
        self.version: str | None = None
        self.head: str | None = None

    def checkpoint(self, text: str) -> tuple[Checkpoint, dict[str, str]]:
        base = (self.version, len(self.messages)) if self.version and self.messages else None
        self.messages = [*self.messages, ("user", text)]
        version = next_version(self.version)
        self.version = version
        checkpoint = Checkpoint(
            v=1,
            id=new_checkpoint_id(after=self.head),  # as the runtime: after its parent
            ts=dt.datetime.now(dt.UTC).isoformat(),
            channel_values={"messages": list(self.messages), "count": len(self.messages)},
            channel_versions={"messages": version, "count": version},
            versions_seen={},
            updated_channels=["messages", "count"],
            channel_appends={"messages": base} if base else {},
        )
        return checkpoint, {"messages": version, "count": version}

    def say(self, text: str, *, expected_head: Any = ANY_HEAD, **metadata: Any) -> str:
        checkpoint, versions = self.checkpoint(text)
        self.saver.put(
            cfg(self.thread_id, self.head, self.ns),
            checkpoint,
            {"step": len(self.messages), **metadata},
            versions,
            expected_head=expected_head,
        )
        self.head = checkpoint["id"]
        return self.head

    async def asay(self, text: str, **metadata: Any) -> str:
        checkpoint, versions = self.checkpoint(text)
        await self.saver.aput(
            cfg(self.thread_id, self.head, self.ns),
            checkpoint,
            {"step": len(self.messages), **metadata},
            versions,
        )
        self.head = checkpoint["id"]
        return self.head


def texts(saved: Any) -> list[str]:
    return [text for _role, text in saved.checkpoint["channel_values"]["messages"]]


@pytest.fixture
def saver(redis_search_url: str) -> Iterator[RedisSaver]:
    with RedisSaver.from_conn_string(redis_search_url) as made:
        yield made


@pytest.fixture
def raw(redis_search_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_search_url)
    yield client
    client.close()


# -- round trips -----------------------------------------------------------------------


def test_round_trip_with_appends_writes_and_parent(saver: RedisSaver) -> None:
    chat = Chat(saver)
    first = chat.say("hello", run_id="r1")
    second = chat.say("again")
    saver.put_writes(cfg(chat.thread_id, second), [("a", 1), ("b", {"x": [1, 2]})], "task-1")
    saver.put_writes(cfg(chat.thread_id, second), [("a", 2)], "task-1")  # first write wins
    saver.put_writes(cfg(chat.thread_id, second), [(ERROR, "boom")], "task-2")
    saver.put_writes(cfg(chat.thread_id, second), [(ERROR, "boom again")], "task-2")

    saved = saver.get_tuple(cfg(chat.thread_id))
    assert saved is not None
    assert saved.checkpoint["id"] == second
    assert texts(saved) == ["hello", "again"]
    assert saved.checkpoint["channel_values"]["count"] == 2
    assert saved.parent_config == cfg(chat.thread_id, first)
    assert saved.metadata == {"step": 2}
    assert [(w.task_id, w.channel, w.value) for w in saved.pending_writes] == [
        ("task-1", "a", 1),
        ("task-1", "b", {"x": [1, 2]}),
        ("task-2", ERROR, "boom again"),
    ]
    older = saver.get_tuple(cfg(chat.thread_id, first))
    assert older is not None and texts(older) == ["hello"]
    assert older.metadata == {"step": 1, "run_id": "r1"}
    assert saver.get_tuple(cfg(chat.thread_id, new_checkpoint_id())) is None
    assert saver.get_tuple(cfg("no-such-thread")) is None


def test_thousands_of_channels_and_writes_in_one_call(saver: RedisSaver) -> None:
    """The scripts batch their commands in chunks (Lua's stack limits unpack): a step
    with 5,000 channels and 5,000 writes (more than one unpack takes) stores and reads
    back every one, in order."""
    thread = f"t-{uuid.uuid4().hex[:10]}"
    names = [f"c{i}" for i in range(5000)]
    version = next_version(None)
    checkpoint = Checkpoint(
        v=1,
        id=new_checkpoint_id(),
        ts=dt.datetime.now(dt.UTC).isoformat(),
        channel_values={name: i for i, name in enumerate(names)},
        channel_versions=dict.fromkeys(names, version),
        versions_seen={},
        updated_channels=names,
        channel_appends={},
    )
    config = saver.put(cfg(thread), checkpoint, {"step": 0}, dict.fromkeys(names, version))
    writes = [(name, -i) for i, name in enumerate(names)]
    saver.put_writes(config, writes, "task-1")
    saver.put_writes(config, [("late", 1)], "task-2")
    saved = saver.get_tuple(cfg(thread))
    assert saved is not None
    assert saved.checkpoint["channel_values"] == {name: i for i, name in enumerate(names)}
    got = [(w.task_id, w.channel, w.value) for w in saved.pending_writes]
    assert got == [("task-1", c, v) for c, v in writes] + [("task-2", "late", 1)]


def test_append_blobs_store_only_the_new_messages(saver: RedisSaver, raw: redis.Redis) -> None:
    chat = Chat(saver)
    for i in range(30):
        chat.say(f"message number {i} " + "x" * 100)
    blob_key = saver.thread_keys(chat.thread_id)[5]
    sizes = [len(v) for k, v in raw.hgetall(blob_key).items() if b"\0messages\0" in k]
    assert len(sizes) == 30
    assert max(sizes) < 400  # each holds one message (plus its base pointer), not the history
    assert texts(saver.get_tuple(cfg(chat.thread_id)))[-1].startswith("message number 29")


def test_unstored_version_and_pruned_base_are_sent_in_full(saver: RedisSaver) -> None:
    chat = Chat(saver)
    chat.say("one")
    chat.say("two")
    # The caller forgets a channel in new_versions: the script asks for it, put resends.
    checkpoint, versions = chat.checkpoint("three")
    checkpoint["channel_values"]["extra"] = "kept"
    checkpoint["channel_versions"]["extra"] = versions["count"]
    saver.put(cfg(chat.thread_id, chat.head), checkpoint, {}, versions)
    chat.head = checkpoint["id"]
    saved = saver.get_tuple(cfg(chat.thread_id))
    assert saved is not None and saved.checkpoint["channel_values"]["extra"] == "kept"
    # An append whose base blob was garbage-collected is stored as a full blob instead.
    base_version = chat.version
    saver.prune([chat.thread_id], keep_last=1)
    forked = Chat(saver, chat.thread_id)
    forked.messages = [("user", t) for t in ["x", "y"]]
    forked.version = next_version(None)  # a base version nothing stores
    forked.head = chat.head
    forked.say("z")
    assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["x", "y", "z"]
    assert base_version is not None


def test_list_filters_before_limit_and_namespaces(saver: RedisSaver) -> None:
    chat = Chat(saver)
    ids = [chat.say(f"m{i}", kind="even" if i % 2 == 0 else "odd") for i in range(7)]
    sub = Chat(saver, chat.thread_id, ns="child:1")
    sub_ids = [sub.say(f"s{i}") for i in range(2)]
    listed = [t.checkpoint["id"] for t in saver.list(cfg(chat.thread_id))]
    assert listed == ids[::-1]
    all_ns = {"configurable": {"thread_id": chat.thread_id}}
    everything = [t.checkpoint["id"] for t in saver.list(all_ns)]
    assert everything == sorted(ids + sub_ids, reverse=True)
    evens = [t.checkpoint["id"] for t in saver.list(cfg(chat.thread_id), filter={"kind": "even"})]
    assert evens == ids[::2][::-1]
    before = [
        t.checkpoint["id"]
        for t in saver.list(cfg(chat.thread_id), before=cfg(chat.thread_id, ids[4]), limit=2)
    ]
    assert before == [ids[3], ids[2]]
    only = list(saver.list(cfg(chat.thread_id, ids[1])))
    assert [t.checkpoint["id"] for t in only] == [ids[1]] and texts(only[0]) == ["m0", "m1"]
    assert list(saver.list(cfg(chat.thread_id), limit=0)) == []


# -- round trips on the wire -----------------------------------------------------------


class CountingConnection(redis.Connection):
    """Counts what a client sends: one count per packed send = one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


class CountingAsyncConnection(aredis.Connection):
    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


def test_each_thread_reads_and_commits_on_its_own_lane(redis_search_url: str) -> None:
    saver = RedisSaver.from_conn_string(redis_search_url)
    chats = [Chat(saver) for _ in range(3)]
    together = threading.Barrier(3)  # three threads for sure (a pool reuses an idle one)

    def talk(chat: Chat) -> list[str]:
        together.wait(timeout=30)
        for i in range(5):
            chat.say(f"m{i}")
            assert texts(saver.get_tuple(cfg(chat.thread_id))) == [f"m{j}" for j in range(i + 1)]
        return texts(saver.get_tuple(cfg(chat.thread_id)))

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(talk, chats)) == [[f"m{j}" for j in range(5)]] * 3
    assert saver._lane is not None and len(saver._lane._open) >= 3  # one per worker thread
    saver.close()
    assert saver._lane is None


def test_a_killed_lane_connection_falls_back_and_reconnects(
    redis_search_url: str, raw: redis.Redis
) -> None:
    saver = RedisSaver.from_conn_string(redis_search_url)
    chat = Chat(saver)
    chat.say("before")
    assert saver._lane is not None
    lane_connection = saver._lane._open[0]
    raw.execute_command("CLIENT", "KILL", "ID", _client_id(raw, lane_connection))
    chat.say("after")  # the dead socket fails, the client's own path commits it
    assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["before", "after"]
    raw.script_flush()  # and a server that lost its scripts gets them loaded again
    assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["before", "after"]
    saver.close()


def _client_id(raw: redis.Redis, connection: Any) -> int:
    """The server's id of the client whose local port ``connection`` uses."""
    port = connection._sock.getsockname()[1]
    for client in raw.client_list():
        if client["addr"].endswith(f":{port}"):
            return int(client["id"])
    raise AssertionError("the lane connection is not connected")


def test_a_forked_child_uses_its_own_lane(redis_search_url: str) -> None:
    saver = RedisSaver.from_conn_string(redis_search_url)
    chat = Chat(saver)
    chat.say("parent")
    context = multiprocessing.get_context("fork")
    out = context.Queue()

    def child() -> None:
        saved = saver.get_tuple(cfg(chat.thread_id))
        out.put(texts(saved) if saved else None)

    process = context.Process(target=child)
    process.start()
    assert out.get(timeout=30) == ["parent"]
    process.join(timeout=30)
    assert process.exitcode == 0
    assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["parent"]  # the parent's still works
    saver.close()


def test_get_tuple_and_put_are_one_round_trip_each(redis_search_url: str) -> None:
    saver = RedisSaver.from_conn_string(
        redis_search_url, cluster=False, client_kwargs={"connection_class": CountingConnection}
    )
    with saver:
        chat = Chat(saver)
        for i in range(20):
            chat.say(f"warm {i}", run_id="run-1")
        saver.get_tuple(cfg(chat.thread_id))
        saver.put_writes(cfg(chat.thread_id, chat.head), [("a", 1)], "t")

        CountingConnection.sent = 0
        chat.say("counted", run_id="run-1")
        assert CountingConnection.sent == 1
        CountingConnection.sent = 0
        saved = saver.get_tuple(cfg(chat.thread_id))
        assert CountingConnection.sent == 1
        assert saved is not None and len(texts(saved)) == 21
        CountingConnection.sent = 0
        saver.put_writes(cfg(chat.thread_id, chat.head), [("a", 1), ("b", 2)], "t2")
        assert CountingConnection.sent == 1


async def test_async_get_tuple_and_put_are_one_round_trip_each(redis_search_url: str) -> None:
    saver = RedisSaver.from_conn_string(
        redis_search_url,
        cluster=False,
        client_kwargs={"connection_class": CountingAsyncConnection},
    )
    async with saver:
        chat = Chat(saver)
        for i in range(5):
            await chat.asay(f"warm {i}")
        await saver.aget_tuple(cfg(chat.thread_id))
        CountingAsyncConnection.sent = 0
        await chat.asay("counted")
        assert CountingAsyncConnection.sent == 1
        CountingAsyncConnection.sent = 0
        saved = await saver.aget_tuple(cfg(chat.thread_id))
        assert CountingAsyncConnection.sent == 1
        assert saved is not None and texts(saved)[-1] == "counted"


def count_blobs_read(saver: RedisSaver) -> list[int]:
    """From now on, the number of blobs each of ``saver``'s reads transfers, appended."""
    transferred: list[int] = []
    original = saver._build_tuples

    def spy(thread_id: str, result: Any, *args: Any, **kwargs: Any) -> Any:
        transferred.append(len(result[1]) // 2)
        return original(thread_id, result, *args, **kwargs)

    saver._build_tuples = spy  # type: ignore[method-assign]
    return transferred


def test_cached_reads_transfer_only_new_blobs(redis_search_url: str) -> None:
    with RedisSaver.from_conn_string(redis_search_url, cache_size=64) as saver:
        chat = Chat(saver)
        for i in range(200):
            chat.say(f"m{i}")
        saver.get_tuple(cfg(chat.thread_id))  # resolves (and caches) the whole history once
        transferred = count_blobs_read(saver)
        for i in range(200, 205):
            chat.say(f"m{i}")
            saved = saver.get_tuple(cfg(chat.thread_id))
            assert saved is not None and texts(saved) == [f"m{j}" for j in range(i + 1)]
        # the new message segment and the counter: never the 200-message chain again
        assert transferred and max(transferred) <= 2


def test_warm_head_reads_transfer_no_blob_and_match_a_cold_read(redis_search_url: str) -> None:
    """Channel versions the saver wrote without a value (consumed triggers, the input) are
    skipped by the next head read like cached lists; a reader without a cache sees the same."""
    from relaygraph import END, START, AIMessage, HumanMessage, MessagesState, StateGraph

    def respond(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content="echo " + state["messages"][-1].content)]}

    builder = StateGraph(MessagesState).add_node("respond", respond)
    builder.add_edge(START, "respond").add_edge("respond", END)
    with (
        RedisSaver.from_conn_string(redis_search_url) as saver,
        RedisSaver.from_conn_string(redis_search_url, cache_size=0) as cold,
    ):
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "warm"}}
        transferred = count_blobs_read(saver)
        for i in range(5):
            graph.invoke({"messages": [HumanMessage(content=f"m{i}")]}, config)
            transferred.clear()
            warm = saver.get_tuple(cfg("warm"))
            assert transferred == [0]
            fresh = cold.get_tuple(cfg("warm"))
            assert warm is not None and fresh is not None
            assert warm.checkpoint["channel_values"] == fresh.checkpoint["channel_values"]
            assert len(warm.checkpoint["channel_values"]["messages"]) == 2 * (i + 1)
            assert set(warm.checkpoint["channel_versions"]) > {"messages"}  # empty ones too
        for item in saver.list(cfg("warm")):  # every older checkpoint still reads in full
            again = cold.get_tuple(item.config)
            assert again is not None
            assert item.checkpoint["channel_values"] == again.checkpoint["channel_values"]


# -- keys ------------------------------------------------------------------------------


NASTY_THREADS = ["plain", "{braced}", "a}b{c", "%7B", "%", "}{", "ünï cödé", "x:y:{z}"]


def test_every_key_carries_its_thread_hash_tag(saver: RedisSaver, raw: redis.Redis) -> None:
    for thread_id in NASTY_THREADS:
        chat = Chat(saver, thread_id)
        chat.say("a", run_id=f"run-{thread_id}")
        chat.say("b")
        Chat(saver, thread_id, ns="sub").say("c")
        saver.put_writes(cfg(thread_id, chat.head), [("w", 1)], "task")
    saver.copy_thread("{braced}", "copy{of}braced")
    keys = {k.decode() for k in raw.scan_iter(match="*", count=1000)}
    run_keys = {k for k in keys if k.startswith("rg:run:")}
    assert len(run_keys) == len(NASTY_THREADS)
    by_thread: dict[str, set[str]] = {}
    for key in keys - run_keys:
        assert key.startswith("rg:{")
        tag = key[len("rg:{") : key.index("}")]
        by_thread.setdefault(tag, set()).add(key)
    assert set(by_thread) == {thread_tag(t) for t in [*NASTY_THREADS, "copy{of}braced"]}
    for tag, thread_keys in by_thread.items():
        assert "{" not in tag and "}" not in tag
        slots = {raw.execute_command("CLUSTER", "KEYSLOT", key) for key in thread_keys}
        assert len(slots) == 1, tag
    # braces and percent signs never make two threads share keys
    assert texts(saver.get_tuple(cfg("%7B"))) == ["a", "b"]
    assert texts(saver.get_tuple(cfg("copy{of}braced"))) == ["a", "b"]
    saver.delete_thread("{braced}")
    assert saver.get_tuple(cfg("{braced}")) is None
    assert saver.get_tuple(cfg("%7B")) is not None


def test_bad_arguments_are_clear_errors(redis_search_url: str) -> None:
    with pytest.raises(ValueError, match="client"):
        RedisSaver()
    with pytest.raises(ValueError, match="braces"):
        RedisSaver(url=redis_search_url, prefix="a{b}")
    decoding = redis.Redis.from_url(redis_search_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisSaver(decoding)
    decoding.close()
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver, ns="bad\0ns")
        with pytest.raises(ValueError, match="NUL"):
            chat.say("x")
        with pytest.raises(ValueError, match="checkpoint_id"):
            saver.put_writes(cfg("t"), [("a", 1)], "task")
        with pytest.raises(ValueError, match="keep_last"):
            saver.prune(["t"], keep_last=0)


def test_sync_only_and_async_only_savers_say_so(redis_search_url: str) -> None:
    client = redis.Redis.from_url(redis_search_url)
    with RedisSaver(client) as saver:
        Chat(saver).say("sync works")
        with pytest.raises(TypeError, match="sync client"):
            asyncio.run(saver.aget_tuple(cfg("t")))
    client.close()

    async def async_only() -> None:
        aclient = aredis.Redis.from_url(redis_search_url)
        saver = RedisSaver(aclient=aclient)
        await Chat(saver).asay("async works")
        with pytest.raises(TypeError, match="asyncio client"):
            saver.get_tuple(cfg("t"))
        await aclient.aclose()

    asyncio.run(async_only())


# -- clients and URLs ------------------------------------------------------------------


def test_auth_url_and_tls_url() -> None:
    with EmbeddedRedis(modules=False, password="s3cret") as server:
        good = server.url
        assert ":s3cret@" in good
        with RedisSaver.from_conn_string(good) as saver:
            chat = Chat(saver)
            chat.say("authenticated")
            assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["authenticated"]
        bad = f"redis://:wrong@{server.host}:{server.port}/0"
        with pytest.raises(redis.AuthenticationError), RedisSaver.from_conn_string(bad) as saver:
            saver.get_tuple(cfg("t"))
    # rediss:// goes to redis-py as is: its pool makes TLS connections.
    saver = RedisSaver.from_conn_string("rediss://user:pw@127.0.0.1:1/0", cluster=False)
    client, _ = saver._sync()
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert client.connection_pool.connection_kwargs["password"] == "pw"
    saver.close()


async def test_async_saver_as_context_manager_and_across_loops(redis_search_url: str) -> None:
    async with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        await chat.asay("first")
        await saver.aput_writes(cfg(chat.thread_id, chat.head), [("a", 1)], "task")
        saved = await saver.aget_tuple(cfg(chat.thread_id))
        assert saved is not None and [w.value for w in saved.pending_writes] == [1]
        assert [t.checkpoint["id"] async for t in saver.alist(cfg(chat.thread_id))] == [chat.head]
        assert [t.checkpoint["id"] async for t in saver.alist(None)] == [chat.head]

        # the same saver keeps working from another event loop (another thread here)
        def other_loop() -> list[str]:
            return asyncio.run(saver.aget_tuple(cfg(chat.thread_id))).checkpoint["channel_values"]

        values = await asyncio.to_thread(other_loop)
        assert values["count"] == 1


async def test_async_methods_are_native(redis_search_url: str, monkeypatch: Any) -> None:
    async with RedisSaver.from_conn_string(redis_search_url) as saver:  # detects natively too

        def no_threads(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("async method hopped to a thread")

        monkeypatch.setattr(asyncio, "to_thread", no_threads)
        chat = Chat(saver, "native")
        await chat.asay("one", run_id="r")
        await chat.asay("two")
        await saver.aput_writes(cfg("native", chat.head), [("a", 1)], "task")
        assert (await saver.aget_tuple(cfg("native"))) is not None
        assert len([t async for t in saver.alist(cfg("native"), limit=5)]) == 2
        await saver.acopy_thread("native", "native-copy")
        await saver.aprune(["native"], keep_last=1)
        await saver.adelete_for_runs(["r"])
        await saver.adelete_thread("native-copy")
        remaining = [t.checkpoint["id"] async for t in saver.alist(cfg("native"))]
        assert remaining == [chat.head]
        assert (await saver.aget_tuple(cfg("native-copy"))) is None


# -- cluster ---------------------------------------------------------------------------


def test_cluster_detected_and_threads_spread_over_masters(redis_cluster: EmbeddedCluster) -> None:
    with RedisSaver.from_conn_string(redis_cluster.url) as saver:
        assert saver.is_cluster
        chats = [Chat(saver, f"cluster-thread-{i}") for i in range(12)]
        for chat in chats:
            chat.say("hi", run_id="cluster-run")
            chat.say("there")
        client, _ = saver._sync()
        nodes = {client.get_node_from_key(saver.thread_keys(c.thread_id)[0]).port for c in chats}
        assert len(nodes) > 1
        for chat in chats:
            assert texts(saver.get_tuple(cfg(chat.thread_id))) == ["hi", "there"]
        assert len(list(saver.list(None))) == 24
        saver.copy_thread(chats[0].thread_id, "copied-across-slots")
        assert texts(saver.get_tuple(cfg("copied-across-slots"))) == ["hi", "there"]
        saver.delete_for_runs(["cluster-run"])
        assert [len(list(saver.list(cfg(c.thread_id)))) for c in chats] == [1] * 12
    with RedisSaver.from_conn_string(redis_cluster.url, cluster=True) as explicit:
        assert texts(explicit.get_tuple(cfg(chats[3].thread_id))) == ["hi", "there"]


async def test_cluster_async(redis_cluster: EmbeddedCluster) -> None:
    async with RedisSaver.from_conn_string(redis_cluster.url) as saver:
        chat = Chat(saver)
        await chat.asay("one")
        await chat.asay("two")
        saved = await saver.aget_tuple(cfg(chat.thread_id))
        assert saved is not None and texts(saved) == ["one", "two"]
        assert len([t async for t in saver.alist(None)]) == 2


# -- scale -----------------------------------------------------------------------------


def test_ten_thousand_checkpoints_list_and_delete_fully(
    saver: RedisSaver, raw: redis.Redis
) -> None:
    total = 10_050
    thread_id = "long-thread"
    client, scripts = saver._sync()
    ids: list[str] = []
    version = None
    pipe = client.pipeline(transaction=False)
    for step in range(total):  # the commit script, pipelined: same storage, fewer round trips
        version = next_version(version)
        checkpoint = Checkpoint(
            v=1, id=new_checkpoint_id(), ts="t", channel_values={"n": step},
            channel_versions={"n": version}, versions_seen={}, updated_channels=["n"],
        )  # fmt: skip
        _, _, _, _, args = saver._put_args(
            cfg(thread_id), checkpoint, {"step": step}, {"n": version}, ANY_HEAD
        )
        scripts["commit"](keys=saver.thread_keys(thread_id), args=args, client=pipe)
        ids.append(checkpoint["id"])
        if step % 1000 == 999:
            pipe.execute()
    pipe.execute()

    listed = [t.checkpoint["id"] for t in saver.list(cfg(thread_id))]
    assert listed == ids[::-1]
    deep = list(saver.list(cfg(thread_id), before=cfg(thread_id, ids[30]), limit=40))
    assert [t.metadata["step"] for t in deep] == list(range(29, -1, -1))
    assert [t.checkpoint["channel_values"]["n"] for t in deep[:2]] == [29, 28]
    assert len(list(saver.list(cfg(thread_id), filter={"step": 7}))) == 1
    saver.delete_thread(thread_id)
    assert list(saver.list(cfg(thread_id))) == []
    assert raw.dbsize() == 0


def test_prune_and_delete_for_runs_collect_blobs(saver: RedisSaver, raw: redis.Redis) -> None:
    chat = Chat(saver)
    for i in range(10):
        chat.say(f"m{i}", run_id="old" if i < 6 else "new")
    other = Chat(saver)
    other.say("other", run_id="old")
    saver.prune([chat.thread_id], keep_last=3)
    assert len(list(saver.list(cfg(chat.thread_id)))) == 3
    assert texts(saver.get_tuple(cfg(chat.thread_id))) == [f"m{i}" for i in range(10)]
    blobs = raw.hkeys(saver.thread_keys(chat.thread_id)[5])
    # 10 message segments (the kept heads' chains) + 3 counters
    assert len(blobs) == 13
    saver.delete_for_runs(["old"])
    assert saver.get_tuple(cfg(other.thread_id)) is None
    assert not raw.exists(*saver.thread_keys(other.thread_id))
    assert not raw.exists(saver.run_key("old"))
    assert len(list(saver.list(cfg(chat.thread_id)))) == 3  # all three were "new"
    saver.delete_for_runs(["new"])
    assert saver.get_tuple(cfg(chat.thread_id)) is None
    assert raw.dbsize() == 0


def test_copy_thread_into_a_thread_with_checkpoints_is_refused(saver: RedisSaver) -> None:
    source, target = Chat(saver), Chat(saver)
    source.say("from source")
    target.say("already here")
    with pytest.raises(ValueError, match="already has checkpoints"):
        saver.copy_thread(source.thread_id, target.thread_id)
    assert texts(saver.get_tuple(cfg(target.thread_id))) == ["already here"]
    saver.copy_thread("no-such-thread", "still-empty")
    assert saver.get_tuple(cfg("still-empty")) is None


# -- retention by TTL ------------------------------------------------------------------


def test_ttl_applies_to_every_key_and_reads_refresh_it(
    redis_search_url: str, raw: redis.Redis
) -> None:
    with RedisSaver.from_conn_string(redis_search_url, ttl=3) as saver:
        chat = Chat(saver)
        chat.say("a", run_id="ttl-run")
        saver.put_writes(cfg(chat.thread_id, chat.head), [("w", 1)], "task")
        keys = [k for k in saver.thread_keys(chat.thread_id) if raw.exists(k)]
        assert len(keys) >= 10
        assert all(0 < raw.pttl(k) <= 3000 for k in [*keys, saver.run_key("ttl-run")])
        time.sleep(1.2)
        before = max(raw.pttl(k) for k in keys)
        assert before < 2000
        assert saver.get_tuple(cfg(chat.thread_id)) is not None  # refreshes
        assert all(raw.pttl(k) > 2500 for k in keys)
        time.sleep(1.2)
        list(saver.list(cfg(chat.thread_id)))  # listing refreshes too
        assert all(raw.pttl(k) > 2500 for k in keys)
    with RedisSaver.from_conn_string(redis_search_url, ttl=3, refresh_on_read=False) as saver:
        time.sleep(0.5)
        saver.get_tuple(cfg(chat.thread_id))
        assert all(raw.pttl(k) < 2600 for k in keys)


def test_expired_thread_is_gone_entirely(redis_search_url: str, raw: redis.Redis) -> None:
    with RedisSaver.from_conn_string(redis_search_url, ttl=1) as saver:
        chat = Chat(saver)
        chat.say("short lived")
        saver.copy_thread(chat.thread_id, "copied-with-ttl")
        assert 0 < raw.pttl(saver.thread_keys("copied-with-ttl")[1]) <= 1000
        time.sleep(1.3)
        assert saver.get_tuple(cfg(chat.thread_id)) is None
        assert saver.get_tuple(cfg("copied-with-ttl")) is None
        assert raw.dbsize() == 0


# -- corruption and atomicity ----------------------------------------------------------


@pytest.fixture
def uncached_saver(redis_search_url: str) -> Iterator[RedisSaver]:
    """A saver that decodes every read (its cache would hide a corrupted blob)."""
    with RedisSaver.from_conn_string(redis_search_url, cache_size=0) as made:
        yield made


def test_corrupt_payloads_name_thread_and_checkpoint(
    uncached_saver: RedisSaver, raw: redis.Redis
) -> None:
    saver = uncached_saver
    chat = Chat(saver, "victim")
    chat.say("a")
    head = chat.say("b")
    saver.put_writes(cfg("victim", head), [("w", 1)], "task")
    keys = saver.thread_keys("victim")
    member = f"\0{head}"

    blob_field = next(k for k in raw.hkeys(keys[5]) if chat.version.encode() in k)
    good_blob = raw.hget(keys[5], blob_field)
    raw.hset(keys[5], blob_field, b"\xc1garbage")
    with pytest.raises(CorruptCheckpointError, match=f"{head}.*victim|victim.*{head}"):
        saver.get_tuple(cfg("victim"))
    raw.hset(keys[5], blob_field, good_blob)

    write_field = raw.hkeys(keys[7])[0]
    good_write = raw.hget(keys[7], write_field)
    raw.hset(keys[7], write_field, b"not msgpack \xc1")
    with pytest.raises(CorruptCheckpointError, match="victim") as info:
        saver.get_tuple(cfg("victim"))
    assert head in str(info.value)
    raw.hset(keys[7], write_field, good_write)

    raw.hset(keys[1], member, b"\x93\xc1")
    with pytest.raises(CorruptCheckpointError, match="victim") as info:
        saver.get_tuple(cfg("victim"))
    assert head in str(info.value)
    with pytest.raises(CorruptCheckpointError, match=head):
        list(saver.list(cfg("victim")))

    raw.hdel(keys[5], blob_field)  # a missing blob is corruption too
    with pytest.raises(CorruptCheckpointError, match="victim"):
        saver.get_tuple(cfg("victim", chat.head))


def test_dropped_connection_mid_commit_leaves_nothing_visible(
    saver: RedisSaver, raw: redis.Redis, redis_search_server: EmbeddedRedis
) -> None:
    chat = Chat(saver)
    head = chat.say("committed")
    checkpoint, versions = chat.checkpoint("never committed " + "x" * 100_000)
    _, _, _, _, args = saver._put_args(cfg(chat.thread_id, head), checkpoint, {}, versions, head)
    _, scripts = saver._sync()
    keys = saver.thread_keys(chat.thread_id)
    packed = b"".join(
        raw.connection_pool.get_connection().pack_command(
            "EVALSHA", scripts["commit"].sha, len(keys), *keys, *args
        )
    )
    before = {k: raw.dump(k) for k in keys}
    for cut in (len(packed) // 3, len(packed) - 1):
        with socket.create_connection((redis_search_server.host, redis_search_server.port)) as sock:
            sock.sendall(packed[:cut])  # the connection drops before the command is complete
    time.sleep(0.1)
    assert {k: raw.dump(k) for k in keys} == before
    saved = saver.get_tuple(cfg(chat.thread_id))
    assert saved is not None and saved.checkpoint["id"] == head
    assert len(list(saver.list(cfg(chat.thread_id)))) == 1


# -- compare-and-set under concurrency -------------------------------------------------


def _contend_in_thread(
    saver: RedisSaver, chat: Chat, parent: str, i: int, barrier: threading.Barrier
) -> Any:
    mine = Chat(saver, chat.thread_id)
    mine.messages, mine.version, mine.head = list(chat.messages), chat.version, parent
    checkpoint, versions = mine.checkpoint(f"from {i}")
    barrier.wait()
    try:
        saver.put(cfg(chat.thread_id, parent), checkpoint, {}, versions, expected_head=parent)
    except CheckpointConflict as exc:
        return exc
    return checkpoint["id"], checkpoint["channel_values"]["messages"], mine.version


def test_cas_from_threads_exactly_one_wins_each_step(saver: RedisSaver) -> None:
    chat = Chat(saver)
    head = chat.say("root")
    for _round in range(5):
        contend = functools.partial(
            _contend_in_thread, saver, chat, head, barrier=threading.Barrier(6)
        )
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(contend, range(6)))
        winners = [o for o in outcomes if isinstance(o, tuple)]
        losers = [o for o in outcomes if isinstance(o, CheckpointConflict)]
        assert len(winners) == 1 and len(losers) == 5
        assert all(exc.expected == head and exc.actual == winners[0][0] for exc in losers)
        head = winners[0][0]
        chat.messages, chat.version = winners[0][1], winners[0][2]
        saved = saver.get_tuple(cfg(chat.thread_id))
        assert saved is not None and saved.checkpoint["id"] == head
    assert len(list(saver.list(cfg(chat.thread_id)))) == 6


def _contend_in_process(url: str, thread_id: str, rounds: int, barrier: Any, out: Any) -> None:
    with RedisSaver.from_conn_string(url) as saver:
        for _ in range(rounds):
            barrier.wait()
            saved = saver.get_tuple(cfg(thread_id))
            assert saved is not None
            head = saved.checkpoint["id"]
            chat = Chat(saver, thread_id)
            chat.messages = saved.checkpoint["channel_values"]["messages"]
            chat.version = saved.checkpoint["channel_versions"]["messages"]
            chat.head = head
            barrier.wait()  # both have read the same head
            try:
                out.put(("won", chat.say(f"pid {os.getpid()}", expected_head=head)))
            except CheckpointConflict:
                out.put(("lost", head))


def test_cas_from_two_processes_exactly_one_wins_each_step(
    redis_search_url: str, saver: RedisSaver
) -> None:
    chat = Chat(saver, "two-processes")
    chat.say("root")
    rounds = 8
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    out = context.Queue()
    processes = [
        context.Process(
            target=_contend_in_process,
            args=(redis_search_url, chat.thread_id, rounds, barrier, out),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=60) for _ in range(2 * rounds)]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sum(kind == "won" for kind, _ in results) == rounds
    assert sum(kind == "lost" for kind, _ in results) == rounds
    history = list(saver.list(cfg(chat.thread_id)))
    assert len(history) == rounds + 1
    assert len(texts(history[0])) == rounds + 1  # every step extended the winner's head


def test_run_registry_rides_with_the_commit(redis_search_url: str, raw: redis.Redis) -> None:
    saver = RedisSaver.from_conn_string(
        redis_search_url, ttl=60, client_kwargs={"connection_class": CountingConnection}
    )
    with saver:
        chat = Chat(saver)
        chat.say("warm")
        raw.script_flush()  # the pipelined EVALSHA meets NOSCRIPT and falls back
        chat.say("after flush", run_id="run-x")
        assert raw.smembers(saver.run_key("run-x")) == {chat.thread_id.encode()}
        CountingConnection.sent = 0
        chat.say("counted", run_id="run-x")
        assert CountingConnection.sent == 1  # registry refresh + commit, one round trip
        assert 0 < raw.ttl(saver.run_key("run-x")) <= 60
        saver.delete_for_runs(["run-x"])
        assert [t.metadata["step"] for t in saver.list(cfg(chat.thread_id))] == [1]


def test_prefixes_isolate_savers_even_with_glob_characters(redis_search_url: str) -> None:
    with (
        RedisSaver.from_conn_string(redis_search_url, prefix="a*") as starred,
        RedisSaver.from_conn_string(redis_search_url, prefix="ab") as plain,
    ):
        Chat(starred, "s").say("starred")
        Chat(plain, "p").say("plain")
        assert [t.config["configurable"]["thread_id"] for t in starred.list(None)] == ["s"]
        assert [t.config["configurable"]["thread_id"] for t in plain.list(None)] == ["p"]
        assert plain.get_tuple(cfg("s")) is None


def test_commit_script_drops_a_stale_base_only_when_a_blob_is_stored_again(
    raw: redis.Redis,
) -> None:
    """commit.lua skips the HDEL of full blobs' bases when every blob field is new (a base
    is only ever stored with its blob); a version stored again as a full blob still loses
    the base it had as an append blob, and a checkpoint's run entry is indexed."""
    from relaygraph.persistence.redis import _script_source

    commit = raw.register_script(_script_source("commit"))
    keys = RedisSaver(client=raw).thread_keys(f"t-{uuid.uuid4().hex[:10]}")
    blob_key, base_key, run_key, rx_key = keys[5], keys[6], keys[9], keys[10]

    def put(checkpoint_id: str, run: str, *blobs: tuple[str, str, str, bytes]) -> Any:
        cv = "\0".join(part for channel, version, _b, _d in blobs for part in (channel, version))
        args: list[Any] = [0, "", checkpoint_id, "*", "", f"h-{checkpoint_id}", cv, run]
        for blob in blobs:
            args.extend(blob)
        return commit(keys=keys, args=args)

    assert put("c0", "", ("a", "v0", "", b"F0")) == [b"ok"]
    assert put("c1", "r1", ("a", "v1", "v0", b"A-append")) == [b"ok"]
    assert raw.hget(base_key, "\0a\0v1") == b"v0"
    # all new: nothing to drop, the append blob's base stays
    assert put("c2", "r1", ("b", "w0", "", b"F1")) == [b"ok"]
    assert raw.hget(base_key, "\0a\0v1") == b"v0"
    # v1 again, now a full blob (with a new one beside it): its stale base goes
    assert put("c3", "", ("a", "v1", "", b"Ffull"), ("b", "w1", "", b"F2")) == [b"ok"]
    assert raw.hget(base_key, "\0a\0v1") is None
    assert raw.hget(blob_key, "\0a\0v1") == b"Ffull"
    assert raw.hgetall(run_key) == {b"\0c1": b"r1", b"\0c2": b"r1"}
    assert raw.zrange(rx_key, 0, -1) == [b"r1\0\0c1", b"r1\0\0c2"]


def test_commit_script_checks_unwritten_versions_against_the_head(raw: redis.Redis) -> None:
    """Several channels not written by a commit: versions the head also has pass on one
    read of the head's versions; any other must be stored, or the commit is refused with
    nothing stored."""
    from relaygraph.persistence.redis import _script_source

    commit = raw.register_script(_script_source("commit"))
    keys = RedisSaver(client=raw).thread_keys(f"t-{uuid.uuid4().hex[:10]}")

    def put(checkpoint_id: str, cv: dict[str, str], *blobs: tuple[str, str, bytes]) -> Any:
        joined = "\0".join(part for pair in cv.items() for part in pair)
        args: list[Any] = [0, "", checkpoint_id, "*", "", f"h-{checkpoint_id}", joined, ""]
        for channel, version, data in blobs:
            args.extend((channel, version, "", data))
        return commit(keys=keys, args=args)

    first = {"a": "1", "b": "1", "c": "1"}
    assert put("c0", first, ("a", "1", b"F"), ("b", "1", b"F"), ("c", "1", b"F")) == [b"ok"]
    assert put("c1", {**first, "a": "2"}, ("a", "2", b"F")) == [b"ok"]
    # c's version 5 is neither on the head nor stored; b's is on the head
    assert put("c2", {"a": "3", "b": "1", "c": "5"}, ("a", "3", b"F")) == [b"missing_blob", b"c"]
    assert put("c2", {"a": "3", "b": "9", "c": "5"}, ("a", "3", b"F")) == [
        b"missing_blob",
        b"b",
        b"c",
    ]
    assert raw.hget(keys[0], "") == b"c1"  # refused: the head did not move
    assert raw.hget(keys[1], "\0c2") is None
    # a@1 is stored but not on the head (c0's version): still found; b@1 is on the head
    assert put("c2", {"a": "1", "b": "1", "d": "1"}, ("d", "1", b"F")) == [b"ok"]
