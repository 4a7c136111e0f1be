"""The lesson's checkpointer behaviours on every saver (issue 3).

The programs of ``tests/lesson_app.py`` run on relaygraph with the saver under test in place
of ``MemorySaver()``: in-memory, SQLite (file and memory), PostgreSQL, Redis, Redis Cluster
and a plain Redis. What they print must be the lesson's output, as with the in-memory saver
in ``tests/test_lesson.py``.
"""

from __future__ import annotations

from typing import Any

import lesson_app as app
import pytest
from differential.libs import relaygraph_lib


@pytest.fixture
def rg() -> Any:
    return relaygraph_lib()


def test_threads_keep_conversations_apart(rg: Any, saver: Any) -> None:
    graph = app.echo_builder(rg).compile(checkpointer=saver)
    assert app.threads(rg, graph) == app.THREADS_OUTPUT
    bob = graph.get_state({"configurable": {"thread_id": "bob-001"}})
    assert app.contents(bob.values) == ["Hi there!", "Echo: Hi there!"]


def test_state_history_replay_and_update(rg: Any, saver: Any) -> None:
    graph = app.echo_builder(rg).compile(checkpointer=saver)
    config = app.SNAPSHOT_CONFIG
    snapshot, lines = app.current_state(rg, graph, config)
    assert lines[1] == "Next nodes: ()"
    assert app.contents(snapshot.values) == ["Hello", "Echo: Hello"]
    assert app.history(graph, config) == app.HISTORY_OUTPUT
    old, result = app.replay(graph, config)
    assert old.metadata["step"] == -1
    assert app.contents(result) == ["Hello", "Echo: Hello"]
    result = app.update_state(rg, graph, config)
    assert app.contents(result)[-3:] == [
        "Injected message",
        "What was your last message?",
        "Echo: What was your last message?",
    ]
    sources = [s.metadata["source"] for s in graph.get_state_history(config)]
    assert sources[:4] == ["loop", "loop", "input", "update"]


def test_store_blocks(rg: Any, saver: Any) -> None:
    store = rg.InMemoryStore()
    graph = app.store_builder(rg).compile(checkpointer=saver, store=store)
    first = graph.invoke({"messages": [("user", "hello")]}, {"configurable": {"thread_id": "1"}})
    assert app.contents(first)[-1] == "Known facts: "
    second = graph.invoke({"messages": [("user", "again")]}, {"configurable": {"thread_id": "2"}})
    assert app.contents(second)[-1] == "Known facts: User said hello"


def test_exercise_solution(rg: Any, saver: Any) -> None:
    graph = app.exercise_builder(rg).compile(checkpointer=saver, store=rg.InMemoryStore())
    assert app.exercise(rg, graph) == app.EXERCISE_OUTPUT
    for thread in ("t1", "t2"):
        assert len(graph.get_state({"configurable": {"thread_id": thread}}).values["messages"]) == 2


def test_bonus_forget_and_history(rg: Any, saver: Any) -> None:
    graph = app.bonus_builder(rg).compile(checkpointer=saver, store=rg.InMemoryStore())
    app.say(graph, "I love Python", "t1")
    assert app.say(graph, "forget python", "t1") == "Forgot 1 fact(s)."
    history = list(graph.get_state_history({"configurable": {"thread_id": "t1"}}))
    assert [(s.metadata["step"], len(s.values.get("messages", []))) for s in history] == [
        (4, 4),
        (3, 3),
        (2, 2),
        (1, 2),
        (0, 1),
        (-1, 0),
    ]
