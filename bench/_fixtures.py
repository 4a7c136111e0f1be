"""Graphs and a bare Celery app for bench/distributed.py (imported by worker processes)."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, TypedDict

from celery import Celery

from relaygraph import END, START, StateGraph


class Hops(TypedDict):
    n: int


def _hop(state: Hops) -> dict[str, int]:
    return {"n": state["n"] + 1}


def _chain(length: int) -> Any:
    builder = StateGraph(Hops)
    names = [f"h{i}" for i in range(length)]
    for name in names:
        builder.add_node(name, _hop)
    builder.add_edge(START, names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    return builder.compile()


def _slow() -> Any:
    def slow(state: Hops) -> dict[str, int]:
        marker = os.environ.get("BENCH_MARKER")
        if marker:
            with open(marker, "w") as out:
                out.write(str(os.getpid()))
        time.sleep(float(os.environ.get("BENCH_SLOW", "2")))
        return {"n": state["n"] + 1}

    builder = StateGraph(Hops).add_node("before", _hop).add_node("slow", slow)
    builder.add_node("after", _hop)
    builder.add_edge(START, "before").add_edge("before", "slow").add_edge("slow", "after")
    return builder.compile()


class Held(TypedDict):
    n: int
    hold: float
    tag: str


def _held() -> Any:
    """before -> held (on queue 'side') -> after. The first attempt of 'held' with a
    ``hold`` writes its pid to ``$BENCH_MARKERS/<tag>`` and holds its process that long;
    a re-run (the marker exists) returns at once (the recovery benchmark's victim node)."""

    def held(state: Held) -> dict[str, int]:
        directory = os.environ.get("BENCH_MARKERS")
        if directory and state["hold"]:
            marker = os.path.join(directory, state["tag"])
            if not os.path.exists(marker):
                with open(marker, "w") as out:
                    out.write(str(os.getpid()))
                time.sleep(state["hold"])
        return {"n": state["n"] + 1}

    builder = StateGraph(Held).add_node("before", _hop).add_node("held", held, queue="side")
    builder.add_node("after", _hop)
    builder.add_edge(START, "before").add_edge("before", "held").add_edge("held", "after")
    return builder.compile()


def _loop(hops: int) -> Any:
    """An agent's shape: two nodes taking turns (model <-> tool) until ``hops`` nodes ran."""
    builder = StateGraph(Hops).add_node("model", _hop).add_node("tool", _hop)
    builder.add_edge(START, "model").add_edge("tool", "model")
    builder.add_conditional_edges("model", lambda s: END if s["n"] >= hops else "tool")
    return builder.compile()


def _chat() -> Any:
    """An agent: a model node calls a tool, a ToolNode runs it, and the model then streams
    a scripted 40-word answer word by word (time to the answer's first token)."""
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    from relaygraph import MessagesState
    from relaygraph.prebuilt import ToolNode, tools_condition
    from relaygraph.testing.chat_models import ScriptedChatModel

    @tool
    def lookup(query: str) -> str:
        """Look ``query`` up."""
        return f"found {query}"

    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {"query": "words"}, "id": "c1"}])
    scripted = ScriptedChatModel(responses=[call, " ".join(["word"] * 40)])
    bound = scripted.bind_tools([lookup])

    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = StateGraph(MessagesState).add_node("model", model)
    builder.add_node("tools", ToolNode([lookup]))
    builder.add_edge(START, "model").add_edge("tools", "model")
    builder.add_conditional_edges("model", tools_condition)
    return builder.compile()


chain50 = _chain(50)
chat = _chat()
loop50 = _loop(50)
short3 = _chain(3)
slow = _slow()
held = _held()
GRAPHS = ",".join(
    f"{n}=bench._fixtures:{n}" for n in ("chain50", "loop50", "short3", "slow", "chat", "held")
)

# A bare Celery chain on the same broker: a task that enqueues itself, the baseline hop.
# BENCH_BARE_SETTINGS=relaygraph gives it the Celery settings relaygraph's workers run
# with (task events for Flower, late acks, reject on worker loss, JSON), so the two
# differ only in what relaygraph does per node.
bare = Celery("bare", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"))
bare.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)
if os.environ.get("BENCH_BARE_SETTINGS") == "relaygraph":
    from relaygraph.workers.app import celery_settings
    from relaygraph.workers.settings import WorkerSettings

    bare.conf.update(
        {
            key: value
            for key, value in celery_settings(WorkerSettings()).items()
            if key not in ("task_default_queue", "broker_connection_retry_on_startup")
        }
    )


_ends: Any = None  # this process's client for the end times (made on first use)


@bare.task(name="bench.hop")
def hop(remaining: int, key: str, queue: str = "bare") -> None:
    """Enqueue itself ``remaining`` more times, then append the end time to list ``key``.

    A list, so that many chains can share one key (the throughput baseline); one client
    per process, so that a chain's end costs a command, not a new connection.
    """
    global _ends
    if remaining > 0:
        hop.apply_async(args=[remaining - 1, key, queue], queue=queue)
        return
    if _ends is None:
        import redis

        _ends = redis.Redis.from_url(bare.conf.broker_url)
    _ends.rpush(key, repr(time.time()))


@bare.task(name="bench.sleep", acks_late=True)
def sleep_task(seconds: float, key: str) -> None:
    """Sleep, then record that it ran (Celery's own redelivery test)."""
    import redis

    client = redis.Redis.from_url(bare.conf.broker_url)
    client.incr(key + ":started")
    time.sleep(seconds)
    client.set(key, repr(time.time()))
