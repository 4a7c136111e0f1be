"""What the routes do, on the workers' Client and Redis: threads, runs, state, the store
(assistants and crons in their own modules, mixed in).

Everything a request needs is read from Redis on the spot (run records, thread records,
checkpoints); the process keeps only connections and the loaded graphs, so any replica
answers any request.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from relaygraph.api.assistant_ops import AssistantOperations
from relaygraph.api.assistants import AssistantStore, merge_config
from relaygraph.api.cron_ops import CronOperations
from relaygraph.api.crons import CronStore
from relaygraph.api.encode import iso, to_json
from relaygraph.api.errors import ApiError, not_found
from relaygraph.api.schemas import RunCreate, Superstep, ThreadTTL
from relaygraph.api.settings import ApiSettings
from relaygraph.api.thread_ttl import set_ttl
from relaygraph.persistence.errors import CheckpointNotFoundError
from relaygraph.runtime.types import Command, StateSnapshot, StateUpdate
from relaygraph.workers.client import FINAL, Client, InvalidInputError, RunRejectedError
from relaygraph.workers.connect import async_redis_client, is_cluster_client
from relaygraph.workers.engine import STREAM_MODES
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.threads import assistant_id_of

__all__ = ["Backend", "assistant_id_of", "engine_modes"]

ACTIVE = frozenset({"pending", "running"})
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


class Backend(AssistantOperations, CronOperations):
    """The API's operations; one per process, shared by the routes (assistants and crons
    in :mod:`relaygraph.api.assistant_ops` and :mod:`relaygraph.api.cron_ops`)."""

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

    def graph(self, name: str) -> Any:
        """The compiled graph registered as ``name``."""
        return self.client.registry.get(name)

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
