"""The serializer's allow-list, the blob format and checkpoint ids."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import threading
import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import msgpack
import pytest
from pydantic import BaseModel, Field, RootModel

from relaygraph.persistence import blobs
from relaygraph.persistence.errors import CorruptCheckpointError, SerializationError
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.persistence.serde import (
    Serializer,
    StoredError,
    default_serializer,
    register_type,
    registered_name,
)

serde = default_serializer


@register_type(name="tests.serde.Color")
class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


@register_type(name="tests.serde.Flags")
class Flags(enum.Flag):
    A = 1
    B = 2


@register_type(name="tests.serde.Point")
@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, ...] = ()


@register_type(name="tests.serde.Counter")
@dataclasses.dataclass
class Counter:
    name: str
    hits: int = 0
    derived: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        self.derived = self.name.upper()


@register_type(name="tests.serde.Pair")
class Pair(NamedTuple):
    left: Any
    right: Any


@register_type(name="tests.serde.Inner")
class Inner(BaseModel):
    tags: set[str] = Field(default_factory=set)
    when: dt.datetime | None = None


@register_type(name="tests.serde.Outer")
class Outer(BaseModel):
    title: str
    inner: Inner
    payload: Any = None
    aliased: int = Field(default=0, alias="aliasedName")


@register_type(name="tests.serde.Tags")
class Tags(RootModel[list[tuple[str, int]]]):
    pass


class NotRegistered(BaseModel):
    x: int = 1


def roundtrip(value: Any) -> Any:
    return serde.loads(serde.dumps(value))


SCALARS = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    2**64,
    -(2**63) - 1,
    10**40,
    -(10**40),
    1.5,
    float("inf"),
    "",
    "héllo ✓",
    b"\x00\xff",
    [],
    {},
    (),
    (1,),
    set(),
    frozenset(),
    Decimal("1.10"),
    Decimal("-0"),
    Decimal("1E+3"),
    dt.date(2024, 2, 29),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID("3faf5b3e-d57b-4ebe-8f85-e1a6be50bd65"),
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars_round_trip_with_exact_type(value: Any) -> None:
    back = roundtrip(value)
    assert type(back) is type(value)
    assert back == value
    if isinstance(value, Decimal):
        assert str(back) == str(value)


def test_containers_keep_their_types() -> None:
    value = {
        "t": (1, (2, [3, (4,)])),
        "s": {1, "a", (2, 3)},
        "f": frozenset({frozenset({1})}),
        (1, "k"): "tuple key",
        3: "int key",
        frozenset({2}): "frozenset key",
        "nested": [{"a": ({"b"},)}],
    }
    back = roundtrip(value)
    assert back == value
    assert type(back["t"]) is tuple and type(back["t"][1][1]) is list
    assert type(back["t"][1][1][1]) is tuple
    assert type(back["nested"][0]["a"]) is tuple and type(back["nested"][0]["a"][0]) is set


def test_subclasses_of_builtins_are_not_silently_downgraded() -> None:
    class MyDict(dict):
        pass

    with pytest.raises(SerializationError, match="MyDict"):
        serde.dumps(MyDict(a=1))


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(seconds=1, microseconds=5))),
        dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        dt.time(23, 59, 59, 999999),
        dt.time(1, 2, tzinfo=ZoneInfo("Europe/Paris")),
        dt.time(1, 2, tzinfo=dt.UTC),
    ],
    ids=repr,
)
def test_datetimes_keep_time_zone_exactly(value: Any) -> None:
    back = roundtrip(value)
    assert type(back) is type(value)
    assert back == value
    assert back.tzinfo == value.tzinfo and type(back.tzinfo) is type(value.tzinfo)
    assert back.fold == value.fold
    if value.tzinfo is not None:
        assert back.tzname() == value.tzname() if isinstance(value, dt.datetime) else True


def test_pydantic_parsed_offsets_round_trip() -> None:
    parsed = Inner.model_validate({"when": "2024-01-01T10:00:00+02:00"})
    back = roundtrip(parsed)
    assert back == parsed
    assert back.when.utcoffset() == dt.timedelta(hours=2)


def test_unsupported_time_zone_is_rejected() -> None:
    class Odd(dt.tzinfo):
        def utcoffset(self, d: Any) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(SerializationError, match="Odd"):
        serde.dumps({"at": dt.datetime(2024, 1, 1, tzinfo=Odd())}, where="channel 'x'")


def test_registered_enum_dataclass_namedtuple() -> None:
    value = [
        Color.RED,
        Color.BLUE,
        Flags.A | Flags.B,
        Point(1, (2, 3)),
        Pair(Point(0), {Color.RED: (1,)}),
    ]
    back = roundtrip(value)
    assert back == value
    assert back[0] is Color.RED and back[1] is Color.BLUE
    assert type(back[4]) is Pair and type(back[4].left) is Point


def test_dataclass_is_restored_field_by_field() -> None:
    counter = Counter("ab", hits=3)
    counter.derived = "changed after init"
    back = roundtrip(counter)
    assert back == counter and back.derived == "changed after init"


def test_pydantic_models_nest_through_the_serializer() -> None:
    model = Outer(
        title="t",
        inner=Inner(tags={"a", "b"}, when=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        payload=(1, {2}, Point(3)),
        aliasedName=7,
    )
    back = roundtrip(model)
    assert back == model
    assert type(back.inner) is Inner and back.payload == (1, {2}, Point(3))
    assert type(back.payload) is tuple
    assert back.aliased == 7


def test_pydantic_unset_fields_stay_unset() -> None:
    model = Outer(title="t", inner=Inner())
    back = roundtrip(model)
    assert back.model_fields_set == model.model_fields_set == {"title", "inner"}
    assert back.model_dump(exclude_unset=True) == model.model_dump(exclude_unset=True)


def test_pydantic_root_models() -> None:
    tags = Tags([("a", 1)])
    back = roundtrip({"tags": tags})["tags"]
    assert back == tags and type(back.root[0]) is tuple


def test_exceptions_come_back_as_stored_error() -> None:
    back = roundtrip({"error": KeyError("missing")})["error"]
    assert isinstance(back, StoredError) and isinstance(back, Exception)
    assert back.type_name == "KeyError" and back.message == str(KeyError("missing"))

    class Custom(RuntimeError):
        pass

    custom = roundtrip(Custom("boom"))
    assert custom.type_name.endswith("Custom") and custom.message == "boom"
    assert roundtrip(custom) == custom


def test_register_type_errors() -> None:
    class A(enum.Enum):
        X = 1

    class B(enum.Enum):
        X = 1

    register_type(A, name="tests.serde.dup")
    register_type(A, name="tests.serde.dup")  # same class, same name: fine
    with pytest.raises(ValueError, match="already registered"):
        register_type(B, name="tests.serde.dup")
    with pytest.raises(ValueError, match="already registered"):
        register_type(A, name="tests.serde.other")
    with pytest.raises(TypeError, match="not an Enum"):
        register_type(dict)
    assert registered_name(A) == "tests.serde.dup"
    assert registered_name(B) is None


def test_default_name_is_module_and_qualname() -> None:
    @register_type
    class Local(enum.Enum):
        Y = 2

    assert registered_name(Local) == f"{__name__}.{Local.__qualname__}"
    assert roundtrip(Local.Y) is Local.Y


def test_error_names_where_type_and_path() -> None:
    value = [0, 1, 2, {"bar": threading.Lock()}]
    with pytest.raises(SerializationError) as info:
        serde.dumps({"foo": value}, where="channel 'foo'")
    message = str(info.value)
    assert "channel 'foo'" in message
    assert "['foo'][3]['bar']" in message
    assert "lock" in message
    assert info.value.where == "channel 'foo'"


def test_error_path_through_registered_types() -> None:
    with pytest.raises(SerializationError) as info:
        serde.dumps(Outer(title="t", inner=Inner(), payload=[object()]), where="input")
    assert ".payload[0]" in str(info.value) and "'object'" in str(info.value)

    with pytest.raises(SerializationError, match=r"\.left"):
        serde.dumps(Pair(object(), 1))


def test_unregistered_classes_are_refused() -> None:
    with pytest.raises(SerializationError, match="NotRegistered"):
        serde.dumps(NotRegistered())
    with pytest.raises(SerializationError, match="function"):
        serde.dumps({"f": lambda: 1})


def test_bytearray_is_stored_as_bytes() -> None:
    # documented exception to exact round trips: msgpack packs it before any hook runs
    assert roundtrip(bytearray(b"x")) == b"x"


def test_cycles_and_bad_strings_are_explained() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match="cycle"):
        serde.dumps(loop, where="channel 'c'")
    with pytest.raises(SerializationError, match="surrogate"):
        serde.dumps(["\ud800"])


def test_loads_rejects_corrupt_and_unknown() -> None:
    with pytest.raises(SerializationError, match="channel 'x'"):
        serde.loads(b"\xc1", where="channel 'x'")
    with pytest.raises(SerializationError):
        serde.loads(serde.dumps([1, 2, 3])[:-1])
    unknown = msgpack.packb(msgpack.ExtType(12, msgpack.packb(["os.system", {}])))
    with pytest.raises(SerializationError, match=r"unknown stored type.*os\.system"):
        serde.loads(unknown, where="blob")
    wrong_kind = msgpack.packb(msgpack.ExtType(11, msgpack.packb(["tests.serde.Point", 1])))
    with pytest.raises(SerializationError, match="registered as a dataclass"):
        serde.loads(wrong_kind)
    with pytest.raises(SerializationError, match="unknown extension"):
        serde.loads(msgpack.packb(msgpack.ExtType(99, b"")))


def test_never_unpickles() -> None:
    import pickle

    with pytest.raises(SerializationError):
        serde.loads(pickle.dumps({"a": 1}))


def test_serializer_instances_share_the_registry() -> None:
    assert Serializer().loads(serde.dumps(Point(1))) == Point(1)


# -- ids -------------------------------------------------------------------------------


def test_checkpoint_ids_strictly_increase_and_parse() -> None:
    ids = [new_checkpoint_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7


def test_checkpoint_ids_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def make(i: int) -> None:
        out[i] = [new_checkpoint_id() for _ in range(1000)]

    workers = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    every = [i for chunk in out for i in chunk]
    assert len(set(every)) == len(every)
    assert all(chunk == sorted(chunk) for chunk in out)


# -- blobs -----------------------------------------------------------------------------


CTX = {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "c1"}


def test_header_round_trip() -> None:
    checkpoint = {
        "v": 1,
        "id": "c1",
        "ts": "2024-01-01T00:00:00+00:00",
        "channel_values": {"a": 1},
        "channel_versions": {"a": "v1"},
        "versions_seen": {"node": {"a": "v1"}},
        "updated_channels": ["a"],
        "channel_appends": {},
    }
    back = blobs.decode_header(blobs.encode_header(checkpoint))
    assert back == {**checkpoint, "channel_values": {}}
    with pytest.raises(SerializationError, match="header"):
        blobs.decode_header(b"garbage")


def test_blob_kinds() -> None:
    assert blobs.decode_blob(blobs.encode_blob(serde, {"a": 1})) == (
        "full",
        None,
        serde.dumps({"a": 1}),
    )
    kind, base, payload = blobs.decode_blob(blobs.encode_blob(serde, [1, 2, 3], ("v1", 2)))
    assert (kind, base, serde.loads(payload)) == ("append", ("v1", 2), [3])
    assert blobs.decode_blob(blobs.encode_empty_blob()) == ("empty", None, b"")
    with pytest.raises(ValueError):
        blobs.decode_blob(b"Z123")
    with pytest.raises(ValueError):
        blobs.encode_blob(serde, [1], ("v1", 2))
    with pytest.raises(SerializationError, match="channel 'm'"):
        blobs.encode_blob(serde, [object()], where="channel 'm'")


def _chain(n: int) -> dict[tuple[str, str], bytes]:
    """Versions v0..v{n-1} of channel m, each appending one item to the previous."""
    store = {("m", "v0"): blobs.encode_blob(serde, [0])}
    for i in range(1, n):
        store["m", f"v{i}"] = blobs.encode_blob(serde, list(range(i + 1)), (f"v{i - 1}", i))
    return store


def test_resolve_walks_long_append_chains_without_recursion() -> None:
    store = _chain(3000)  # deeper than the default recursion limit
    value = blobs.resolve_channel("m", "v2999", lambda c, v: store.get((c, v)), serde=serde, **CTX)
    assert value == list(range(3000))


def test_resolve_cache_keeps_a_step_flat_and_is_not_mutable_from_outside() -> None:
    store = _chain(50)
    fetched: list[str] = []

    def fetch(channel: str, version: str) -> bytes | None:
        fetched.append(version)
        return store.get((channel, version))

    cache = blobs.ResolvedCache(maxsize=4)
    first = blobs.resolve_channel("m", "v48", fetch, serde=serde, cache=cache, **CTX)
    assert len(fetched) == 49
    first.append("mutated")
    fetched.clear()
    second = blobs.resolve_channel("m", "v49", fetch, serde=serde, cache=cache, **CTX)
    assert fetched == ["v49"] and second == list(range(50))
    again = blobs.resolve_channel("m", "v48", fetch, serde=serde, cache=cache, **CTX)
    assert again == list(range(49))


def test_resolve_append_truncates_base_to_base_len() -> None:
    store = {
        ("m", "a"): blobs.encode_blob(serde, [1, 2, 3]),
        ("m", "b"): blobs.encode_blob(serde, [1, 2, 9], ("a", 2)),
    }
    assert blobs.resolve_channel("m", "b", lambda c, v: store.get((c, v)), serde=serde, **CTX) == [
        1,
        2,
        9,
    ]


def test_resolve_empty_and_load_channel_values() -> None:
    store = {("a", "1"): blobs.encode_blob(serde, "x"), ("b", "1"): blobs.encode_empty_blob()}
    fetch = lambda c, v: store.get((c, v))  # noqa: E731
    assert blobs.resolve_channel("b", "1", fetch, serde=serde, **CTX) is blobs.EMPTY
    values = blobs.load_channel_values({"a": "1", "b": "1"}, fetch, serde=serde, **CTX)
    assert values == {"a": "x"}


@pytest.mark.parametrize(
    ("store", "needle"),
    [
        ({}, "no stored value for version 'v1'"),
        ({("m", "v1"): blobs.encode_blob(serde, [1], ("v0", 1))}, "base of version 'v1'"),
        ({("m", "v1"): b"F\xc1"}, "cannot be read"),
        ({("m", "v1"): b"?"}, "corrupt blob"),
        (
            {
                ("m", "v0"): blobs.encode_blob(serde, {"not": "list"}),
                ("m", "v1"): blobs.encode_blob(serde, [1], ("v0", 0)),
            },
            "not a list",
        ),
        (
            {
                ("m", "v0"): blobs.encode_blob(serde, [1]),
                ("m", "v1"): blobs.encode_blob(serde, [1, 2, 3], ("v0", 2)),
            },
            "extends 2 items but its base has 1",
        ),
        ({("m", "v1"): blobs.encode_blob(serde, [1], ("v1", 1))}, "cycle"),
        (
            {
                ("m", "v0"): blobs.encode_empty_blob(),
                ("m", "v1"): blobs.encode_blob(serde, [1], ("v0", 0)),
            },
            "no value",
        ),
    ],
)
def test_resolve_errors_name_thread_namespace_checkpoint_channel(
    store: dict[tuple[str, str], bytes], needle: str
) -> None:
    with pytest.raises(CorruptCheckpointError) as info:
        blobs.resolve_channel(
            "m",
            "v1",
            lambda c, v: store.get((c, v)),
            serde=serde,
            thread_id="t9",
            checkpoint_ns="sub:1",
            checkpoint_id="cp7",
        )
    message = str(info.value)
    assert needle in message
    assert all(part in message for part in ("'t9'", "'sub:1'", "'cp7'", "'m'"))


def test_blobs_for_put_uses_appends_only_when_the_base_is_stored() -> None:
    checkpoint = {
        "channel_values": {"m": [1, 2, 3], "x": 5},
        "channel_appends": {"m": ("v1", 2)},
    }
    new_versions = {"m": "v2", "x": "v2", "gone": "v2"}
    out = blobs.blobs_for_put(serde, checkpoint, new_versions, lambda c, v: True)
    assert blobs.decode_blob(out["m", "v2"])[:2] == ("append", ("v1", 2))
    assert blobs.decode_blob(out["x", "v2"])[0] == "full"
    assert out["gone", "v2"] == blobs.encode_empty_blob()
    without_base = blobs.blobs_for_put(serde, checkpoint, new_versions, lambda c, v: False)
    assert blobs.decode_blob(without_base["m", "v2"])[0] == "full"
    with pytest.raises(SerializationError, match="channel 'bad'"):
        blobs.blobs_for_put(
            serde, {"channel_values": {"bad": object()}}, {"bad": "v1"}, lambda c, v: True
        )


# --- langchain_core messages (issue 10) ---------------------------------------------------


def _every_lc_message() -> list[Any]:
    import langchain_core.messages as lc

    call = {"name": "f", "args": {"q": 1}, "id": "c1", "type": "tool_call"}
    return [
        lc.AIMessage(
            [{"type": "text", "text": "hi"}, {"type": "image", "url": "http://x/i.png"}],
            id="a", name="n", tool_calls=[call],
            invalid_tool_calls=[{"name": "g", "args": "{bad", "id": "c2", "error": "oops",
                                 "type": "invalid_tool_call"}],
            usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                            "input_token_details": {"cache_read": 1}},
            response_metadata={"model_name": "m", "finish_reason": "stop"},
            additional_kwargs={"refusal": None}, provider_extra=5,
        ),
        lc.AIMessageChunk(content="to", id="b", chunk_position="last", tool_call_chunks=[
            {"name": "f", "args": '{"q"', "id": "c1", "index": 0, "type": "tool_call_chunk"}]),
        lc.HumanMessage("h", id="h", name="ann"),
        lc.HumanMessage([{"type": "text", "text": "look"}, {"type": "image", "base64": "AAAA",
                                                            "mime_type": "image/png"}]),
        lc.SystemMessage("s"),
        lc.ToolMessage("t", tool_call_id="c1", artifact={"raw": [1]}, status="error", name="f"),
        lc.ChatMessage(content="c", role="critic"),
        lc.FunctionMessage("f", name="fn"),
        lc.RemoveMessage(id="r"),
        lc.HumanMessageChunk(content="x"),
        lc.SystemMessageChunk(content="x"),
        lc.ToolMessageChunk(content="x", tool_call_id="1"),
        lc.ChatMessageChunk(content="x", role="r"),
        lc.FunctionMessageChunk(content="x", name="f"),
    ]


@pytest.mark.parametrize("message", _every_lc_message(), ids=lambda m: type(m).__name__)
def test_every_langchain_message_round_trips_with_every_field(message: Any) -> None:
    import relaygraph.runtime.messages  # noqa: F401  (registers the classes)

    back = Serializer().loads(Serializer().dumps([message]))[0]
    assert type(back) is type(message) and back == message
    assert back.model_dump() == message.model_dump() and repr(back) == repr(message)
    assert back.model_fields_set == message.model_fields_set


def test_a_stored_message_of_the_wrong_shape_is_validated_in_full() -> None:
    """The fast decoder takes only exact shapes; anything else meets pydantic's checks."""
    import relaygraph.runtime.messages  # noqa: F401
    from relaygraph.persistence import serde

    def stored(fields: dict[str, Any]) -> bytes:
        body = msgpack.packb(["relaygraph.HumanMessage", fields, []], use_bin_type=True)
        return msgpack.packb(msgpack.ExtType(serde._MODEL, body), use_bin_type=True)

    fields = {"content": "hi", "additional_kwargs": {}, "response_metadata": {},
              "type": "human", "name": None, "id": "1"}
    assert Serializer().loads(stored(fields)).content == "hi"
    with pytest.raises(SerializationError):
        Serializer().loads(stored({**fields, "content": 5}))  # content: an int
    with pytest.raises(SerializationError):
        Serializer().loads(stored({**fields, "type": "ai"}))  # not this class's type
    odd = Serializer().loads(stored({**fields, "id": 7}))  # pydantic coerces what it can
    assert odd.id is not None


def test_every_langchain_message_round_trips_in_a_flat_list() -> None:
    """dumps_list's flat entries, read straight into messages (the fast path of a long
    conversation's cold read): every class, every field, what was set."""
    import relaygraph.runtime.messages  # noqa: F401

    messages = _every_lc_message()
    back = serde.loads(serde.dumps_list(messages))
    assert [type(m) for m in back] == [type(m) for m in messages] and back == messages
    assert [m.model_dump() for m in back] == [m.model_dump() for m in messages]
    assert [m.model_fields_set for m in back] == [m.model_fields_set for m in messages]
    back[2].content = "changed"  # each message is its own object with its own fields set
    assert messages[2].content == "h" and back[3].content != "changed"
    assert back[2].model_fields_set is not back[3].model_fields_set


def test_a_flat_entry_of_the_wrong_shape_is_validated_in_full() -> None:
    """The flat-list fast path takes only exact shapes and types, as the single message's
    decoder: anything else meets pydantic's checks (an error, or what it coerces)."""
    import relaygraph.runtime.messages  # noqa: F401
    from relaygraph.persistence.serde import _MODELS

    keys = ["content", "additional_kwargs", "response_metadata", "type", "name", "id"]
    good = ["hi", {}, {}, "human", None, "1"]

    def stored(*values: list[Any]) -> bytes:
        entries = [[0, 0, *v] for v in values]
        flat = [[["relaygraph.HumanMessage", keys]], [[]], entries]
        return msgpack.packb(msgpack.ExtType(_MODELS, msgpack.packb(flat)))

    first, second = serde.loads(stored(good, ["yo", {}, {}, "human", "ann", "2"]))
    assert (first.content, second.content, second.name) == ("hi", "yo", "ann")
    with pytest.raises(SerializationError):
        serde.loads(stored(good, [5, {}, {}, "human", None, "2"]))  # content: an int
    with pytest.raises(SerializationError):
        serde.loads(stored(["hi", {}, {}, "ai", None, "1"]))  # not this class's type
    (odd,) = serde.loads(stored(["hi", {}, {}, "human", None, 7]))  # pydantic coerces
    assert odd.id is not None
    ai_keys = [*keys, "tool_calls", "invalid_tool_calls", "usage_metadata"]
    bad_calls = ["x", {}, {}, "ai", None, "1", ["not a dict"], [], None]
    flat = [[["relaygraph.AIMessage", ai_keys]], [[]], [[0, 0, *bad_calls]]]
    with pytest.raises(SerializationError):
        serde.loads(msgpack.packb(msgpack.ExtType(_MODELS, msgpack.packb(flat))))


def test_a_message_class_outside_the_allow_list_is_refused() -> None:
    import langchain_core.messages as lc

    class Custom(lc.AIMessage):
        pass

    with pytest.raises(SerializationError, match="Custom"):
        Serializer().dumps({"messages": [Custom("x")]})


def test_dumps_list_stores_a_list_of_models_flat_and_reads_it_back() -> None:
    from relaygraph import AIMessage, HumanMessage, ToolMessage

    items: list[Any] = [
        HumanMessage(content="hi", id="1"),
        AIMessage(content=[{"type": "text", "text": "x"}], tool_calls=[], name="bot"),
        ToolMessage(content="ok", tool_call_id="c1", status="error", custom="kept"),
        Outer(title="t", inner=Inner(tags={"a"}, when=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))),
    ]
    data = serde.dumps_list(items)
    assert data != serde.dumps(items)
    back = serde.loads(data)
    assert back == items and [type(m) for m in back] == [type(m) for m in items]
    assert [m.model_fields_set for m in back] == [m.model_fields_set for m in items]
    assert back[2].custom == "kept"


def test_dumps_list_of_anything_else_is_dumps_and_corrupt_flat_lists_are_clear() -> None:
    mixed = [Inner(), "text", 3]
    assert serde.dumps_list(mixed) == serde.dumps(mixed)
    assert serde.loads(serde.dumps_list([])) == []
    unknown = [[["tests.serde.Nope", []]], [[]], [[0, 0]]]
    bad = msgpack.packb(msgpack.ExtType(16, msgpack.packb(unknown)))
    with pytest.raises(SerializationError, match="unknown stored type"):
        serde.loads(bad)
    with pytest.raises(SerializationError):
        serde.loads(msgpack.packb(msgpack.ExtType(16, msgpack.packb([1, 2]))))
    short = [[["tests.serde.Inner", ["tags", "when"]]], [[]], [[0, 0, None]]]
    with pytest.raises(SerializationError, match="does not match its shape"):
        serde.loads(msgpack.packb(msgpack.ExtType(16, msgpack.packb(short))))
    # Field names are stored with each shape: a class that gained a field since still reads.
    shape = ["relaygraph.HumanMessage", ["content", "type"]]
    older = [[shape], [["type"]], [[0, 0, "hi", "human"]]]
    (message,) = serde.loads(msgpack.packb(msgpack.ExtType(16, msgpack.packb(older))))
    assert message.content == "hi" and message.model_fields_set == {"content"}


def test_putting_a_held_version_again_checks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A put primes every list channel, also those whose version did not move: a long
    conversation's unchanged history must not be scanned again on every put."""
    cache = blobs.ResolvedCache(maxsize=4)
    cache.put("m", "v1", list(range(1000)))
    scanned: list[int] = []
    real = blobs._all_shareable

    def counted(items: list[Any]) -> bool:
        scanned.append(len(items))
        return real(items)

    monkeypatch.setattr(blobs, "_all_shareable", counted)
    cache.put("m", "v1", list(range(1000)))
    assert scanned == []
    cache.put("m", "v2", [*range(1000), 1000], ("v1", 1000))  # an append: its new item only
    assert scanned == [1]
    cache.put("m", "v1", [0])  # a different length than held: checked and stored as given
    assert scanned == [1, 1] and cache.get("m", "v1") == [0]
    assert cache.get("m", "v2") == list(range(1001))


def test_the_flat_entry_reader_takes_only_identifier_field_names() -> None:
    """Compiled from a class's field names: anything but identifiers is refused."""
    from relaygraph.runtime.message_codec import _entry_readers

    values_of, types_of = _entry_readers(("content", "id"))
    assert values_of([0, 0, "hi", "1"]) == {"content": "hi", "id": "1"}
    assert types_of([0, 0, "hi", None]) == (str, type(None))
    for names in (("content", "x}; import os; {"), ("a b",), ("",)):
        with pytest.raises(ValueError, match="identifiers"):
            _entry_readers(names)
