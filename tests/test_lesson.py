"""The persistence lesson's behaviours, on relaygraph and on LangGraph (the oracle).

The lesson's programs live in ``lesson_app.py`` (this repository's code); each test runs
one part on both libraries with the in-memory saver and checks what the lesson prints or
promises. ``persistence/test_lesson_on_savers.py`` runs them on every durable saver, and
``test_lesson_verbatim.py`` runs the lesson's own text when ``RELAYGRAPH_LESSON`` names it.

Semantic search uses the offline all-MiniLM-L6-v2 (384 dims) on both libraries: relaygraph's
``default_embeddings()``, and the same model through sentence-transformers for LangGraph.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import lesson_app as app
import psycopg
import pytest
from differential.libs import LANGGRAPH, relaygraph_lib
from lesson_blocks import LessonNotFound, find_lesson
from psycopg.conninfo import make_conninfo

from relaygraph.persistence.embeddings import default_embeddings
from relaygraph.persistence.postgres import AsyncPostgresSaver, PostgresSaver
from relaygraph.persistence.sqlite import AsyncSqliteSaver, SqliteSaver


@pytest.fixture(params=["langgraph", "relaygraph"])
def lib(request: pytest.FixtureRequest) -> Any:
    return LANGGRAPH if request.param == "langgraph" else relaygraph_lib()


def _embedder(lib: Any) -> Any:
    return app.offline_embed if lib is LANGGRAPH else default_embeddings()


# -- enabling persistence, threads ---------------------------------------------------------


def test_threads_keep_conversations_apart(lib: Any) -> None:
    graph = app.echo_builder(lib).compile(checkpointer=lib.MemorySaver())
    assert app.threads(lib, graph) == app.THREADS_OUTPUT
    alice = graph.get_state({"configurable": {"thread_id": "alice-001"}})
    assert app.contents(alice.values) == [
        "Hello!",
        "Echo: Hello!",
        "How are you?",
        "Echo: How are you?",
    ]
    bob = graph.get_state({"configurable": {"thread_id": "bob-001"}})
    assert app.contents(bob.values) == ["Hi there!", "Echo: Hi there!"]
    # a new thread id starts from empty state
    assert graph.get_state({"configurable": {"thread_id": "carol"}}).values == {}


def test_without_a_checkpointer_nothing_is_remembered(lib: Any) -> None:
    graph = app.echo_builder(lib).compile()
    config = {"configurable": {"thread_id": "alice-001"}}
    graph.invoke({"messages": [lib.HumanMessage(content="Hello!")]}, config)
    result = graph.invoke({"messages": [lib.HumanMessage(content="How are you?")]}, config)
    assert app.contents(result) == ["How are you?", "Echo: How are you?"]


def test_memory_saver_is_also_in_memory_saver(lib: Any) -> None:
    assert lib.MemorySaver is lib.InMemorySaver
    checkpointer = lib.MemorySaver()
    graph = app.echo_builder(lib).compile(checkpointer=checkpointer)
    assert graph.checkpointer is checkpointer
    result = graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "m"}})
    assert app.contents(result) == ["hi", "Echo: hi"]


# -- state snapshots -----------------------------------------------------------------------


def test_current_state(lib: Any) -> None:
    graph = app.echo_builder(lib).compile(checkpointer=lib.MemorySaver())
    snapshot, lines = app.current_state(lib, graph, app.SNAPSHOT_CONFIG)
    values, next_line, config_line = lines
    # the lesson abbreviates the reprs; the content is what it shows
    assert re.match(r"Values: \{'messages': \[HumanMessage\(content='Hello'", values)
    assert "AIMessage(content='Echo: Hello'" in values
    assert next_line == "Next nodes: ()"
    assert config_line.startswith("Config: {'configurable': {'thread_id': 'thread-1', ")
    assert snapshot.config["configurable"]["checkpoint_id"] in config_line


def test_history_replay_and_update_state(lib: Any) -> None:
    graph = app.echo_builder(lib).compile(checkpointer=lib.MemorySaver())
    config = app.SNAPSHOT_CONFIG
    app.current_state(lib, graph, config)
    assert app.history(graph, config) == app.HISTORY_OUTPUT

    old, result = app.replay(graph, config)
    assert old.metadata["step"] == -1 and old.next == ("__start__",)
    assert app.contents(result) == ["Hello", "Echo: Hello"]

    result = app.update_state(lib, graph, config)
    assert app.contents(result)[-3:] == [
        "Injected message",
        "What was your last message?",
        "Echo: What was your last message?",
    ]
    assert graph.get_state(config).next == ()
    sources = [s.metadata["source"] for s in graph.get_state_history(config)]
    assert sources[:4] == ["loop", "loop", "input", "update"]


def test_replay_keeps_the_original_branch(lib: Any) -> None:
    graph = app.echo_builder(lib).compile(checkpointer=lib.MemorySaver())
    config = {"configurable": {"thread_id": "branch"}}
    app.current_state(lib, graph, config)
    before = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(config)]
    old, _ = app.replay(graph, config)
    after = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(config)]
    assert set(before) <= set(after) and len(after) > len(before)
    # the replayed branch forks from the earliest checkpoint: it did not rewrite it
    assert graph.get_state(old.config).values == old.values


# -- the memory store ----------------------------------------------------------------------


def test_store_spans_threads(lib: Any) -> None:
    store = lib.InMemoryStore()
    graph = app.store_builder(lib).compile(checkpointer=lib.MemorySaver(), store=store)
    first = graph.invoke({"messages": [("user", "hello")]}, {"configurable": {"thread_id": "1"}})
    assert app.contents(first)[-1] == "Known facts: "
    second = graph.invoke({"messages": [("user", "again")]}, {"configurable": {"thread_id": "2"}})
    assert app.contents(second)[-1] == "Known facts: User said hello"
    assert store.get(("users", "user-123"), "greeting").value == {"fact": "User said hello"}


def test_namespaced_storage(lib: Any) -> None:
    store = lib.InMemoryStore()
    assert app.namespaces(store) == app.NAMESPACES_OUTPUT
    assert store.get(("projects", "project-1"), "config").value == {"model": "claude-sonnet"}
    assert store.search(("users", "bob")) == []


def test_semantic_search_with_the_offline_model(lib: Any) -> None:
    assert app.semantic_search(lib, _embedder(lib), 384) == app.SEMANTIC_OUTPUT


# -- SqliteSaver and PostgresSaver as the lesson writes them (relaygraph) ------------------


def test_sqlite_saver_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = relaygraph_lib()
    monkeypatch.chdir(tmp_path)  # the lesson's relative "checkpoints.db"
    builder = app.echo_builder(lib)
    graph = builder.compile(checkpointer=SqliteSaver.from_conn_string("checkpoints.db"))
    config = {"configurable": {"thread_id": "sqlite-1"}}
    assert app.contents(graph.invoke({"messages": [("user", "Hello!")]}, config)) == [
        "Hello!",
        "Echo: Hello!",
    ]
    assert (tmp_path / "checkpoints.db").exists()
    # a second saver on the same file sees the thread: it really is on disk
    reopened = builder.compile(checkpointer=SqliteSaver.from_conn_string("checkpoints.db"))
    assert app.contents(reopened.get_state(config).values) == ["Hello!", "Echo: Hello!"]
    async_checkpointer = AsyncSqliteSaver.from_conn_string("checkpoints.db")
    state = asyncio.run(builder.compile(checkpointer=async_checkpointer).aget_state(config))
    assert app.contents(state.values) == ["Hello!", "Echo: Hello!"]


@pytest.mark.xdist_group("postgres")
def test_postgres_saver_lines(postgres_url: str) -> None:
    lib = relaygraph_lib()
    schema = f"lesson_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(postgres_url, options=f"-csearch_path={schema}")
    config = {"configurable": {"thread_id": "pg-1"}}
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            checkpointer = PostgresSaver.from_conn_string(url)
            checkpointer.setup()
            graph = app.echo_builder(lib).compile(checkpointer=checkpointer)
            result = graph.invoke({"messages": [("user", "Hello!")]}, config)
            assert app.contents(result) == ["Hello!", "Echo: Hello!"]
            assert graph.get_state(config).next == ()

            async def run_async() -> Any:
                async_checkpointer = AsyncPostgresSaver.from_conn_string(url)
                await async_checkpointer.setup()
                async_graph = app.echo_builder(lib).compile(checkpointer=async_checkpointer)
                return await async_graph.aget_state(config)

            assert app.contents(asyncio.run(run_async()).values) == ["Hello!", "Echo: Hello!"]
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# -- the exercise --------------------------------------------------------------------------


def test_exercise_solution(lib: Any) -> None:
    graph = app.exercise_builder(lib).compile(
        checkpointer=lib.MemorySaver(), store=lib.InMemoryStore()
    )
    assert app.exercise(lib, graph) == app.EXERCISE_OUTPUT
    # the "Expected Result": same user on two more threads
    thread_1 = {"configurable": {"thread_id": "t3", "user_id": "bob"}}
    thread_2 = {"configurable": {"thread_id": "t4", "user_id": "bob"}}
    graph.invoke({"messages": [lib.HumanMessage(content="I love Python")]}, config=thread_1)
    result = graph.invoke(
        {"messages": [lib.HumanMessage(content="What do you know about me?")]}, config=thread_2
    )
    assert result["messages"][-1].content == "I know: i love python"
    # conversation history stays per thread; facts are per user, across threads
    for thread in ("t1", "t2", "t3", "t4"):
        config = {"configurable": {"thread_id": thread}}
        assert len(graph.get_state(config).values["messages"]) == 2
    assert app.say(graph, "What do you know about me?", "t5", user="eve") == (
        "I don't know anything yet!"
    )


# -- the bonus challenges ------------------------------------------------------------------


def _bonus(lib: Any, store: Any) -> Any:
    return app.bonus_builder(lib).compile(checkpointer=lib.MemorySaver(), store=store)


def test_bonus_forget_command(lib: Any) -> None:
    graph = _bonus(lib, lib.InMemoryStore())
    app.say(graph, "I love Python", "t1")
    app.say(graph, "I live in Lisbon", "t1")
    assert app.say(graph, "What do you know about me?", "t2") == (
        "I know: i live in lisbon, i love python"
    )
    assert app.say(graph, "forget python", "t3") == "Forgot 1 fact(s)."
    assert app.say(graph, "What do you know about me?", "t4") == "I know: i live in lisbon"
    assert app.say(graph, "forget python", "t3") == "Forgot 0 fact(s)."
    assert app.say(graph, "What do you know?", "t5", user="bob") == "I don't know anything yet!"


def test_bonus_state_history(lib: Any) -> None:
    graph = _bonus(lib, lib.InMemoryStore())
    app.say(graph, "I love Python", "t1")
    app.say(graph, "What do you know?", "t1")
    config = {"configurable": {"thread_id": "t1"}}
    history = list(graph.get_state_history(config))
    assert [(s.metadata["step"], s.metadata["source"], s.next) for s in history] == [
        (4, "loop", ()),
        (3, "loop", ("respond",)),
        (2, "input", ("__start__",)),
        (1, "loop", ()),
        (0, "loop", ("respond",)),
        (-1, "input", ("__start__",)),
    ]
    assert [len(s.values.get("messages", [])) for s in history] == [4, 3, 2, 2, 1, 0]
    limited = graph.get_state_history(config, limit=2)
    assert [s.config["configurable"]["checkpoint_id"] for s in limited] == [
        s.config["configurable"]["checkpoint_id"] for s in history[:2]
    ]


def test_bonus_semantic_recall(lib: Any) -> None:
    store = lib.InMemoryStore(index={"embed": _embedder(lib), "dims": 384, "fields": ["fact"]})
    graph = _bonus(lib, store)
    for fact in (
        "I love hiking in the mountains",
        "I am a software engineer",
        "I prefer dark mode",
    ):
        app.say(graph, fact, "t1")
    assert app.say(graph, "recall outdoor activities", "t2") == (
        "Best match: i love hiking in the mountains"
    )
    assert app.say(graph, "recall anything", "t3", user="bob") == "Nothing."


# -- the verbatim check: only through RELAYGRAPH_LESSON ------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_the_lesson_file_is_found_only_through_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RELAYGRAPH_LESSON", raising=False)
    with pytest.raises(LessonNotFound, match="set RELAYGRAPH_LESSON"):
        find_lesson()
    monkeypatch.setenv("RELAYGRAPH_LESSON", str(tmp_path / "missing.md"))
    with pytest.raises(LessonNotFound, match="no such file"):
        find_lesson()
    copy = tmp_path / "lesson.md"
    copy.write_text("# a copy\n")
    monkeypatch.setenv("RELAYGRAPH_LESSON", str(copy))
    assert find_lesson() == copy


def test_without_the_variable_the_verbatim_check_is_not_collected_and_says_so() -> None:
    """Collect tests/ (every module but the verbatim ones ignored by glob, for speed): the
    verbatim modules are left out, not skipped, and the summary says so once. (Named
    explicitly on the command line they are collected, and fail naming the variable.)"""
    env = {k: v for k, v in os.environ.items() if k != "RELAYGRAPH_LESSON"}
    others = ["*/test_[!l]*", "*/test_l[!e]*", "*/test_lesson.py", "*/test_lesson_on_savers.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
         "-p", "no:randomly", "tests", *(f"--ignore-glob={glob}" for glob in others)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "no tests collected" in done.stdout, done.stdout + done.stderr
    summary = "the verbatim check of an external copy of the lesson did not run"
    assert done.stdout.count(summary) == 1, done.stdout
