"""The persistence lesson's own text runs on relaygraph with only its imports changed.

Collected only when ``RELAYGRAPH_LESSON`` names a copy of ``checkpointing-and-memory.md``
(``.ci/run`` points it at the shared seed); the lesson's behaviours are tested without it
by ``test_lesson.py``. Every Python block of the lesson is run (blocks that continue earlier
ones run after them, in one namespace) and what it prints is checked against the lesson's
**Output** blocks. The same blocks also run unchanged on LangGraph, the oracle, except
SqliteSaver/PostgresSaver (not installed here, and on LangGraph the lesson's
``from_conn_string`` line fails anyway: see ``test_deviations.py``).

The one change beyond imports: the semantic-search block uses relaygraph's offline default
embeddings (all-MiniLM-L6-v2, 384 dims) instead of OpenAI's, which need a network service.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from lesson_app import offline_embed as _offline_embed
from lesson_blocks import Block, load_blocks, offline_embeddings, run, to_relaygraph
from psycopg.conninfo import make_conninfo

LESSON_POSTGRES_URL = "postgresql://user:pass@localhost:5432/langgraph"

#: A marker that identifies each block of the lesson (test_every_block_runs checks them).
ENABLE = "# Compile WITH a checkpointer"
THREADS = "config_alice"
MEMORY_SAVER = "# Also aliased as InMemorySaver"
SQLITE = "SqliteSaver.from_conn_string"
POSTGRES = "PostgresSaver.from_conn_string"
CURRENT_STATE = "snapshot = graph.get_state(config)"
HISTORY = "for snapshot in graph.get_state_history(config)"
REPLAY = "old_checkpoint = history[-1]"
UPDATE = 'as_node="respond"'
STORE = "def respond(state: MessagesState, *, store):"
NAMESPACES = '("projects", "project-1")'
SEMANTIC = 'query="outdoor activities"'
EXPECTED_RESULT = "thread_1_config"
SOLUTION = "I'll remember that"
MARKERS = (
    ENABLE, THREADS, MEMORY_SAVER, SQLITE, POSTGRES, CURRENT_STATE, HISTORY, REPLAY, UPDATE,
    STORE, NAMESPACES, SEMANTIC, EXPECTED_RESULT, SOLUTION,
)  # fmt: skip


@dataclass
class Lesson:
    """The lesson's blocks, prepared for one library."""

    target: str  # "langgraph" or "relaygraph"
    blocks: list[Block]

    def block(self, marker: str) -> Block:
        found = [b for b in self.blocks if marker in b]
        assert len(found) == 1, f"{len(found)} lesson blocks contain {marker!r}"
        return found[0]

    def source(self, block: Block) -> str:
        if self.target == "langgraph":  # as written, only the embeddings made offline
            return offline_embeddings(block.source, import_line="", embed="_offline_embed")
        return offline_embeddings(to_relaygraph(block.source))

    def run(self, *markers: str, namespace: dict[str, Any] | None = None) -> tuple[str, dict]:
        namespace = {"__name__": "__lesson__"} if namespace is None else namespace
        namespace.setdefault("_offline_embed", _offline_embed)
        return run([self.source(self.block(m)) for m in markers], namespace)


@pytest.fixture(params=["langgraph", "relaygraph"])
def lesson(request: pytest.FixtureRequest) -> Lesson:
    return Lesson(request.param, load_blocks())


@pytest.fixture
def relaygraph_lesson() -> Lesson:
    return Lesson("relaygraph", load_blocks())


def _contents(result: dict[str, Any]) -> list[str]:
    return [m.content for m in result["messages"]]


# -- the blocks ----------------------------------------------------------------------------


def test_every_block_runs() -> None:
    """Each Python block of the lesson is named by exactly one marker, so each test below
    runs a known block, and together they run them all."""
    lesson = Lesson("relaygraph", load_blocks())
    assert sorted(lesson.block(m).index for m in MARKERS) == list(range(len(lesson.blocks)))


def test_only_imports_change() -> None:
    """Apart from the embeddings block, relaygraph's source differs only in import lines."""
    lesson = Lesson("relaygraph", load_blocks())
    for block in lesson.blocks:
        if block is lesson.block(SEMANTIC):
            continue
        for before, after in zip(
            block.source.splitlines(), to_relaygraph(block.source).splitlines(), strict=True
        ):
            if before != after:
                assert before.startswith("from ") and after.startswith("from relaygraph")
                assert before.split(" import ")[1] == after.split(" import ")[1]


def test_threads_keep_conversations_apart(lesson: Lesson) -> None:
    out, _ = lesson.run(ENABLE, THREADS)
    assert (
        out
        == lesson.block(THREADS).output
        == "Echo: Hello!\nAlice has 4 messages\nBob has 2 messages\n"
    )


def test_memory_saver_block(lesson: Lesson) -> None:
    _, ns = lesson.run(ENABLE, MEMORY_SAVER)
    assert ns["graph"].checkpointer is ns["checkpointer"]
    result = ns["graph"].invoke(
        {"messages": [("user", "hi")]}, {"configurable": {"thread_id": "m"}}
    )
    assert _contents(result) == ["hi", "Echo: hi"]


def test_state_snapshots_history_replay_update(lesson: Lesson) -> None:
    out, ns = lesson.run(ENABLE, CURRENT_STATE)
    values, next_line, config_line = out.splitlines()
    # the lesson abbreviates the reprs; the content is what it shows
    assert re.match(r"Values: \{'messages': \[HumanMessage\(content='Hello'", values)
    assert "AIMessage(content='Echo: Hello'" in values
    assert next_line == "Next nodes: ()"
    assert config_line.startswith("Config: {'configurable': {'thread_id': 'thread-1', ")
    assert "'checkpoint_id': '" in config_line

    out, ns = lesson.run(HISTORY, namespace=ns)
    assert out == (
        "Step: 1\n  Next: ()\n  Messages: 2\n\n"
        "Step: 0\n  Next: ('respond',)\n  Messages: 1\n\n"
        "Step: -1\n  Next: ('__start__',)\n  Messages: 0\n\n"
    )

    out, ns = lesson.run(REPLAY, namespace=ns)
    assert out == ""
    assert ns["old_checkpoint"].metadata["step"] == -1
    assert _contents(ns["result"]) == ["Hello", "Echo: Hello"]

    _, ns = lesson.run(UPDATE, namespace=ns)
    assert _contents(ns["result"])[-3:] == [
        "Injected message",
        "What was your last message?",
        "Echo: What was your last message?",
    ]
    snapshot = ns["graph"].get_state(ns["config"])
    assert snapshot.next == ()
    assert [s.metadata["source"] for s in ns["graph"].get_state_history(ns["config"])][:4] == [
        "loop",
        "loop",
        "input",
        "update",
    ]


def test_store_blocks(lesson: Lesson) -> None:
    out, ns = lesson.run(ENABLE, STORE)
    assert out == ""
    graph, config = ns["graph"], {"configurable": {"thread_id": "store-1"}}
    first = graph.invoke({"messages": [("user", "hello")]}, config)
    assert _contents(first)[-1] == "Known facts: "
    second = graph.invoke({"messages": [("user", "again")]}, {"configurable": {"thread_id": "s2"}})
    assert _contents(second)[-1] == "Known facts: User said hello"

    out, ns = lesson.run(NAMESPACES, namespace=ns)
    assert (
        out
        == lesson.block(NAMESPACES).output
        == "  preferences: {'theme': 'dark', 'language': 'en'}\n"
    )


def test_semantic_search_with_the_offline_model(lesson: Lesson) -> None:
    out, _ = lesson.run(ENABLE, STORE, SEMANTIC)
    assert out == lesson.block(SEMANTIC).output == "Alice loves hiking in the mountains\n"


def test_sqlite_block(relaygraph_lesson: Lesson, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # the lesson's relative "checkpoints.db"
    _, ns = relaygraph_lesson.run(ENABLE, SQLITE)
    config = {"configurable": {"thread_id": "sqlite-1"}}
    result = ns["graph"].invoke({"messages": [("user", "Hello!")]}, config)
    assert _contents(result) == ["Hello!", "Echo: Hello!"]
    assert (tmp_path / "checkpoints.db").exists()
    # a second saver on the same file sees the thread: it really is on disk
    reopened = ns["builder"].compile(
        checkpointer=ns["SqliteSaver"].from_conn_string("checkpoints.db")
    )
    assert _contents(reopened.get_state(config).values) == ["Hello!", "Echo: Hello!"]


@pytest.mark.xdist_group("postgres")
def test_postgres_block(relaygraph_lesson: Lesson, postgres_url: str) -> None:
    schema = f"lesson_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(postgres_url, options=f"-csearch_path={schema}")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            block = relaygraph_lesson.block(POSTGRES)
            source = relaygraph_lesson.source(block).replace(LESSON_POSTGRES_URL, url)
            assert source != relaygraph_lesson.source(block), "the lesson's URL changed"
            _, ns = relaygraph_lesson.run(ENABLE)
            run([source], ns)
            config = {"configurable": {"thread_id": "pg-1"}}
            result = ns["graph"].invoke({"messages": [("user", "Hello!")]}, config)
            assert _contents(result) == ["Hello!", "Echo: Hello!"]
            assert ns["graph"].get_state(config).next == ()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# -- the exercise ------------------------------------------------------------------------


def test_exercise_solution(lesson: Lesson) -> None:
    out, ns = lesson.run(SOLUTION)
    assert out == lesson.block(SOLUTION).output == "I know: i love python\n"
    # the "Expected Result" fragment, with the two configs it leaves to the reader
    ns["thread_1_config"] = {"configurable": {"thread_id": "t3", "user_id": "bob"}}
    ns["thread_2_config"] = {"configurable": {"thread_id": "t4", "user_id": "bob"}}
    lesson.run(EXPECTED_RESULT, namespace=ns)
    assert ns["result"]["messages"][-1].content == "I know: i love python"
    # conversation history stays per thread; facts are per user, across threads
    assert len(ns["graph"].get_state(ns["config_1"]).values["messages"]) == 2
    assert len(ns["graph"].get_state(ns["thread_2_config"]).values["messages"]) == 2
