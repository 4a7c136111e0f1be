"""relaygraph.prebuilt's clear errors for bad input, and ScriptedChatModel's own checks."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from typing_extensions import TypedDict

from relaygraph import MemorySaver, add_messages
from relaygraph.prebuilt import ToolNode, create_react_agent, tools_condition
from relaygraph.testing import ScriptedChatModel

from .scenarios import add, agent_script, call


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid version v3"):
        create_react_agent(agent_script(), [add], version="v3")  # type: ignore[arg-type]


def test_a_state_schema_without_the_needed_keys_is_refused() -> None:
    class NoMessages(TypedDict):
        other: str

    class NoStructured(TypedDict):
        messages: Annotated[list, add_messages]

    with pytest.raises(ValueError, match="Missing required key"):
        create_react_agent(agent_script(), [add], state_schema=NoMessages)
    with pytest.raises(ValueError, match="structured_response"):
        create_react_agent(agent_script(), [add], state_schema=NoStructured, response_format=dict)


def test_what_is_not_supported_yet_says_so() -> None:
    with pytest.raises(NotImplementedError, match="pre_model_hook"):
        create_react_agent(agent_script(), [add], pre_model_hook=lambda state: state)
    with pytest.raises(NotImplementedError, match="chat model, not a function"):
        create_react_agent(lambda state, runtime: agent_script(), [add])


def test_a_prompt_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected type for `prompt`"):
        create_react_agent(agent_script(), [add], prompt=42)  # type: ignore[arg-type]


def test_a_model_bound_to_other_tools_is_refused() -> None:
    @tool
    def other(x: int) -> int:
        """Another tool."""
        return x

    bound = agent_script().bind_tools([other])
    with pytest.raises(ValueError, match="Missing tools"):
        create_react_agent(bound, [add])
    with pytest.raises(ValueError, match="must match"):
        create_react_agent(bound, [add, other])


def test_a_model_with_the_tools_already_bound_is_used_as_it_is() -> None:
    graph = create_react_agent(agent_script().bind_tools([add]), [add], checkpointer=MemorySaver())
    cfg = {"configurable": {"thread_id": "b"}}
    graph.invoke({"messages": [HumanMessage("hi")]}, cfg)
    # the script's first reply also calls multiply, which this agent lacks
    answers = [m for m in graph.get_state(cfg).values["messages"] if m.type == "tool"]
    assert [a.status for a in answers] == ["success", "error"]
    assert answers[1].content.startswith("Error: multiply is not a valid tool, try one of [add]")


def test_tool_node_refuses_things_that_are_not_tools() -> None:
    with pytest.raises(TypeError, match="ToolNode takes tools or functions"):
        ToolNode([42])  # type: ignore[list-item]


def test_a_tool_returning_an_unexpected_list_fails_clearly() -> None:
    @tool
    def weird() -> Any:
        """Returns a list of numbers as a Command-like answer."""
        return [1, 2]

    node = ToolNode([weird], handle_tool_errors=False)
    # langchain_core turns a plain list into a ToolMessage's content: nothing to refuse
    [answer] = node.invoke({"messages": [AIMessage("", tool_calls=[call("weird", "w1")])]})[
        "messages"
    ]
    assert answer.content == "[1, 2]"


def test_a_bad_handle_tool_errors_annotation_is_refused() -> None:
    def handler(e: int) -> str:
        return "x"

    @tool
    def boom() -> str:
        """Fails."""
        raise RuntimeError("no")

    node = ToolNode([boom], handle_tool_errors=handler)
    with pytest.raises(ValueError, match="Exception types"):
        node.invoke({"messages": [AIMessage("", tool_calls=[call("boom", "b1")])]})


def test_tools_condition_needs_messages() -> None:
    with pytest.raises(ValueError, match="No messages found"):
        tools_condition({"messages": []})
    assert tools_condition([AIMessage("", tool_calls=[call("add", "x", a=1, b=2)])]) == "tools"


def test_the_script_running_out_is_a_clear_error() -> None:
    model = ScriptedChatModel(responses=["only one"])
    history = [HumanMessage("a"), AIMessage("only one"), HumanMessage("b")]
    with pytest.raises(ValueError, match=r"has 1 replies.*asks for reply #2"):
        model.invoke(history)


def test_the_script_answers_by_conversation_not_by_call_count() -> None:
    model = ScriptedChatModel(responses=["first", "second"])
    assert model.invoke([HumanMessage("a")]).content == "first"
    assert model.invoke([HumanMessage("a")]).content == "first"
    assert model.invoke([HumanMessage("a"), AIMessage("first"), HumanMessage("b")]).content == (
        "second"
    )
    # each reply is a fresh copy: changing one never changes the script
    reply = model.invoke([HumanMessage("a")])
    reply.content = "changed"
    assert model.invoke([HumanMessage("a")]).content == "first"


def _two_call_graph(tools: list[Any]) -> Any:
    from relaygraph import START, MessagesState, StateGraph

    return (
        StateGraph(MessagesState)
        .add_node("tools", ToolNode(tools))
        .add_edge(START, "tools")
        .compile()
    )


TWO_CALLS = {"messages": [AIMessage("", tool_calls=[call("left", "l1"), call("right", "r1")])]}


def test_parallel_calls_really_run_together_on_threads() -> None:
    import threading

    barrier = threading.Barrier(2, timeout=10)  # a sequential node would wait here in vain

    @tool
    def left() -> str:
        """Meets right."""
        barrier.wait()
        return "left"

    @tool
    def right() -> str:
        """Meets left."""
        barrier.wait()
        return "right"

    out = _two_call_graph([left, right]).invoke(TWO_CALLS)
    assert [m.content for m in out["messages"][1:]] == ["left", "right"]


def test_parallel_calls_really_run_together_under_asyncio() -> None:
    import asyncio

    loops: list[Any] = []

    async def scenario() -> Any:
        seen_left, seen_right = asyncio.Event(), asyncio.Event()
        loops.append(asyncio.get_running_loop())

        @tool
        async def left() -> str:
            """Meets right."""
            loops.append(asyncio.get_running_loop())
            seen_left.set()
            await asyncio.wait_for(seen_right.wait(), 10)
            return "left"

        @tool
        async def right() -> str:
            """Meets left."""
            loops.append(asyncio.get_running_loop())
            seen_right.set()
            await asyncio.wait_for(seen_left.wait(), 10)
            return "right"

        # on one event loop: the node awaits ToolNode.ainvoke (asyncio.gather)
        return await _two_call_graph([left, right]).ainvoke(TWO_CALLS)

    out = asyncio.run(scenario())
    assert [m.content for m in out["messages"][1:]] == ["left", "right"]
    assert len(loops) == 3 and loops[1] is loops[0] and loops[2] is loops[0], (
        "not on the run's loop"
    )


def test_a_tool_step_stores_the_calls_not_the_conversation() -> None:
    """v2 sends each tool call alone (the tool reads the state when it needs it): a turn
    costs the same bytes whether the thread holds 4 messages or 40."""
    filler = "x" * 2000
    turns = 10
    script: list[AIMessage] = []
    for turn in range(turns):
        script.append(
            AIMessage(
                "",
                tool_calls=[call("add", f"c{turn}a", a=1, b=2), call("add", f"c{turn}b", a=3, b=4)],
            )
        )
        script.append(AIMessage(filler))
    saver = MemorySaver()
    graph = create_react_agent(ScriptedChatModel(responses=script), [add], checkpointer=saver)
    cfg = {"configurable": {"thread_id": "bytes"}}
    sizes = []
    for _ in range(turns):
        graph.invoke({"messages": [HumanMessage(filler)]}, cfg)
        sizes.append(saver.stored_bytes("bytes"))
    growth = [b - a for a, b in itertools.pairwise(sizes)]
    assert len(graph.get_state(cfg).values["messages"]) == turns * 5
    # a copy of the conversation per call would add ~2 * 2 kB * messages per turn
    assert max(growth) < 1.5 * min(growth), growth
