"""The per-thread connection for hot-path commands: replies read later, failures dropped."""

from __future__ import annotations

import pytest
import redis

from relaygraph.persistence.redis_lane import ScriptLane


def _server_id(raw: redis.Redis, connection: object) -> int:
    port = connection._sock.getsockname()[1]  # type: ignore[attr-defined]
    return next(int(c["id"]) for c in raw.client_list() if c["addr"].endswith(f":{port}"))


def test_replies_are_read_after_other_work_and_errors_come_back_as_values(
    redis_search_url: str,
) -> None:
    raw = redis.Redis.from_url(redis_search_url)
    lane = ScriptLane(raw)
    read = lane.send([("SET", "k", "v"), ("HGET", "k", "f"), ("GET", "k")])
    raw.set("other", "1")  # the caller goes on meanwhile
    ok, wrong_type, value = read()
    assert (ok, value) == (b"OK", b"v")
    assert isinstance(wrong_type, redis.ResponseError)
    assert read() == [ok, wrong_type, value]  # read once, then the same replies
    assert lane.evalsha(raw.script_load("return ARGV[1]"), [], ["x"]) == b"x"
    with pytest.raises(redis.exceptions.NoScriptError):
        lane.evalsha("0" * 40, [], [])
    lane.close()


def test_a_second_send_before_the_replies_are_read_is_refused(redis_search_url: str) -> None:
    lane = ScriptLane(redis.Redis.from_url(redis_search_url))
    read = lane.send([("PING",)])
    with pytest.raises(RuntimeError, match="not read yet"):
        lane.send([("PING",)])
    assert read() == [b"PONG"]
    assert lane.send([("PING",)])() == [b"PONG"]
    lane.close()


def test_a_connection_lost_while_replies_wait_is_dropped_and_made_again(
    redis_search_url: str,
) -> None:
    raw = redis.Redis.from_url(redis_search_url)
    lane = ScriptLane(raw)
    lane.send([("PING",)])()
    connection = lane._open[0]
    raw.client_kill_filter(_id=_server_id(raw, connection))
    with pytest.raises(redis.ConnectionError):  # on the write or on the read
        lane.send([("PING",)])()
    assert connection._sock is None  # dropped, never reused with replies unread
    assert lane.send([("PING",)])() == [b"PONG"]  # reconnects on the next send
    lane.close()


def test_commands_are_packed_as_redis_py_packs_them(redis_search_url: str) -> None:
    raw = redis.Redis.from_url(redis_search_url)
    lane = ScriptLane(raw)
    connection = raw.connection_pool.connection_class(**raw.connection_pool.connection_kwargs)
    commands = [
        ("EVALSHA", "0" * 40, 1, "k", "é", b"\x00\xff", -5, 2**70, 1.5, 0.1, 1e20, ""),
        ("ZADD", "z", b"LT", 123, "m"),
        ("SCRIPT EXISTS", "0" * 40),  # a spaced name: two arguments, as redis-py sends it
        ("SET", "k", bytearray(b"v")),
    ]
    for sent in (commands[:2], commands):
        packed = b"".join(lane._pack(connection, sent))
        assert packed == b"".join(connection.pack_commands(sent))
    with pytest.raises(redis.DataError):  # what redis-py refuses is refused
        lane._pack(connection, [("SET", "k", True)])
    assert lane.send([("SET", "k", 1.5), ("GET", "k")])() == [b"OK", b"1.5"]
    lane.close()
