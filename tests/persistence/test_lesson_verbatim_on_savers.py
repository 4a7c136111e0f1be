"""The lesson's own checkpointer examples on every saver (issue 3).

Collected only when ``RELAYGRAPH_LESSON`` names a copy of the lesson (see
``tests/conftest.py``); ``test_lesson_on_savers.py`` tests the same behaviours without it.
The lesson's blocks run as ``test_lesson_verbatim.py`` runs them, with ``MemorySaver()``
replaced by the backend under test: in-memory, SQLite (file and memory), PostgreSQL, Redis,
Redis Cluster and the plain Redis. Outputs must be the lesson's own.
"""

from __future__ import annotations

from typing import Any

import pytest
from lesson_blocks import load_blocks, offline_embeddings, run, to_relaygraph

ENABLE = "# Compile WITH a checkpointer"
THREADS = "config_alice"
CURRENT_STATE = "snapshot = graph.get_state(config)"
HISTORY = "for snapshot in graph.get_state_history(config)"
REPLAY = "old_checkpoint = history[-1]"
UPDATE = 'as_node="respond"'
SOLUTION = "I'll remember that"


def _source(marker: str) -> str:
    found = [b for b in load_blocks() if marker in b]
    assert len(found) == 1, marker
    source = offline_embeddings(to_relaygraph(found[0].source))
    return source.replace("MemorySaver()", "_durable_saver")


def _run(saver: Any, *markers: str, namespace: dict[str, Any] | None = None) -> tuple[str, dict]:
    namespace = namespace if namespace is not None else {"__name__": "__lesson__"}
    namespace["_durable_saver"] = saver
    return run([_source(m) for m in markers], namespace)


@pytest.fixture
def durable(saver: Any) -> Any:
    return saver


def test_threads_keep_conversations_apart(durable: Any) -> None:
    out, _ = _run(durable, ENABLE, THREADS)
    assert out == "Echo: Hello!\nAlice has 4 messages\nBob has 2 messages\n"


def test_state_history_replay_and_update(durable: Any) -> None:
    out, ns = _run(durable, ENABLE, CURRENT_STATE)
    assert out.splitlines()[1] == "Next nodes: ()"
    out, ns = _run(durable, HISTORY, namespace=ns)
    assert out == (
        "Step: 1\n  Next: ()\n  Messages: 2\n\n"
        "Step: 0\n  Next: ('respond',)\n  Messages: 1\n\n"
        "Step: -1\n  Next: ('__start__',)\n  Messages: 0\n\n"
    )
    _, ns = _run(durable, REPLAY, namespace=ns)
    assert [m.content for m in ns["result"]["messages"]] == ["Hello", "Echo: Hello"]
    _, ns = _run(durable, UPDATE, namespace=ns)
    assert [m.content for m in ns["result"]["messages"]][-3:] == [
        "Injected message",
        "What was your last message?",
        "Echo: What was your last message?",
    ]


def test_exercise_solution(durable: Any) -> None:
    out, _ = _run(durable, SOLUTION)
    assert out == "I know: i love python\n"
