"""LLM agents on real workers (issue 10): a model/tool loop equal to the local executor's,
tokens streamed through the run's event stream while the node still runs.

The agent graph (tests/workers/graphs.py) calls langchain_core's fake chat models on the
state's messages, as a LangGraph agent calls a provider's.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from relaygraph import MemorySaver
from relaygraph.workers.client import Client

from . import graphs
from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

QUESTION = {"messages": [HumanMessage("What is 2 + 3?", id="q1")]}


def _shape(messages: list[Any]) -> list[tuple[Any, ...]]:
    """What must match: types, contents, tool calls and tool call ids (ids are random)."""
    return [
        (type(m).__name__, m.content, getattr(m, "tool_calls", None),
         getattr(m, "tool_call_id", None))
        for m in messages
    ]


def _local(stream_mode: list[str]) -> tuple[list[Any], list[Any]]:
    graph = graphs.agent.builder.compile(checkpointer=MemorySaver())
    config = {"configurable": {"thread_id": "oracle"}}
    chunks = list(graph.stream(QUESTION, config, stream_mode=stream_mode))
    return chunks, graph.get_state(config).values["messages"]


def test_agent_loop_on_workers_matches_the_local_executor(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    fleet.start("w2")
    run = client.submit("agent", QUESTION, thread_id="t", stream_mode=["messages", "updates"])
    events = list(run.stream(timeout=60))
    assert events[-1].data["status"] == "success", events[-1].data
    local_chunks, local_messages = _local(["messages", "updates"])
    remote_messages = client.get_state("agent", "t").values["messages"]
    assert _shape(remote_messages) == _shape(local_messages)
    assert remote_messages[-1].content == "The sum is 5, as the tool says."
    history = [s.next for s in client.get_state_history("agent", "t")]
    local_graph = graphs.agent.builder.compile(checkpointer=MemorySaver())
    local_graph.invoke(QUESTION, {"configurable": {"thread_id": "o"}})
    assert history == [s.next for s in local_graph.get_state_history(
        {"configurable": {"thread_id": "o"}})]
    # the messages stream: the same (type, content, node) sequence as in-process
    remote_tokens = [(type(m).__name__, m.content, meta["langgraph_node"])
                     for e in events if e.mode == "messages" for m, meta in [e.data]]
    local_tokens = [(type(m).__name__, m.content, meta["langgraph_node"])
                    for mode, data in local_chunks if mode == "messages" for m, meta in [data]]
    assert remote_tokens == local_tokens
    assert ("AIMessageChunk", "sum", "agent") in remote_tokens


def test_tokens_reach_the_client_while_the_node_still_runs(redis_server: Any, tmp_path: Any,
                                                            client: Client) -> None:
    fleet = Fleet(redis_server.url, tmp_path, RELAYGRAPH_TEST_AGENT_PAUSE="3")
    try:
        fleet.start("w1")
        run = client.submit("agent", QUESTION, thread_id="t", stream_mode=["messages", "updates"])
        seen: list[Any] = []
        for event in run.stream(timeout=60):
            seen.append(event)
            if event.mode == "messages" and isinstance(event.data[0], AIMessageChunk):
                break
        # the answer's first token is here; its node sleeps 3 s after the model returns
        assert client.get_state("agent", "t").next == ("agent",)
        assert run.status == "running"
        updates = [e.data for e in seen if e.mode == "updates"]
        assert [list(u) for u in updates] == [["agent"], ["tools"]]
        rest = list(run.stream(after=seen[-1].id, timeout=60))
        assert rest[-1].data["status"] == "success"
        words = [seen[-1].data[0].content] + [
            e.data[0].content for e in rest if e.mode == "messages"]
        assert "".join(words) == "The sum is 5, as the tool says."
    finally:
        fleet.stop()


def test_a_run_without_the_messages_mode_records_no_tokens(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    run = client.submit("agent", QUESTION, thread_id="t", stream_mode="updates")
    events = list(run.stream(timeout=60))
    assert events[-1].data["status"] == "success"
    assert {e.mode for e in events} == {"updates", "status"}
