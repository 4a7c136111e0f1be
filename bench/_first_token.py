"""Time to first token: an agent's model node streaming on a worker vs in-process.

Used by bench/distributed.py. The graph (``bench._fixtures.chat``) is an agent loop: its
model node calls a tool, a ToolNode runs it, and the model node then streams a scripted
40-word answer. The time is to the answer's first token, so it covers three nodes (on the
fleet, three hops). In-process: from ``graph.stream(..., stream_mode="messages")``. On the
fleet: from ``Client.submit(..., stream_mode="messages")`` to the first such token
``Run.stream()`` yields, the token having gone from the worker through the run's Redis
event stream while its node still ran.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from relaygraph import MemorySaver
from relaygraph.workers.client import Client

QUESTION = {"messages": [("user", "Tell me forty words.")]}


def is_answer_token(chunk: Any, metadata: dict[str, Any]) -> bool:
    """A token of the model's answer (not its tool call, not the tool's message)."""
    return metadata.get("langgraph_node") == "model" and bool(chunk.content)


def local(repeats: int) -> list[float]:
    """Seconds to the first token, in-process, per repeat (a new thread each)."""
    from bench._fixtures import chat

    graph = chat.builder.compile(checkpointer=MemorySaver())
    times = []
    for index in range(repeats):
        config = {"configurable": {"thread_id": f"local-{index}"}}
        started = time.perf_counter()
        first: float | None = None
        for chunk, metadata in graph.stream(QUESTION, config, stream_mode="messages"):
            if first is None and is_answer_token(chunk, metadata):
                first = time.perf_counter() - started
        assert first is not None
        times.append(first)
    return times


def distributed(client: Client, repeats: int) -> list[float]:
    """Seconds to the first token through a worker and the run's event stream."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        thread_id = f"ttft-{uuid.uuid4().hex[:12]}"  # a new conversation every time
        run = client.submit("chat", QUESTION, thread_id=thread_id, stream_mode="messages")
        first: float | None = None
        for event in run.stream(timeout=60, block_ms=50):
            if first is None and event.mode == "messages" and is_answer_token(*event.data):
                first = time.perf_counter() - started
        assert first is not None and run.status == "success", run.error
        times.append(first)
    return times


def table_rows(local_times: list[float], fleet_times: list[float]) -> list[tuple[Any, ...]]:
    """(case, median ms) rows for the report."""
    import statistics

    return [
        ("in-process (graph.stream)", statistics.median(local_times) * 1000),
        ("one worker (Client.submit + Run.stream)", statistics.median(fleet_times) * 1000),
    ]
