"""The persistence lesson's exercise as a graph the workers can run.

An assistant that remembers what a user tells it across threads (the memory store) and
keeps each conversation per thread (the checkpointer). ``think`` stands in for a model
call: the demo kills a worker while it runs.

Register it with ``RELAYGRAPH_GRAPHS="assistant=relaygraph.examples.assistant:graph"``.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from relaygraph import END, START, AIMessage, MessagesState, StateGraph


def think(state: MessagesState) -> dict[str, Any]:
    """A slow step (a model call in a real agent); leaves a marker the demo watches."""
    marker = os.environ.get("RELAYGRAPH_DEMO_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("RELAYGRAPH_DEMO_THINK", "0")))
    return {}


def respond(state: MessagesState, *, store: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Remember facts; answer "what do you know", "forget ..." and "recall ..."."""
    user_id = config.get("configurable", {}).get("user_id", "default")
    namespace = ("users", user_id)
    text = state["messages"][-1].content.lower()
    if "what do you know" in text:
        facts = sorted(m.value["fact"] for m in store.search(namespace, limit=100))
        reply = f"I know: {', '.join(facts)}" if facts else "I don't know anything yet!"
    elif text.startswith("forget "):
        target = text.removeprefix("forget ").strip()
        gone = [m.key for m in store.search(namespace, limit=100) if target in m.value["fact"]]
        for key in gone:
            store.delete(namespace, key)
        reply = f"Forgot {len(gone)} fact(s) about {target!r}."
    elif text.startswith("recall "):
        hits = store.search(namespace, query=text.removeprefix("recall ").strip(), limit=1)
        reply = f"Closest memory: {hits[0].value['fact']}" if hits else "Nothing to recall."
    else:
        store.put(namespace, str(uuid.uuid4()), {"fact": text})
        reply = "Got it! I'll remember that."
    return {"messages": [AIMessage(content=reply)]}


def build() -> Any:
    """The uncompiled graph: START -> think -> respond -> END."""
    builder = StateGraph(MessagesState)
    builder.add_node("think", think)
    builder.add_node("respond", respond)
    builder.add_edge(START, "think").add_edge("think", "respond").add_edge("respond", END)
    return builder


graph = build().compile()
"""Compiled without a checkpointer: workers bind their RedisSaver and RedisStore."""
