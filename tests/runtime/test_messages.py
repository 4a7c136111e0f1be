"""Messages, their conversion, and the add_messages reducer (compared with LangGraph's)."""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import relaygraph
from relaygraph.runtime.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    MessagesState,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    add_messages,
    convert_to_messages,
)


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


# --- the models ---------------------------------------------------------------------------


def test_positional_content_equals_keyword() -> None:
    assert HumanMessage("hi") == HumanMessage(content="hi")
    assert AIMessage("yo", id="1") == AIMessage(content="yo", id="1")
    assert HumanMessage("hi") != AIMessage("hi")  # the class is part of equality
    assert HumanMessage("hi", id="a") != HumanMessage("hi", id="b")


def test_types_and_defaults() -> None:
    assert [m.type for m in (HumanMessage(""), AIMessage(""), SystemMessage(""))] == [
        "human",
        "ai",
        "system",
    ]
    message = AIMessage("x")
    assert message.id is None and message.name is None
    assert message.tool_calls == [] and message.usage_metadata is None
    assert message.additional_kwargs == {} and message.response_metadata == {}
    other = AIMessage("x")
    message.additional_kwargs["k"] = 1
    assert other.additional_kwargs == {}  # defaults are not shared between instances


def test_message_classes_are_langchain_cores() -> None:
    """The types in state ARE langchain_core's, so chat models and tools take them as is."""
    lc = importlib.import_module("langchain_core.messages")
    for name in ("BaseMessage", "HumanMessage", "AIMessage", "SystemMessage", "ToolMessage",
                 "RemoveMessage", "AnyMessage"):
        assert getattr(relaygraph, name) is getattr(lc, name), name
    with pytest.raises(ValidationError):
        HumanMessage(content=5)
    with pytest.raises((ValidationError, KeyError)):  # langchain_core's own error here
        ToolMessage("result")  # tool_call_id is required


def test_remove_message() -> None:
    assert RemoveMessage(id="m1").type == "remove" and RemoveMessage(id="m1").content == ""
    assert convert_to_messages([{"type": "remove", "id": "r"}]) == [RemoveMessage(id="r")]
    with pytest.raises(ValueError, match="needs an 'id'"):
        convert_to_messages([{"type": "remove"}])


def test_tool_message() -> None:
    message = ToolMessage("42", tool_call_id=7, name="calc")
    assert message.tool_call_id == "7" and message.status == "success"
    assert ToolMessage("x", tool_call_id="c", artifact={"raw": [1]}).artifact == {"raw": [1]}


def test_openai_tool_calls_are_converted() -> None:
    (message,) = convert_to_messages(
        [{"role": "assistant", "content": "", "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}]
    )
    assert message.tool_calls == [{"name": "g", "args": {}, "id": "c2", "type": "tool_call"}]


def test_text_property() -> None:
    assert HumanMessage("plain").text == "plain"
    blocks = ["a", {"type": "text", "text": "b"}, {"type": "image", "url": "http://x"}, "c"]
    assert HumanMessage(blocks).text == "abc"
    assert HumanMessage([{"type": "image", "url": "http://x"}]).text == ""


def test_pretty_repr() -> None:
    text = HumanMessage("What is up?", name="alice").pretty_repr()
    assert " Human Message " in text and "Name: alice" in text and "What is up?" in text


def test_pretty_print(capsys: pytest.CaptureFixture[str]) -> None:
    SystemMessage("be brief").pretty_print()
    assert capsys.readouterr().out == SystemMessage("be brief").pretty_repr() + "\n"


def test_repr_leaves_out_type_and_unset_optionals() -> None:
    assert repr(HumanMessage("hi")) == (
        "HumanMessage(content='hi', additional_kwargs={}, response_metadata={})"
    )
    assert "id='m1'" in repr(HumanMessage("hi", id="m1"))


def test_any_message_discriminates_on_type() -> None:
    adapter = TypeAdapter(list[AnyMessage])
    raw = [
        {"type": "human", "content": "a"},
        {"type": "ai", "content": "b", "tool_calls": []},
        {"type": "system", "content": "c"},
        {"type": "tool", "content": "d", "tool_call_id": "t"},
    ]
    parsed = adapter.validate_python(raw)
    assert [type(m) for m in parsed] == [HumanMessage, AIMessage, SystemMessage, ToolMessage]
    dumped = adapter.dump_python(parsed)
    assert adapter.validate_python(dumped) == parsed  # round trip through plain data
    with pytest.raises(ValidationError):
        adapter.validate_python([{"type": "robot", "content": "x"}])


def test_pydantic_state_with_any_message() -> None:
    class State(BaseModel):
        messages: Annotated[list[AnyMessage], add_messages]

    state = State(messages=[{"type": "human", "content": "hi"}, AIMessage("yo")])
    assert [m.type for m in state.messages] == ["human", "ai"]


# --- conversion ---------------------------------------------------------------------------


def test_convert_every_format() -> None:
    ours = AIMessage("kept", id="k")
    converted = convert_to_messages(
        [
            ours,
            ("user", "u"),
            ("human", "h"),
            ("ai", "a"),
            ("assistant", "as"),
            ("system", "s"),
            ["user", "as a list pair"],
            {"role": "user", "content": "d1"},
            {"type": "ai", "content": "d2", "id": "x", "name": "bot"},
            {"role": "tool", "content": "d3", "tool_call_id": "c1", "status": "error"},
            "plain",
        ]
    )
    assert converted[0] is ours  # messages pass through untouched
    assert [(type(m).__name__, m.content) for m in converted[1:]] == [
        ("HumanMessage", "u"),
        ("HumanMessage", "h"),
        ("AIMessage", "a"),
        ("AIMessage", "as"),
        ("SystemMessage", "s"),
        ("HumanMessage", "as a list pair"),
        ("HumanMessage", "d1"),
        ("AIMessage", "d2"),
        ("ToolMessage", "d3"),
        ("HumanMessage", "plain"),
    ]
    assert converted[8].id == "x" and converted[8].name == "bot"
    assert converted[9].tool_call_id == "c1" and converted[9].status == "error"
    assert all(m.id is None for m in converted[1:8])  # conversion alone assigns no ids


def test_convert_single_items() -> None:
    assert convert_to_messages("hi") == [HumanMessage("hi")]
    assert convert_to_messages({"role": "system", "content": "s"}) == [SystemMessage("s")]
    message = HumanMessage("x")
    assert convert_to_messages(message)[0] is message


def test_convert_dict_details() -> None:
    """Dicts convert as langchain_core (and so LangGraph) converts them."""
    (message,) = convert_to_messages(
        [
            {
                "role": "assistant",
                "content": None,  # OpenAI's content with tool calls
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
                "refusal": None,
                "additional_kwargs": {"keep": 1},
                "response_metadata": {"model": "m"},
            }
        ]
    )
    assert isinstance(message, AIMessage) and message.content == ""
    assert message.tool_calls == [{"name": "f", "args": {}, "id": "c", "type": "tool_call"}]
    assert message.additional_kwargs == {"keep": 1, "refusal": None}
    assert message.response_metadata == {"model": "m"}
    (item,) = convert_to_messages([{"role": "user", "type": "message", "content": "c"}])
    assert isinstance(item, HumanMessage) and item.content == "c"


@pytest.mark.parametrize(
    ("item", "error", "match"),
    [
        (("robot", "x"), ValueError, "unknown message role 'robot'"),
        ({"role": "developer!", "content": "x"}, ValueError, "'developer!'"),
        ({"role": 3, "content": "x"}, ValueError, "unknown message role 3"),
        ({"content": "x"}, ValueError, "'role' or 'type'"),
        ({"role": "user"}, ValueError, "'content'"),
        (("tool", "x"), ValueError, "tool_call_id"),
        ({"role": "tool", "content": "x"}, ValueError, "tool_call_id"),
        (("user", "x", "extra"), ValueError, r"\(role, content\)"),
        ((1, "x"), ValueError, r"\(role, content\)"),
        (42, TypeError, "cannot convert int"),
        (None, TypeError, "cannot convert NoneType"),
    ],
)
def test_convert_errors(item: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        convert_to_messages([item])





def test_langchain_messages_pass_through_and_chunks_become_messages() -> None:
    lc = importlib.import_module("langchain_core.messages")
    call = {"name": "f", "args": {"q": 1}, "id": "c1", "type": "tool_call"}
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    source = [
        lc.HumanMessage("h", id="1", name="ann"),
        lc.AIMessage("a", id="2", tool_calls=[call], usage_metadata=usage),
        lc.ToolMessage("t", tool_call_id="c1", id="4", status="error", artifact=[1]),
        lc.ChatMessage(content="chat", role="critic", id="7"),
        lc.FunctionMessage("x", name="f", id="9"),
    ]
    converted = convert_to_messages(source)
    assert all(a is b for a, b in zip(converted, source, strict=True))
    merged = add_messages(source[:1], [lc.AIMessageChunk(content="chunk", id="6")])
    assert type(merged[1]) is AIMessage and merged[1].content == "chunk"


# --- add_messages -------------------------------------------------------------------------


def test_append_keeps_left_objects_and_list() -> None:
    left = add_messages([], [HumanMessage("a"), AIMessage("b")])
    snapshot = list(left)
    result = add_messages(left, [HumanMessage("c"), ("ai", "d")])
    assert result is not left and left == snapshot  # the left list is not mutated
    assert all(new is old for new, old in zip(result, left, strict=False))
    assert [m.content for m in result] == ["a", "b", "c", "d"]
    assert len({m.id for m in result}) == 4 and all(is_uuid(m.id) for m in result)


def test_append_of_messages_with_new_ids_keeps_left_objects() -> None:
    left = add_messages([], [HumanMessage("a", id="1")])
    result = add_messages(left, AIMessage("b", id="2"))
    assert result[0] is left[0] and [m.id for m in result] == ["1", "2"]


def test_empty_right_returns_a_fresh_equal_list() -> None:
    left = add_messages([], "a")
    result = add_messages(left, [])
    assert result == left and result is not left and result[0] is left[0]


def test_ids_are_assigned_on_copies() -> None:
    mine = HumanMessage("hi")
    (stored,) = add_messages([], mine)
    assert mine.id is None  # the caller's object is untouched
    assert stored == HumanMessage("hi", id=stored.id) and is_uuid(stored.id)
    (again,) = add_messages([], mine)
    assert again.id != stored.id  # reusing one object never aliases two messages


def test_single_values_on_both_sides() -> None:
    result = add_messages(HumanMessage("a", id="1"), AIMessage("b", id="2"))
    assert [m.id for m in result] == ["1", "2"]
    assert [m.content for m in add_messages(("user", "x"), ("ai", "y"))] == ["x", "y"]
    assert [m.content for m in add_messages("x", {"role": "ai", "content": "y"})] == ["x", "y"]


def test_left_without_ids_is_normalized() -> None:
    raw = [("user", "a"), HumanMessage("b"), HumanMessage("c", id="3")]
    result = add_messages(raw, [])
    assert [m.content for m in result] == ["a", "b", "c"]
    assert raw[1].id is None and result[2] is raw[2]
    assert result[2].id == "3" and all(is_uuid(m.id) for m in result[:2])


def test_replace_by_id_in_place() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2"), HumanMessage("c", id="3")]
    result = add_messages(left, [AIMessage("B", id="2"), HumanMessage("d", id="4")])
    assert [(m.id, m.content) for m in result] == [("1", "a"), ("2", "B"), ("3", "c"), ("4", "d")]
    assert result[0] is left[0] and result[2] is left[2]  # untouched messages are not copied
    assert left[1].content == "b"


def test_remove_by_id() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    assert add_messages(left, RemoveMessage("1")) == [AIMessage("b", id="2")]
    assert [m.id for m in left] == ["1", "2"]


def test_remove_unknown_id_names_it() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        add_messages([HumanMessage("a", id="1")], [RemoveMessage("nope")])


def test_remove_then_re_add_keeps_the_message() -> None:
    left = [HumanMessage("a", id="1"), HumanMessage("b", id="2")]
    result = add_messages(left, [RemoveMessage("1"), HumanMessage("A", id="1")])
    assert [(m.id, m.content) for m in result] == [("1", "A"), ("2", "b")]


def test_remove_a_message_added_in_the_same_update() -> None:
    result = add_messages([], [HumanMessage("a", id="1"), RemoveMessage("1"), "b"])
    assert [m.content for m in result] == ["b"]


def test_duplicate_ids_in_right_replace_each_other() -> None:
    result = add_messages([], [HumanMessage("a", id="1"), HumanMessage("b", id="1")])
    assert result == [HumanMessage("b", id="1")]


def test_remove_all() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    assert add_messages(left, RemoveMessage(REMOVE_ALL_MESSAGES)) == []
    result = add_messages(
        left, [HumanMessage("lost"), RemoveMessage(id=REMOVE_ALL_MESSAGES), ("user", "fresh")]
    )
    assert [m.content for m in result] == ["fresh"] and is_uuid(result[0].id)
    # only the last remove-all counts; what follows it is merged onto nothing
    twice = [RemoveMessage(REMOVE_ALL_MESSAGES), "x", RemoveMessage(REMOVE_ALL_MESSAGES), "y"]
    assert [m.content for m in add_messages(left, twice)] == ["y"]
    with pytest.raises(ValueError, match="'1'"):
        add_messages(left, [RemoveMessage(REMOVE_ALL_MESSAGES), RemoveMessage("1")])


def test_bad_inputs_fail_before_anything_changes() -> None:
    left = [HumanMessage("a", id="1")]
    with pytest.raises(ValueError, match="'robot'"):
        add_messages(left, [("user", "ok"), ("robot", "x")])
    with pytest.raises(TypeError):
        add_messages(left, [3])
    assert left == [HumanMessage("a", id="1")]


def test_messages_state() -> None:
    hints = get_type_hints(MessagesState, include_extras=True)
    assert list(hints) == ["messages"]
    assert hints["messages"].__metadata__ == (add_messages,)

    class State(MessagesState):
        summary: str

    assert list(get_type_hints(State)) == ["messages", "summary"]


def test_messages_state_in_a_graph() -> None:
    from relaygraph import END, START, StateGraph

    def echo(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"Echo: {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    result = builder.compile().invoke({"messages": [("user", "Hello!")]})
    assert [(type(m), m.content) for m in result["messages"]] == [
        (HumanMessage, "Hello!"),
        (AIMessage, "Echo: Hello!"),
    ]


def test_messages_are_registered_with_the_serializer() -> None:
    from relaygraph.persistence import serde

    serializer = serde.Serializer()
    value = {
        "messages": [
            HumanMessage("hi", id="1", name="ann"),
            AIMessage("", id="2", tool_calls=[{"name": "f", "args": {"a": [1]}, "id": "c"}]),
            ToolMessage("r", tool_call_id="c", id="3", artifact={"k": "v"}),
            SystemMessage(["a", {"type": "text", "text": "b"}], id="4"),
            RemoveMessage("5"),
        ]
    }
    data = serializer.dumps(value)
    assert serializer.loads(data) == value


# --- the same results as LangGraph --------------------------------------------------------

Step = Callable[[Any, list[Any]], Any]  # (message module, current state) -> right side


def _h(text: str, id: str | None = None) -> Step:
    return lambda lib, state: lib.HumanMessage(content=text, id=id)


def _raw(value: Any) -> Step:
    return lambda lib, state: value


SCENARIOS: dict[str, list[Step]] = {
    "append ids": [_h("a"), _raw([("user", "b"), ("assistant", "c")])],
    "mixed formats": [
        _raw(
            [
                ("user", "tuple"),
                ("human", "human tuple"),
                ("ai", "ai tuple"),
                ("system", "system tuple"),
                {"role": "user", "content": "dict"},
                {"role": "assistant", "content": "assistant dict", "id": "d1"},
                {"type": "human", "content": "typed dict"},
                {"role": "tool", "content": "tool dict", "tool_call_id": "c"},
                "plain",
            ]
        )
    ],
    "single values": [_raw(("user", "one")), _h("two", "i2"), _raw("three")],
    "replace": [
        _raw([("user", "a"), ("ai", "b")]),
        lambda lib, state: lib.AIMessage(content="B", id=state[1].id),
        _raw({"role": "ai", "content": "c", "id": "fixed"}),
        _raw({"role": "ai", "content": "C", "id": "fixed"}),
    ],
    "remove": [
        _raw(["a", "b", "c"]),
        lambda lib, state: [lib.RemoveMessage(id=state[0].id), lib.RemoveMessage(id=state[2].id)],
    ],
    "remove then re-add": [
        _raw([("user", "a"), ("user", "b")]),
        lambda lib, state: [
            lib.RemoveMessage(id=state[0].id),
            lib.HumanMessage(content="A", id=state[0].id),
        ],
    ],
    "remove added in same update": [
        lambda lib, state: [
            lib.HumanMessage(content="x", id="x1"),
            lib.RemoveMessage(id="x1"),
            lib.AIMessage(content="y"),
        ],
    ],
    "duplicate ids in one update": [_raw([("user", "a")]), _h("b", "dup"), _h("c", "dup")],
    "remove all": [
        _raw(["a", "b"]),
        lambda lib, state: [lib.RemoveMessage(id=lib.REMOVE_ALL), ("user", "fresh")],
        _raw("after"),
    ],
    "remove all alone": [_raw(["a"]), lambda lib, state: lib.RemoveMessage(id=lib.REMOVE_ALL)],
    "append to long history": [_raw([f"m{i}" for i in range(50)]), _raw(("ai", "tail"))],
}


def _langgraph() -> Any:
    message = importlib.import_module("langgraph.graph.message")
    lc = importlib.import_module("langchain_core.messages")
    lib = type("Lib", (), {})()
    lib.HumanMessage, lib.AIMessage, lib.RemoveMessage = (
        lc.HumanMessage,
        lc.AIMessage,
        lc.RemoveMessage,
    )
    lib.REMOVE_ALL, lib.add_messages = message.REMOVE_ALL_MESSAGES, message.add_messages
    return lib


def _ours() -> Any:
    lib = type("Lib", (), {})()
    lib.HumanMessage, lib.AIMessage, lib.RemoveMessage = HumanMessage, AIMessage, RemoveMessage
    lib.REMOVE_ALL, lib.add_messages = REMOVE_ALL_MESSAGES, add_messages
    return lib


def _run(lib: Any, steps: list[Step]) -> list[list[tuple[str, Any, str]]]:
    """Each step's state as (type, content, id), generated ids named by first appearance."""
    state: list[Any] = []
    names: dict[str, str] = {}
    trace = []
    for step in steps:
        state = lib.add_messages(state, step(lib, state))
        row = []
        for m in state:
            assert m.id is not None
            name = names.setdefault(m.id, f"gen{len(names)}") if is_uuid(m.id) else m.id
            row.append((m.type, m.content, name))
        trace.append(row)
    return trace


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_as_langgraph(name: str) -> None:
    theirs = _langgraph()
    assert _run(_ours(), SCENARIOS[name]) == _run(theirs, SCENARIOS[name])


@pytest.mark.parametrize("make_id", [lambda lib, state: "nope", lambda lib, state: state[0].id])
def test_remove_errors_as_langgraph(make_id: Step) -> None:
    theirs = _langgraph()
    for lib in (theirs, _ours()):
        state = lib.add_messages([], [lib.HumanMessage(content="a")])
        bad = make_id(lib, state)
        state = lib.add_messages(state, lib.RemoveMessage(id=state[0].id))
        with pytest.raises(ValueError, match=bad):
            lib.add_messages(state, lib.RemoveMessage(id=bad))


def test_langchain_messages_in_add_messages() -> None:
    lc = importlib.import_module("langchain_core.messages")
    result = add_messages([lc.HumanMessage("a", id="1")], [lc.AIMessage("b"), AIMessage("c")])
    assert [type(m) for m in result] == [HumanMessage, AIMessage, AIMessage]
    assert result[0].id == "1" and all(m.id for m in result)
    assert isinstance(result[0], BaseMessage)


# --- docs/langgraph-imports.md --------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "langgraph-imports.md"
ROW = re.compile(
    r"^\| `from (\S+) import ([^`]+)`[^|]*\| `from (\S+) import ([^`]+)` \| `(\S+)` \|"
)


def import_table() -> list[tuple[str, str, str]]:
    """(relaygraph import module, name, home module) of each row of the docs' table."""
    rows = []
    for line in DOCS.read_text().splitlines():
        match = ROW.match(line)
        if match:
            _, _, module, names, home = match.groups()
            rows += [(module, name.strip(), home) for name in names.split(",")]
    return rows


def test_import_table_covers_the_common_names() -> None:
    names = {name for _, name, _ in import_table()}
    expected = (
        "StateGraph START END MessagesState add_messages Send Command interrupt RetryPolicy "
        "MemorySaver InMemorySaver InMemoryStore SqliteSaver AsyncSqliteSaver PostgresSaver "
        "AsyncPostgresSaver HumanMessage AIMessage SystemMessage ToolMessage RemoveMessage "
        "get_stream_writer RedisSaver RedisStore default_embeddings"
    )
    assert set(expected.split()) <= names


@pytest.mark.parametrize(("module", "name", "home"), import_table(), ids=lambda v: v)
def test_import_table_rows_resolve(module: str, name: str, home: str) -> None:
    home_module = importlib.import_module(home)
    value = getattr(home_module, name)
    target = importlib.import_module(module)
    if module == "relaygraph":
        assert name in relaygraph.__all__, f"relaygraph does not export {name}: see _HOMES"
    assert getattr(target, name) is value, f"{module}.{name} is not {home}.{name}"
