"""RedisSaver's sealed chunks: a cold read of a long append-only list fetches one chunk per
``_CHUNK`` items plus the blobs of the steps since the last seal, never one blob per step;
every checkpoint of the history, threads stored before chunks existed, forks and pruned
threads read the same as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from relaygraph.persistence import redis as redis_saver_module
from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.redis_server import EmbeddedCluster
from tests.persistence.test_redis_saver import Chat, cfg, count_blobs_read, texts

CHUNK = redis_saver_module._CHUNK


def said(n: int, start: int = 0) -> list[str]:
    return [f"m{i}" for i in range(start, n)]


@pytest.fixture
def cold(redis_search_url: str) -> Iterator[RedisSaver]:
    """A reader that never wrote and caches nothing: another worker's read."""
    with RedisSaver.from_conn_string(redis_search_url, cache_size=0) as made:
        yield made


def grow(chat: Chat, upto: int) -> list[str]:
    heads = []
    for i in range(len(chat.messages), upto):
        heads.append(chat.say(f"m{i}"))
    return heads


def test_cold_read_fetches_chunks_and_every_checkpoint_reads(
    redis_search_url: str, cold: RedisSaver
) -> None:
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        heads = grow(chat, 7 * CHUNK + 5)
        transferred = count_blobs_read(cold)
        head = cold.get_tuple(cfg(chat.thread_id))
        assert head is not None and texts(head) == said(7 * CHUNK + 5)
        # 7 chunks, the 5 steps since the last seal and its own version, the counter
        assert transferred == [7 + 6 + 1]
        for k in (0, CHUNK - 2, CHUNK - 1, CHUNK, 3 * CHUNK + 1, len(heads) - 1):
            old = cold.get_tuple(cfg(chat.thread_id, heads[k]))
            assert old is not None and texts(old) == said(k + 1), k
        listed = list(cold.list(cfg(chat.thread_id)))
        assert [texts(item) for item in listed] == [said(n) for n in range(len(heads), 0, -1)]


def test_a_big_append_seals_several_chunks_at_once(redis_search_url: str, cold: RedisSaver) -> None:
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        chat.say("m0")
        first = chat.version
        chat.messages += [("user", text) for text in said(3 * CHUNK + 2, 1)]
        checkpoint, versions = chat.checkpoint(f"m{3 * CHUNK + 2}")
        checkpoint["channel_appends"] = {"messages": (first, 1)}  # one append of 3N + 2
        saver.put(cfg(chat.thread_id, chat.head), checkpoint, {}, versions)
        transferred = count_blobs_read(cold)
        head = cold.get_tuple(cfg(chat.thread_id))
        assert head is not None and texts(head) == said(3 * CHUNK + 3)
        assert transferred == [3 + 1 + 1]


def test_a_thread_stored_before_chunks_reads_and_continues(
    redis_search_url: str, cold: RedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blobs written by the previous layout (no chunks) still read; the first seal after
    it sends the list's chunks from the start, so the thread's cold read becomes short."""
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        monkeypatch.setattr(redis_saver_module, "_CHUNK", 10**9)  # the previous layout
        old_heads = grow(chat, 3 * CHUNK + 4)
        monkeypatch.setattr(redis_saver_module, "_CHUNK", CHUNK)
        transferred = count_blobs_read(cold)
        assert texts(cold.get_tuple(cfg(chat.thread_id))) == said(3 * CHUNK + 4)
        assert transferred == [3 * CHUNK + 4 + 1]  # one blob per step, as before
        grow(chat, 4 * CHUNK + 1)  # seals chunk 3: chunks 0-2 come with it
        transferred.clear()
        assert texts(cold.get_tuple(cfg(chat.thread_id))) == said(4 * CHUNK + 1)
        assert transferred == [4 + 2 + 1]
        for k in (0, CHUNK, len(old_heads) - 1):
            old = cold.get_tuple(cfg(chat.thread_id, old_heads[k]))
            assert old is not None and texts(old) == said(k + 1)


def test_a_fork_seals_its_own_chunks_and_leaves_the_original_intact(
    redis_search_url: str, cold: RedisSaver
) -> None:
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        heads = grow(chat, 2 * CHUNK + 3)
        fork = Chat(saver, chat.thread_id)  # from the checkpoint holding CHUNK + 4 messages
        fork.head = heads[CHUNK + 3]
        saved = cold.get_tuple(cfg(chat.thread_id, fork.head))
        assert saved is not None
        fork.messages = [("user", text) for text in texts(saved)]
        fork.version = saved.checkpoint["channel_versions"]["messages"]
        for i in range(CHUNK + 4, 3 * CHUNK + 2):
            fork.say(f"f{i}")
        expected = said(CHUNK + 4) + [f"f{i}" for i in range(CHUNK + 4, 3 * CHUNK + 2)]
        assert texts(cold.get_tuple(cfg(chat.thread_id, fork.head))) == expected
        for k in (CHUNK + 3, len(heads) - 1):
            assert texts(cold.get_tuple(cfg(chat.thread_id, heads[k]))) == said(k + 1)


def test_prune_keeps_the_chunks_a_head_needs(
    redis_search_url: str, cold: RedisSaver, raw: redis.Redis
) -> None:
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        grow(chat, 3 * CHUNK + 7)
        saver.prune([chat.thread_id], keep_last=1)
        assert texts(cold.get_tuple(cfg(chat.thread_id))) == said(3 * CHUNK + 7)
        blob_key = saver.thread_keys(chat.thread_id)[5]
        kept = [k for k in raw.hkeys(blob_key) if b"\0messages\0" in k]
        assert len(kept) == 3 + 8  # the chunks and the steps since the last seal
        grow(chat, 4 * CHUNK + 1)  # still links to the kept chunks
        assert texts(cold.get_tuple(cfg(chat.thread_id))) == said(4 * CHUNK + 1)


def test_a_stale_chunk_link_is_never_followed(redis_search_url: str, cold: RedisSaver) -> None:
    """An append that keeps fewer items of its base than a chunk below it ends (allowed by
    the blob format) makes the next seal send every chunk again instead of linking."""
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        grow(chat, 2 * CHUNK + 2)  # chunks [0, N) and [N, 2N) sealed
        refused: list[str] = []
        original = saver._put_result

        def spy(result: Any, *args: Any) -> Any:
            refused.append(redis_saver_module._text(result[0]))
            return original(result, *args)

        saver._put_result = spy  # type: ignore[method-assign]
        for keep in (CHUNK + 4, CHUNK - 4):  # keeps chunk 0's items; then keeps none whole
            chat.messages, below = chat.messages[:keep], chat.version
            checkpoint, versions = chat.checkpoint("r0")
            checkpoint["channel_appends"] = {"messages": (below, keep)}
            saver.put(cfg(chat.thread_id, chat.head), checkpoint, {}, versions)
            chat.head = checkpoint["id"]
            for i in range(1, 2 * CHUNK):
                chat.say(f"r{i}")
            expected = said(keep) + [f"r{i}" for i in range(2 * CHUNK)]
            assert texts(cold.get_tuple(cfg(chat.thread_id))) == expected
            # keeping N + 4: the chunk found below ends at 2N, not N: chunks sent again
            assert refused.count("missing_chunks") == (1 if keep > CHUNK else 0)
            refused.clear()
            for item in cold.list(cfg(chat.thread_id), limit=2 * CHUNK):  # this regrowth
                assert texts(item) == expected[: item.checkpoint["channel_values"]["count"]]


def test_chunks_on_a_cluster(redis_cluster: EmbeddedCluster) -> None:
    with (
        RedisSaver.from_conn_string(redis_cluster.url) as saver,
        RedisSaver.from_conn_string(redis_cluster.url, cache_size=0) as other,
    ):
        chat = Chat(saver, "cluster-chunks")
        grow(chat, 2 * CHUNK + 3)
        assert texts(other.get_tuple(cfg(chat.thread_id))) == said(2 * CHUNK + 3)


@pytest.fixture
def raw(redis_search_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_search_url)
    yield client
    client.close()


def test_messages_chunk_round_trip(redis_search_url: str, cold: RedisSaver) -> None:
    """Chunks of chat messages (stored flat, see Serializer.dumps_list) read back equal."""
    from relaygraph import AIMessage, HumanMessage

    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat: Any = Chat(saver)
        items = []
        for i in range(CHUNK + 3):
            item = (
                HumanMessage(content=f"h{i}", id=f"h{i}")
                if i % 2
                else AIMessage(content=[{"type": "text", "text": f"a{i}"}], name="bot")
            )
            items.append(item)
            chat.messages = items[:i]
            checkpoint, versions = chat.checkpoint("unused")
            checkpoint["channel_values"]["messages"] = list(items)
            saver.put(cfg(chat.thread_id, chat.head), checkpoint, {}, versions)
            chat.head = checkpoint["id"]
        got = cold.get_tuple(cfg(chat.thread_id))
        assert got is not None
        back = got.checkpoint["channel_values"]["messages"]
        assert back == items and [type(m) for m in back] == [type(m) for m in items]
        assert [m.model_fields_set for m in back] == [m.model_fields_set for m in items]


def test_the_commit_composed_into_the_executors_scripts_seals_the_same(
    redis_search_url: str, cold: RedisSaver, raw: redis.Redis
) -> None:
    """The distributed executor runs the saver's commit as a Lua function of its own
    scripts (prepare_put): sealing works there too, and a refusal stores nothing."""
    from relaygraph.workers.coordination import compose

    script = raw.register_script(
        compose(
            {"saver_commit": RedisSaver(url="redis://unused").script_source("commit")},
            "return saver_commit(KEYS, ARGV)",
        )
    )
    with RedisSaver.from_conn_string(redis_search_url) as saver:
        chat = Chat(saver)
        grow(chat, 2 * CHUNK - 1)
        checkpoint, versions = chat.checkpoint(f"m{2 * CHUNK - 1}")
        prepared = saver.prepare_put(cfg(chat.thread_id, chat.head), checkpoint, {}, versions)
        assert any("\0" in str(arg) for arg in prepared.args[9::4])  # it seals a chunk
        assert script(keys=prepared.keys, args=prepared.args) == [b"ok"]
        saver.put_done(prepared, checkpoint)
        transferred = count_blobs_read(cold)
        assert texts(cold.get_tuple(cfg(chat.thread_id))) == said(2 * CHUNK)
        assert transferred == [2 + 1 + 1]
