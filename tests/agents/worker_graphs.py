"""Agent graphs the worker-fleet tests run; workers import them by name (REGISTRY)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage

from relaygraph import START, MessagesState, StateGraph
from relaygraph.prebuilt import create_react_agent

from . import scenarios
from .libs import RELAYGRAPH

react = create_react_agent(scenarios.agent_script(), [scenarios.add, scenarios.multiply])
react_v1 = create_react_agent(
    scenarios.agent_script(), [scenarios.add, scenarios.multiply], version="v1"
)
paused = create_react_agent(
    scenarios.agent_script(), [scenarios.add, scenarios.multiply], interrupt_before=["tools"]
)
loop = scenarios.hand_loop_graph(
    RELAYGRAPH, scenarios.loop_script(), [scenarios.add, scenarios.multiply]
)
command = scenarios.command_tool_graph(RELAYGRAPH).builder.compile()


def _injected():
    class State(RELAYGRAPH.AgentState):
        user: str

    model = scenarios.ScriptedChatModel(
        responses=scenarios.injected_script(),
    )
    return create_react_agent(model, scenarios.injected_tools(RELAYGRAPH), state_schema=State)


injected = _injected()


def model_output() -> list[Any]:
    """A model's reply with every field a provider fills in, and the tool's answer."""
    call = {"name": "search", "args": {"q": "weather"}, "id": "call-1", "type": "tool_call"}
    return [
        AIMessage(
            content=[
                {"type": "text", "text": "Let me look."},
                {"type": "image", "url": "http://x/i.png"},
            ],
            id="ai-1",
            name="bot",
            tool_calls=[call],
            invalid_tool_calls=[
                {
                    "name": "broken",
                    "args": "{oops",
                    "id": "call-2",
                    "error": "bad JSON",
                    "type": "invalid_tool_call",
                }
            ],
            usage_metadata={
                "input_tokens": 10,
                "output_tokens": 5,
                "total_tokens": 15,
                "input_token_details": {"cache_read": 2},
            },
            response_metadata={"model_name": "fake-1", "finish_reason": "tool_calls"},
            additional_kwargs={"refusal": None},
        ),
        ToolMessage(
            "sunny",
            tool_call_id="call-1",
            name="search",
            artifact={"raw": [1, 2]},
            status="error",
            id="tool-1",
        ),
        AIMessageChunk(content="partial", id="chunk-1"),
    ]


fields = (
    StateGraph(MessagesState)
    .add_node("model", lambda state: {"messages": model_output()})
    .add_edge(START, "model")
    .compile()
)


def _with_subgraph() -> Any:
    """A parent whose node is a subgraph calling a chat model."""
    model = scenarios.ScriptedChatModel(responses=["deep thought"])
    inner = StateGraph(MessagesState)
    inner.add_node("think", lambda state: {"messages": [model.invoke(state["messages"])]})
    inner.add_edge(START, "think")
    return StateGraph(MessagesState).add_node("sub", inner.compile()).add_edge(START, "sub")


nested = _with_subgraph().compile()

NAMES = ("react", "react_v1", "paused", "loop", "command", "injected", "fields", "nested")
REGISTRY = ",".join(f"{name}=tests.agents.worker_graphs:{name}" for name in NAMES)
