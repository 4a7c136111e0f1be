"""Agent threads continued after their saver is closed and opened again (a process restart).

The first turn (or the run up to an ``interrupt_before=["tools"]`` pause) runs with one
saver; the saver is closed, a new one is opened on the same storage, a new graph (a new
model object: the script answers by conversation, not by call count) continues the
thread. The observations must equal LangGraph's, which runs the whole thread in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from relaygraph.persistence.postgres import PostgresSaver
from relaygraph.persistence.redis import RedisSaver
from relaygraph.persistence.sqlite import SqliteSaver

from . import scenarios
from .libs import LANGGRAPH, RELAYGRAPH, observe

Opener = Callable[[], contextlib.AbstractContextManager[Any]]


@pytest.fixture
def sqlite_opener() -> Iterator[Opener]:
    with tempfile.TemporaryDirectory(prefix="rg-agent-") as folder:
        path = str(Path(folder) / "agent.db")
        yield lambda: SqliteSaver.from_conn_string(path)


@pytest.fixture
def redis_opener(redis_search_server: Any) -> Opener:
    redis_search_server.flush()  # asked for by name only here: the autouse flush missed it
    return lambda: RedisSaver.from_conn_string(redis_search_server.url)


@pytest.fixture
def postgres_opener() -> Opener:
    from persistence.backend_postgres import conninfo, new_schema

    schema = new_schema()
    with PostgresSaver.from_conn_string(conninfo(schema)) as saver:
        saver.setup()
    return lambda: PostgresSaver.from_conn_string(conninfo(schema))


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def opener(request: pytest.FixtureRequest) -> Opener:
    return request.getfixturevalue(f"{request.param}_opener")


def _agent(lib: Any, saver: Any, **kwargs: Any) -> Any:
    return lib.create_react_agent(
        scenarios.agent_script(), [scenarios.add, scenarios.multiply], checkpointer=saver, **kwargs
    )


TURNS = ("What are 40 + 2 and 6 * 7?", "And 1 + 1?")


def _in_memory(**kwargs: Any) -> list[dict[str, Any]]:
    graph = _agent(LANGGRAPH, LANGGRAPH.MemorySaver(), **kwargs)
    cfg = scenarios.config()
    seen = []
    for text in TURNS:
        result = graph.invoke({"messages": [HumanMessage(text)]}, cfg, **LANGGRAPH.run_kwargs)
        seen.append(observe(graph, cfg, result))
    return seen


def test_a_thread_continues_after_the_saver_is_reopened(opener: Opener) -> None:
    cfg = scenarios.config()
    seen = []
    for text in TURNS:
        with opener() as saver:
            graph = _agent(RELAYGRAPH, saver)
            result = graph.invoke({"messages": [HumanMessage(text)]}, cfg)
            seen.append(observe(graph, cfg, result))
    assert seen == _in_memory()
    assert [m["content"] for m in seen[1]["values"]["messages"]][-1] == "Two."


def test_an_interrupted_agent_resumes_after_the_saver_is_reopened(opener: Opener) -> None:
    cfg = scenarios.config()
    with opener() as saver:
        graph = _agent(RELAYGRAPH, saver, interrupt_before=["tools"])
        result = graph.invoke({"messages": [HumanMessage(TURNS[0])]}, cfg)
        paused = observe(graph, cfg, result)
    with opener() as saver:
        graph = _agent(RELAYGRAPH, saver, interrupt_before=["tools"])
        result = graph.invoke(None, cfg)
        done = observe(graph, cfg, result)

    oracle = _agent(LANGGRAPH, LANGGRAPH.MemorySaver(), interrupt_before=["tools"])
    expected = [observe(oracle, cfg, oracle.invoke({"messages": [HumanMessage(TURNS[0])]}, cfg))]
    expected.append(observe(oracle, cfg, oracle.invoke(None, cfg)))
    assert [paused, done] == expected
    assert paused["next"] == ("tools", "tools")
    assert done["values"]["messages"][-1]["content"] == "Both are 42."


def test_structured_response_survives_a_reopen(opener: Opener) -> None:
    cfg = scenarios.config()
    with opener() as saver:
        [seen] = scenarios.structured(
            SimpleNamespace(**{**vars(RELAYGRAPH), "MemorySaver": lambda: saver})
        )
    with opener() as saver:
        graph = RELAYGRAPH.create_react_agent(
            scenarios.agent_script(),
            [scenarios.add],
            checkpointer=saver,
            response_format=scenarios.Weather,
        )
        values = graph.get_state(cfg).values
    assert values["structured_response"] == scenarios.Weather(city="Paris", temperature=21)
    assert seen["values"]["structured_response"]["city"] == "Paris"


# -- a real process restart: each turn in a process of its own ------------------------------


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def durable_conn(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, connection string) of an empty durable saver other processes can open."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "agent.db")
    if request.param == "redis":
        server = request.getfixturevalue("redis_search_server")
        server.flush()
        return "redis", server.url
    from persistence.backend_postgres import conninfo, new_schema

    schema = new_schema()
    with PostgresSaver.from_conn_string(conninfo(schema)) as saver:
        saver.setup()
    return "postgres", conninfo(schema)


def _in_child(kind: str, conn: str, step: str) -> Any:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.agents.restart_child", kind, conn, step],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@pytest.mark.slow
def test_a_thread_continues_in_a_new_process(durable_conn: tuple[str, str]) -> None:
    kind, conn = durable_conn
    seen = [_in_child(kind, conn, "turn0"), _in_child(kind, conn, "turn1")]
    assert seen == _as_json(_in_memory())
    assert seen[1]["values"]["messages"][-1]["content"] == "Two."


@pytest.mark.slow
def test_an_interrupted_agent_resumes_in_a_new_process(durable_conn: tuple[str, str]) -> None:
    kind, conn = durable_conn
    seen = [_in_child(kind, conn, "pause"), _in_child(kind, conn, "resume")]
    oracle = _agent(LANGGRAPH, LANGGRAPH.MemorySaver(), interrupt_before=["tools"])
    cfg = scenarios.config()
    expected = [observe(oracle, cfg, oracle.invoke({"messages": [HumanMessage(TURNS[0])]}, cfg))]
    expected.append(observe(oracle, cfg, oracle.invoke(None, cfg)))
    assert seen == _as_json(expected)
    assert seen[0]["next"] == ["tools", "tools"]
    assert seen[1]["values"]["messages"][-1]["content"] == "Both are 42."
