"""A run's Redis event stream as the SDK's Server-Sent Events.

The run's events are read from its Redis stream (``XREAD`` from the last id sent), so a
stream survives the server: the SSE ``id`` of each event is its stream entry id, and a
client that reconnects with ``Last-Event-ID`` (to any replica) continues after it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
from sse_starlette import ServerSentEvent

from relaygraph.api.encode import to_json
from relaygraph.persistence.serde import Serializer
from relaygraph.workers.client import FINAL
from relaygraph.workers.keys import ThreadKeys

__all__ = ["EventMapper", "read_events", "sse_stream"]

IDLE_BLOCK_MS = 1000
"""How long one XREAD waits before the run's status is checked (a cancelled run writes
no end event)."""


class EventMapper:
    """Turns a run's recorded events into SDK events for the requested stream modes.

    ``messages-tuple`` gives each token chunk as ``[chunk, metadata]`` (event
    ``messages``); ``messages`` gives ``messages/metadata`` once per message, then
    ``messages/partial`` with the message so far (``messages/complete`` for a whole
    message), as LangGraph's server does.
    """

    def __init__(self, modes: Iterable[str], run_id: str) -> None:
        self.modes = set(modes)
        self.run_id = run_id
        self._partial: dict[str, dict[str, Any]] = {}

    def map(self, mode: str, data: Any) -> list[tuple[str, Any]]:
        """The ``(event, JSON data)`` pairs one recorded event becomes (maybe none).

        A subgraph's event (``mode|namespace``, a run with ``stream_subgraphs``) keeps its
        name, as LangGraph's server sends it; its tokens come as ``messages-tuple`` pairs.
        """
        base, sep, _namespace = mode.partition("|")
        if sep:
            if base == "messages":
                wanted = "messages-tuple" in self.modes and isinstance(data, list | tuple)
                return [(mode, [to_json(data[0]), to_json(data[1])])] if wanted else []
            return [(mode, to_json(data))] if base in self.modes else []
        if mode == "status":
            return self._end(data)
        if mode == "messages":
            return self._messages(data)
        out: list[tuple[str, Any]] = []
        interrupt = mode == "updates" and isinstance(data, dict) and "__interrupt__" in data
        if interrupt and "values" in self.modes:
            # LangGraph's server shows an interrupt in values mode as a values chunk too.
            out.append(("values", {"__interrupt__": to_json(data["__interrupt__"])}))
        if mode in self.modes:
            out.insert(0, (mode, to_json(data)))
        return out

    def _end(self, data: Any) -> list[tuple[str, Any]]:
        status = (data or {}).get("status", "success")
        out: list[tuple[str, Any]] = []
        if status == "error":
            text = (data or {}).get("error") or "the run failed"
            error, _, message = text.partition(": ")
            out.append(("error", {"error": error, "message": message or text}))
        out.append(("end", None))
        return out

    def _messages(self, data: Any) -> list[tuple[str, Any]]:
        if not isinstance(data, list | tuple) or len(data) != 2:
            return []
        chunk, metadata = to_json(data[0]), to_json(data[1])
        out: list[tuple[str, Any]] = []
        if "messages-tuple" in self.modes:
            out.append(("messages", [chunk, metadata]))
        if "messages" in self.modes and isinstance(chunk, dict):
            message_id = str(chunk.get("id") or "")
            if message_id not in self._partial:
                out.append(("messages/metadata", {message_id: {"metadata": metadata}}))
            if str(chunk.get("type", "")).endswith("Chunk"):
                merged = _merge(self._partial.get(message_id), chunk)
                self._partial[message_id] = merged
                out.append(("messages/partial", [merged]))
            else:
                self._partial[message_id] = chunk
                out.append(("messages/complete", [chunk]))
        return out


def _merge(previous: dict[str, Any] | None, chunk: dict[str, Any]) -> dict[str, Any]:
    """A message so far plus one more chunk (content concatenated)."""
    if previous is None:
        return dict(chunk)
    merged = dict(previous)
    before, more = previous.get("content", ""), chunk.get("content", "")
    if isinstance(before, str) and isinstance(more, str):
        merged["content"] = before + more
    else:
        merged["content"] = _as_list(before) + _as_list(more)
    for key, value in chunk.items():
        if key != "content" and value not in (None, "", [], {}):
            merged[key] = value
    return merged


def _as_list(content: Any) -> list[Any]:
    return content if isinstance(content, list) else ([content] if content else [])


async def read_events(
    aredis: Any, thread_id: str, run_id: str, after: str = "0-0"
) -> AsyncIterator[tuple[str, str, Any]]:
    """``(id, mode, data)`` of the run's events after ``after``, live, until its end.

    Ends after the ``status`` event; a run that ended without one (cancelled) gets a
    synthetic ``status`` event with an empty id.
    """
    keys = ThreadKeys(thread_id)
    serde = Serializer()
    last = after
    quiet = 0
    while True:
        reply = await aredis.xread({keys.events(run_id): last}, count=100, block=IDLE_BLOCK_MS)
        if not reply:
            status = await aredis.hget(keys.run(run_id), "status")
            status = status.decode() if status else None
            if status is None or status in FINAL:
                quiet += 1  # the end event follows the final status: give it a moment
                if quiet >= 2 or status is None or status == "cancelled":
                    yield "", "status", {"status": status or "cancelled", "error": ""}
                    return
            continue
        quiet = 0
        for _stream, entries in reply:
            for entry_id, fields in entries:
                last = entry_id.decode()
                mode = fields[b"mode"].decode()
                data = serde.loads(fields[b"data"], where=f"event {last}")
                yield last, mode, data
                if mode == "status":
                    return


async def sse_stream(
    aredis: Any,
    thread_id: str,
    run_id: str,
    modes: Iterable[str],
    *,
    last_event_id: str | None = None,
    on_end: Any = None,
    on_disconnect: Any = None,
) -> AsyncIterator[ServerSentEvent]:
    """The SSE events of a run: ``metadata`` first (on a fresh stream), then the mapped
    events (each with its Redis id), then ``end``.

    ``on_end()`` runs after the end event (deleting a stateless run's thread);
    ``on_disconnect()`` when the client left before it (cancelling the run).
    """
    mapper = EventMapper(modes, run_id)
    ended = False
    try:
        if not last_event_id:
            yield ServerSentEvent(
                data=json.dumps({"run_id": run_id, "attempt": 1}), event="metadata"
            )
        async for event_id, mode, data in read_events(
            aredis, thread_id, run_id, last_event_id or "0-0"
        ):
            for event, payload in mapper.map(mode, data):
                yield ServerSentEvent(
                    data=json.dumps(payload, default=repr), event=event, id=event_id or None
                )
        ended = True
    finally:
        # A client that left cancels this generator: shield the clean-up from that.
        with anyio.CancelScope(shield=True):
            if ended and on_end is not None:
                await on_end()
            elif not ended and on_disconnect is not None:
                await on_disconnect()
