"""Time to first token: an agent's model node streaming on a worker vs in-process.

Used by bench/distributed.py. The graph (``bench._fixtures.chat``) has one model node whose
chat model streams a scripted 40-word answer. In-process: from ``graph.stream(...,
stream_mode="messages")`` to the first token. On the fleet: from ``Client.submit(...,
stream_mode="messages")`` to the first ``messages`` event ``Run.stream()`` yields, the
token having gone from the worker through the run's Redis event stream while its node
still ran.
"""

from __future__ import annotations

import time
from typing import Any

from relaygraph import MemorySaver
from relaygraph.workers.client import Client

QUESTION = {"messages": [("user", "Tell me forty words.")]}


def local(repeats: int) -> list[float]:
    """Seconds to the first token, in-process, per repeat (a new thread each)."""
    from bench._fixtures import chat

    graph = chat.builder.compile(checkpointer=MemorySaver())
    times = []
    for index in range(repeats):
        config = {"configurable": {"thread_id": f"local-{index}"}}
        started = time.perf_counter()
        stream = graph.stream(QUESTION, config, stream_mode="messages")
        next(iter(stream))
        times.append(time.perf_counter() - started)
        for _ in stream:
            pass
    return times


def distributed(client: Client, repeats: int) -> list[float]:
    """Seconds to the first token through a worker and the run's event stream."""
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        run = client.submit("chat", QUESTION, thread_id=f"ttft-{index}", stream_mode="messages")
        first: float | None = None
        for event in run.stream(timeout=60, block_ms=50):
            if first is None and event.mode == "messages":
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
