"""``create_react_agent``: a chat model calling tools in a loop, as a relaygraph graph.

The graph LangGraph's ``langgraph.prebuilt.create_react_agent`` builds: an ``agent`` node
(the prompt, then the model with the tools bound), a ``tools`` node (:class:`ToolNode`)
and, with ``response_format``, a ``generate_structured_response`` node after the loop.
With ``version="v2"`` (the default) each tool call is its own ``tools`` task (a ``Send``
carrying just that call; the tool reads the graph state when it needs it, so a step
stores the call, never a copy of the conversation).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NotRequired, get_args, get_type_hints

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence
from langchain_core.tools import BaseTool
from pydantic import BaseModel
from typing_extensions import TypedDict

from relaygraph.prebuilt.tool_node import ToolNode
from relaygraph.runtime.constants import END
from relaygraph.runtime.context import get_remaining_steps
from relaygraph.runtime.graph import StateGraph
from relaygraph.runtime.messages import add_messages
from relaygraph.runtime.types import Send

__all__ = ["AgentState", "AgentStateWithStructuredResponse", "create_react_agent"]

RemainingSteps = Annotated[int, "remaining_steps"]
"""Marks the ``remaining_steps`` key: filled from the run, never stored (as LangGraph's)."""

NEED_MORE_STEPS = "Sorry, need more steps to process this request."


class AgentState(TypedDict):
    """The default state of :func:`create_react_agent`."""

    messages: Annotated[Sequence[AnyMessage], add_messages]
    remaining_steps: NotRequired[RemainingSteps]


class AgentStateWithStructuredResponse(AgentState):
    """:class:`AgentState` with the ``structured_response`` of ``response_format``."""

    structured_response: Any


Prompt = SystemMessage | str | Callable[[Any], Any] | Runnable


def _state_value(state: Any, key: str, default: Any = None) -> Any:
    return state.get(key, default) if isinstance(state, dict) else getattr(state, key, default)


def _prompt_function(prompt: Prompt | None) -> Callable[[Any, dict], Any]:
    """``prompt`` as a function of (state, config) returning the model's input."""
    if prompt is None:
        return lambda state, config: _state_value(state, "messages")
    if isinstance(prompt, str):
        system = SystemMessage(content=prompt)
        return lambda state, config: [system, *_state_value(state, "messages")]
    if isinstance(prompt, SystemMessage):
        return lambda state, config: [prompt, *_state_value(state, "messages")]
    if isinstance(prompt, Runnable):
        return lambda state, config: prompt.invoke(state, config)
    if inspect.iscoroutinefunction(prompt):
        raise TypeError("an async prompt function needs the async model call: use a sync one")
    if callable(prompt):
        takes_config = "config" in _parameters(prompt)
        if takes_config:
            return lambda state, config: prompt(state, config=config)
        return lambda state, config: prompt(state)
    raise ValueError(f"Got unexpected type for `prompt`: {type(prompt)}")


def _parameters(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return dict(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return {}


def _first_model_step(model: Any) -> Any:
    if isinstance(model, RunnableSequence):
        return next(
            (s for s in model.steps if isinstance(s, (RunnableBinding, BaseChatModel))), model
        )
    return model


def _should_bind_tools(model: Any, tools: Sequence[BaseTool], builtin: int) -> bool:
    """False when ``model`` already has these tools bound (checked to be the same ones)."""
    model = _first_model_step(model)
    if not isinstance(model, RunnableBinding) or "tools" not in model.kwargs:
        return True
    bound = model.kwargs["tools"]
    if len(tools) != len(bound) - builtin:
        raise ValueError(
            "Number of tools in the model.bind_tools() and tools passed to create_react_agent "
            f"must match Got {len(tools)} tools, expected {len(bound) - builtin}"
        )
    names = set()
    for item in bound:
        if item.get("type") == "function":
            names.add(item["function"]["name"])
        elif item.get("name"):
            names.add(item["name"])
    missing = {t.name for t in tools} - names
    if missing:
        raise ValueError(f"Missing tools '{missing}' in the model.bind_tools()")
    return False


def _chat_model(model: Any) -> BaseChatModel:
    model = _first_model_step(model)
    if isinstance(model, RunnableBinding):
        model = model.bound
    if not isinstance(model, BaseChatModel):
        raise TypeError(
            "Expected `model` to be a ChatModel or RunnableBinding (e.g. model.bind_tools(...)), "
            f"got {type(model)}"
        )
    return model


def _check_history(messages: Sequence[BaseMessage]) -> None:
    """Every tool call in the history must have its ``ToolMessage`` (providers insist)."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    missing = [
        call
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
        if call["id"] not in answered
    ]
    if missing:
        raise ValueError(
            "Found AIMessages with tool_calls that do not have a corresponding ToolMessage. "
            f"Here are the first few of those tool calls: {missing[:3]}.\n\n"
            "Every tool call (LLM requesting to call a tool) in the message history MUST have "
            "a corresponding ToolMessage (result of a tool invocation to return to the LLM) - "
            "this is required by most LLM providers.\n"
            "For troubleshooting, visit: https://docs.langchain.com/oss/python/langgraph/"
            "errors/INVALID_CHAT_HISTORY"
        )


def _make_storable(schema: Any, seen: set[type] | None = None) -> None:
    """Register a pydantic ``response_format`` (and the models it nests) with the serializer.

    The structured response is stored in the thread's state, and relaygraph stores only
    registered classes; the agent knows this one will be stored, so it says so.
    """
    from relaygraph.persistence.serde import register_type, registered_name

    seen = set() if seen is None else seen
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)) or schema in seen:
        for arg in get_args(schema):
            _make_storable(arg, seen)
        return
    seen.add(schema)
    if registered_name(schema) is None:
        register_type(schema)
    for field in schema.model_fields.values():
        _make_storable(field.annotation, seen)


def _init_model(model: Any) -> Any:
    if not isinstance(model, str):
        return model
    try:
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError(
            "Please install langchain (`pip install langchain`) to use '<provider>:<model>' "
            "string syntax for `model` parameter."
        ) from None
    return init_chat_model(model)


def create_react_agent(
    model: str | BaseChatModel | Runnable,
    tools: Sequence[BaseTool | Callable[..., Any] | dict[str, Any]] | ToolNode,
    *,
    prompt: Prompt | None = None,
    response_format: Any = None,
    state_schema: Any = None,
    context_schema: Any = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    debug: bool = False,
    version: Literal["v1", "v2"] = "v2",
    name: str | None = None,
    pre_model_hook: Any = None,
    post_model_hook: Any = None,
) -> Any:
    """Build a tool-calling agent graph: model -> tools -> model ... until no tool calls.

    * ``model``: a LangChain chat model (its ``bind_tools`` is called with ``tools``), a
      model with the same tools already bound, or ``"provider:model"`` (needs langchain);
    * ``tools``: tools, functions, provider tool dicts, or a :class:`ToolNode`;
    * ``prompt``: a system prompt string or ``SystemMessage`` put before the messages, a
      function of the state returning the model's input, or a Runnable;
    * ``response_format``: a schema (pydantic model, TypedDict, JSON schema) or
      ``(system_prompt, schema)``: after the loop, ``model.with_structured_output(schema)``
      answers once more, into the ``structured_response`` key;
    * ``state_schema``: a state with at least ``messages`` (and ``structured_response``);
    * ``checkpointer``, ``store``, ``interrupt_before``, ``interrupt_after``, ``name``:
      as for ``StateGraph.compile``;
    * ``version``: ``"v2"`` runs each tool call as its own task, ``"v1"`` one ``tools``
      task for all calls of a message.

    Returns the compiled graph. The model's reply carries ``name`` when one is given.
    """
    if version not in ("v1", "v2"):
        raise ValueError(f"Invalid version {version}. Supported versions are 'v1' and 'v2'.")
    if pre_model_hook is not None or post_model_hook is not None:
        raise NotImplementedError(
            "relaygraph's create_react_agent has no pre_model_hook / post_model_hook yet: "
            "build the graph with StateGraph, ToolNode and tools_condition instead"
        )
    if callable(model) and not isinstance(model, (str, Runnable)):
        raise NotImplementedError(
            "relaygraph's create_react_agent takes a chat model, not a function choosing one"
        )
    if state_schema is not None:
        required = {"messages"} | (
            {"structured_response"} if response_format is not None else set()
        )
        missing = required - set(get_type_hints(state_schema))
        if missing:
            raise ValueError(f"Missing required key(s) {missing} in state_schema")
    else:
        state_schema = (
            AgentStateWithStructuredResponse if response_format is not None else AgentState
        )

    if response_format is not None:
        schema = response_format[1] if isinstance(response_format, tuple) else response_format
        _make_storable(schema)

    builtin: list[dict] = []
    if isinstance(tools, ToolNode):
        tool_node = tools
    else:
        builtin = [t for t in tools if isinstance(t, dict)]
        tool_node = ToolNode([t for t in tools if not isinstance(t, dict)])
    tool_list = list(tool_node.tools_by_name.values())
    model = _init_model(model)
    if tool_list + builtin and _should_bind_tools(model, tool_list, len(builtin)):
        model = model.bind_tools([*tool_list, *builtin])
    model_input = _prompt_function(prompt)
    return_direct = {t.name for t in tool_list if t.return_direct}

    def more_steps_needed(response: BaseMessage) -> bool:
        remaining = get_remaining_steps()
        if remaining is None or not isinstance(response, AIMessage):
            return False
        calls = response.tool_calls
        all_direct = all(c["name"] in return_direct for c in calls)
        return (remaining < 1 and all_direct) or (remaining < 2 and bool(calls))

    def agent(state: Any, config: dict) -> dict[str, Any]:
        messages = _state_value(state, "messages")
        if messages is None:
            raise ValueError(
                f"Expected input to call_model to have 'messages' key, but got {state}"
            )
        _check_history(messages)
        response = model.invoke(model_input(state, config), config)
        response.name = name
        if more_steps_needed(response):
            return {"messages": [AIMessage(id=response.id, content=NEED_MORE_STEPS)]}
        return {"messages": [response]}

    def generate_structured_response(state: Any, config: dict) -> dict[str, Any]:
        messages = list(_state_value(state, "messages"))
        schema = response_format
        if isinstance(response_format, tuple):
            system_prompt, schema = response_format
            messages = [SystemMessage(content=system_prompt), *messages]
        structured = _chat_model(model).with_structured_output(schema)
        return {"structured_response": structured.invoke(messages, config)}

    workflow = StateGraph(state_schema, context_schema)
    workflow.add_node("agent", agent)
    workflow.set_entry_point("agent")
    after_loop = "generate_structured_response" if response_format is not None else END
    if response_format is not None:
        workflow.add_node("generate_structured_response", generate_structured_response)

    def compile_graph() -> Any:
        return workflow.compile(
            checkpointer=checkpointer,
            store=store,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            debug=debug,
            name=name,
        )

    if not tool_list:
        if response_format is not None:
            workflow.add_edge("agent", "generate_structured_response")
        return compile_graph()

    def should_continue(state: Any) -> Any:
        last = _state_value(state, "messages")[-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return after_loop
        if version == "v1":
            return "tools"
        return [Send("tools", [call]) for call in last.tool_calls]

    def route_tool_responses(state: Any) -> str:
        message: Any = None
        for message in reversed(_state_value(state, "messages")):
            if not isinstance(message, ToolMessage):
                break
            if message.name in return_direct:
                return END
        if isinstance(message, AIMessage) and any(
            call["name"] in return_direct for call in message.tool_calls
        ):
            return END
        return "agent"

    workflow.add_node("tools", tool_node)
    workflow.add_conditional_edges("agent", should_continue, ["tools", after_loop])
    if return_direct:
        workflow.add_conditional_edges("tools", route_tool_responses, ["agent", END])
    else:
        workflow.add_edge("tools", "agent")
    return compile_graph()


create_tool_calling_executor = create_react_agent
