"""The mapping of recorded run events to the SDK's SSE events (pure logic)."""

from __future__ import annotations

from relaygraph import AIMessage
from relaygraph.api.backend import engine_modes
from relaygraph.api.streaming import EventMapper
from relaygraph.runtime.types import Interrupt


def _chunk(text: str, id: str = "m1") -> dict:
    return {"type": "AIMessageChunk", "content": text, "id": id}


def test_messages_tuple_mode() -> None:
    mapper = EventMapper(["messages-tuple"], "run")
    meta = {"langgraph_node": "model", "langgraph_step": 1}
    assert mapper.map("messages", [_chunk("Hel"), meta]) == [("messages", [_chunk("Hel"), meta])]
    # a message object is serialized as the SDK expects a message dict
    ((event, (message, _)),) = mapper.map("messages", [AIMessage("done", id="m2"), meta])
    assert event == "messages" and message["type"] == "ai" and message["content"] == "done"


def test_messages_mode_accumulates_partials() -> None:
    mapper = EventMapper(["messages"], "run")
    meta = {"langgraph_node": "model"}
    first = mapper.map("messages", [_chunk("Hel"), meta])
    assert first == [
        ("messages/metadata", {"m1": {"metadata": meta}}),
        ("messages/partial", [_chunk("Hel")]),
    ]
    second = mapper.map("messages", [_chunk("lo"), meta])
    assert second == [("messages/partial", [_chunk("Hello")])]
    whole = mapper.map("messages", [{"type": "ai", "content": "Hi", "id": "m3"}, meta])
    assert [event for event, _ in whole] == ["messages/metadata", "messages/complete"]
    assert mapper.map("messages", "not a pair") == []


def test_both_message_modes_and_others_filtered() -> None:
    mapper = EventMapper(["messages", "messages-tuple"], "run")
    events = [event for event, _ in mapper.map("messages", [_chunk("x"), {}])]
    assert events == ["messages", "messages/metadata", "messages/partial"]
    assert mapper.map("values", {"a": 1}) == []  # not requested
    assert engine_modes(["messages-tuple", "values", "tools"])[-1] == "values"


def test_interrupt_and_end_events() -> None:
    mapper = EventMapper(["values"], "run")
    interrupt = {"__interrupt__": (Interrupt("name?", "i1"),)}
    assert mapper.map("updates", interrupt) == [
        ("values", {"__interrupt__": [{"value": "name?", "id": "i1"}]})
    ]
    assert mapper.map("status", {"status": "success", "error": ""}) == [("end", None)]
    failed = mapper.map("status", {"status": "error", "error": "ValueError: boom"})
    assert failed == [("error", {"error": "ValueError", "message": "boom"}), ("end", None)]
