"""Graphs the API tests run; the workers and the server import them by name."""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Any, TypedDict

from relaygraph import (
    END,
    START,
    AIMessage,
    MessagesState,
    StateGraph,
    get_stream_writer,
    interrupt,
)


class Counter(TypedDict):
    items: Annotated[list, operator.add]


def _echo() -> Any:
    """One node: answers the last message (the benchmark's one-node run)."""

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}

    return StateGraph(MessagesState).add_node("reply", reply).add_edge(START, "reply").compile()


def _facts() -> Any:
    """The lesson's exercise: facts about a user kept in the store across threads.

    "remember X" stores X under ("memories", user_id); any message is answered with what
    is known about the user (``config.configurable.user_id``).
    """

    def remember(state: MessagesState, config: dict[str, Any], *, store: Any) -> dict[str, Any]:
        user = config["configurable"].get("user_id", "anonymous")
        namespace = ("memories", user)
        text = state["messages"][-1].content
        if text.startswith("remember "):
            fact = text.removeprefix("remember ")
            store.put(namespace, f"fact-{abs(hash(fact)) % 10**8}", {"fact": fact}, index=False)
        known = sorted(item.value["fact"] for item in store.search(namespace, limit=50))
        return {"messages": [AIMessage("I know: " + "; ".join(known))]}

    builder = StateGraph(MessagesState).add_node("remember", remember)
    return builder.add_edge(START, "remember").compile()


def _steps() -> Any:
    """a -> b -> c, each writing a custom event."""

    def step(name: str) -> Any:
        def node(state: Counter) -> dict[str, Any]:
            get_stream_writer()({"node": name})
            return {"items": [name]}

        return node

    builder = StateGraph(Counter)
    for name in ("a", "b", "c"):
        builder.add_node(name, step(name))
    builder.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return builder.compile()


def _ask() -> Any:
    def ask(state: Counter) -> dict[str, Any]:
        answer = interrupt("your name?")
        return {"items": [f"hello {answer}"]}

    return StateGraph(Counter).add_node("ask", ask).add_edge(START, "ask").compile()


def _slow() -> Any:
    """first -> slow (sleeps RELAYGRAPH_TEST_SLOW seconds, default 2) -> last."""

    def first(state: Counter) -> dict[str, Any]:
        return {"items": ["first"]}

    def slow(state: Counter) -> dict[str, Any]:
        time.sleep(float(os.environ.get("RELAYGRAPH_TEST_SLOW", "2")))
        return {"items": ["slow"]}

    def last(state: Counter) -> dict[str, Any]:
        return {"items": ["last"]}

    builder = StateGraph(Counter).add_node("first", first).add_node("slow", slow)
    builder.add_node("last", last)
    builder.add_edge(START, "first").add_edge("first", "slow").add_edge("slow", "last")
    return builder.compile()


def _fail() -> Any:
    def boom(state: Counter) -> dict[str, Any]:
        raise ValueError("boom")

    return StateGraph(Counter).add_node("boom", boom).add_edge(START, "boom").compile()


def _nested() -> Any:
    """'before', then the subgraph 'child' (inner -> deeper) as a node, then 'after'."""
    child = StateGraph(Counter).add_node("inner", lambda state: {"items": ["inner"]})
    child.add_node("deeper", lambda state: {"items": ["deeper"]})
    child.add_edge(START, "inner").add_edge("inner", "deeper")
    builder = StateGraph(Counter).add_node("before", lambda state: {"items": ["before"]})
    builder.add_node("child", child.compile()).add_node("after", lambda state: {"items": ["after"]})
    builder.add_edge(START, "before").add_edge("before", "child").add_edge("child", "after")
    return builder.compile()


def _nested_model() -> Any:
    """A subgraph node 'child' whose node 'think' calls a chat model that streams."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    def think(state: MessagesState) -> dict[str, Any]:
        model = GenericFakeChatModel(messages=iter([AIMessage("deep inner thought")]))
        return {"messages": [model.invoke(state["messages"])]}

    child = StateGraph(MessagesState).add_node("think", think).add_edge(START, "think")
    builder = StateGraph(MessagesState).add_node("child", child.compile())
    return builder.add_edge(START, "child").compile()


def _configured() -> Any:
    """One node: reports what the run's config carries (an assistant's config and context,
    or the run's own over them)."""

    def report(state: Counter, config: dict[str, Any]) -> dict[str, Any]:
        configurable = config["configurable"]
        return {"items": [f"{k}={configurable.get(k)}" for k in ("model", "tone", "assistant_id")]}

    return StateGraph(Counter).add_node("report", report).add_edge(START, "report").compile()


echo = _echo()
facts = _facts()
steps = _steps()
ask = _ask()
slow = _slow()
fail = _fail()
nested = _nested()
nested_model = _nested_model()
configured = _configured()

_NAMES = (
    "echo", "facts", "steps", "ask", "slow", "fail", "nested", "nested_model", "configured"
)
REGISTRY = ",".join(
    f"{name}=tests.api.graphs:{name}" for name in _NAMES
) + ",agent=relaygraph.examples.agent:graph"  # an LLM agent whose model streams its answer
