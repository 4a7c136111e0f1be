"""The main job of ``make demo``: the persistence lesson's exercise, end to end.

An assistant remembers facts per user across threads (the memory store), keeps each
conversation per thread (the checkpointer), forgets on request, shows a thread's history
and recalls facts by meaning with the offline embedding model.

``python -m relaygraph.demo`` runs it on an embedded Redis with two worker processes and
Flower, killing one worker mid-run (:mod:`relaygraph.distributed_demo`);
``python -m relaygraph.demo --local`` runs it in this process.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from relaygraph import (
    END,
    START,
    HumanMessage,
    InMemoryStore,
    MemorySaver,
    MessagesState,
    StateGraph,
)
from relaygraph.examples.assistant import respond


def build_graph(store: InMemoryStore) -> Any:
    """The exercise's one-node graph, with a checkpointer and the store."""
    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=MemorySaver(), store=store)


def _semantic_store() -> tuple[InMemoryStore, str]:
    try:
        from relaygraph.persistence.embeddings import default_embeddings

        embeddings = default_embeddings()
    except Exception as exc:  # the embeddings extra is optional
        return InMemoryStore(), f"keyword only ({type(exc).__name__}: {exc})"
    index = {"embed": embeddings, "dims": 384, "fields": ["fact"]}
    return InMemoryStore(index=index), "all-MiniLM-L6-v2 (offline)"


def _agent_checks(store: InMemoryStore) -> list[tuple[str, str, bool]]:
    """The tool-using agent in-process: remember in one thread, recall (streamed) in another."""
    from relaygraph.examples.agent import PROMPT, model, recall, remember
    from relaygraph.prebuilt import create_react_agent

    agent = create_react_agent(
        model, [remember, recall], prompt=PROMPT, checkpointer=MemorySaver(), store=store
    )
    first = {"configurable": {"thread_id": "a1", "user_id": "bob"}}
    second = {"configurable": {"thread_id": "a2", "user_id": "bob"}}
    told = {"messages": [HumanMessage("Remember that my favourite language is Python")]}
    messages = agent.invoke(told, first)["messages"]
    tools = [m.name for m in messages if m.type == "tool"]
    asked = {"messages": [HumanMessage("What do you remember about programming?")]}
    tokens = [
        chunk.content
        for chunk, _meta in agent.stream(asked, second, stream_mode="messages")
        if chunk.type == "AIMessageChunk"
    ]
    answer = "".join(tokens)
    return [
        ("agent calls a tool", f"tools {tools}: {messages[-1].content!r}", tools == ["remember"]),
        (
            "agent recalls across threads, streamed",
            f"{len(tokens)} tokens: {answer!r}",
            "Python" in answer,
        ),
    ]


def run_local() -> int:
    """The exercise in-process; exit status 0 when every check held."""
    started = time.perf_counter()
    store, model = _semantic_store()
    graph = build_graph(store)
    alice_1 = {"configurable": {"thread_id": "t1", "user_id": "alice"}}
    alice_2 = {"configurable": {"thread_id": "t2", "user_id": "alice"}}

    def say(text: str, config: dict[str, Any]) -> str:
        result = graph.invoke({"messages": [HumanMessage(content=text)]}, config)
        return result["messages"][-1].content

    checks: list[tuple[str, str, bool]] = []
    for fact in ("I love Python", "I enjoy hiking in the mountains", "My cat is called Ada"):
        say(fact, alice_1)
    known = say("What do you know about me?", alice_2)
    checks.append(("facts cross threads", known, "i love python" in known))
    recalled = say("recall outdoor activities", alice_2)
    checks.append((f"semantic recall [{model}]", recalled, "hiking" in recalled))
    forgot = say("forget cat", alice_2)
    after = say("What do you know about me?", alice_2)
    checks.append(("forget command", f"{forgot} -> {after}", "cat" not in after))
    history = list(graph.get_state_history(alice_1))
    steps = [(h.metadata["step"], h.metadata["source"]) for h in history]
    checks.append(
        ("thread t1 history", f"{len(history)} checkpoints, newest {steps[0]}", len(history) == 9)
    )
    messages = graph.get_state(alice_2).values["messages"]
    checks.append(("thread t2 messages", f"{len(messages)} messages", len(messages) == 8))

    checks.extend(_agent_checks(store))

    width = max(len(name) for name, _, _ in checks)
    print(f"relaygraph demo: the persistence lesson's exercise (in-process, {model})\n")
    for name, shown, ok in checks:
        print(f"  {'ok ' if ok else 'FAIL'} {name:<{width}}  {shown}")
    elapsed = time.perf_counter() - started
    print(f"\n{sum(ok for *_, ok in checks)}/{len(checks)} checks held in {elapsed:.1f}s")
    return 0 if all(ok for *_, ok in checks) else 1


def main(argv: list[str] | None = None) -> int:
    """``--local`` runs in-process; by default the exercise runs on a worker fleet."""
    args = sys.argv[1:] if argv is None else argv
    if "--local" in args:
        return run_local()
    from relaygraph.distributed_demo import run_distributed

    return run_distributed()


if __name__ == "__main__":
    sys.exit(main())
