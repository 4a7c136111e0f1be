"""Agent scenarios written once against a library namespace (see ``libs.py``).

Each scenario builds its graph with ``lib``'s names and the same scripted chat model, runs
it, and returns what it observed; the tests compare LangGraph's observations with
relaygraph's. Tools that need ``InjectedState`` / ``InjectedStore`` are built per library.
"""

from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from pydantic import BaseModel
from typing_extensions import TypedDict

from relaygraph.testing import ScriptedChatModel

from .libs import normalized, observe


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    """A tool call as a model would make it."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"exploded: {reason}")


@tool
async def slow_echo(text: str) -> str:
    """An async-only tool."""
    return text.upper()


def config(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


# -- a hand-written model/tool loop -------------------------------------------------------


def hand_loop_graph(
    lib: Any, model: Any, tools: list[Any], saver: Any = None, **compile: Any
) -> Any:
    bound = model.bind_tools(tools)

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", lib.ToolNode(tools))
    builder.add_edge(lib.START, "agent")
    builder.add_conditional_edges("agent", lib.tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=saver, **compile)


def loop_script() -> ScriptedChatModel:
    return ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[call("add", "c1", a=2, b=3)]),
            AIMessage("Let me multiply too", tool_calls=[call("multiply", "c2", a=5, b=4)]),
            AIMessage("2 + 3 = 5, and 5 * 4 = 20."),
            AIMessage("You're welcome!"),
        ]
    )


def hand_loop(lib: Any, saver: Any = None) -> list[dict[str, Any]]:
    graph = hand_loop_graph(lib, loop_script(), [add, multiply], saver or lib.MemorySaver())
    cfg = config()
    first = graph.invoke(
        {"messages": [HumanMessage("What is 2 + 3, times 4?")]}, cfg, **lib.run_kwargs
    )
    seen = [observe(graph, cfg, first)]
    second = graph.invoke({"messages": [HumanMessage("Thanks")]}, cfg, **lib.run_kwargs)
    seen.append(observe(graph, cfg, second))
    return seen


# -- ToolNode: parallel calls, errors ---------------------------------------------------


def parallel_calls(lib: Any, handle_tool_errors: Any = True) -> Any:
    node = lib.ToolNode([add, multiply, explode], handle_tool_errors=handle_tool_errors)
    message = AIMessage(
        "",
        tool_calls=[
            call("add", "p1", a=1, b=2),
            call("explode", "p2", reason="on purpose"),
            call("multiply", "p3", a=3, b=4),
            call("add", "p4", a="not a number", b=1),
            call("missing_tool", "p5"),
        ],
    )
    return normalized(node.invoke({"messages": [HumanMessage("go"), message]}, lib.node_config()))


def error_outcome(lib: Any, handle_tool_errors: Any, calls: list[dict[str, Any]]) -> Any:
    """The node's answer, or the type and text of the error it raised."""
    node = lib.ToolNode([add, explode], handle_tool_errors=handle_tool_errors)
    try:
        return normalized(node.invoke([AIMessage("", tool_calls=calls)], lib.node_config()))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


def tool_node_inputs(lib: Any) -> Any:
    node = lib.ToolNode([add, multiply])
    calls = [call("add", "i1", a=1, b=1), call("multiply", "i2", a=2, b=3)]
    return {
        "list": normalized(
            node.invoke([HumanMessage("x"), AIMessage("", tool_calls=calls)], lib.node_config())
        ),
        "tool_calls": normalized(node.invoke(calls, lib.node_config())),
        "dict": normalized(
            node.invoke({"messages": [AIMessage("", tool_calls=calls)]}, lib.node_config())
        ),
    }


# -- injected arguments -----------------------------------------------------------------


def injected_tools(lib: Any) -> list[Any]:
    @tool
    def count_messages(messages: Annotated[list, lib.InjectedState("messages")]) -> str:
        """How many messages the conversation has."""
        return f"{len(messages)} messages"

    @tool
    def whoami(state: Annotated[dict, lib.InjectedState]) -> str:
        """The user's name, from the graph state."""
        return f"you are {state['user']}"

    @tool
    def remember(fact: str, store: Annotated[Any, lib.InjectedStore()]) -> str:
        """Save a fact in the store."""
        store.put(("facts",), fact, {"fact": fact})
        return f"saved {fact}"

    @tool
    def recall(store: Annotated[Any, lib.InjectedStore()]) -> str:
        """Every saved fact."""
        return ", ".join(sorted(item.key for item in store.search(("facts",))))

    @tool
    def my_call_id(tool_call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
        """Answer with the id of this tool call."""
        return ToolMessage(f"my id is {tool_call_id}", tool_call_id=tool_call_id)

    @tool
    def peek(topic: str, runtime: lib.ToolRuntime) -> str:
        """Read the state and call id through the tool runtime."""
        return f"{topic}: {len(runtime.state['messages'])} messages, call {runtime.tool_call_id}"

    return [count_messages, whoami, remember, recall, my_call_id, peek]


def injected_script() -> list[AIMessage]:
    # recall comes a step after both remembers: tool calls of one step run concurrently
    return [
        AIMessage(
            "",
            tool_calls=[
                call("count_messages", "j1"),
                call("whoami", "j2"),
                call("remember", "j3", fact="sky is blue"),
                call("my_call_id", "j4"),
                call("peek", "j5", topic="state"),
                call("remember", "j6", fact="grass is green"),
            ],
        ),
        AIMessage("", tool_calls=[call("recall", "j7")]),
        AIMessage("done"),
    ]


def injected(lib: Any, version: str = "v2") -> list[dict[str, Any]]:
    class State(lib.AgentState):
        user: str

    model = ScriptedChatModel(responses=injected_script())
    store = lib.InMemoryStore()
    graph = lib.create_react_agent(
        model,
        injected_tools(lib),
        state_schema=State,
        checkpointer=lib.MemorySaver(),
        store=store,
        version=version,
    )
    cfg = config()
    result = graph.invoke(
        {"messages": [HumanMessage("hello")], "user": "ada"}, cfg, **lib.run_kwargs
    )
    seen = observe(graph, cfg, result)
    seen["store"] = sorted(item.key for item in store.search(("facts",)))
    return [seen]


def forged_injection(lib: Any) -> Any:
    """A model that sends a value for an injected argument does not get it through."""
    node = lib.ToolNode(injected_tools(lib))
    forged = call("whoami", "f1", state={"user": "mallory"})
    return normalized(
        node.invoke(
            {"messages": [AIMessage("", tool_calls=[forged])], "user": "ada"}, lib.node_config()
        )
    )


# -- a tool returning Command -----------------------------------------------------------


def command_tool_graph(lib: Any) -> Any:
    class State(TypedDict):
        messages: Annotated[list, lib.add_messages]
        user: str
        log: list[str]

    @tool
    def login(user: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Log the user in and go to the welcome node."""
        return lib.Command(
            update={
                "user": user,
                "messages": [ToolMessage(f"logged in as {user}", tool_call_id=tool_call_id)],
            },
            goto="welcome",
        )

    def welcome(state: State) -> dict[str, Any]:
        return {"log": [f"welcome {state['user']}"]}

    model = ScriptedChatModel(
        responses=[
            AIMessage(
                "", tool_calls=[call("login", "k1", user="grace"), call("add", "k2", a=1, b=1)]
            ),
            AIMessage("all set"),
        ]
    )
    bound = model.bind_tools([login, add])

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = lib.StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", lib.ToolNode([login, add]))
    builder.add_node("welcome", welcome)
    builder.add_edge(lib.START, "agent")
    builder.add_conditional_edges("agent", lib.tools_condition)
    builder.add_edge("tools", "agent")
    builder.add_edge("welcome", lib.END)
    return builder.compile(checkpointer=lib.MemorySaver())


def command_tool(lib: Any) -> list[dict[str, Any]]:
    graph = command_tool_graph(lib)
    cfg = config()
    result = graph.invoke(
        {"messages": [HumanMessage("log me in")], "log": []}, cfg, **lib.run_kwargs
    )
    return [observe(graph, cfg, result)]


# -- create_react_agent -------------------------------------------------------------------


def agent_script() -> ScriptedChatModel:
    return ScriptedChatModel(
        responses=[
            AIMessage(
                "Checking both.",
                tool_calls=[call("add", "r1", a=40, b=2), call("multiply", "r2", a=6, b=7)],
                usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                response_metadata={"model_name": "scripted"},
            ),
            AIMessage("Both are 42."),
            AIMessage("", tool_calls=[call("add", "r3", a=1, b=1)]),
            AIMessage("Two."),
        ]
    )


def _prompt_function(state: Any) -> list[Any]:
    return [SystemMessage("You count."), *state["messages"]]


PROMPTS: dict[str, Any] = {
    "none": None,
    "string": "You are a careful calculator.",
    "system_message": SystemMessage("You are terse.", id="sys"),
    "function": _prompt_function,
}


def react_agent(
    lib: Any, prompt: str = "none", version: str = "v2", saver: Any = None
) -> list[dict[str, Any]]:
    model = agent_script()
    seen_inputs: list[Any] = []
    original = model.reply_for

    def spy(messages: Any) -> Any:
        seen_inputs.append(normalized(list(messages)))
        return original(messages)

    object.__setattr__(model, "reply_for", spy)
    graph = lib.create_react_agent(
        model,
        [add, multiply],
        prompt=PROMPTS[prompt],
        checkpointer=saver or lib.MemorySaver(),
        store=lib.InMemoryStore(),
        version=version,
        name="calculator",
    )
    cfg = config()
    seen = []
    for text in ("What are 40 + 2 and 6 * 7?", "And 1 + 1?"):
        result = graph.invoke({"messages": [HumanMessage(text)]}, cfg, **lib.run_kwargs)
        seen.append(observe(graph, cfg, result))
    seen.append({"model_inputs": seen_inputs})
    return seen


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    temperature: int


def structured(lib: Any, with_prompt: bool = False) -> list[dict[str, Any]]:
    model = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[call("add", "w1", a=20, b=1)]),
            AIMessage("It is 21 degrees in Paris."),
            AIMessage("", tool_calls=[call("Weather", "w2", city="Paris", temperature=21)]),
        ]
    )
    response_format: Any = ("Answer as JSON.", Weather) if with_prompt else Weather
    graph = lib.create_react_agent(
        model, [add], response_format=response_format, checkpointer=lib.MemorySaver()
    )
    cfg = config()
    result = graph.invoke({"messages": [HumanMessage("Weather in Paris?")]}, cfg, **lib.run_kwargs)
    seen = observe(graph, cfg, result)
    assert isinstance(result["structured_response"], Weather)
    return [seen]


def interrupted(lib: Any, version: str = "v2") -> list[dict[str, Any]]:
    graph = lib.create_react_agent(
        agent_script(),
        [add, multiply],
        checkpointer=lib.MemorySaver(),
        interrupt_before=["tools"],
        version=version,
    )
    cfg = config()
    seen = []
    result = graph.invoke({"messages": [HumanMessage("40 + 2 and 6 * 7?")]}, cfg, **lib.run_kwargs)
    seen.append(observe(graph, cfg, result))
    result = graph.invoke(None, cfg, **lib.run_kwargs)
    seen.append(observe(graph, cfg, result))
    return seen


def recursion_limited(lib: Any, limit: int) -> Any:
    model = ScriptedChatModel(
        responses=[AIMessage("", tool_calls=[call("add", f"z{i}", a=i, b=i)]) for i in range(20)]
    )
    graph = lib.create_react_agent(model, [add], checkpointer=lib.MemorySaver())
    cfg = {**config(), "recursion_limit": limit}
    try:
        result = graph.invoke({"messages": [HumanMessage("loop")]}, cfg, **lib.run_kwargs)
    except lib.GraphRecursionError:
        return "GraphRecursionError"
    return observe(graph, cfg, result)


def return_direct(lib: Any) -> list[dict[str, Any]]:
    @tool(return_direct=True)
    def final_answer(answer: str) -> str:
        """Give the final answer."""
        return answer

    model = ScriptedChatModel(
        responses=[AIMessage("", tool_calls=[call("final_answer", "d1", answer="42")])]
    )
    graph = lib.create_react_agent(model, [final_answer, add], checkpointer=lib.MemorySaver())
    cfg = config()
    result = graph.invoke({"messages": [HumanMessage("answer?")]}, cfg, **lib.run_kwargs)
    return [observe(graph, cfg, result)]


async def async_agent(lib: Any) -> Any:
    model = ScriptedChatModel(
        responses=[
            AIMessage(
                "", tool_calls=[call("slow_echo", "a1", text="hi"), call("add", "a2", a=1, b=2)]
            ),
            AIMessage("done"),
        ]
    )
    graph = lib.create_react_agent(model, [slow_echo, add], checkpointer=lib.MemorySaver())
    cfg = config()
    result = await graph.ainvoke({"messages": [HumanMessage("echo")]}, cfg, **lib.run_kwargs)
    return normalized(result)


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def updates_stream(lib: Any, which: str) -> list[Any]:
    """The ``updates`` stream (message ids left out: LangGraph shows the ids its reducer
    gave the messages, relaygraph the messages as the node returned them)."""
    if which == "command":
        graph = command_tool_graph(lib)
        inputs: dict[str, Any] = {"messages": [HumanMessage("log me in")], "log": []}
    else:
        graph = lib.create_react_agent(
            agent_script(), [add, multiply], checkpointer=lib.MemorySaver(), version=which
        )
        inputs = {"messages": [HumanMessage("40 + 2 and 6 * 7?")]}
    chunks = graph.stream(inputs, config(), stream_mode="updates", **lib.run_kwargs)
    updates = [_without_ids(normalized(chunk)) for chunk in chunks]
    if which == "v2":
        # v2 sends each tool call to a task of its own: those tasks run at once and stream
        # their updates as they finish, in either order (on LangGraph as on relaygraph)
        return sorted(updates, key=repr)
    return updates


def messages_stream(lib: Any, which: str, use_async: bool = False) -> list[Any]:
    """The raw ``stream_mode="messages"`` chunks of an agent's first turn."""
    import asyncio

    if which == "loop":
        graph = hand_loop_graph(lib, loop_script(), [add, multiply], lib.MemorySaver())
    else:
        graph = lib.create_react_agent(
            agent_script(),
            [add, multiply],
            prompt="You are a calculator.",
            checkpointer=lib.MemorySaver(),
            version=which,
            name="calc",
        )
    inputs = {"messages": [HumanMessage("40 + 2 and 6 * 7?", id="h1")]}
    cfg = {**config(), "metadata": {"app": "x"}}
    kwargs = {"stream_mode": "messages", **lib.run_kwargs}
    if use_async:

        async def collect() -> list[Any]:
            return [c async for c in graph.astream(inputs, cfg, **kwargs)]

        return asyncio.run(collect())
    return list(graph.stream(inputs, cfg, **kwargs))


def pydantic_state(lib: Any) -> list[dict[str, Any]]:
    """A pydantic state: ToolNode reads messages and injected keys as attributes."""
    from langchain_core.messages import AnyMessage
    from pydantic import BaseModel as Model

    class State(Model):
        messages: Annotated[list[AnyMessage], lib.add_messages]
        user: str = "nobody"

    model = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[call("whoami", "y1"), call("count_messages", "y2")]),
            AIMessage("ok"),
        ]
    )
    tools = [t for t in injected_tools(lib) if t.name in ("whoami", "count_messages")]
    bound = model.bind_tools(tools)

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state.messages)]}

    @tool
    def whoami(state: Annotated[Any, lib.InjectedState]) -> str:
        """The user's name, from the graph state."""
        return f"you are {state.user}"

    tools = [whoami, tools[0] if tools[0].name == "count_messages" else tools[1]]
    builder = lib.StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", lib.ToolNode(tools))
    builder.add_edge(lib.START, "agent")
    builder.add_conditional_edges("agent", lib.tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=lib.MemorySaver())
    cfg = config()
    result = graph.invoke(
        {"messages": [HumanMessage("who?")], "user": "ada"}, cfg, **lib.run_kwargs
    )
    return [observe(graph, cfg, result)]


def approval(lib: Any, version: str) -> list[dict[str, Any]]:
    """A tool asks a human (``interrupt``) before it acts; the run resumes with the answer."""

    @tool
    def transfer(amount: int) -> str:
        """Transfer money, after a human approves."""
        answer = lib.interrupt({"question": f"transfer {amount}?"})
        return f"transferred {amount}" if answer == "yes" else "cancelled"

    model = ScriptedChatModel(
        responses=[
            AIMessage(
                "", tool_calls=[call("transfer", "m1", amount=5), call("add", "m2", a=1, b=1)]
            ),
            AIMessage("Done."),
        ]
    )
    graph = lib.create_react_agent(
        model, [transfer, add], checkpointer=lib.MemorySaver(), version=version
    )
    cfg = config()
    seen = []
    result = graph.invoke({"messages": [HumanMessage("pay 5")]}, cfg, **lib.run_kwargs)
    seen.append(observe(graph, cfg, {k: v for k, v in result.items() if k != "__interrupt__"}))
    seen[-1]["returned_interrupts"] = [i.value for i in result.get("__interrupt__", [])]
    result = graph.invoke(lib.Command(resume="yes"), cfg, **lib.run_kwargs)
    seen.append(observe(graph, cfg, result))
    return seen


def no_tools(lib: Any) -> list[dict[str, Any]]:
    model = ScriptedChatModel(
        responses=[
            AIMessage("Hello!"),
            AIMessage("", tool_calls=[call("Weather", "n1", city="Oslo", temperature=-3)]),
        ]
    )
    graph = lib.create_react_agent(
        model, [], response_format=Weather, checkpointer=lib.MemorySaver()
    )
    cfg = config()
    result = graph.invoke({"messages": [HumanMessage("hi")]}, cfg, **lib.run_kwargs)
    return [observe(graph, cfg, result)]


# -- langchain_core's own fake chat models -------------------------------------------------


class ToolCallingFakeModel(FakeMessagesListChatModel):
    """langchain_core's ``FakeMessagesListChatModel``, accepting ``bind_tools`` (the fake
    refuses it): its scripted tool calls then drive an agent as a provider's would."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def fake_models_loop(lib: Any, stream: bool = False) -> Any:
    """A hand-written loop on langchain_core's fakes: ``FakeMessagesListChatModel`` asks for
    two parallel tool calls (one fails), ``GenericFakeChatModel`` streams the answer."""
    tool_model = ToolCallingFakeModel(
        responses=[
            AIMessage(
                "", tool_calls=[call("add", "g1", a=1, b=2), call("explode", "g2", reason="fake")]
            )
        ]
    )
    answer_model = GenericFakeChatModel(messages=iter([AIMessage("One plus two is three.")]))
    bound = tool_model.bind_tools([add, explode])

    def agent(state: Any) -> dict[str, Any]:
        if isinstance(state["messages"][-1], ToolMessage):
            return {"messages": [answer_model.invoke(state["messages"])]}
        return {"messages": [bound.invoke(state["messages"])]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", lib.ToolNode([add, explode], handle_tool_errors=True))
    builder.add_edge(lib.START, "agent")
    builder.add_conditional_edges("agent", lib.tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=lib.MemorySaver())
    cfg = config()
    inputs = {"messages": [HumanMessage("1 + 2?", id="h1")]}
    if stream:
        return list(graph.stream(inputs, cfg, stream_mode="messages", **lib.run_kwargs))
    result = graph.invoke(inputs, cfg, **lib.run_kwargs)
    return [observe(graph, cfg, result)]


def fake_models_react(lib: Any) -> list[dict[str, Any]]:
    """``create_react_agent`` on ``FakeMessagesListChatModel`` with a prompt, a
    checkpointer and a store (a tool writes to it)."""

    @tool
    def save(fact: str, store: Annotated[Any, lib.InjectedStore()]) -> str:
        """Save a fact in the store."""
        store.put(("facts",), fact, {"fact": fact})
        return f"saved {fact}"

    model = ToolCallingFakeModel(
        responses=[
            AIMessage("", tool_calls=[call("save", "s1", fact="fakes work")]),
            AIMessage("Saved."),
        ]
    )
    store = lib.InMemoryStore()
    graph = lib.create_react_agent(
        model, [save], prompt="You save facts.", checkpointer=lib.MemorySaver(), store=store
    )
    cfg = config()
    result = graph.invoke({"messages": [HumanMessage("save it")]}, cfg, **lib.run_kwargs)
    seen = observe(graph, cfg, result)
    seen["store"] = [item.value for item in store.search(("facts",))]
    return [seen]
