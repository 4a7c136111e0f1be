"""``ToolNode``: run the tool calls of the last ``AIMessage`` and answer each with a message.

Behaves as LangGraph's ``langgraph.prebuilt.ToolNode``: the calls of one message run in
parallel (a thread pool, or ``asyncio.gather`` in :meth:`ToolNode.ainvoke`), results come
back as ``ToolMessage``s in call order, a tool's ``Command`` is passed on for the graph to
apply, and errors become ``ToolMessage(status="error")`` as ``handle_tool_errors`` says.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import inspect
import json
import types
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Union

from langchain_core.messages import AIMessage, RemoveMessage, ToolMessage, convert_to_messages
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools import tool as create_tool
from pydantic import ValidationError

from relaygraph.prebuilt.injection import InjectedArgs, ToolRuntime, injected_args_of
from relaygraph.runtime.constants import END
from relaygraph.runtime.context import get_stream_writer, read_task_state
from relaygraph.runtime.errors import GraphInterrupt
from relaygraph.runtime.nodes import ParentCommand
from relaygraph.runtime.types import Command, Send

__all__ = [
    "INVALID_TOOL_NAME_ERROR_TEMPLATE",
    "TOOL_CALL_ERROR_TEMPLATE",
    "ToolInvocationError",
    "ToolNode",
    "msg_content_output",
    "tools_condition",
]

INVALID_TOOL_NAME_ERROR_TEMPLATE = (
    "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
)
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
TOOL_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
    " {error}\n"
    " Please fix the error and try again."
)
# Content block types a tool may return as they are (anything else is JSON-encoded).
_BLOCK_TYPES = ("text", "image_url", "image", "json", "search_result", "custom_tool_call_output")
# Exceptions that pause or redirect the graph: never turned into error messages.
_PASS_THROUGH: tuple[type[BaseException], ...] = (GraphInterrupt, ParentCommand)

InputType = Literal["list", "dict", "tool_calls"]
ErrorHandling = bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]


class ToolInvocationError(ToolException):
    """The model called a tool with arguments its schema refuses."""

    def __init__(
        self,
        tool_name: str,
        source: ValidationError,
        tool_kwargs: dict[str, Any],
        injected: set[str],
    ) -> None:
        lines = []
        for error in source.errors():
            loc = error.get("loc") or ()
            if loc and loc[0] in injected:
                continue  # the model cannot fix what the graph injects
            lines.append(f"{'.'.join(map(str, loc))}: {error.get('msg', 'Unknown error')}")
        self.message = TOOL_INVOCATION_ERROR_TEMPLATE.format(
            tool_name=tool_name, tool_kwargs=tool_kwargs, error="\n".join(lines)
        )
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.source = source
        super().__init__(self.message)


def _default_handle_tool_errors(e: Exception) -> str:
    """LangGraph's default: answer bad arguments with a message; re-raise tool failures."""
    if isinstance(e, ToolInvocationError):
        return e.message
    raise e


def msg_content_output(output: Any) -> str | list[dict]:
    """A tool's return value as ``ToolMessage`` content: text, content blocks, or JSON."""
    if isinstance(output, str) or (
        isinstance(output, list)
        and all(isinstance(x, dict) and x.get("type") in _BLOCK_TYPES for x in output)
    ):
        return output
    try:
        return json.dumps(output, ensure_ascii=False)
    except Exception:
        return str(output)


def _handled_types(flag: ErrorHandling) -> tuple[type[Exception], ...]:
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, type):
        return _handler_types(flag)
    return (Exception,)


def _handler_types(handler: Callable[..., str]) -> tuple[type[Exception], ...]:
    """The exception types a handler's first parameter is annotated with (else Exception)."""
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    hints = typing.get_type_hints(handler)
    if first.name not in hints:
        return (Exception,)
    hint = hints[first.name]
    if typing.get_origin(hint) in (Union, types.UnionType):
        found = typing.get_args(hint)
    else:
        found = (hint,)
    if not all(isinstance(t, type) and issubclass(t, Exception) for t in found):
        raise ValueError(
            "a handle_tool_errors function must annotate its error with Exception types, "
            f"got {hint!r}"
        )
    return tuple(found)


def _error_text(e: Exception, flag: ErrorHandling) -> str:
    if isinstance(flag, (bool, tuple)) or (isinstance(flag, type) and issubclass(flag, Exception)):
        return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(e))
    if isinstance(flag, str):
        return flag
    if callable(flag):
        return flag(e)
    raise ValueError(
        f"handle_tool_errors must be a bool, str, callable or exception types, got {flag!r}"
    )


class ToolNode:
    """A graph node that runs the tool calls of the latest ``AIMessage``.

    Its input is the graph state (``{messages_key: [...]}`` or an object with that
    attribute), a list of messages, or a list of tool calls (what a ``Send`` carries).
    It returns ``{messages_key: [ToolMessage, ...]}`` (a list for a list input), or a list
    of ``Command``s and updates when tools returned ``Command``s.

    ``handle_tool_errors``: the default answers calls with bad arguments with an error
    ``ToolMessage`` and re-raises a tool's own failure; ``True`` answers every error with
    ``"Error: <repr>\\n Please fix your mistakes."``; a string, a function of the error, or
    exception types choose the text or which errors are answered; ``False`` re-raises all.

    >>> from langchain_core.messages import AIMessage
    >>> from langchain_core.tools import tool
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     '''Add two numbers.'''
    ...     return a + b
    >>> call = {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}
    >>> out = ToolNode([add]).invoke({"messages": [AIMessage("", tool_calls=[call])]})
    >>> out["messages"][0].content
    '3'
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        name: str = "tools",
        tags: list[str] | None = None,
        handle_tool_errors: ErrorHandling = _default_handle_tool_errors,
        messages_key: str = "messages",
    ) -> None:
        self.name = name
        self.tags = tags
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self._tools_by_name: dict[str, BaseTool] = {}
        self._injected: dict[str, InjectedArgs] = {}
        for item in tools:
            if isinstance(item, BaseTool):
                built = item
            elif callable(item):
                built = create_tool(item)
            else:
                raise TypeError(f"ToolNode takes tools or functions, got {item!r}")
            self._tools_by_name[built.name] = built
            self._injected[built.name] = injected_args_of(built)

    @property
    def tools_by_name(self) -> dict[str, BaseTool]:
        """The node's tools by name."""
        return self._tools_by_name

    def __repr__(self) -> str:
        return f"ToolNode(tools={list(self._tools_by_name)}, name={self.name!r})"

    # -- running ---------------------------------------------------------------------

    def __call__(
        self, input: Any, config: dict[str, Any] | None = None, *, store: Any = None
    ) -> Any:
        """Run as a graph node (the executor passes ``config`` and ``store``)."""
        return self.invoke(input, config, store=store)

    async def relaygraph_acall(
        self, input: Any, config: dict[str, Any] | None = None, *, store: Any = None
    ) -> Any:
        """Run as a node of an async run (``ainvoke`` / ``astream``): see :meth:`ainvoke`."""
        return await self.ainvoke(input, config, store=store)

    def invoke(self, input: Any, config: dict[str, Any] | None = None, *, store: Any = None) -> Any:
        """Run every tool call of ``input`` in parallel threads; results in call order."""
        calls, input_type = self._parse_input(input)
        config = dict(config or {})
        state = self._state_of(input)
        runtimes = [self._runtime(state, call, config, store) for call in calls]
        if len(calls) <= 1:
            outputs = [
                self._run_one(c, input_type, r) for c, r in zip(calls, runtimes, strict=True)
            ]
        else:
            # Each call runs in a copy of this context, so interrupt(), get_store() and
            # the stream writer work inside tools as in the node itself.
            contexts = [contextvars.copy_context() for _ in calls]
            with ThreadPoolExecutor(max_workers=min(len(calls), 16)) as pool:
                futures = [
                    pool.submit(ctx.run, self._run_one, call, input_type, runtime)
                    for ctx, call, runtime in zip(contexts, calls, runtimes, strict=True)
                ]
                outputs = [f.result() for f in futures]
        return self._combine(outputs, input_type)

    async def ainvoke(
        self, input: Any, config: dict[str, Any] | None = None, *, store: Any = None
    ) -> Any:
        """Async :meth:`invoke`: the calls run together under ``asyncio.gather``."""
        calls, input_type = self._parse_input(input)
        config = dict(config or {})
        state = self._state_of(input)
        outputs = await asyncio.gather(
            *(
                self._arun_one(call, input_type, self._runtime(state, call, config, store))
                for call in calls
            )
        )
        return self._combine(list(outputs), input_type)

    def _runtime(self, state: Any, call: dict, config: dict, store: Any) -> ToolRuntime:
        return ToolRuntime(
            state=state,
            context=None,
            config=config,
            stream_writer=get_stream_writer(),
            tool_call_id=call.get("id"),
            store=store,
            tools=list(self._tools_by_name.values()),
        )

    def _run_one(self, call: dict, input_type: InputType, runtime: ToolRuntime) -> Any:
        tool = self._tools_by_name.get(call["name"])
        if tool is None:
            return self._unknown_tool(call)
        try:
            args = {**self._inject(call, runtime), "type": "tool_call"}
            try:
                if _is_async_only(tool):
                    response = asyncio.run(tool.ainvoke(args, runtime.config))
                else:
                    response = tool.invoke(args, runtime.config)
            except ValidationError as exc:
                raise self._invocation_error(call, exc) from exc
            return self._normalize(response, call, input_type)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            return self._error_message(exc, call)

    async def _arun_one(self, call: dict, input_type: InputType, runtime: ToolRuntime) -> Any:
        tool = self._tools_by_name.get(call["name"])
        if tool is None:
            return self._unknown_tool(call)
        try:
            args = {**self._inject(call, runtime), "type": "tool_call"}
            try:
                response = await tool.ainvoke(args, runtime.config)
            except ValidationError as exc:
                raise self._invocation_error(call, exc) from exc
            return self._normalize(response, call, input_type)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            return self._error_message(exc, call)

    def _invocation_error(self, call: dict, exc: ValidationError) -> ToolInvocationError:
        injected = self._injected.get(call["name"])
        names = set(injected.all_injected) if injected else set()
        if injected:
            names.update(injected.state)
            names.update(n for n in (injected.store, injected.runtime) if n)
        return ToolInvocationError(call["name"], exc, call["args"], names)

    def _error_message(self, exc: Exception, call: dict) -> ToolMessage:
        flag = self.handle_tool_errors
        if not flag or not isinstance(exc, _handled_types(flag)):
            raise exc
        return ToolMessage(
            content=_error_text(exc, flag),
            name=call["name"],
            tool_call_id=call["id"],
            status="error",
        )

    def _unknown_tool(self, call: dict) -> ToolMessage:
        content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
            requested_tool=call["name"], available_tools=", ".join(self._tools_by_name)
        )
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")

    # -- input -----------------------------------------------------------------------

    def _parse_input(self, input: Any) -> tuple[list[dict], InputType]:
        if isinstance(input, list):
            if input and isinstance(input[-1], dict) and input[-1].get("type") == "tool_call":
                return list(input), "tool_calls"
            messages, input_type = input, "list"
        elif isinstance(input, dict) and input.get("__type") == "tool_call_with_context":
            return [input["tool_call"]], "tool_calls"
        elif isinstance(input, dict) and input.get(self.messages_key):
            messages, input_type = input[self.messages_key], "dict"
        elif not isinstance(input, dict) and getattr(input, self.messages_key, None):
            messages, input_type = getattr(input, self.messages_key), "dict"
        else:
            raise ValueError("No message found in input")
        latest = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if latest is None:
            raise ValueError("No AIMessage found in input")
        return list(latest.tool_calls), input_type

    def _state_of(self, input: Any) -> Any:
        """The state injected tools see: the input, or the graph's for a tool-call list."""
        if isinstance(input, dict) and input.get("__type") == "tool_call_with_context":
            return input["state"]
        if (
            isinstance(input, list)
            and input
            and isinstance(input[-1], dict)
            and (input[-1].get("type") == "tool_call")
        ):
            state = read_task_state()
            return {} if state is None else state
        return input

    def _inject(self, call: dict, runtime: ToolRuntime) -> dict:
        """``call`` with the injected arguments filled (and any the model forged dropped)."""
        injected = self._injected.get(call["name"])
        if not injected:
            return call
        values: dict[str, Any] = {}
        if injected.state:
            values.update(self._state_values(call, injected, runtime.state))
        if injected.store:
            if runtime.store is None:
                raise ValueError(
                    "Cannot inject store into tools with InjectedStore annotations - "
                    "please compile your graph with a store."
                )
            values[injected.store] = runtime.store
        if injected.runtime:
            values[injected.runtime] = runtime
        args = {k: v for k, v in call["args"].items() if k not in injected.all_injected}
        return {**call, "args": {**args, **values}}

    def _state_values(self, call: dict, injected: InjectedArgs, state: Any) -> dict[str, Any]:
        if isinstance(state, list):
            wanted = list(injected.state.values())
            if (len(wanted) == 1 and wanted[0] == self.messages_key) or wanted[0] is None:
                state = {self.messages_key: state}
            else:
                keys = ", ".join(k for k in wanted if k)
                raise ValueError(
                    f"Invalid input to ToolNode. Tool {call['name']} requires graph state dict "
                    f"as input." + (f" State should contain fields {keys}." if keys else "")
                )
        values: dict[str, Any] = {}
        for arg, key in injected.state.items():
            if not key:
                values[arg] = state
            elif isinstance(state, dict):
                if key in state:
                    values[arg] = state[key]
                elif arg not in injected.optional_state:
                    raise KeyError(key)
            elif hasattr(state, key):
                values[arg] = getattr(state, key)
            elif arg not in injected.optional_state:
                raise AttributeError(key)
        return values

    # -- output ----------------------------------------------------------------------

    def _normalize(self, response: Any, call: dict, input_type: InputType) -> Any:
        if isinstance(response, Command):
            return self._checked_command(response, call, input_type)
        if isinstance(response, ToolMessage):
            response.content = msg_content_output(response.content)
            return response
        if isinstance(response, list) and all(
            isinstance(r, (Command, ToolMessage)) for r in response
        ):
            return self._checked_list(response, call, input_type)
        if isinstance(response, list):
            raise TypeError(
                f"Tool {call['name']} returned a list with invalid element types: "
                "expected all Command or ToolMessage"
            )
        raise TypeError(f"Tool {call['name']} returned unexpected type: {type(response)}")

    def _checked_list(self, response: list, call: dict, input_type: InputType) -> list:
        answers = 0
        for item in response:
            if isinstance(item, ToolMessage):
                answers += item.tool_call_id == call["id"]
            elif isinstance(item, Command) and isinstance(item.update, dict):
                answers += sum(
                    isinstance(m, ToolMessage) and m.tool_call_id == call["id"]
                    for m in item.update.get(self.messages_key, [])
                )
        if answers != 1:
            raise ValueError(
                f"Tool {call['name']} returned a list with {answers} messages bound to "
                f"tool_call_id {call['id']!r}; expected exactly one terminating ToolMessage."
            )
        out = []
        for item in response:
            if isinstance(item, Command):
                out.append(self._checked_command(item, call, input_type, require_answer=False))
            else:
                item.content = msg_content_output(item.content)
                out.append(item)
        return out

    def _checked_command(
        self, command: Command, call: dict, input_type: InputType, *, require_answer: bool = True
    ) -> Command:
        """A tool's ``Command``, checked to answer its call with a ``ToolMessage``."""
        if isinstance(command.update, dict):
            if input_type not in ("dict", "tool_calls"):
                raise ValueError(
                    "Tools can provide a dict in Command.update only when using dict with "
                    f"'{self.messages_key}' key as ToolNode input, got: {command.update} for "
                    f"tool '{call['name']}'"
                )
            command = copy.deepcopy(command)
            messages = command.update.get(self.messages_key, [])
        elif isinstance(command.update, list):
            if input_type != "list":
                raise ValueError(
                    "Tools can provide a list of messages in Command.update only when using "
                    f"list of messages as ToolNode input, got: {command.update} for tool "
                    f"'{call['name']}'"
                )
            command = copy.deepcopy(command)
            messages = command.update
        else:
            return command
        messages = convert_to_messages(messages)
        if (
            len(messages) == 1
            and isinstance(messages[0], RemoveMessage)
            and (messages[0].id == "__remove_all__")
        ):
            return command
        answered = False
        for message in messages:
            if isinstance(message, ToolMessage) and message.tool_call_id == call["id"]:
                message.name = call["name"]
                answered = True
        if require_answer and command.graph is None and not answered:
            raise ValueError(
                f"Expected to have a matching ToolMessage in Command.update for tool "
                f"'{call['name']}', got: {messages}. Every tool call (LLM requesting to call a "
                "tool) in the message history MUST have a corresponding ToolMessage."
            )
        return command

    def _combine(self, outputs: list[Any], input_type: InputType) -> Any:
        flat: list[Any] = []
        for output in outputs:
            flat.extend(output if isinstance(output, list) else [output])
        if not any(isinstance(o, Command) for o in flat):
            return flat if input_type == "list" else {self.messages_key: flat}
        combined: list[Any] = []
        parent_sends: list[Send] = []
        for output in flat:
            if isinstance(output, Command):
                goto = output.goto
                if (
                    output.graph == Command.PARENT
                    and isinstance(goto, list)
                    and all(isinstance(s, Send) for s in goto)
                ):
                    parent_sends.extend(goto)  # one parent Command with every Send
                else:
                    combined.append(output)
            else:
                combined.append([output] if input_type == "list" else {self.messages_key: [output]})
        if parent_sends:
            combined.append(Command(graph=Command.PARENT, goto=parent_sends))
        return combined


def _is_async_only(tool: BaseTool) -> bool:
    """A tool written as a coroutine only (its sync ``invoke`` would refuse)."""
    return getattr(tool, "func", True) is None and getattr(tool, "coroutine", None) is not None


def tools_condition(state: Any, messages_key: str = "messages") -> Literal["tools", "__end__"]:
    """Route to ``"tools"`` when the last message has tool calls, else to ``END``.

    ``state`` is the graph state (a dict or an object with ``messages_key``) or a list of
    messages.

    >>> from langchain_core.messages import AIMessage
    >>> tools_condition({"messages": [AIMessage("done")]})
    '__end__'
    """
    if isinstance(state, list):
        messages = state
    elif isinstance(state, dict):
        messages = state.get(messages_key) or []
    else:
        messages = getattr(state, messages_key, None) or []
    if not messages:
        raise ValueError(f"No messages found in input state to tool_edge: {state}")
    last = messages[-1]
    if getattr(last, "tool_calls", None):
        return "tools"
    return END
