"""Assistants: versioned configurations of registered graphs, as LangGraph's server keeps them.

Every registered graph has a default assistant (``assistant_id_of(graph)``, the same on every
replica, created by the system). ``POST /assistants`` stores more: a graph, a config, a
context, metadata, a name and a description. ``PATCH`` adds a version and makes it the
current one; ``/latest`` makes an earlier version current again; a run with the assistant
starts from its current version's config and context (the run's own values win).

Storage, one hash per assistant (``rgw:{assistant:<id>}:api:assistant``: ``created``,
``updated``, ``latest`` (the current version), ``top`` (the highest) and ``v:<n>``, version
``n`` as JSON) and one global sorted set, id -> creation ms, for search. A new version is
written by a compare-and-set on ``top`` (a script), so two replicas updating one assistant
at once both land, one after the other, and neither overwrites the other's version. A
default assistant is stored only once it is updated: its first stored version is the
default itself, so its versions read 1 (default), 2 (the update), ...
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from relaygraph.api.encode import iso
from relaygraph.workers.keys import PREFIX
from relaygraph.workers.threads import assistant_id_of, now_ms

__all__ = ["ASSISTANTS", "AssistantConflict", "AssistantStore", "assistant_key", "merge_config"]

ASSISTANTS = f"{PREFIX}:api:assistants"
"""Global sorted set: stored assistant id -> creation time (ms)."""

_WRITE_ATTEMPTS = 20

# KEYS[1] the assistant's hash. ARGV[1] the `top` the caller read ("" for none), ARGV[2] now
# (ms), ARGV[3..] the versions to append, JSON, oldest first. Returns {1, top} when they
# landed, {0, top} when `top` moved meanwhile (the caller reads again and retries).
_APPEND = """
local top = redis.call('HGET', KEYS[1], 'top') or ''
if top ~= ARGV[1] then return {0, top} end
local n = tonumber(top) or 0
if n == 0 then redis.call('HSET', KEYS[1], 'created', ARGV[2]) end
for i = 3, #ARGV do
  n = n + 1
  redis.call('HSET', KEYS[1], 'v:' .. n, ARGV[i])
end
redis.call('HSET', KEYS[1], 'top', n, 'latest', n, 'updated', ARGV[2])
return {1, tostring(n)}
"""

# KEYS[1] the assistant's hash. ARGV[1] the version to make current, ARGV[2] now (ms).
# Returns 1, or 0 when the assistant has no such version.
_SET_LATEST = """
if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'latest', ARGV[1], 'updated', ARGV[2])
return 1
"""

VERSION_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")
"""What a version holds (with its number and creation time)."""


class AssistantConflict(Exception):
    """An assistant id that is taken, or a default assistant asked to go."""


def assistant_key(assistant_id: str) -> str:
    """The hash of a stored assistant (its versions and times)."""
    return f"{PREFIX}:{{assistant:{assistant_id}}}:api:assistant"


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A run's config from its assistant's and its own: the run's keys win, and the two
    ``configurable`` dicts merge key by key (as LangGraph's server merges them).

    >>> merge_config({"configurable": {"model": "a", "t": 1}, "tags": ["x"]},
    ...              {"configurable": {"model": "b"}})
    {'configurable': {'model': 'b', 't': 1}, 'tags': ['x']}
    """
    merged = {**base, **override}
    configurable = {**(base.get("configurable") or {}), **(override.get("configurable") or {})}
    if configurable or "configurable" in base or "configurable" in override:
        merged["configurable"] = configurable
    return merged


class AssistantStore:
    """The stored assistants on a redis-py client (``decode_responses`` off), beside the
    default ones of ``graphs`` (the registered graph names, called for each use)."""

    def __init__(self, redis: Any, graphs: Any) -> None:
        self.redis = redis
        self._graphs = graphs
        self._append = redis.register_script(_APPEND)
        self._set_latest = redis.register_script(_SET_LATEST)

    # -- reading ---------------------------------------------------------------------

    def defaults(self) -> dict[str, str]:
        """Default assistant id -> its graph, for every registered graph."""
        return {assistant_id_of(name): name for name in self._graphs()}

    def resolve(self, assistant_id: str) -> str:
        """The id ``assistant_id`` names: itself, or a graph name's default assistant."""
        return assistant_id_of(assistant_id) if assistant_id in self._graphs() else assistant_id

    def get(self, assistant_id: str) -> dict[str, Any] | None:
        """The assistant (its current version) by id or graph name, or None."""
        assistant_id = self.resolve(assistant_id)
        stored = self._read([assistant_id])[0]
        if stored is not None:
            return _current(assistant_id, stored)
        graph = self.defaults().get(assistant_id)
        return None if graph is None else default_assistant(graph)

    def all(self) -> list[dict[str, Any]]:
        """Every assistant: the stored ones and the defaults never updated."""
        ids = [raw.decode() for raw in self.redis.zrange(ASSISTANTS, 0, -1)]
        found: dict[str, dict[str, Any]] = {}
        for assistant_id, stored in zip(ids, self._read(ids), strict=True):
            if stored is not None:
                found[assistant_id] = _current(assistant_id, stored)
        for assistant_id, graph in self.defaults().items():
            found.setdefault(assistant_id, default_assistant(graph))
        return list(found.values())

    def versions(self, assistant_id: str) -> list[dict[str, Any]] | None:
        """Every version of the assistant, newest first, or None for an unknown one."""
        assistant_id = self.resolve(assistant_id)
        stored = self._read([assistant_id])[0]
        if stored is not None:
            return [
                _version(assistant_id, n, stored[f"v:{n}"])
                for n in sorted(_numbers(stored), reverse=True)
            ]
        graph = self.defaults().get(assistant_id)
        return None if graph is None else [_strip_updated(default_assistant(graph))]

    def _read(self, ids: list[str]) -> list[dict[str, Any] | None]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for assistant_id in ids:
            pipe.hgetall(assistant_key(assistant_id))
        out: list[dict[str, Any] | None] = []
        for raw in pipe.execute():
            record = {k.decode(): v.decode() for k, v in raw.items()}
            out.append(record if "latest" in record else None)
        return out

    # -- writing ---------------------------------------------------------------------

    def create(
        self, version: dict[str, Any], assistant_id: str | None, if_exists: str
    ) -> dict[str, Any]:
        """Store a new assistant (version 1); with ``if_exists='do_nothing'`` an existing
        one is returned as it is, else AssistantConflict."""
        assistant_id = assistant_id or str(uuid.uuid4())
        existing = self.get(assistant_id)
        if existing is None and assistant_id not in self._graphs():
            now = now_ms()
            landed, _ = self._append(
                keys=[assistant_key(assistant_id)],
                args=["", now, _dump(version, now)],
            )
            if int(landed):
                self.redis.zadd(ASSISTANTS, {assistant_id: now}, nx=True)
                found = self.get(assistant_id)
                assert found is not None
                return found
            existing = self.get(assistant_id)  # another request created it just now
        if if_exists == "do_nothing" and existing is not None:
            return existing
        raise AssistantConflict(f"assistant {assistant_id!r} already exists")

    def update(self, assistant_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Add a version from the current one and ``changes`` (metadata merged key by key,
        the other fields replaced), make it current; None for an unknown assistant."""
        assistant_id = self.resolve(assistant_id)
        key = assistant_key(assistant_id)
        for _ in range(_WRITE_ATTEMPTS):
            stored = self._read([assistant_id])[0]
            appended: list[dict[str, Any]] = []
            if stored is not None:
                latest = stored["latest"]
                current = _version(assistant_id, int(latest), stored[f"v:{latest}"])
                top = stored["top"]
            else:
                graph = self.defaults().get(assistant_id)
                if graph is None:
                    return None
                current, top = default_assistant(graph), ""
                appended.append({f: current[f] for f in VERSION_FIELDS})  # version 1
            new = {f: current[f] for f in VERSION_FIELDS}
            for field, value in changes.items():
                new[field] = {**new["metadata"], **value} if field == "metadata" else value
            appended.append(new)
            now = now_ms()
            landed, number = self._append(
                keys=[key], args=[top, now, *(_dump(v, now) for v in appended)]
            )
            if int(landed):  # (indexed on every write: heals an entry a crash lost)
                self.redis.zadd(ASSISTANTS, {assistant_id: now}, nx=True)
                written = self._read([assistant_id])[0]
                assert written is not None
                # the version this call wrote (another may be current already)
                return _current(assistant_id, written, int(number))
        raise RuntimeError(f"assistant {assistant_id!r}: {_WRITE_ATTEMPTS} updates raced this one")

    def set_latest(self, assistant_id: str, version: int) -> dict[str, Any] | None:
        """Make ``version`` current; None when the assistant or the version is unknown."""
        assistant_id = self.resolve(assistant_id)
        if self._read([assistant_id])[0] is None:
            default = self.get(assistant_id)
            return default if default is not None and version == 1 else None
        if not int(self._set_latest(keys=[assistant_key(assistant_id)], args=[version, now_ms()])):
            return None
        return self.get(assistant_id)

    def delete(self, assistant_id: str) -> bool:
        """Drop a stored assistant; False for an unknown one. A default assistant is part
        of its graph's registration: AssistantConflict."""
        assistant_id = self.resolve(assistant_id)
        if assistant_id in self.defaults():
            graph = self.defaults()[assistant_id]
            raise AssistantConflict(
                f"assistant {assistant_id!r} is graph {graph!r}'s default: it goes with the "
                "graph's registration (RELAYGRAPH_GRAPHS), not through the API"
            )
        removed = self.redis.delete(assistant_key(assistant_id))
        self.redis.zrem(ASSISTANTS, assistant_id)
        return bool(removed)


def default_assistant(graph: str) -> dict[str, Any]:
    """The default assistant of registered graph ``graph`` (version 1, never stored)."""
    epoch = iso(0)
    return {
        "assistant_id": assistant_id_of(graph),
        "graph_id": graph,
        "name": graph,
        "description": None,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": epoch,
        "updated_at": epoch,
    }


def matches(assistant: dict[str, Any], graph_id: str | None, name: str | None,
            metadata: dict[str, Any] | None) -> bool:
    """Search's filter: the graph exactly, the name as a case-blind substring, and every
    metadata key equal."""
    return (
        (graph_id is None or assistant["graph_id"] == graph_id)
        and (name is None or name.lower() in (assistant["name"] or "").lower())
        and all(assistant["metadata"].get(k) == v for k, v in (metadata or {}).items())
    )


def _dump(version: dict[str, Any], now: int) -> str:
    return json.dumps({**{f: version.get(f) for f in VERSION_FIELDS}, "created": now})


def _numbers(stored: dict[str, str]) -> Iterable[int]:
    return (int(field[2:]) for field in stored if field.startswith("v:"))


def _version(assistant_id: str, number: int, raw: str) -> dict[str, Any]:
    data = json.loads(raw)
    return {
        "assistant_id": assistant_id,
        **{f: data.get(f) for f in VERSION_FIELDS},
        "version": number,
        "created_at": iso(data["created"]),
    }


def _current(
    assistant_id: str, stored: dict[str, str], number: int | None = None
) -> dict[str, Any]:
    latest = int(stored["latest"]) if number is None else number
    return {
        **_version(assistant_id, latest, stored[f"v:{latest}"]),
        "created_at": iso(stored["created"]),
        "updated_at": iso(stored["updated"]),
    }


def _strip_updated(assistant: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in assistant.items() if k != "updated_at"}
