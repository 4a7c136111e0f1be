"""Chat messages in state: langchain_core's own classes, their conversion, ``add_messages``.

The message types a graph's state holds ARE langchain_core's (``relaygraph.HumanMessage``
is ``langchain_core.messages.HumanMessage``), so chat models, tools and LangChain's message
utilities take a state's messages as they are, and a model's output (``AIMessage`` with
tool calls, usage and metadata, or a streamed ``AIMessageChunk``) goes into state unchanged.

``add_messages`` is the reducer of :class:`MessagesState`'s ``messages`` key; when a step
only appends, it returns ``left + new`` with ``left``'s very objects in front, which is how
the runtime notices an append and stores only the new messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Annotated, Any, TypeAlias

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    message_chunk_to_message,
)
from langchain_core.messages import convert_to_messages as _lc_convert
from typing_extensions import TypedDict

from relaygraph.persistence.blobs import share_instances_of
from relaygraph.persistence.serde import register_type
from relaygraph.runtime.message_codec import register_fast_decoders

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "ChatMessage",
    "FunctionMessage",
    "HumanMessage",
    "MessageLike",
    "MessagesState",
    "RemoveMessage",
    "SystemMessage",
    "ToolMessage",
    "add_messages",
    "convert_to_messages",
]

REMOVE_ALL_MESSAGES = "__remove_all__"
"""``RemoveMessage(id=REMOVE_ALL_MESSAGES)`` drops every message before it (LangGraph's value)."""

MessageLike: TypeAlias = BaseMessage | str | tuple[str, Any] | list[Any] | dict[str, Any]
"""What :func:`convert_to_messages` accepts for one message."""

# Stored names. The first five keep the names relaygraph's own classes had, so threads
# written before the switch to langchain_core's classes read back as these.
_STORED_NAMES: dict[type, str] = {
    BaseMessage: "relaygraph.BaseMessage",
    HumanMessage: "relaygraph.HumanMessage",
    AIMessage: "relaygraph.AIMessage",
    SystemMessage: "relaygraph.SystemMessage",
    ToolMessage: "relaygraph.ToolMessage",
    RemoveMessage: "relaygraph.RemoveMessage",
    ChatMessage: "relaygraph.ChatMessage",
    FunctionMessage: "relaygraph.FunctionMessage",
    AIMessageChunk: "relaygraph.AIMessageChunk",
    HumanMessageChunk: "relaygraph.HumanMessageChunk",
    SystemMessageChunk: "relaygraph.SystemMessageChunk",
    ToolMessageChunk: "relaygraph.ToolMessageChunk",
    ChatMessageChunk: "relaygraph.ChatMessageChunk",
    FunctionMessageChunk: "relaygraph.FunctionMessageChunk",
}
for _cls, _name in _STORED_NAMES.items():
    register_type(_cls, name=_name)
del _cls, _name
register_fast_decoders(list(_STORED_NAMES))
# Messages in a thread's history are facts: savers share decoded messages between reads, so
# a long conversation's step costs the same as a short one's. Nodes must not change a
# message in place (return one with the same id to replace it); graph.get_state and the
# history decode afresh, so such a change never shows in what they return, but it stays in
# this process's shared objects (docs/deviations.md, 5: a known gap).
share_instances_of(BaseMessage)


# --- conversion -------------------------------------------------------------------------

# Roles langchain_core's conversion accepts for (role, content) pairs and dicts.
_ROLES = frozenset(
    {"human", "user", "ai", "assistant", "system", "developer", "tool", "function", "remove"}
)


def convert_to_messages(items: MessageLike | Sequence[MessageLike]) -> list[BaseMessage]:
    """Turn message-like values into langchain_core messages, keeping the ones that are.

    Accepted, each: a message; a ``(role, content)`` pair with role ``user``, ``human``,
    ``ai``, ``assistant``, ``system``, ``developer``, ``tool`` or ``function``; a dict with
    ``role`` (or ``type``) and ``content`` plus message fields (OpenAI-style ``tool_calls``
    included), converted as langchain_core converts it; a plain string (a human message).
    ``items`` may be one of these or a list of them.

    Raises ValueError for an unknown role or a malformed message (naming it) and TypeError
    for anything else.
    """
    if isinstance(items, (BaseMessage, str, dict)):
        return [_to_message(items)]
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"cannot convert {type(items).__name__} to a message: {items!r}")
    if isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str):
        return [_to_message(items)]  # one (role, content) pair
    return [_to_message(item) for item in items]


def _to_message(item: Any) -> BaseMessage:
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, str):
        return HumanMessage(content=item)
    if isinstance(item, dict):
        role = item.get("role", item.get("type"))
        if "role" not in item and "type" not in item:
            raise ValueError(f"a message dict needs a 'role' or 'type' key, got {item!r}")
        if item.get("lc") != 1:  # langchain_core's serialized envelope names its class
            _check_role(role)
            if role == "remove":
                if not isinstance(item.get("id"), str):
                    raise ValueError(f"a 'remove' message dict needs an 'id', got {item!r}")
                return RemoveMessage(id=item["id"])
            if "content" not in item:
                raise ValueError(f"a message dict needs a 'content' key, got {item!r}")
            if role == "tool" and "tool_call_id" not in item:
                raise ValueError(f"a 'tool' message dict needs a 'tool_call_id', got {item!r}")
    elif isinstance(item, (tuple, list)):
        if len(item) != 2 or not isinstance(item[0], str):
            raise ValueError(f"a message as a sequence must be (role, content), got {item!r}")
        _check_role(item[0])
        if item[0] == "tool":
            raise ValueError(
                "a ('tool', content) pair has no tool_call_id: use ToolMessage(...) or a dict "
                "with 'tool_call_id'"
            )
    else:
        raise TypeError(f"cannot convert {type(item).__name__} to a message: {item!r}")
    try:
        (message,) = _lc_convert([item])
    except (ValueError, NotImplementedError, TypeError, KeyError) as exc:
        raise ValueError(f"cannot convert {item!r} to a message: {exc}") from exc
    return message


def _check_role(role: Any) -> None:
    if not isinstance(role, str) or role not in _ROLES:
        raise ValueError(
            f"unknown message role {role!r}; expected one of {', '.join(sorted(_ROLES))}"
        )


# --- the reducer ------------------------------------------------------------------------

Messages: TypeAlias = MessageLike | Sequence[MessageLike]
_get_id: Callable[[BaseMessage], str | None] = attrgetter("id")


def add_messages(left: Messages, right: Messages) -> list[BaseMessage]:
    """Merge ``right`` into ``left``: append new messages, replace by id, remove.

    Both sides may be one message-like value or a list of them (see
    :func:`convert_to_messages`); streamed chunks become whole messages
    (``AIMessageChunk`` -> ``AIMessage``), as in LangGraph. A message without an id gets a
    uuid4 string (on a copy: the caller's object is not changed). A ``right`` message whose
    id is already present replaces that message in place; ``RemoveMessage(id=...)``
    deletes it, and an id that is not present is a ValueError naming it.
    ``RemoveMessage(id=REMOVE_ALL_MESSAGES)`` drops everything before it (what follows it
    in ``right`` is merged onto nothing).

    ``left`` is never mutated. When ``right`` only appends, the result is ``left + new``:
    its first ``len(left)`` items are ``left``'s very objects, which tells the runtime the
    step was an append.

    >>> history = add_messages([], [("user", "hi"), ("ai", "hello")])
    >>> longer = add_messages(history, "how are you?")
    >>> [m.content for m in longer], longer[0] is history[0]
    (['hi', 'hello', 'how are you?'], True)
    >>> [m.content for m in add_messages(longer, RemoveMessage(id=longer[1].id))]
    ['hi', 'how are you?']
    """
    return _fold(_normalized_left(left), right)


def _add_to_channel(left: list[BaseMessage], right: Messages) -> list[BaseMessage]:
    """:func:`add_messages` for a channel's own value, which an earlier fold normalized.

    The runtime folds a message channel only through this reducer (from its empty start,
    or from a value it stored), so re-checking every old message's type and id on every
    step would make a step's cost grow with the conversation.
    """
    return _fold(left, right)


def _fold(base: list[BaseMessage], right: Messages) -> list[BaseMessage]:
    incoming, merge = _normalized_right(right)
    cut = _last_remove_all(incoming) if merge else None
    if cut is not None:
        return _merge([], incoming[cut + 1 :])
    if not merge:
        return base + incoming  # a new list: left's objects, then the new ones
    return _merge(base, incoming)


def _normalized_left(left: Messages) -> list[BaseMessage]:
    """``left`` itself when it is a list of whole messages that all have ids, else a new list."""
    items = left if isinstance(left, list) else [left]
    kinds = set(map(type, items))
    if (
        all(issubclass(t, BaseMessage) and not issubclass(t, BaseMessageChunk) for t in kinds)
        and None not in map(_get_id, items)
    ):
        return items
    return [_with_id(_whole(m)) for m in convert_to_messages(items)]


def _normalized_right(right: Messages) -> tuple[list[BaseMessage], bool]:
    """The incoming messages with ids, and whether merging (not just appending) is needed.

    Only messages that came with an id (or removals) can touch existing ones: ids this
    function assigns are fresh, so a batch of id-less messages is a plain append.
    """
    items = right if isinstance(right, list) else [right]
    merge = False
    out: list[BaseMessage] = []
    for item in items:
        message = _whole(_to_message(item))
        if message.id is None:
            message = _with_id(message)
        else:
            merge = True
        out.append(message)
    return out, merge


def _whole(message: BaseMessage) -> BaseMessage:
    """A streamed chunk as the whole message it stands for (other messages as they are)."""
    if isinstance(message, BaseMessageChunk):
        return message_chunk_to_message(message)
    return message


def _with_id(message: BaseMessage) -> BaseMessage:
    if message.id is not None:
        return message
    return message.model_copy(update={"id": str(uuid.uuid4())})


def _last_remove_all(messages: list[BaseMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, RemoveMessage) and message.id == REMOVE_ALL_MESSAGES:
            return index
    return None


def _merge(base: list[BaseMessage], incoming: list[BaseMessage]) -> list[BaseMessage]:
    merged = list(base)
    position = {m.id: i for i, m in enumerate(merged)}
    removed: set[str] = set()
    for message in incoming:
        index = position.get(message.id)
        if isinstance(message, RemoveMessage):
            if index is None:
                raise ValueError(
                    f"cannot remove message with id {message.id!r}: no message has that id"
                )
            removed.add(message.id)
        elif index is not None:
            removed.discard(message.id)  # removed then re-added in one update: keep it
            merged[index] = message
        else:
            position[message.id] = len(merged)
            merged.append(message)
    if removed:
        merged = [m for m in merged if m.id not in removed]
    return merged


class MessagesState(TypedDict):
    """A state with one key, ``messages``, merged by :func:`add_messages`."""

    messages: Annotated[list[AnyMessage], add_messages]


add_messages.channel_reducer = _add_to_channel  # type: ignore[attr-defined]
