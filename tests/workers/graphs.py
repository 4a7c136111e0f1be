"""Graphs the distributed tests run; workers import them by name (RELAYGRAPH_GRAPHS)."""

from __future__ import annotations

import operator
import os
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from relaygraph import (
    END,
    START,
    MessagesState,
    RetryPolicy,
    Runtime,
    Send,
    StateGraph,
    get_stream_writer,
    get_task_id,
    interrupt,
)


class Counter(TypedDict):
    items: Annotated[list, operator.add]
    total: Annotated[int, operator.add]


def _step(name: str, pause: float = 0.0) -> Any:
    def node(state: Counter) -> dict[str, Any]:
        if pause:
            time.sleep(pause)
        get_stream_writer()({"node": name})
        return {"items": [name], "total": 1}

    return node


def _linear() -> Any:
    builder = StateGraph(Counter)
    for name in ("a", "b", "c"):
        builder.add_node(name, _step(name))
    builder.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return builder.compile()


def _fanout() -> Any:
    def work(arg: dict[str, int]) -> dict[str, Any]:
        time.sleep(0.05 * (3 - arg["i"]))
        return {"items": [f"w{arg['i']}"], "total": 1}

    builder = StateGraph(Counter)
    builder.add_node("split", _step("split"))
    builder.add_node("work", work)
    builder.add_node("join", _step("join"))
    builder.add_edge(START, "split")
    builder.add_conditional_edges("split", lambda s: [Send("work", {"i": i}) for i in range(4)])
    builder.add_edge("work", "join")
    return builder.compile()


def _ask() -> Any:
    def ask(state: Counter) -> dict[str, Any]:
        answer = interrupt("your name?")
        return {"items": [f"hello {answer}"], "total": 1}

    builder = StateGraph(Counter).add_node("ask", ask).add_edge(START, "ask")
    return builder.compile()


def _slow() -> Any:
    """A long middle node: the crash tests kill its worker while it runs."""
    pause = float(os.environ.get("RELAYGRAPH_TEST_SLOW", "3"))

    def slow(state: Counter) -> dict[str, Any]:
        marker = os.environ.get("RELAYGRAPH_TEST_MARKER")
        if marker:
            Path(marker).write_text(str(os.getpid()))
        time.sleep(pause)
        return {"items": ["slow"], "total": 1}

    builder = StateGraph(Counter)
    builder.add_node("before", _step("before")).add_node("slow", slow)
    builder.add_node("after", _step("after"))
    builder.add_edge(START, "before").add_edge("before", "slow").add_edge("slow", "after")
    return builder.compile()


def _crashy() -> Any:
    """A node that kills its worker process every time it runs."""

    def crash(state: Counter) -> dict[str, Any]:
        os._exit(137)

    builder = StateGraph(Counter).add_node("crash", crash).add_edge(START, "crash")
    return builder.compile()


def _flaky() -> Any:
    """Fails twice with a retryable error, then succeeds (attempts counted in a file; each
    attempt's execution info appended to ``<file>.info``: attempt, first attempt time)."""

    def flaky(state: Counter, runtime: Runtime) -> dict[str, Any]:
        counter = Path(os.environ.get("RELAYGRAPH_TEST_MARKER", "/tmp/relaygraph-flaky"))
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        info = runtime.execution_info
        with counter.with_suffix(".info").open("a") as seen:
            seen.write(f"{info.node_attempt} {info.node_first_attempt_time} {time.time()}\n")
        if count < 3:
            raise ConnectionError(f"transient failure {count}")
        return {"items": [f"ok after {count}"], "total": 1}

    policy = RetryPolicy(max_attempts=3, initial_interval=0.1, jitter=False)
    builder = StateGraph(Counter).add_node("flaky", flaky, retry=policy)
    builder.add_edge(START, "flaky")
    return builder.compile()


def _held() -> Any:
    """'first' on the default queue, then 'second' on queue 'side'. The first 'second' to
    run (no RELAYGRAPH_TEST_MARKER file yet) writes its pid there and holds its process
    RELAYGRAPH_TEST_HOLD seconds: the crash tests kill it there, or let it keep a worker's
    only process busy while that worker holds another thread's message unstarted."""

    def second(state: Counter) -> dict[str, Any]:
        marker = os.environ.get("RELAYGRAPH_TEST_MARKER")
        if marker and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            time.sleep(float(os.environ.get("RELAYGRAPH_TEST_HOLD", "0")))
        return {"items": ["second"], "total": 1}

    builder = StateGraph(Counter)
    builder.add_node("first", _step("first")).add_node("second", second, queue="side")
    builder.add_node("third", _step("third"))
    builder.add_edge(START, "first").add_edge("first", "second").add_edge("second", "third")
    return builder.compile()


def _gpu() -> Any:
    builder = StateGraph(Counter)
    builder.add_node("cpu", _step("cpu")).add_node("gpu", _step("gpu"), queue="gpu")
    builder.add_edge(START, "cpu").add_edge("cpu", "gpu")
    return builder.compile()


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


ADD_CALL = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call-1", "type": "tool_call"}


def _agent_reply(state: MessagesState) -> Any:
    """A scripted chat model for this point of the conversation: the same on every worker.

    First turn: a tool call (a model that does not stream); then the answer, streamed word
    by word, followed by slow work so a test can see tokens while the node still runs.
    """
    if not any(m.type == "tool" for m in state["messages"]):
        model = FakeMessagesListChatModel(responses=[AIMessage("", tool_calls=[ADD_CALL])])
        return model.invoke(state["messages"])
    answer = f"The sum is {state['messages'][-1].content}, as the tool says."
    reply = GenericFakeChatModel(messages=iter([AIMessage(answer)])).invoke(state["messages"])
    time.sleep(float(os.environ.get("RELAYGRAPH_TEST_AGENT_PAUSE", "0")))
    return reply


def _tools(state: MessagesState) -> dict[str, Any]:
    calls = state["messages"][-1].tool_calls
    return {
        "messages": [
            ToolMessage(str(add.invoke(call["args"])), tool_call_id=call["id"], name=call["name"])
            for call in calls
        ]
    }


def _agent_loop() -> Any:
    """A hand-written LLM agent: model node, tool node, loop until no tool call."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", lambda state: {"messages": [_agent_reply(state)]})
    builder.add_node("tools", _tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges(
        "agent", lambda s: "tools" if s["messages"][-1].tool_calls else END, ["tools", END]
    )
    builder.add_edge("tools", "agent")
    return builder.compile()


def _loop() -> Any:
    """One node looping ``LOOP_HOPS`` times (a hop per step): a run stays in flight long
    enough to be hit by a failure, and each hop is one commit. With ``RELAYGRAPH_TEST_RAN``
    (a file) each execution appends its task id there: a task that ran from a commit the
    final history lacks shows that an acknowledged commit was lost."""

    def tick(state: Counter) -> dict[str, Any]:
        time.sleep(0.01)
        ran = os.environ.get("RELAYGRAPH_TEST_RAN")
        if ran:
            with open(ran, "a") as log:  # one short O_APPEND write: lines never interleave
                log.write(get_task_id() + "\n")
        return {"items": [state["total"]], "total": 1}

    builder = StateGraph(Counter)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges(
        "tick", lambda s: "tick" if s["total"] < LOOP_HOPS else END, ["tick", END]
    )
    return builder.compile()


LOOP_HOPS = 20
linear = _linear()
loop = _loop()
agent = _agent_loop()
fanout = _fanout()
ask = _ask()
slow = _slow()
crashy = _crashy()
flaky = _flaky()
gpu = _gpu()
held = _held()
bounded = _loop().with_config(recursion_limit=5)  # its defaults hold on the workers too

NAMES = (
    "linear", "fanout", "ask", "slow", "crashy", "flaky", "gpu", "agent", "held", "loop",
    "bounded",
)
REGISTRY = ",".join(f"{name}=tests.workers.graphs:{name}" for name in NAMES)


def _badwrite() -> Any:
    """A node whose update the state cannot take: ``items`` is a list, the node writes 5."""

    def bad(state: Counter) -> dict[str, Any]:
        return {"items": 5}

    builder = StateGraph(Counter).add_node("a", bad).add_edge(START, "a")
    return builder.compile()


def _badpair() -> Any:
    """Two parallel nodes (a step with a barrier), one of them writing what cannot apply."""

    def bad(state: Counter) -> dict[str, Any]:
        return {"total": "many"}

    builder = StateGraph(Counter).add_node("good", _step("good")).add_node("bad", bad)
    builder.add_edge(START, "good").add_edge(START, "bad")
    return builder.compile()


def _failing() -> Any:
    """A node that raises: the run's error, at once."""

    def fail(state: Counter) -> dict[str, Any]:
        raise ValueError("the node refuses: " + "x" * 150)

    builder = StateGraph(Counter).add_node("fail", fail).add_edge(START, "fail")
    return builder.compile()


badwrite = _badwrite()
badpair = _badpair()
failing = _failing()
