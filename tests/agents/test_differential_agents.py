"""Agent graphs on LangGraph and on relaygraph (local executor): the same observations.

Every scenario of ``scenarios.py`` runs on both stacks with the same scripted chat model;
messages (type, every field; random ids renamed by first appearance), ``next``, state values
and the whole history (every checkpoint's values) must be equal. A few absolute checks make
sure a scenario really did what it claims (both stacks could otherwise agree on nothing
happening).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from . import scenarios
from .libs import LANGGRAPH, RELAYGRAPH
from .scenarios import call


def both(scenario: Any, *args: Any, **kwargs: Any) -> Any:
    expected = scenario(LANGGRAPH, *args, **kwargs)
    got = scenario(RELAYGRAPH, *args, **kwargs)
    assert got == expected
    return got


def messages_of(seen: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["__type__"], m["content"]) for m in seen["values"]["messages"]]


def test_hand_written_loop() -> None:
    first, second = both(scenarios.hand_loop)
    assert messages_of(first)[-1] == ("AIMessage", "2 + 3 = 5, and 5 * 4 = 20.")
    assert [m for m in messages_of(first) if m[0] == "ToolMessage"] == [
        ("ToolMessage", "5"),
        ("ToolMessage", "20"),
    ]
    assert second["next"] == () and messages_of(second)[-1] == ("AIMessage", "You're welcome!")
    assert len(second["history"]) == 10


def test_tool_node_parallel_calls_and_errors() -> None:
    answers = both(scenarios.parallel_calls)["messages"]
    assert [m["tool_call_id"] for m in answers] == ["p1", "p2", "p3", "p4", "p5"]
    assert [m["status"] for m in answers] == ["success", "error", "success", "error", "error"]
    assert answers[1]["content"] == (
        "Error: RuntimeError('exploded: on purpose')\n Please fix your mistakes."
    )
    assert answers[4]["content"].startswith("Error: missing_tool is not a valid tool")


@pytest.mark.parametrize("handling", ["default", "false", "text", "function", "types"], ids=str)
def test_tool_error_handling_options(handling: str) -> None:
    def only_runtime_errors(e: RuntimeError) -> str:
        return f"handled {e}"

    flags: dict[str, Any] = {
        "false": False,
        "text": "Something went wrong.",
        "function": only_runtime_errors,
        "types": (ValueError,),
    }
    kwargs = {} if handling == "default" else {"handle_tool_errors": flags[handling]}

    def run(lib: Any, calls: list[dict[str, Any]]) -> Any:
        node = lib.ToolNode([scenarios.add, scenarios.explode], **kwargs)
        try:
            return scenarios.normalized(
                node.invoke([scenarios.AIMessage("", tool_calls=calls)], lib.node_config())
            )
        except Exception as exc:
            return ("raised", type(exc).__name__, str(exc))

    for calls in (
        [call("explode", "e1", reason="x")],
        [call("add", "e2", a="one", b=2)],
        [call("add", "e3", a=1, b=2), call("explode", "e4", reason="y")],
    ):
        assert run(RELAYGRAPH, calls) == run(LANGGRAPH, calls)


def test_default_handling_raises_tool_failures_and_answers_bad_arguments() -> None:
    node = RELAYGRAPH.ToolNode([scenarios.add, scenarios.explode])
    with pytest.raises(RuntimeError, match="exploded"):
        node.invoke([scenarios.AIMessage("", tool_calls=[call("explode", "e1", reason="x")])])
    [answer] = node.invoke([scenarios.AIMessage("", tool_calls=[call("add", "e2", a="one", b=2)])])
    assert answer.status == "error" and "Error invoking tool 'add'" in answer.content


def test_tool_node_input_shapes() -> None:
    shapes = both(scenarios.tool_node_inputs)
    assert [m["content"] for m in shapes["list"]] == ["2", "6"]


def test_tool_node_refuses_input_without_messages() -> None:
    for value in ({"messages": []}, {"other": 1}):
        with pytest.raises(ValueError, match="No message found in input"):
            RELAYGRAPH.ToolNode([scenarios.add]).invoke(value)
    with pytest.raises(ValueError, match="No AIMessage found in input"):
        RELAYGRAPH.ToolNode([scenarios.add]).invoke({"messages": [scenarios.HumanMessage("x")]})


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_injected_state_store_and_call_id(version: str) -> None:
    [seen] = both(scenarios.injected, version)
    contents = [m[1] for m in messages_of(seen) if m[0] == "ToolMessage"]
    assert contents[:5] == [
        "2 messages",
        "you are ada",
        "saved sky is blue",
        "my id is j4",
        "state: 2 messages, call j5",
    ]
    assert contents[5:] == ["saved grass is green", "grass is green, sky is blue"]
    assert seen["store"] == ["grass is green", "sky is blue"]


def test_a_forged_injected_argument_is_replaced() -> None:
    [answer] = both(scenarios.forged_injection)["messages"]
    assert answer["content"] == "you are ada"


def test_injected_store_without_a_store_is_a_clear_error() -> None:
    node = RELAYGRAPH.ToolNode(scenarios.injected_tools(RELAYGRAPH), handle_tool_errors=False)
    with pytest.raises(ValueError, match="compile your graph with a store"):
        node.invoke({"messages": [scenarios.AIMessage("", tool_calls=[call("recall", "s1")])]})


def test_tool_returning_command() -> None:
    [seen] = both(scenarios.command_tool)
    assert seen["values"]["user"] == "grace"
    assert seen["values"]["log"] == ["welcome grace"]
    assert [m for m in messages_of(seen) if m[0] == "ToolMessage"] == [
        ("ToolMessage", "logged in as grace"),
        ("ToolMessage", "2"),
    ]


def test_a_command_without_its_tool_message_is_refused() -> None:
    from langchain_core.tools import tool

    @tool
    def bad() -> Any:
        """Returns a Command that answers nothing."""
        return RELAYGRAPH.Command(update={"user": "x"})

    node = RELAYGRAPH.ToolNode([bad], handle_tool_errors=False)
    with pytest.raises(ValueError, match="Expected to have a matching ToolMessage"):
        node.invoke({"messages": [scenarios.AIMessage("", tool_calls=[call("bad", "b1")])]})


@pytest.mark.parametrize("prompt", sorted(scenarios.PROMPTS))
def test_react_agent_with_checkpointer_store_and_prompt(prompt: str) -> None:
    first, second, inputs = both(scenarios.react_agent, prompt)
    assert messages_of(first)[-1] == ("AIMessage", "Both are 42.")
    assert first["values"]["messages"][1]["name"] == "calculator"
    assert first["values"]["messages"][1]["usage_metadata"]["total_tokens"] == 15
    assert messages_of(second)[-1] == ("AIMessage", "Two.")
    assert len(inputs["model_inputs"]) == 4
    if prompt != "none":
        assert inputs["model_inputs"][0][0]["__type__"] == "SystemMessage"


def test_react_agent_v1() -> None:
    first, second, _inputs = both(scenarios.react_agent, "string", "v1")
    assert [m for m in messages_of(first) if m[0] == "ToolMessage"] == [
        ("ToolMessage", "42"),
        ("ToolMessage", "42"),
    ]
    assert messages_of(second)[-1] == ("AIMessage", "Two.")


@pytest.mark.parametrize("with_prompt", [False, True])
def test_structured_response(with_prompt: bool) -> None:
    [seen] = both(scenarios.structured, with_prompt)
    assert seen["values"]["structured_response"] == {
        "__type__": "Weather",
        "city": "Paris",
        "temperature": 21,
    }


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_interrupt_before_tools_then_resume(version: str) -> None:
    paused, done = both(scenarios.interrupted, version)
    assert "tools" in paused["next"]
    assert messages_of(paused)[-1][0] == "AIMessage"
    assert done["next"] == () and messages_of(done)[-1] == ("AIMessage", "Both are 42.")


@pytest.mark.parametrize("limit", [3, 4, 5, 6])
def test_recursion_limit_asks_for_more_steps(limit: int) -> None:
    seen = both(scenarios.recursion_limited, limit)
    assert seen == "GraphRecursionError" or messages_of(seen)[-1] == (
        "AIMessage",
        "Sorry, need more steps to process this request.",
    )


def test_return_direct_ends_after_the_tool() -> None:
    [seen] = both(scenarios.return_direct)
    assert messages_of(seen)[-1] == ("ToolMessage", "42")


def test_async_agent_with_an_async_only_tool() -> None:
    expected = asyncio.run(scenarios.async_agent(LANGGRAPH))
    got = asyncio.run(scenarios.async_agent(RELAYGRAPH))
    assert got == expected
    assert [m["content"] for m in got["messages"]][2:4] == ["HI", "3"]


def test_sync_agent_runs_an_async_only_tool() -> None:
    node = RELAYGRAPH.ToolNode([scenarios.slow_echo])
    [answer] = node.invoke(
        [scenarios.AIMessage("", tool_calls=[call("slow_echo", "q1", text="a")])]
    )
    assert answer.content == "A"


def test_tool_calls_without_answers_are_refused() -> None:
    graph = RELAYGRAPH.create_react_agent(scenarios.agent_script(), [scenarios.add])
    history = [
        scenarios.HumanMessage("x"),
        scenarios.AIMessage("", tool_calls=[call("add", "u1", a=1, b=1)]),
    ]
    with pytest.raises(ValueError, match="do not have a corresponding ToolMessage"):
        graph.invoke({"messages": history})


@pytest.mark.parametrize("which", ["command", "v1", "v2"])
def test_updates_stream(which: str) -> None:
    chunks = both(scenarios.updates_stream, which)
    assert {"agent", "tools"} <= {node for chunk in chunks for node in chunk}, chunks
    if which == "command":
        [tools] = [c["tools"] for c in chunks if "tools" in c]
        assert [list(part) for part in tools] == [["user"], ["messages"], ["messages"]]


def test_a_run_id_in_the_config_is_not_every_model_call_s_id() -> None:
    """A run's id names the run: the model's replies still get ids of their own (with one
    shared id, each reply would replace the previous one in the message list)."""

    def run(lib: Any) -> Any:
        graph = lib.create_react_agent(
            scenarios.agent_script(),
            [scenarios.add, scenarios.multiply],
            checkpointer=lib.MemorySaver(),
        )
        cfg = {**scenarios.config(), "run_id": "7f9a3c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"}
        result = graph.invoke({"messages": [scenarios.HumanMessage("hi")]}, cfg, **lib.run_kwargs)
        return scenarios.normalized(result)

    got = run(RELAYGRAPH)
    assert got == run(LANGGRAPH)
    assert [m["__type__"] for m in got["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
    ]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "which",
    ["loop", "v1", "v2"],
)
def test_messages_stream(which: str, use_async: bool) -> None:
    from runtime.test_stream_messages import _normal  # the stream tests' id numbering

    def run(lib: Any) -> list[Any]:
        raw = scenarios.messages_stream(lib, which, use_async)
        if which == "v2":
            # v2's tool tasks run at once: their messages come in either order, so each
            # chunk's random ids are numbered on their own (not by order of appearance)
            return sorted(repr(_normal([chunk])[0]) for chunk in raw)
        return _normal(raw)

    got = run(RELAYGRAPH)
    assert got == run(LANGGRAPH)
    tokens = [
        c for c in scenarios.messages_stream(RELAYGRAPH, which) if c[1]["langgraph_node"] == "agent"
    ]
    assert len(tokens) > 3, "the model's replies come word by word"


def test_a_bound_model_called_with_the_node_config_streams_each_token_once() -> None:
    model = scenarios.ScriptedChatModel(responses=["one two"]).bind_tools([scenarios.add])

    def agent(state: Any, config: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"], config)]}

    graph = (
        RELAYGRAPH.StateGraph(RELAYGRAPH.MessagesState)
        .add_node("agent", agent)
        .add_edge(RELAYGRAPH.START, "agent")
        .compile()
    )
    chunks = graph.stream({"messages": [scenarios.HumanMessage("x")]}, stream_mode="messages")
    tokens = [c.content for c, meta in chunks if meta["langgraph_node"] == "agent"]
    assert tokens == ["one", " ", "two"]


def test_pydantic_state() -> None:
    [seen] = both(scenarios.pydantic_state)
    assert [m[1] for m in messages_of(seen) if m[0] == "ToolMessage"] == [
        "you are ada",
        "2 messages",
    ]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_tool_asking_a_human_then_resumed(version: str) -> None:
    paused, done = both(scenarios.approval, version)
    assert paused["returned_interrupts"] == [{"question": "transfer 5?"}]
    assert paused["interrupts"] == [{"question": "transfer 5?"}]
    assert [m[1] for m in messages_of(done) if m[0] == "ToolMessage"] == ["transferred 5", "2"]
    assert done["next"] == ()


def test_an_agent_without_tools() -> None:
    [seen] = both(scenarios.no_tools)
    assert messages_of(seen)[-1] == ("AIMessage", "Hello!")
    assert seen["values"]["structured_response"]["city"] == "Oslo"


def test_langchain_core_fake_models_in_a_hand_written_loop() -> None:
    [seen] = both(scenarios.fake_models_loop)
    assert messages_of(seen)[1:] == [
        ("AIMessage", ""),
        ("ToolMessage", "3"),
        ("ToolMessage", "Error: RuntimeError('exploded: fake')\n Please fix your mistakes."),
        ("AIMessage", "One plus two is three."),
    ]
    assert [m.get("tool_call_id") for m in seen["values"]["messages"][2:4]] == ["g1", "g2"]


def test_langchain_core_fake_models_messages_stream() -> None:
    from runtime.test_stream_messages import _normal

    expected = _normal(scenarios.fake_models_loop(LANGGRAPH, stream=True))
    got = _normal(scenarios.fake_models_loop(RELAYGRAPH, stream=True))
    assert got == expected
    tokens = [chunk[1]["content"] for chunk in got if chunk[0] == "AIMessageChunk"]
    assert "".join(tokens) == "One plus two is three." and len(tokens) > 3


def test_langchain_core_fake_model_in_create_react_agent() -> None:
    [seen] = both(scenarios.fake_models_react)
    assert messages_of(seen)[-2:] == [("ToolMessage", "saved fakes work"), ("AIMessage", "Saved.")]
    assert seen["store"] == [{"fact": "fakes work"}]
