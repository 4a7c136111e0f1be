"""The agent graphs on real worker processes: the same thread as the local executor.

The local executor is the oracle here (tests/agents/test_differential_agents.py checks it
against LangGraph). Two workers share the tool calls of a step (``create_react_agent``'s
v2 sends each call as its own task, which reads the thread's state on whatever worker
runs it); an interrupted agent resumes on another worker; tools use the workers' Redis
store through ``InjectedStore``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from relaygraph import InMemoryStore, MemorySaver
from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.client import Client
from relaygraph.workers.settings import WorkerSettings

from .libs import normalized

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # workers import "tests.agents.worker_graphs"; so does this test
    sys.path.insert(0, ROOT)

from tests.agents import worker_graphs  # noqa: E402
from tests.workers.fleet import Fleet  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.xdist_group("agent-fleet")]

QUESTION = {"messages": [HumanMessage("What are 40 + 2 and 6 * 7?")]}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as made:  # with search: the workers' store is a RedisStore
        yield made


@pytest.fixture(scope="module")
def fleet(server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workers = Fleet(
        server.url,
        tmp_path_factory.mktemp("agent-fleet"),
        RELAYGRAPH_GRAPHS=worker_graphs.REGISTRY,
        RELAYGRAPH_STORE_URL=server.url,
    )
    try:
        for name in ("a1", "a2"):
            workers.start(name, wait=False)
        for name in ("a1", "a2"):
            workers.wait_for(name, b"ready.")
        yield workers
    finally:
        workers.stop()


@pytest.fixture(scope="module")
def client(server: EmbeddedRedis, fleet: Fleet) -> Iterator[Client]:
    settings = WorkerSettings(
        redis_url=server.url, graphs=worker_graphs.REGISTRY, store_url=server.url, lease_ttl=2
    )
    with Client(settings=settings) as made:
        yield made


def local(name: str, *inputs: Any) -> tuple[Any, list[tuple]]:
    """The oracle: the same graph on the in-process executor, input after input."""
    graph = getattr(worker_graphs, name)
    compiled = graph.builder.compile(
        checkpointer=MemorySaver(), store=InMemoryStore(), interrupt_before=graph.interrupt_before
    )
    config = {"configurable": {"thread_id": "oracle"}}
    for item in inputs:
        compiled.invoke(item, config)
    return shape(compiled.get_state(config), compiled.get_state_history(config))


def shape(snapshot: Any, history: Any) -> tuple[Any, list[tuple]]:
    """The head's values and every checkpoint's step, source, next and values."""
    return normalized(snapshot.values), [
        (s.metadata["step"], s.metadata["source"], tuple(s.next), normalized(s.values))
        for s in history
    ]


def remote(client: Client, name: str, thread: str) -> tuple[Any, list[tuple]]:
    return shape(client.get_state(name, thread), client.get_state_history(name, thread))


@pytest.mark.parametrize("name", ["react", "react_v1", "loop", "command"])
def test_agent_on_two_workers_matches_the_local_executor(
    client: Client, fleet: Fleet, name: str
) -> None:
    inputs: dict[str, Any] = dict(QUESTION)
    if name == "command":
        inputs = {"messages": [HumanMessage("log me in")], "log": []}
    run = client.submit(name, inputs, thread_id=f"t-{name}")
    assert run.wait(timeout=120) == "success", run.error
    got = remote(client, name, f"t-{name}")
    assert got == local(name, inputs)
    assert got[0]["messages"][-1]["__type__"] == "AIMessage"


def test_tool_calls_of_one_step_run_as_tasks_on_the_fleet(client: Client, fleet: Fleet) -> None:
    run = client.submit("react", QUESTION, thread_id="t-tasks")
    assert run.wait(timeout=120) == "success", run.error
    logs = fleet.log("a1") + fleet.log("a2")
    assert logs.count("react.tools") >= 2, logs[-2000:]


def test_interrupted_agent_resumes_on_the_fleet(client: Client, fleet: Fleet) -> None:
    first = client.submit("paused", QUESTION, thread_id="t-paused")
    assert first.wait(timeout=120) == "interrupted", first.error
    assert client.get_state("paused", "t-paused").next == ("tools", "tools")
    second = client.submit("paused", None, thread_id="t-paused")
    assert second.wait(timeout=120) == "success", second.error
    got = remote(client, "paused", "t-paused")
    assert got == local("paused", QUESTION, None)
    assert got[0]["messages"][-1]["content"] == "Both are 42."


def test_injected_state_and_store_on_the_fleet(client: Client, fleet: Fleet) -> None:
    inputs = {"messages": [HumanMessage("hello")], "user": "ada"}
    run = client.submit("injected", inputs, thread_id="t-injected")
    assert run.wait(timeout=120) == "success", run.error
    got = remote(client, "injected", "t-injected")
    assert got == local("injected", inputs)
    answers = [m["content"] for m in got[0]["messages"] if m["__type__"] == "ToolMessage"]
    assert answers[:4] == ["2 messages", "you are ada", "saved sky is blue", "my id is j4"]
    assert answers[-1] == "grass is green, sky is blue"


def test_messages_stream_of_the_loop_on_the_fleet_equals_langgraph_s(client: Client) -> None:
    from tests.agents import scenarios
    from tests.agents.libs import LANGGRAPH

    inputs = {"messages": [HumanMessage("40 + 2 and 6 * 7?", id="h1")]}
    run = client.submit("loop", inputs, thread_id="t-stream", stream_mode=["messages"])
    events = list(run.stream(timeout=120))
    assert events[-1].data["status"] == "success", events[-1].data
    remote = [
        (type(m).__name__, m.content, meta["langgraph_node"], meta["langgraph_step"])
        for e in events
        if e.mode == "messages"
        for m, meta in [e.data]
    ]
    expected = [
        (type(m).__name__, m.content, meta["langgraph_node"], meta["langgraph_step"])
        for m, meta in scenarios.messages_stream(LANGGRAPH, "loop")
    ]
    assert remote == expected
    assert ("AIMessageChunk", "multiply", "agent", 3) in remote
    # every field of every message, and the metadata LangGraph gives (ids numbered)
    from runtime.test_stream_messages import _normal

    local_config = {"thread_id": "t1", "app": "x"}  # what the oracle's config adds
    chunks = [e.data for e in events if e.mode == "messages"]
    got = _normal([(m, {k: v for k, v in meta.items() if k != "thread_id"}) for m, meta in chunks])
    want = _normal(
        [
            (m, {k: v for k, v in meta.items() if k not in local_config})
            for m, meta in scenarios.messages_stream(LANGGRAPH, "loop")
        ]
    )
    assert got == want


def test_every_field_of_a_model_s_output_through_the_fleet(client: Client) -> None:
    """Input and output messages keep their type and every field through the workers."""
    from langchain_core.messages import AIMessage

    question = HumanMessage(
        [
            {"type": "text", "text": "look"},
            {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
        ],
        id="h1",
        name="ann",
    )
    run = client.submit("fields", {"messages": [question]}, thread_id="t-fields")
    assert run.wait(timeout=120) == "success", run.error
    stored = client.get_state("fields", "t-fields").values["messages"]
    reply, answer, _chunk = worker_graphs.model_output()
    expected = [question, reply, answer, AIMessage(content="partial", id="chunk-1")]
    assert [(type(m), m.model_dump()) for m in stored] == [
        (type(m), m.model_dump()) for m in expected
    ]
    assert stored[1].invalid_tool_calls[0]["error"] == "bad JSON"


def test_messages_stream_of_a_subgraph_s_model_on_the_fleet(client: Client) -> None:
    """What the local executor streams for a model inside a subgraph (``subgraphs=False``:
    runs on the fleet have no ``subgraphs`` option), the fleet streams."""
    from runtime.test_stream_messages import _normal

    def without_thread(chunks: list[Any]) -> list[Any]:
        return _normal(
            [(m, {k: v for k, v in meta.items() if k != "thread_id"}) for m, meta in chunks]
        )

    inputs = {"messages": [HumanMessage("think", id="h1")]}
    local = list(worker_graphs._with_subgraph().compile().stream(inputs, stream_mode="messages"))
    run = client.submit("nested", inputs, thread_id="t-nested", stream_mode=["messages"])
    events = list(run.stream(timeout=120))
    assert events[-1].data["status"] == "success", events[-1].data
    remote = [e.data for e in events if e.mode == "messages"]
    assert [m.content for m, _meta in local] == ["deep thought"]
    assert without_thread(remote) == without_thread(local)
