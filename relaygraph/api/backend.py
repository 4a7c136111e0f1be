"""What the routes do, on the workers' Client and Redis: assistants, threads, runs.

Everything a request needs is read from Redis on the spot (run records, thread records,
checkpoints); the process keeps only connections and the loaded graphs, so any replica
answers any request.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from relaygraph.api.assistants import AssistantConflict, AssistantStore, merge_config
from relaygraph.api.crons import (
    CronError,
    CronStore,
    check_schedule,
    cron_end,
    new_cron,
    zone,
)
from relaygraph.api.encode import iso, to_json
from relaygraph.api.errors import ApiError, not_found
from relaygraph.api.housekeeping import delete_when_over
from relaygraph.api.paging import sorted_page
from relaygraph.api.schemas import (
    AssistantCreate,
    AssistantUpdate,
    CronCreate,
    CronSearch,
    CronUpdate,
    RunCreate,
    Superstep,
    ThreadTTL,
)
from relaygraph.api.settings import ApiSettings
from relaygraph.api.thread_ttl import set_ttl
from relaygraph.persistence.errors import CheckpointNotFoundError
from relaygraph.runtime.types import Command, StateSnapshot, StateUpdate
from relaygraph.workers.client import FINAL, Client, InvalidInputError, RunRejectedError
from relaygraph.workers.connect import async_redis_client, is_cluster_client
from relaygraph.workers.engine import STREAM_MODES
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.threads import assistant_id_of, now_ms

__all__ = ["Backend", "assistant_id_of", "engine_modes"]

log = logging.getLogger("relaygraph.api")

ACTIVE = frozenset({"pending", "running"})
CRON_RUN_FIELDS = (
    "input", "config", "context", "metadata", "interrupt_before", "interrupt_after",
    "multitask_strategy", "stream_mode", "stream_subgraphs",
)  # fmt: skip
"""A cron's run payload: the fields of each run it submits."""
SEARCH_BATCH = 200
"""Thread records thread search reads per round trip."""


def engine_modes(requested: list[str]) -> tuple[str, ...]:
    """What a run must record for the SDK modes ``requested``.

    ``messages`` and ``messages-tuple`` both read the run's ``messages`` events (recorded
    once the engine has that mode); modes the engine has no events for record nothing.
    """
    wanted = {"messages" if mode == "messages-tuple" else mode for mode in requested}
    modes = tuple(sorted(wanted & STREAM_MODES))
    return modes or ("values",)


def requested_modes(info: dict[str, str]) -> list[str]:
    """The stream modes a run was asked for: the SDK's (API runs), else the ones the run
    records (runs from the Python Client or the CLI)."""
    return (info.get("api_stream_modes") or info.get("stream_modes") or "values").split(",")


def run_status(raw: str) -> str:
    """A run's status in the SDK's words (a cancelled run is ``interrupted``)."""
    return "interrupted" if raw == "cancelled" else raw


class Backend:
    """The API's operations; one per process, shared by the routes."""

    def __init__(self, settings: ApiSettings, graphs: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.client = Client(settings=settings, graphs=graphs)
        self.redis = self.client.redis
        self.records = self.client.threads  # the Client writes them on every submit
        # The same kind of client as the workers' (a single Redis, or a cluster).
        cluster = is_cluster_client(self.redis)
        self.aredis = async_redis_client(settings.redis_url, cluster=cluster)
        self._store: Any = None
        self.assistant_store = AssistantStore(self.redis, self.client.registry.names)
        self.crons = CronStore(self.redis)

    def close(self) -> None:
        """Release the sync connections (the async client closes with the app)."""
        self.client.close()

    # -- assistants ------------------------------------------------------------------

    def assistants(self) -> list[dict[str, Any]]:
        """Every assistant: each registered graph's default and the ones created."""
        return self.assistant_store.all()

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        """The assistant (its current version) by id, or by graph name as the SDK allows;
        404."""
        found = self.assistant_store.get(assistant_id)
        if found is None:
            raise not_found("assistant", assistant_id)
        return found

    def graph_name(self, assistant_id: str, assistant: dict[str, Any] | None = None) -> str:
        """The registered graph an assistant id (or a graph name) runs; 404."""
        graph = (assistant or self.assistant(assistant_id))["graph_id"]
        if graph not in self.client.registry.names():
            raise ApiError(
                404, f"assistant {assistant_id!r} runs graph {graph!r}, which is not registered"
            )
        return graph

    def create_assistant(self, body: AssistantCreate) -> dict[str, Any]:
        """Store an assistant of a registered graph; 404 for an unknown graph, 409 for a
        taken id (unless ``if_exists='do_nothing'``)."""
        self._require_graph(body.graph_id)
        version = {
            "graph_id": body.graph_id,
            "config": body.config or {},
            "context": body.context or {},
            "metadata": body.metadata or {},
            "name": body.name or "Untitled",
            "description": body.description,
        }
        try:
            return self.assistant_store.create(version, body.assistant_id, body.if_exists)
        except AssistantConflict as exc:
            raise ApiError(409, str(exc)) from exc

    def update_assistant(self, assistant_id: str, body: AssistantUpdate) -> dict[str, Any]:
        """A new current version with the fields sent; 404 for an unknown assistant or
        graph."""
        changes = body.model_dump(exclude_unset=True)
        for field in ("config", "context", "metadata"):
            if field in changes and changes[field] is None:
                changes[field] = {}
        if changes.get("graph_id") is None:
            changes.pop("graph_id", None)
        else:
            self._require_graph(changes["graph_id"])
        updated = self.assistant_store.update(assistant_id, changes)
        if updated is None:
            raise not_found("assistant", assistant_id)
        return updated

    def delete_assistant(self, assistant_id: str, delete_threads: bool) -> None:
        """Drop a created assistant (with ``delete_threads``, also the threads whose
        metadata names it); 404 unknown, 409 a graph's default."""
        resolved = self.assistant(assistant_id)["assistant_id"]
        if delete_threads:
            mine = self._matching({"assistant_id": resolved}, None, None)
            with contextlib.closing(mine) as found:
                doomed = [thread_id for thread_id, _ in found]
            for thread_id in doomed:
                self.delete_thread(thread_id)
        try:
            if not self.assistant_store.delete(resolved):
                raise not_found("assistant", assistant_id)
        except AssistantConflict as exc:
            raise ApiError(409, str(exc)) from exc

    def assistant_versions(self, assistant_id: str) -> list[dict[str, Any]]:
        """The assistant's versions, newest first; 404."""
        versions = self.assistant_store.versions(assistant_id)
        if versions is None:
            raise not_found("assistant", assistant_id)
        return versions

    def set_latest_assistant(self, assistant_id: str, version: int) -> dict[str, Any]:
        """Make an earlier (or later) version current; 404 for an unknown one."""
        self.assistant(assistant_id)
        found = self.assistant_store.set_latest(assistant_id, version)
        if found is None:
            raise ApiError(404, f"assistant {assistant_id!r} has no version {version}")
        return found

    def _require_graph(self, graph: str) -> None:
        if graph not in self.client.registry.names():
            names = ", ".join(sorted(self.client.registry.names()))
            raise ApiError(404, f"graph {graph!r} is not registered (registered: {names})")

    def graph(self, name: str) -> Any:
        """The compiled graph registered as ``name``."""
        return self.client.registry.get(name)

    # -- crons -----------------------------------------------------------------------

    def create_cron(self, thread_id: str | None, body: CronCreate) -> dict[str, Any]:
        """A cron of an assistant on a thread (or each run on a new thread); 404 for an
        unknown assistant or thread, 422 naming a bad schedule, timezone or field."""
        if body.webhook:
            raise ApiError(422, "webhook: not supported (runs here call no webhooks)")
        assistant = self.assistant(body.assistant_id)
        self.graph_name(body.assistant_id, assistant)
        if thread_id is not None:
            self.require_thread(thread_id)
        fields = body.model_dump(include=set(CRON_RUN_FIELDS))
        try:
            cron = new_cron(
                assistant["assistant_id"],
                thread_id,
                body.schedule,
                fields,
                timezone=body.timezone,
                end_time=body.end_time,
                enabled=True if body.enabled is None else body.enabled,
                on_run_completed=body.on_run_completed,
                metadata=body.metadata or {},
            )
        except CronError as exc:
            raise ApiError(422, str(exc)) from exc
        return self.crons.save(cron)

    def cron(self, cron_id: str) -> dict[str, Any]:
        """The cron; 404."""
        found = self.crons.get(cron_id)
        if found is None:
            raise not_found("cron", cron_id)
        return found

    def update_cron(self, cron_id: str, body: CronUpdate) -> dict[str, Any]:
        """The cron with the fields sent changed, its next fire computed again; 404, 422."""
        changes = body.model_dump(exclude_unset=True)
        if changes.get("webhook"):
            raise ApiError(422, "webhook: not supported (runs here call no webhooks)")
        cron = {k: v for k, v in self.cron(cron_id).items() if k != "next_run_date"}
        payload = dict(cron["payload"])
        for field in CRON_RUN_FIELDS:
            if field in changes:
                payload[field] = changes[field]
        cron["payload"] = payload
        if "metadata" in changes:
            cron["metadata"] = changes["metadata"] or {}
        for field in ("schedule", "timezone", "enabled"):
            if changes.get(field) is not None:
                cron[field] = changes[field]
        if "end_time" in changes:
            cron["end_time"] = cron_end(changes["end_time"])
        if changes.get("on_run_completed") and cron["thread_id"] is None:
            cron["on_run_completed"] = changes["on_run_completed"]
        try:
            check_schedule(cron["schedule"])
            zone(cron["timezone"])
        except CronError as exc:
            raise ApiError(422, str(exc)) from exc
        cron["updated_at"] = iso(now_ms())
        return self.crons.save(cron)

    def delete_cron(self, cron_id: str) -> None:
        """Delete the cron (runs it submitted are left as they are); 404."""
        if not self.crons.delete(cron_id):
            raise not_found("cron", cron_id)

    def search_crons(self, body: CronSearch) -> list[dict[str, Any]]:
        """Crons matching assistant, thread, enabled and metadata, sorted, one page."""
        page, _more = sorted_page(
            self._matching_crons(body),
            id_key="cron_id",
            sort_by=body.sort_by,
            sort_order=body.sort_order,
            offset=body.offset,
            limit=body.limit,
            select=body.select,
        )
        return page

    def count_crons(self, body: CronSearch) -> int:
        """How many crons match."""
        return len(self._matching_crons(body))

    def _matching_crons(self, body: CronSearch) -> list[dict[str, Any]]:
        assistant = (
            self.assistant_store.resolve(body.assistant_id) if body.assistant_id else None
        )
        return [
            c
            for c in self.crons.all()
            if (assistant is None or c["assistant_id"] == assistant)
            and (body.thread_id is None or c["thread_id"] == body.thread_id)
            and (body.enabled is None or c["enabled"] == body.enabled)
            and all(c["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
        ]

    def fire_cron(self, cron: dict[str, Any]) -> None:
        """Submit one run of the cron (the scheduler claimed this fire)."""
        thread_id = cron["thread_id"]
        if thread_id is not None and self.records.get(thread_id) is None:
            log.warning("cron %s: thread %s is gone; the cron goes too", cron["cron_id"], thread_id)
            self.crons.delete(cron["cron_id"])
            return
        payload = {k: v for k, v in cron["payload"].items() if v is not None}
        payload["metadata"] = {**(payload.get("metadata") or {}), "cron_id": cron["cron_id"]}
        body = RunCreate(assistant_id=cron["assistant_id"], **payload)
        run = self.create_run(thread_id, body)
        if thread_id is None and cron["on_run_completed"] != "keep":
            delete_when_over(self.redis, run["thread_id"])

    # -- threads ---------------------------------------------------------------------

    def require_thread(self, thread_id: str) -> dict[str, Any]:
        """The thread's record; 404 for an unknown thread."""
        record = self.records.get(thread_id)
        if record is None:
            raise not_found("thread", thread_id)
        return record

    def create_thread(
        self,
        thread_id: str | None,
        metadata: dict[str, Any] | None,
        if_exists: str,
        supersteps: list[Superstep] | None = None,
        ttl: ThreadTTL | None = None,
    ) -> dict[str, Any]:
        """Create a thread (409 when it exists, unless ``if_exists='do_nothing'``, which
        returns it as it is). ``supersteps`` fill a new thread's history (one checkpoint
        each, as ``bulk_update_state``), for its graph named by metadata ``graph_id``; a
        superstep refused leaves no thread behind (422). ``ttl``: deleted once idle that
        long (:mod:`relaygraph.api.thread_ttl`)."""
        thread_id = thread_id or str(uuid.uuid4())
        graph = self._superstep_graph(metadata, supersteps) if supersteps else None
        if not self.records.create(thread_id, metadata or {}):
            if if_exists != "do_nothing":
                raise ApiError(409, f"thread {thread_id!r} already exists")
            return self.thread(thread_id)
        if graph is not None and supersteps:
            updates = [
                [StateUpdate(u.values, u.as_node) for u in step.updates] for step in supersteps
            ]
            try:
                self.client._bound(graph).bulk_update_state(
                    {"configurable": {"thread_id": thread_id}}, updates
                )
            except (ValueError, KeyError, TypeError) as exc:  # (InvalidUpdateError too)
                self.client.delete(thread_id)  # nothing half-made stays
                raise ApiError(422, f"supersteps: {exc}") from exc
        if ttl is not None:
            set_ttl(self.redis, thread_id, ttl)
        return self.thread(thread_id)

    def _superstep_graph(
        self, metadata: dict[str, Any] | None, supersteps: list[Superstep]
    ) -> str:
        """The registered graph supersteps apply to; 422 naming what is wrong."""
        graph = (metadata or {}).get("graph_id")
        if graph not in self.client.registry.names():
            raise ApiError(
                422,
                "supersteps: the thread's metadata graph_id (or graph_id=) must name a "
                f"registered graph, not {graph!r}",
            )
        nodes = self.graph(graph).nodes
        for i, step in enumerate(supersteps):
            for update in step.updates:
                if update.command is not None:
                    raise ApiError(
                        422, f"supersteps[{i}]: command updates are not supported; use values"
                    )
                if update.as_node not in nodes:
                    raise ApiError(
                        422, f"supersteps[{i}]: {update.as_node!r} is not a node of {graph!r}"
                    )
        return graph

    def thread_graph(self, thread_id: str, record: dict[str, Any] | None = None) -> str | None:
        """The graph a thread runs (its ``graph_id`` metadata), if known here."""
        record = record or self.require_thread(thread_id)
        name = record["metadata"].get("graph_id")
        return name if name in self.client.registry.names() else None

    def thread(self, thread_id: str) -> dict[str, Any]:
        """The thread as the SDK shows it: record, status, current values, interrupts."""
        record = self.require_thread(thread_id)
        graph = self.thread_graph(thread_id, record)
        snapshot = self.client.get_state(graph, thread_id) if graph else None
        interrupts = {}
        if snapshot is not None:
            for task in snapshot.tasks:
                if task.interrupts:
                    interrupts[task.id] = to_json(task.interrupts)
        return {
            "thread_id": thread_id,
            "created_at": iso(record["created"]),
            "updated_at": iso(record["updated"]),
            "metadata": record["metadata"],
            "status": self.thread_status(thread_id, snapshot),
            "values": to_json(snapshot.values) if snapshot is not None else None,
            "interrupts": interrupts,
        }

    def thread_status(self, thread_id: str, snapshot: StateSnapshot | None = None) -> str:
        """busy (a run is active), interrupted, error (its last run failed) or idle."""
        if self.redis.exists(ThreadKeys(thread_id).active):
            return "busy"
        if snapshot is not None and snapshot.interrupts:
            return "interrupted"
        last = self.records.last_run(thread_id)  # no run is active: the one that ended last
        if last:
            status = self.client.coordinator.run_status(thread_id, last)
            if status == "error":
                return "error"
            if status == "interrupted" and snapshot is not None and snapshot.next:
                return "interrupted"
        return "idle"

    def search_threads(
        self,
        metadata: dict[str, Any] | None,
        ids: list[str] | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        """Threads whose metadata contains ``metadata`` (and of ``status``), newest first.

        The list of threads and the records are read a batch at a time (one round trip
        each) until the page is full; only a thread on the page is read whole (its state),
        and one skipped by ``offset`` only when ``status`` needs it."""
        found: list[dict[str, Any]] = []
        skipped = 0
        with contextlib.closing(self._matching(metadata, ids, status)) as matches:
            for thread_id, thread in matches:
                if skipped < offset:
                    skipped += 1
                    continue
                if thread is None:
                    try:
                        thread = self.thread(thread_id)
                    except ApiError:  # deleted meanwhile
                        continue
                found.append(thread)
                if len(found) >= limit:
                    break
        return found

    def count_threads(
        self, metadata: dict[str, Any] | None, ids: list[str] | None, status: str | None
    ) -> int:
        """How many threads :meth:`search_threads` would find (no state is read unless
        ``status`` needs it)."""
        with contextlib.closing(self._matching(metadata, ids, status)) as matches:
            return sum(1 for _ in matches)

    def _matching(
        self, metadata: dict[str, Any] | None, ids: list[str] | None, status: str | None
    ) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """``(thread id, the thread when reading its status built it, else None)`` of each
        match, newest first. List entries whose record expired (``RELAYGRAPH_THREAD_TTL``)
        are dropped from the list when the scan ends."""
        if ids:
            listed = self.records.newest_first_of(ids)
            batches: Iterable[list[str]] = (
                listed[i : i + SEARCH_BATCH] for i in range(0, len(listed), SEARCH_BATCH)
            )
        else:
            batches = self.records.newest_first(SEARCH_BATCH)
        expired: list[str] = []
        try:
            for batch in batches:
                for thread_id, record in zip(batch, self.records.get_many(batch), strict=True):
                    if record is None:
                        expired.append(thread_id)
                        continue
                    if metadata and any(
                        record["metadata"].get(k) != v for k, v in metadata.items()
                    ):
                        continue
                    if not status:
                        yield thread_id, None
                        continue
                    try:
                        thread = self.thread(thread_id)
                    except ApiError:  # deleted meanwhile
                        continue
                    if thread["status"] == status:
                        yield thread_id, thread
        finally:
            self.records.forget(*expired)

    def update_thread(
        self, thread_id: str, metadata: dict[str, Any] | None, ttl: ThreadTTL | None = None
    ) -> dict[str, Any]:
        """Merge metadata into the thread's; a ``ttl`` (re)sets its TTL from now."""
        self.require_thread(thread_id)
        if metadata:
            self.records.update(thread_id, metadata)
        if ttl is not None:
            set_ttl(self.redis, thread_id, ttl)
        return self.thread(thread_id)

    def delete_thread(self, thread_id: str) -> None:
        """Cancel the thread's active run, then delete its checkpoints, runs and record."""
        self.require_thread(thread_id)
        active = self.redis.get(ThreadKeys(thread_id).active)
        if active:
            self.client._cancel(thread_id, active.decode(), "cancelled")
        self.client.delete(thread_id)  # the record too

    def copy_thread(self, thread_id: str) -> dict[str, Any]:
        """A new thread with the same metadata and a copy of the whole history."""
        record = self.require_thread(thread_id)
        new_id = str(uuid.uuid4())
        self.client.saver.copy_thread(thread_id, new_id)
        self.records.create(new_id, record["metadata"])
        return self.thread(new_id)

    # -- state ---------------------------------------------------------------------

    def _bound_graph(self, thread_id: str) -> Any:
        graph = self.thread_graph(thread_id)
        if graph is None:
            raise ApiError(
                409,
                f"thread {thread_id!r} has no graph yet: run it first, or create it with "
                "metadata graph_id naming a registered graph",
            )
        return self.client._bound(graph)

    def state(self, thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        """The thread's state now, or at ``checkpoint_id`` (404 for an unknown one).

        A thread that has never run has no graph: its state is empty, as on LangGraph's
        server (a front end reads it before the first message)."""
        if self.thread_graph(thread_id) is None:
            if checkpoint_id:
                raise not_found("checkpoint", checkpoint_id)
            return {**EMPTY_STATE}
        graph = self._bound_graph(thread_id)
        config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
            if self.client.saver.get_tuple(config) is None:
                raise not_found("checkpoint", checkpoint_id)
        return state_json(graph.get_state(config))

    def update_state(
        self,
        thread_id: str,
        values: Any,
        as_node: str | None,
        checkpoint_id: str | None,
    ) -> dict[str, Any]:
        """``update_state`` as node ``as_node`` (409 while a run is active)."""
        graph = self._bound_graph(thread_id)
        if as_node is not None and as_node not in graph.nodes:
            raise ApiError(422, f"as_node: {as_node!r} is not a node of the thread's graph")
        if self.redis.exists(ThreadKeys(thread_id).active):
            raise ApiError(409, f"thread {thread_id!r} is busy: a run is active")
        config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        try:
            saved = graph.update_state(config, values, as_node=as_node)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(422, f"values: {exc}") from exc
        self.records.touch(thread_id)
        return {"checkpoint": checkpoint_json(saved)}

    def history(
        self,
        thread_id: str,
        limit: int,
        before: str | dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """The thread's checkpoints as states, newest first (none before its first run)."""
        if self.thread_graph(thread_id) is None:
            return []
        graph = self._bound_graph(thread_id)
        if isinstance(before, dict):
            before = before.get("checkpoint_id")
        before_config = {"configurable": {"thread_id": thread_id, "checkpoint_id": before}}
        snapshots = graph.get_state_history(
            {"configurable": {"thread_id": thread_id}},
            filter=metadata or None,
            before=before_config if before else None,
            limit=limit,
        )
        return [state_json(snapshot) for snapshot in snapshots]

    # -- runs ----------------------------------------------------------------------

    def create_run(self, thread_id: str | None, body: RunCreate) -> dict[str, Any]:
        """Submit a run to the workers; 404 / 409 / 422 before anything is stored."""
        assistant = self.assistant(body.assistant_id)
        assistant_id = assistant["assistant_id"]
        graph_name = self.graph_name(body.assistant_id, assistant)
        graph = self.graph(graph_name)
        if body.input is not None and body.command is not None:
            raise ApiError(422, "input and command: give one of them, not both")
        if body.webhook:
            raise ApiError(422, "webhook: not supported (runs here call no webhooks)")
        checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
        if checkpoint_id and thread_id is None:
            raise ApiError(422, "checkpoint_id: a stateless run has no checkpoints to start from")
        for field in ("interrupt_before", "interrupt_after"):
            names = getattr(body, field)
            if isinstance(names, list) and (unknown := sorted(set(names) - set(graph.nodes))):
                raise ApiError(422, f"{field}: {unknown} are not nodes of graph {graph_name!r}")
        temporary = thread_id is None
        if temporary:
            thread_id = str(uuid.uuid4())
        else:
            assert thread_id is not None
            if self.records.get(thread_id) is None and body.if_not_exists != "create":
                raise not_found("thread", thread_id)
        assert thread_id is not None
        input = body.input
        if body.command is not None:
            input = Command(
                update=body.command.get("update"),
                resume=body.command.get("resume"),
                goto=body.command.get("goto") or (),
            )
        if not isinstance((body.config or {}).get("configurable") or {}, dict):
            raise ApiError(422, "config.configurable: must be an object")
        # The assistant's current version, then the run's own values over it.
        config = copy.deepcopy(merge_config(assistant["config"] or {}, body.config or {}))
        configurable = config.setdefault("configurable", {})
        configurable.setdefault("assistant_id", assistant_id)
        configurable.setdefault("graph_id", graph_name)
        for key, value in {**(assistant["context"] or {}), **(body.context or {})}.items():
            configurable.setdefault(key, value)
        if body.metadata:
            config["metadata"] = {**config.get("metadata", {}), **body.metadata}
        extra = {
            "assistant_id": assistant_id,
            "metadata": json.dumps(body.metadata or {}),
            "api_stream_modes": ",".join(body.modes),
            "temporary": "1" if temporary else "",
        }
        if checkpoint_id:  # the submit forks the thread's head from it (Client.fork)
            configurable["checkpoint_id"] = checkpoint_id
        previous = self.redis.get(ThreadKeys(thread_id).active)
        try:
            run = self.client.submit(
                graph_name,
                input,
                thread_id=thread_id,
                config=config,
                multitask_strategy=body.multitask_strategy,
                interrupt_before=_names(graph, body.interrupt_before),
                interrupt_after=_names(graph, body.interrupt_after),
                stream_mode=engine_modes(body.modes),
                subgraphs=body.stream_subgraphs,
                extra=extra,
            )
        except RunRejectedError as exc:
            raise ApiError(409, str(exc)) from exc
        except CheckpointNotFoundError as exc:
            raise not_found("checkpoint", exc.checkpoint_id) from exc
        except InvalidInputError as exc:  # checked before anything is stored
            raise ApiError(422, f"input: {exc}") from exc
        # (the submit wrote the thread's record: a new thread's too)
        if previous and body.multitask_strategy == "rollback":
            # The submit cancelled it and dropped its checkpoints; its record goes too.
            self._drop_run(thread_id, previous.decode())
        return self.run(thread_id, run.id)

    def run_record(self, thread_id: str, run_id: str) -> dict[str, str]:
        """The run hash (decoded, without input and config); 404 for an unknown run."""
        raw = self.client.coordinator.run_info(thread_id, run_id)
        if "status" not in raw:
            raise not_found("run", run_id)
        return {k: v.decode(errors="replace") for k, v in raw.items() if k not in ("input",)}

    def run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        """The run as the SDK shows it."""
        info = self.run_record(thread_id, run_id)
        return {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": info.get("assistant_id") or assistant_id_of(info.get("graph", "")),
            "created_at": iso(info.get("created")),
            "updated_at": iso(info.get("updated") or info.get("created")),
            "status": run_status(info["status"]),
            "metadata": json.loads(info.get("metadata") or "{}"),
            "multitask_strategy": info.get("strategy", "reject"),
            "kwargs": {"stream_mode": requested_modes(info)},
        }

    def runs(
        self, thread_id: str, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        """The thread's runs, newest first."""
        self.require_thread(thread_id)
        runs = []
        for run_id in self.records.run_ids(thread_id):
            try:
                run = self.run(thread_id, run_id)
            except ApiError:
                continue  # expired (RELAYGRAPH_RUN_TTL) since the index was read
            if status is None or run["status"] == status:
                runs.append(run)
        return runs[offset : offset + limit]

    def cancel_run(self, thread_id: str, run_id: str, action: str) -> None:
        """Stop an active run (``interrupt``: keep its checkpoints; ``rollback``: drop the
        run and what it wrote)."""
        info = self.run_record(thread_id, run_id)
        if info["status"] not in ACTIVE and info["status"] != "interrupted":
            raise ApiError(409, f"run {run_id!r} is {info['status']}: nothing to cancel")
        if info["status"] in ACTIVE:  # a queued run leaves the queue (finish_run.lua)
            self.client._cancel(thread_id, run_id, "cancelled")
        if action == "rollback":
            self.client.saver.delete_for_runs([run_id])
            self._drop_run(thread_id, run_id)

    def delete_run(self, thread_id: str, run_id: str) -> None:
        """Delete a finished run's record and events (409 while it is active)."""
        info = self.run_record(thread_id, run_id)
        if info["status"] in ACTIVE:
            raise ApiError(409, f"run {run_id!r} is {info['status']}: cancel it first")
        self._drop_run(thread_id, run_id)

    def _drop_run(self, thread_id: str, run_id: str) -> None:
        keys = ThreadKeys(thread_id)
        self.redis.delete(keys.run(run_id), keys.events(run_id), keys.event_keys(run_id))
        self.records.remove_run(thread_id, run_id)

    def result(self, thread_id: str, run_id: str) -> Any:
        """What ``/runs/wait`` and ``join`` answer: the thread's values after the run, with
        ``__interrupt__`` when it stopped at one, or ``__error__`` when it failed."""
        info = self.run_record(thread_id, run_id)
        graph = info.get("graph")
        values: Any = {}
        snapshot = None
        if graph in self.client.registry.names():
            snapshot = self.client.get_state(graph, thread_id)
            values = to_json(snapshot.values)
        if info["status"] == "error":
            error, _, message = info.get("error", "").partition(": ")
            return {"__error__": {"error": error or "Error", "message": message or error}}
        if snapshot is not None and snapshot.interrupts and isinstance(values, dict):
            values = {**values, "__interrupt__": to_json(snapshot.interrupts)}
        return values

    def is_final(self, thread_id: str, run_id: str) -> bool:
        """Whether the run is over (final or stopped at an interrupt)."""
        return self.client.coordinator.run_status(thread_id, run_id) in FINAL | {None}

    def drop_temporary(self, thread_id: str) -> None:
        """Delete the thread of a stateless run once it is over."""
        self.client.delete(thread_id)

    # -- store ---------------------------------------------------------------------

    @property
    def store(self) -> Any:
        """The RedisStore the workers use (``RELAYGRAPH_STORE_URL``, else the Redis URL)."""
        if self._store is None:
            from relaygraph.persistence.store.redis import RedisStore

            settings = self.settings
            index = None
            if settings.store_embed:
                fields = [f.strip() for f in settings.store_fields.split(",") if f.strip()]
                index = {"embed": settings.store_embed, "dims": settings.store_dims}
                index["fields"] = fields
            url = settings.store_url or settings.redis_url
            self._store = RedisStore.from_conn_string(url, index=index)  # type: ignore[arg-type]
        return self._store


def _names(graph: Any, names: str | list[str] | None) -> list[str] | None:
    if names == "*":
        return list(graph.nodes)
    return names or None  # type: ignore[return-value]


EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "checkpoint": None,
    "metadata": None,
    "created_at": None,
    "parent_checkpoint": None,
    "tasks": [],
    "interrupts": [],
}
"""The state of a thread that has not run yet."""


def checkpoint_json(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint config as the SDK's ``Checkpoint``."""
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A StateSnapshot as the SDK's ``ThreadState``."""
    return {
        "values": to_json(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": checkpoint_json(snapshot.config),
        "metadata": to_json(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint_json(snapshot.parent_config),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "error": repr(task.error) if task.error is not None else None,
                "interrupts": to_json(task.interrupts),
                "checkpoint": None,
                "state": None,
                "result": to_json(task.result),
            }
            for task in snapshot.tasks
        ],
        "interrupts": to_json(snapshot.interrupts),
    }
