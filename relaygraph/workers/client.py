"""Submit runs to the workers, follow them, and read or edit their threads.

>>> client = Client("redis://127.0.0.1:6379/0", graphs={"echo": echo_graph})  # doctest: +SKIP
>>> run = client.submit("echo", {"messages": [("user", "hi")]}, thread_id="t1")  # doctest: +SKIP
>>> run.wait(timeout=30)  # doctest: +SKIP
'success'
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from relaygraph.persistence.errors import CheckpointNotFoundError, RelaygraphError
from relaygraph.persistence.serde import Serializer
from relaygraph.runtime.constants import SUBGRAPH_MODES
from relaygraph.runtime.runtime import CONTEXT_KEY, coerce_context
from relaygraph.runtime.types import Command, StateSnapshot
from relaygraph.workers.connect import check_broker, redis_client
from relaygraph.workers.coordination import Coordinator, StepRef
from relaygraph.workers.engine import DEFAULT_STREAM_MODES, stream_modes
from relaygraph.workers.keys import LEGACY_INDEXES, ThreadKeys
from relaygraph.workers.registry import GraphRegistry, fingerprint
from relaygraph.workers.settings import WorkerSettings
from relaygraph.workers.threads import ThreadRecords

__all__ = [
    "AsyncClient",
    "Client",
    "InvalidInputError",
    "Run",
    "RunEvent",
    "RunRejectedError",
    "RunTimeoutError",
    "check_input",
]

STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
FINAL = frozenset({"success", "error", "interrupted", "cancelled"})


class RunRejectedError(RelaygraphError):
    """The thread already has an active run and the strategy is ``reject``."""


class RunTimeoutError(RelaygraphError, TimeoutError):
    """``Run.wait`` gave up before the run finished."""


class InvalidInputError(RelaygraphError, ValueError):
    """A run's input is one its graph cannot apply (refused before anything is queued)."""


def check_input(name: str, graph: Any, input: Any) -> None:
    """Raise :class:`InvalidInputError` when ``graph`` cannot apply ``input``.

    What the run's first step would do with it, without I/O: coerce it with the graph's
    input schema, then fold each value into an empty copy of its channel (so a reducer
    such as ``add_messages`` checks it). A ``Command`` or None continues a thread: it is
    checked against the thread's state when the run starts.
    """
    if input is None or isinstance(input, Command):
        return
    try:
        for key, value in graph.coerce_input(input).items():
            prototype = graph.channel_prototypes.get(key)
            if prototype is not None:
                prototype.empty_copy().update([value])
    except Exception as exc:
        raise InvalidInputError(f"input of graph {name!r}: {exc}") from exc


@dataclass(frozen=True)
class RunEvent:
    """One event of a run's stream; ``id`` lets a follower resume after a disconnect.

    ``namespace`` is where a subgraph's event came from (``("child:<task id>",)``; empty
    for the run's own graph), for a run submitted with ``subgraphs=True``."""

    id: str
    mode: str
    data: Any
    namespace: tuple[str, ...] = ()


class Run:
    """A submitted run: its id, live status, events, and cancellation."""

    def __init__(self, client: Client, thread_id: str, run_id: str) -> None:
        self.client = client
        self.thread_id = thread_id
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, thread_id={self.thread_id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        """pending, running, interrupted, success, error or cancelled."""
        info = self.client.coordinator.run_info(self.thread_id, self.id)
        return info.get("status", b"missing").decode()

    @property
    def error(self) -> str | None:
        """Why the run failed, if it did."""
        value = self.client.coordinator.run_info(self.thread_id, self.id).get("error")
        return value.decode() or None if value else None

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> str:
        """Block until the run is final (or interrupted); returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status in FINAL:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise RunTimeoutError(
                    f"run {self.id} of thread {self.thread_id!r} still {status} after {timeout}s"
                )
            time.sleep(poll)

    def stream(
        self, *, after: str = "0-0", block_ms: int = 1000, timeout: float | None = None
    ) -> Iterator[RunEvent]:
        """The run's events (the modes it was submitted with) from ``after`` on, live.

        ``messages`` events carry ``(message chunk, metadata)`` pairs: the tokens of chat
        models called inside nodes, sent while the node still runs on its worker.

        Ends with the ``status`` event the run's end writes. After a disconnect, pass the
        last event's ``id`` as ``after`` to continue where you left off.
        """
        key = ThreadKeys(self.thread_id).events(self.id)
        serde, redis_client = self.client.serde, self.client.redis
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after
        while True:
            reply = redis_client.xread({key: last}, count=100, block=block_ms)
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    mode, *namespace = fields[b"mode"].decode().split("|")
                    data = serde.loads(fields[b"data"], where=f"event {last}")
                    yield RunEvent(last, mode, data, tuple(namespace))
                    if mode == "status":
                        return
            if deadline is not None and time.monotonic() > deadline:
                raise RunTimeoutError(f"run {self.id} produced no end event within {timeout}s")

    def cancel(self) -> None:
        """Stop scheduling the run and revoke its queued tasks; its state stays as it is."""
        self.client._cancel(self.thread_id, self.id, "cancelled")


class Client:
    """Talks to the workers through Redis: submit runs, follow them, read threads.

    ``graphs`` maps names to compiled graphs (or ``"module:attr"`` strings), as the workers'
    ``RELAYGRAPH_GRAPHS`` does; the client needs them for fingerprints and thread reads.
    The Redis URL may name a single Redis or any node of a Redis Cluster (detected); with
    a cluster, the broker (``RELAYGRAPH_BROKER_URL``) must be a single Redis or RabbitMQ.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        graphs: dict[str, Any] | str | None = None,
        settings: WorkerSettings | None = None,
        celery_app: Any = None,
    ) -> None:
        settings = settings or WorkerSettings()
        if redis_url:
            settings = settings.model_copy(update={"redis_url": redis_url})
        self.settings = settings
        self.redis = redis_client(settings.redis_url)
        self.coordinator = Coordinator(self.redis, **settings.coordinator_options())
        self.registry = GraphRegistry(graphs if graphs is not None else settings.graphs)
        self.threads = ThreadRecords(self.redis, ttl=settings.thread_ttl)
        self.serde = Serializer()
        self._app = celery_app
        self._saver: Any = None

    @property
    def app(self) -> Any:
        """The Celery app used to send start tasks (built from the settings if not given)."""
        if self._app is None:
            from relaygraph.workers.app import create_app

            check_broker(self.settings.broker)
            self._app = create_app(self.settings)
        return self._app

    @property
    def saver(self) -> Any:
        """The RedisSaver holding the threads."""
        if self._saver is None:
            from relaygraph.persistence.redis import RedisSaver

            self._saver = RedisSaver.from_conn_string(
                self.settings.redis_url, ttl=self.settings.thread_ttl
            )
        return self._saver

    def close(self) -> None:
        """Release connections."""
        self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------

    def submit(
        self,
        graph: str,
        input: Any,
        *,
        thread_id: str,
        config: dict[str, Any] | None = None,
        multitask_strategy: str = "reject",
        interrupt_before: list[str] | str | None = None,
        interrupt_after: list[str] | str | None = None,
        stream_mode: str | Sequence[str] = DEFAULT_STREAM_MODES,
        subgraphs: bool = False,
        context: Any = None,
        extra: dict[str, str] | None = None,
    ) -> Run:
        """Submit a run of registered graph ``graph`` on ``thread_id``; returns at once.

        ``stream_mode`` says what the run records in its event stream (:meth:`Run.stream`):
        any of ``values``, ``updates``, ``custom``, ``messages`` (chat model tokens, live),
        ``tasks``, ``checkpoints`` and ``debug`` (opt-in: they copy the tasks' inputs or
        the whole state every step); the final ``status`` event is always there. With
        ``subgraphs=True`` subgraphs called by nodes record their events of those modes
        too, with their namespace (:attr:`RunEvent.namespace`), as ``stream(subgraphs=True)``.
        ``context`` is the run's static context (``runtime.context`` in its nodes, as
        ``invoke(..., context=...)``): stored with the run and serialized like its input,
        so a dataclass or pydantic context must be registered with ``register_type``.
        ``extra`` adds fields to the run record, written in the same script (the HTTP API
        keeps its run metadata there); they cannot replace the record's own fields.
        A ``checkpoint_id`` in ``config`` runs from that checkpoint (:meth:`fork` first).
        An accepted run also writes the thread's record (:mod:`relaygraph.workers.threads`),
        so the HTTP API knows the thread; a rejected one stores nothing.
        """
        modes = stream_modes(stream_mode)
        if multitask_strategy not in STRATEGIES:
            raise ValueError(f"multitask_strategy must be one of {STRATEGIES}")
        if not thread_id:
            raise ValueError("submit() needs a thread_id")
        compiled = self.registry.get(graph)
        check_input(graph, compiled, input)
        run_config = copy.deepcopy(config or {})
        run_config.setdefault("configurable", {})["thread_id"] = thread_id
        checkpoint_id = run_config["configurable"].pop("checkpoint_id", None)
        if interrupt_before:
            run_config["interrupt_before"] = interrupt_before
        if interrupt_after:
            run_config["interrupt_after"] = interrupt_after
        if subgraphs:
            run_config["configurable"][SUBGRAPH_MODES] = list(modes)
        if context is not None:
            run_config["configurable"][CONTEXT_KEY] = coerce_context(
                compiled.builder.context_schema, context
            )
        run_id = str(uuid.uuid4())
        fields = {
            **(extra or {}),
            "graph": graph,
            "fingerprint": fingerprint(compiled),
            "input": self.serde.dumps(input, where="run input"),
            "config": self.serde.dumps(run_config, where="run config"),
            "strategy": multitask_strategy,
            "stream_modes": ",".join(modes),
        }
        app = self.app  # a broker it cannot use is refused before anything is stored
        if checkpoint_id:  # as invoke(config naming one): the run goes on from there
            self.fork(graph, thread_id, checkpoint_id)
        decision, other = self.coordinator.submit_run(thread_id, run_id, multitask_strategy, fields)
        if decision == "reject":
            raise RunRejectedError(
                f"thread {thread_id!r} already has an active run {other}; submit with "
                "multitask_strategy='enqueue', 'interrupt' or 'rollback' to do otherwise"
            )
        # the thread's record, so the HTTP API sees threads run from Python or the CLI too
        self.threads.note_run(thread_id, graph, (extra or {}).get("assistant_id"))
        if decision in ("interrupt", "rollback"):
            self._cancel(thread_id, other, "interrupted", hand_over=False)
            if decision == "rollback":
                self.saver.delete_for_runs([other])
        if decision != "queued":  # the run is indexed already: if this dies, the sweeper starts it
            app.send_task("relaygraph.start_run", args=[thread_id, run_id])
        return Run(self, thread_id, run_id)

    def fork(self, graph: str, thread_id: str, checkpoint_id: str) -> dict[str, Any]:
        """Make a copy of checkpoint ``checkpoint_id`` the thread's head, so the next run
        goes on from there (LangGraph's replay / fork); the checkpoints after it stay in
        history. Returns the new head's config.

        Raises :class:`RunRejectedError` while the thread has an active run and
        :class:`~relaygraph.CheckpointNotFoundError` for a checkpoint it does not have.
        """
        if self.redis.exists(ThreadKeys(thread_id).active):
            raise RunRejectedError(
                f"thread {thread_id!r} is busy: going on from checkpoint_id needs it idle"
            )
        config = {"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}
        if self.saver.get_tuple(config) is None:
            raise CheckpointNotFoundError(thread_id, "", checkpoint_id)
        return self._bound(graph).update_state(config, None)

    def resume(
        self, graph: str, thread_id: str, value: Any, *, multitask_strategy: str = "reject"
    ) -> Run:
        """Answer the thread's pending ``interrupt()`` (a value, a map by id, or a Command)."""
        command = value if isinstance(value, Command) else Command(resume=value)
        return self.submit(
            graph, command, thread_id=thread_id, multitask_strategy=multitask_strategy
        )

    def get_run(self, thread_id: str, run_id: str) -> Run:
        """A handle on an existing run."""
        return Run(self, thread_id, run_id)

    def _cancel(self, thread_id: str, run_id: str, status: str, hand_over: bool = True) -> None:
        info = self.coordinator.run_info(thread_id, run_id)
        step_member = info.get("step")
        if step_member:
            step, _ = StepRef.from_member(step_member)
            step_info = self.coordinator.step_info(step)
            self.coordinator.set_step_state(step, "cancelled")
            task_ids = [v for k, v in step_info.items() if k.startswith("c:")]
            if task_ids:
                self.app.control.revoke(task_ids)
        if hand_over:
            next_run = self.coordinator.finish_run(thread_id, run_id, status)
            if next_run:
                self.app.send_task("relaygraph.start_run", args=[thread_id, next_run])
        else:  # the thread is the new run's already: only the status (and retention)
            self.coordinator.finish_run(thread_id, run_id, status)

    # -- threads ---------------------------------------------------------------------------

    def _bound(self, graph: str) -> Any:
        compiled = copy.copy(self.registry.get(graph))
        compiled.checkpointer = self.saver
        return compiled

    def get_state(self, graph: str, thread_id: str) -> StateSnapshot:
        """The thread's current state."""
        return self._bound(graph).get_state({"configurable": {"thread_id": thread_id}})

    def get_state_history(self, graph: str, thread_id: str, **kwargs: Any) -> list[StateSnapshot]:
        """The thread's checkpoints, newest first (``filter``, ``before``, ``limit``)."""
        config = {"configurable": {"thread_id": thread_id}}
        return list(self._bound(graph).get_state_history(config, **kwargs))

    def update_state(
        self, graph: str, thread_id: str, values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Edit the thread's state as ``as_node`` (see ``CompiledStateGraph.update_state``)."""
        config = {"configurable": {"thread_id": thread_id}}
        return self._bound(graph).update_state(config, values, as_node=as_node)

    def delete(self, thread_id: str) -> None:
        """Delete the thread's checkpoints, its record, and its run records, steps and events.

        No keyspace scan: the thread's run index names its runs, and each run's record
        names its steps (runs already gone by retention left nothing to delete); the
        sweeper's indexes are scanned for the thread's entries in its bucket only (and,
        for one release, in the unsharded indexes of the release before).
        """
        self.saver.delete_thread(thread_id)
        self.threads.delete(thread_id)
        keys = ThreadKeys(thread_id)
        run_ids = [r.decode() for r in self.redis.zrange(keys.runs, 0, -1)]
        doomed = [keys.active, keys.queue, keys.runs]
        pipe = self.redis.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hkeys(keys.run(run_id))
        for run_id, fields in zip(run_ids, pipe.execute(), strict=True):
            doomed += [f.decode()[2:] for f in fields if f.startswith(b"k:")]
            doomed += [keys.run(run_id), keys.events(run_id), keys.event_keys(run_id)]
        for start in range(0, len(doomed), 500):
            self.redis.delete(*doomed[start : start + 500])
        pattern = _glob_escape(json.dumps([thread_id])[:-1]) + ",*"
        for kind in ("leases", "barriers", "runs"):
            for index in (self.coordinator.indexes.of(kind, thread_id), LEGACY_INDEXES[kind]):
                found = [m for m, _ in self.redis.zscan_iter(index, match=pattern, count=1000)]
                for start in range(0, len(found), 500):
                    self.redis.zrem(index, *found[start : start + 500])


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class AsyncClient:
    """Async twin of :class:`Client` (each call runs the sync client in a thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = Client(*args, **kwargs)

    async def submit(self, graph: str, input: Any, **kwargs: Any) -> Run:
        return await asyncio.to_thread(self.sync.submit, graph, input, **kwargs)

    async def resume(self, graph: str, thread_id: str, value: Any, **kwargs: Any) -> Run:
        return await asyncio.to_thread(self.sync.resume, graph, thread_id, value, **kwargs)

    async def wait(self, run: Run, timeout: float | None = None) -> str:
        return await asyncio.to_thread(run.wait, timeout)

    async def stream(self, run: Run, **kwargs: Any) -> AsyncIterator[RunEvent]:
        iterator = run.stream(**kwargs)
        sentinel = object()
        while True:
            event = await asyncio.to_thread(next, iterator, sentinel)
            if event is sentinel:
                return
            yield event

    async def get_state(self, graph: str, thread_id: str) -> StateSnapshot:
        return await asyncio.to_thread(self.sync.get_state, graph, thread_id)

    async def get_state_history(self, graph: str, thread_id: str, **kwargs: Any) -> list:
        return await asyncio.to_thread(self.sync.get_state_history, graph, thread_id, **kwargs)

    async def update_state(self, graph: str, thread_id: str, values: Any, **kwargs: Any) -> dict:
        return await asyncio.to_thread(self.sync.update_state, graph, thread_id, values, **kwargs)

    async def delete(self, thread_id: str) -> None:
        await asyncio.to_thread(self.sync.delete, thread_id)
