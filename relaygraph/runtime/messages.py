"""Chat messages, their conversion from other formats, and the ``add_messages`` reducer.

The message classes are pydantic models with the fields (and the positional ``content``)
that LangChain's messages have, so code written for LangGraph keeps working after an
import change. ``add_messages`` is the reducer of :class:`MessagesState`'s ``messages``
key; when a step only appends, it returns ``left + new`` with ``left``'s very objects in
front, which is how the runtime notices an append and stores only the new messages.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

from relaygraph.persistence.serde import register_type

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "AIMessage",
    "AnyMessage",
    "BaseMessage",
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

Content: TypeAlias = str | list[str | dict[str, Any]]

_UNSET: Any = object()
_TITLE_WIDTH = 80


class BaseMessage(BaseModel):
    """A chat message: content plus an id, an optional author name and provider metadata.

    ``content`` may be given positionally: ``HumanMessage("hi")`` equals
    ``HumanMessage(content="hi")``. Equality compares the class and every field.
    """

    # Frozen: a message in a thread's history is a fact. Savers share decoded messages
    # between reads (so a long conversation's step costs the same as a short one's); change
    # one with ``message.model_copy(update={...})``.
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: Content
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    response_metadata: dict[str, Any] = Field(default_factory=dict)
    type: str
    name: str | None = None
    id: str | None = None

    def __init__(self, content: Content = _UNSET, /, **data: Any) -> None:
        if content is not _UNSET:
            if "content" in data:
                raise TypeError("content given both positionally and by keyword")
            data["content"] = content
        super().__init__(**data)

    def __repr_args__(self) -> Any:
        # Like LangChain's repr: the type is the class name, and unset optionals add noise.
        for key, value in super().__repr_args__():
            if key != "type" and not (value is None and key in _OPTIONAL_FIELDS):
                yield key, value

    @property
    def text(self) -> str:
        """The text of the content: a string as is, else its strings and text blocks joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(_block_text(block) or "" for block in self.content)

    def pretty_repr(self) -> str:
        """A human-readable rendering: a title rule, the author's name, then the content."""
        title = f" {self.type.title()} Message "
        left = (_TITLE_WIDTH - len(title)) // 2
        lines = ["=" * left + title + "=" * (_TITLE_WIDTH - len(title) - left)]
        if self.name is not None:
            lines.append(f"Name: {self.name}")
        lines += ["", self._pretty_body()]
        return "\n".join(lines)

    def pretty_print(self) -> None:
        """Print :meth:`pretty_repr`."""
        print(self.pretty_repr())

    def _pretty_body(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = []
        for block in self.content:
            text = _block_text(block)
            parts.append(text if text is not None else f"[{block.get('type', 'unknown')} block]")
        return "\n".join(parts)


_OPTIONAL_FIELDS = frozenset({"name", "id", "usage_metadata", "artifact"})


def _block_text(block: str | dict[str, Any]) -> str | None:
    """The text of one content block, or None for a non-text block (an image, a file...)."""
    if isinstance(block, str):
        return block
    text = block.get("text")
    return text if block.get("type") == "text" and isinstance(text, str) else None


class HumanMessage(BaseMessage):
    """A message from the user."""

    type: Literal["human"] = "human"


class AIMessage(BaseMessage):
    """A message from the model, possibly asking for tool calls.

    ``tool_calls`` are dicts ``{"name", "args", "id", "type": "tool_call"}``; OpenAI-style
    calls (``{"id", "function": {"name", "arguments"}}``) are converted to that shape.
    """

    type: Literal["ai"] = "ai"
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    invalid_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    usage_metadata: dict[str, Any] | None = None

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _normalize_tool_calls(cls, calls: Any) -> Any:
        if not isinstance(calls, list):
            return calls
        return [_tool_call(call) if isinstance(call, dict) else call for call in calls]

    def _pretty_body(self) -> str:
        body = super()._pretty_body()
        if not self.tool_calls:
            return body
        lines = [body, "Tool Calls:"] if body else ["Tool Calls:"]
        for call in self.tool_calls:
            lines.append(f"  {call.get('name', 'tool')} ({call.get('id')})")
            lines.append(f" Call ID: {call.get('id')}")
            args = call.get("args")
            if isinstance(args, dict) and args:
                lines.append("  Args:")
                lines += [f"    {key}: {value}" for key, value in args.items()]
            elif args:
                lines.append(f"  Args: {args}")
        return "\n".join(lines)


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call in LangChain's shape (the input dict itself when it already is)."""
    function = call.get("function")
    if isinstance(function, dict):
        args = function.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"tool call {call.get('id')!r}: arguments are not JSON") from exc
        return {
            "name": function.get("name"),
            "args": args,
            "id": call.get("id"),
            "type": "tool_call",
        }
    if "type" in call:
        return call
    return {**call, "type": "tool_call"}


class SystemMessage(BaseMessage):
    """Instructions to the model."""

    type: Literal["system"] = "system"


class ToolMessage(BaseMessage):
    """The result of a tool call, tied to the call by ``tool_call_id``."""

    type: Literal["tool"] = "tool"
    tool_call_id: str
    status: Literal["success", "error"] = "success"
    artifact: Any = None

    @field_validator("tool_call_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Providers hand out ints and UUIDs as call ids; LangChain stores them as strings.
        return str(value) if isinstance(value, (int, uuid.UUID)) else value


class RemoveMessage(BaseMessage):
    """Asks ``add_messages`` to delete the message with this ``id`` (or all of them).

    ``RemoveMessage("m1")`` equals ``RemoveMessage(id="m1")``. It has no content.
    """

    type: Literal["remove"] = "remove"
    content: Content = ""
    id: str  # type: ignore[assignment]  # required here, optional elsewhere

    def __init__(self, id: str = _UNSET, /, **data: Any) -> None:
        if id is not _UNSET:
            if "id" in data:
                raise TypeError("id given both positionally and by keyword")
            data["id"] = id
        super().__init__(**data)

    @field_validator("content")
    @classmethod
    def _no_content(cls, value: Content) -> Content:
        if value:
            raise ValueError("RemoveMessage has no content; give only the id to remove")
        return value


AnyMessage: TypeAlias = Annotated[
    HumanMessage | AIMessage | SystemMessage | ToolMessage | RemoveMessage,
    Field(discriminator="type"),
]
"""Any concrete message, told apart by its ``type`` (for pydantic states and validation)."""

MessageLike: TypeAlias = BaseMessage | str | tuple[str, Content] | list[Any] | dict[str, Any]
"""What :func:`convert_to_messages` accepts for one message (or a LangChain message)."""

for _cls in (BaseMessage, HumanMessage, AIMessage, SystemMessage, ToolMessage, RemoveMessage):
    register_type(_cls, name=f"relaygraph.{_cls.__name__}")
del _cls


# --- conversion -------------------------------------------------------------------------

_ROLES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "remove": RemoveMessage,
}
# LangChain's streaming chunks carry their class name as ``type``.
_CHUNK_TYPES = {
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
}


def convert_to_messages(items: MessageLike | Sequence[MessageLike]) -> list[BaseMessage]:
    """Turn message-like values into messages, keeping the ones that already are.

    Accepted, each: a relaygraph message; a ``(role, content)`` pair with role ``user``,
    ``human``, ``ai``, ``assistant``, ``system`` or ``tool``; a dict with ``role`` (or
    ``type``) and ``content`` plus any message field (other keys go to
    ``additional_kwargs``); a plain string (a human message); a LangChain message, when
    ``langchain_core`` is in use. ``items`` may be one of these or a list of them.

    Raises ValueError for an unknown role (naming it) and TypeError for anything else.
    """
    if isinstance(items, (BaseMessage, str, dict)) or _langchain_message(items):
        return [_to_message(items)]
    return [_to_message(item) for item in items]


def _to_message(item: Any) -> BaseMessage:
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, str):
        return HumanMessage(content=item)
    if isinstance(item, dict):
        return _from_dict(item)
    if isinstance(item, (tuple, list)):
        if len(item) != 2 or not isinstance(item[0], str):
            raise ValueError(f"a message as a sequence must be (role, content), got {item!r}")
        role, content = item
        if _ROLES.get(role) is ToolMessage:
            raise ValueError(
                "a ('tool', content) pair has no tool_call_id: use ToolMessage(...) or a dict "
                "with 'tool_call_id'"
            )
        return _build(role, {"content": content})
    if _langchain_message(item):
        return _from_langchain(item)
    raise TypeError(f"cannot convert {type(item).__name__} to a message: {item!r}")


def _build(role: Any, fields: dict[str, Any]) -> BaseMessage:
    cls = _ROLES.get(role) if isinstance(role, str) else None
    if cls is None:
        raise ValueError(f"unknown message role {role!r}; expected one of {', '.join(_ROLES)}")
    return cls(**fields)


def _from_dict(data: dict[str, Any]) -> BaseMessage:
    if "role" in data:
        role, skip = data["role"], ("role", "type")
    elif "type" in data:
        role, skip = data["type"], ("type",)
    else:
        raise ValueError(f"a message dict needs a 'role' or 'type' key, got {data!r}")
    cls = _ROLES.get(role) if isinstance(role, str) else None
    if cls is None:
        return _build(role, {})  # raises, naming the role
    if "content" not in data and cls is not RemoveMessage:
        raise ValueError(f"a message dict needs a 'content' key, got {data!r}")
    fields: dict[str, Any] = {}
    extra = dict(data.get("additional_kwargs") or {})
    for key, value in data.items():
        if key in skip or key == "additional_kwargs":
            continue
        if key in cls.model_fields:
            fields[key] = value
        else:
            extra[key] = value
    if fields.get("content", "") is None:  # OpenAI sends null content with tool calls
        fields["content"] = ""
    if extra:
        fields["additional_kwargs"] = extra
    return cls(**fields)


def _langchain_message(item: Any) -> bool:
    # A LangChain message can only exist if its module was imported: never import it here.
    module = sys.modules.get("langchain_core.messages")
    return module is not None and isinstance(item, module.BaseMessage)


def _from_langchain(item: Any) -> BaseMessage:
    kind = getattr(item, "type", None)
    kind = _CHUNK_TYPES.get(kind, kind)
    if kind in ("chat", "ChatMessageChunk"):
        kind = getattr(item, "role", kind)
    cls = _ROLES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return _build(kind, {})  # raises, naming the role
    fields: dict[str, Any] = {}
    for key in cls.model_fields:
        if key == "type" or not hasattr(item, key):
            continue
        fields[key] = _shallow_copy(getattr(item, key))
    return cls(**fields)


def _shallow_copy(value: Any) -> Any:
    # So that editing one side's containers never changes the other.
    if isinstance(value, list):
        return list(value)
    return dict(value) if isinstance(value, dict) else value


# --- the reducer ------------------------------------------------------------------------

Messages: TypeAlias = MessageLike | Sequence[MessageLike]
_get_id: Callable[[BaseMessage], str | None] = attrgetter("id")


def add_messages(left: Messages, right: Messages) -> list[BaseMessage]:
    """Merge ``right`` into ``left``: append new messages, replace by id, remove.

    Both sides may be one message-like value or a list of them (see
    :func:`convert_to_messages`). A message without an id gets a uuid4 string (on a copy:
    the caller's object is not changed). A ``right`` message whose id is already present
    replaces that message in place; ``RemoveMessage(id)`` deletes it, and an id that is
    not present is a ValueError naming it. ``RemoveMessage(id=REMOVE_ALL_MESSAGES)``
    drops everything before it (what follows it in ``right`` is merged onto nothing).

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
    """``left`` itself when it is a list of messages that all have ids, else a new list."""
    items = left if isinstance(left, list) else [left]
    if all(issubclass(t, BaseMessage) for t in set(map(type, items))) and None not in map(
        _get_id, items
    ):
        return items
    return [_with_id(m) for m in convert_to_messages(items)]


def _normalized_right(right: Messages) -> tuple[list[BaseMessage], bool]:
    """The incoming messages with ids, and whether merging (not just appending) is needed.

    Only messages that came with an id (or removals) can touch existing ones: ids this
    function assigns are fresh, so a batch of id-less messages is a plain append.
    """
    items = right if isinstance(right, list) else [right]
    merge = False
    out: list[BaseMessage] = []
    for item in items:
        message = _to_message(item)
        if message.id is None:
            message = _with_id(message, copy=message is item)
        else:
            merge = True
        out.append(message)
    return out, merge


def _with_id(message: BaseMessage, *, copy: bool = True) -> BaseMessage:
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
