"""The distributed executor's steps: start a run, run one node task, run a step's barrier.

Each function is what one Celery task does. They drive the same :class:`Run` methods as
the in-process loop, so a thread's checkpoints are the same whichever executor ran it:

* ``start_run``: apply the run's input (commit the input checkpoint), schedule step 1;
* ``run_node``: take the task's lease, run the node against the step's checkpoint, store
  its writes, record it done; whoever records a step's last task runs the barrier;
* ``barrier``: fold the step's writes, commit the next checkpoint by compare-and-set on
  the thread's head, schedule the next step (or finish the run).

Scheduling is idempotent (a step registers once; a task that already finished is a no-op
when delivered again), so every function can be retried and recovery can re-run any of
them.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from relaygraph.persistence.base import make_config
from relaygraph.persistence.errors import (
    CheckpointConflict,
    CorruptCheckpointError,
    SerializationError,
)
from relaygraph.persistence.redis import COMMIT_ATTEMPTS
from relaygraph.persistence.serde import Serializer
from relaygraph.runtime.algorithm import should_interrupt
from relaygraph.runtime.config_merge import merge_configs
from relaygraph.runtime.constants import ERROR, SUBGRAPH_MODES
from relaygraph.runtime.drivers import drive
from relaygraph.runtime.effects import Emit
from relaygraph.runtime.errors import GraphRecursionError
from relaygraph.runtime.executor import run_task
from relaygraph.runtime.loop import Run, cached_update, pending_interrupts, task_start_events
from relaygraph.runtime.stream_messages import with_messages_handler
from relaygraph.workers import metrics
from relaygraph.workers.capture import Captured, capture
from relaygraph.workers.coordination import Acquired, Coordinator, StepRef, event_batch, now_ms
from relaygraph.workers.leases import LeaseKeeper
from relaygraph.workers.logs import log_context
from relaygraph.workers.registry import GraphRegistry
from relaygraph.workers.settings import WorkerSettings

__all__ = [
    "DEFAULT_STREAM_MODES",
    "STREAM_MODES",
    "Engine",
    "NodeMessage",
    "RetryLater",
    "event_mode",
    "stream_modes",
    "streams_subgraphs",
]

log = logging.getLogger("relaygraph.workers")

STREAM_MODES = frozenset(
    {"values", "updates", "custom", "debug", "messages", "tasks", "checkpoints"}
)
"""What a run can record in its event stream (``Client.submit(stream_mode=...)``)."""
DEFAULT_STREAM_MODES = ("values", "updates", "custom")
"""Recorded unless a run asks otherwise. ``debug`` (a full task and checkpoint snapshot per
step, as LangGraph's debug mode), ``checkpoints`` (each checkpoint as it is written) and
``tasks`` (each task as it starts and finishes) are opt-in: they cost every step a copy of
the state or of the tasks' inputs."""
_UNRECORDED_MODES = frozenset({"values", "updates", "custom", "debug", "messages"})
"""What a run submitted before its stream modes were recorded gets: every mode of then."""


def streams_subgraphs(config: dict[str, Any]) -> bool:
    """Whether a run's config asks its subgraphs' events too."""
    return bool((config.get("configurable") or {}).get(SUBGRAPH_MODES))


def event_mode(mode: str, namespace: tuple[str, ...] = ()) -> str:
    """An event's ``mode`` field: the mode, then a subgraph's namespace after ``|``, as
    LangGraph's server names such events (``values|child:<task id>``).

    >>> event_mode("values"), event_mode("updates", ("child:1", "inner:2"))
    ('values', 'updates|child:1|inner:2')
    """
    return "|".join((mode, *namespace))


def stream_modes(value: str | Any) -> tuple[str, ...]:
    """Checked stream modes from a name or a sequence of names (ValueError names a bad one).

    >>> stream_modes("updates"), stream_modes(["values", "debug"])
    (('updates',), ('debug', 'values'))
    """
    modes = (value,) if isinstance(value, str) else tuple(value)
    unknown = sorted(set(modes) - STREAM_MODES)
    if unknown or not modes:
        raise ValueError(
            f"stream_mode must be one or more of {sorted(STREAM_MODES)}, got {list(modes)!r}"
        )
    return tuple(sorted(set(modes)))


@dataclass(frozen=True)
class NodeMessage:
    """What a node task's queue message carries: ids only, never state (invariant 9)."""

    graph: str
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    epoch: int
    run_id: str
    step_number: int = -1
    """The superstep's number (shown in Flower; the protocol uses the checkpoint id)."""
    node: str = ""
    """The task's node: lets the worker take the lease and read the checkpoint in one round
    trip (its retry budget depends on the node). Empty: read first, then take the lease."""

    @property
    def step(self) -> StepRef:
        return StepRef(self.thread_id, self.checkpoint_ns, self.checkpoint_id, self.run_id)


# What a node's run gives: status, (delay, error) to retry, what to record, lease still held.
_Ran = tuple[str, "tuple[float, BaseException] | None", Captured, bool]
# A task ready to run: run, tasks, task, tasks done, resume answers, lease answer.
_Loaded = tuple["Run", dict[str, Any], Any, set[str], dict[str, list[Any]], Acquired]


@dataclass
class _PreparedHop:
    """A hop made and not sent yet (see :meth:`Engine._prepare_hop`)."""

    run: Run
    record: dict[str, Any]
    message: NodeMessage
    task: Any
    epoch: int
    barrier: Captured
    end: tuple[str, str] | None
    next_tasks: dict[str, Any]
    sections: list[tuple[str, list[Any]]]
    next_step: StepRef
    broker_ids: dict[str, str]
    outbox: tuple[list[str], list[Any]] | None


class RetryLater(Exception):
    """The node failed with an error its RetryPolicy retries: run it again after ``delay``."""

    def __init__(self, delay: float, error: BaseException) -> None:
        super().__init__(f"retry in {delay:.2f}s after {error!r}")
        self.delay = delay
        self.error = error


class Engine:
    """Everything a worker process needs to run the protocol's steps.

    ``enqueue(message, queue, name)`` puts a node task on the broker; the Celery app
    provides it (tests may pass a function that runs tasks inline). ``outbox``, when the
    broker is the checkpoint Redis, builds a hop's next task messages for hop.lua to push
    with the commit (see :mod:`relaygraph.workers.outbox`).
    """

    def __init__(
        self,
        registry: GraphRegistry,
        saver: Any,
        coordinator: Coordinator,
        settings: WorkerSettings,
        enqueue: Callable[..., str | None],
        *,
        store: Any = None,
        worker_name: str = "worker",
        outbox: Any = None,
    ) -> None:
        self.registry = registry
        self.outbox = outbox
        self.saver = saver
        self.coordinator = coordinator
        self.settings = settings
        self.enqueue = enqueue
        self.store = store
        self.worker_name = worker_name
        self.serde = Serializer()
        self.leases = LeaseKeeper(
            functools.partial(coordinator.heartbeat, worker=worker_name),
            settings.heartbeat,
            on_tick=coordinator.flush_sent,
        )
        self._graphs: dict[str, Any] = {}
        self._records: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        # After a hop: the run as it stands on the checkpoint it committed, and the next
        # step's one task, for the node task that follows if this process gets it. A fresh
        # checkpoint has no pending writes yet, so this is what reading it would give.
        self._warm: OrderedDict[tuple[str, str, str, str], tuple[Run, dict[str, Any]]] = (
            OrderedDict()
        )

    # -- graphs and runs -------------------------------------------------------------

    def graph(self, name: str, fingerprint: str | None) -> Any:
        """The registered graph, bound to this worker's saver and store."""
        graph = self.registry.check(name, fingerprint)
        bound = self._graphs.get(name)
        if bound is None or bound.builder is not graph.builder:
            bound = copy.copy(graph)
            bound.checkpointer = self.saver
            if self.store is not None and graph.store is None:
                bound.store = self.store
            self._graphs[name] = bound
        return bound

    def run_record(self, thread_id: str, run_id: str, *, fresh: bool = True) -> dict[str, Any]:
        """The run's record, with its config decoded.

        A run's graph, config and input never change, so node tasks and barriers read
        them from a small per-process cache (``fresh=False``); its status changes, so code
        that decides on it reads it on its own (:meth:`Coordinator.run_status`).
        """
        key = (thread_id, run_id)
        if not fresh and key in self._records:
            self._records.move_to_end(key)
            return self._records[key]
        return self._keep_record(thread_id, run_id, self._read_record(thread_id, run_id))

    def _keep_record(self, thread_id: str, run_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record``, cached once its run has started (its immutable part is complete)."""
        if record.get("start_step") is not None:
            self._records[(thread_id, run_id)] = record
            while len(self._records) > 1024:
                self._records.popitem(last=False)
        return record

    def _read_record(self, thread_id: str, run_id: str) -> dict[str, Any]:
        return self._decode_record(self.coordinator.run_info(thread_id, run_id), thread_id, run_id)

    def _decode_record(self, raw: dict[str, bytes], thread_id: str, run_id: str) -> dict[str, Any]:
        if not raw:
            raise LookupError(f"run {run_id!r} of thread {thread_id!r} does not exist")
        record = {
            key: value.decode() for key, value in raw.items() if key not in ("input", "config")
        }
        # The input is decoded once the run's graph is loaded: importing the graph's module
        # registers the application's types with the serializer.
        record["input_bytes"] = raw.get("input")
        record["config"] = (
            self.serde.loads(raw["config"], where="run config") if "config" in raw else {}
        )
        record["run_id"] = run_id
        return record

    def _run_for(self, graph: Any, record: dict[str, Any], thread_id: str) -> Run:
        config = copy.deepcopy(record["config"])
        if getattr(graph, "config", None):  # graph.with_config(...): its defaults under
            config = merge_configs(graph.config, config)
        config.setdefault("configurable", {})["thread_id"] = thread_id
        config["configurable"].pop("checkpoint_id", None)
        config["run_id"] = record.get("run_id")
        # A run submitted before stream modes were recorded keeps all of those of then.
        modes = record.get("stream_modes")
        chosen = frozenset(modes.split(",")) if modes else _UNRECORDED_MODES
        if "messages" in chosen:  # chat models inside nodes stream their tokens as events
            config = with_messages_handler(config, subgraphs=streams_subgraphs(config))
        return Run(graph, config, chosen)

    def _publish(
        self,
        thread_id: str,
        run_id: str,
        effects: Generator[Any, Any, Any],
        event_prefix: str,
        keep: list[tuple[str, Emit]] | None = None,
    ) -> Any:
        """Drive ``effects`` with the saver, sending its stream chunks to the run's stream
        (``keep``: a list that gets them instead, for the caller's next round trip; if
        driving fails, they are sent at once)."""
        driver = drive(None, effects, self.saver)  # type: ignore[arg-type] - runs no tasks
        events: list[tuple[str, Emit]] = []
        done = False
        try:
            while True:
                try:
                    emit = next(driver)
                except StopIteration as stop:
                    done = True
                    return stop.value
                events.append((f"{event_prefix}:{len(events)}", emit))
        finally:
            if keep is not None and done:
                keep += events
            else:
                self.emit_many(thread_id, run_id, events)  # one round trip, in order

    def emit(self, thread_id: str, run_id: str, event_key: str, emit: Emit) -> None:
        """Append one stream chunk to the run's event stream (once per event key)."""
        self.emit_many(thread_id, run_id, [(event_key, emit)])

    def emit_many(self, thread_id: str, run_id: str, events: list[tuple[str, Emit]]) -> None:
        """Append stream chunks to the run's event stream, in order, in one round trip."""
        self.coordinator.emit_events(
            thread_id,
            run_id,
            [(key, self._event_fields(emit)) for key, emit in events],
            **self._stream_limits(),
        )

    def finish(self, thread_id: str, run_id: str, status: str, error: str = "") -> None:
        """Give the run its final status and start the thread's next queued run, if any."""
        end = Emit("status", {"status": status, "error": error})
        next_run = self.coordinator.finish_run(  # the end event rides in the same round trip
            thread_id,
            run_id,
            status,
            error,
            [(f"end:{status}", self._event_fields(end))],
            **self._stream_limits(),
        )
        metrics.count_run(status)
        log.info("run %s of thread %s: %s %s", run_id, thread_id, status, error)
        if next_run:
            self.start_run(thread_id, next_run)

    # -- the three steps ---------------------------------------------------------------

    def start_run(self, thread_id: str, run_id: str) -> None:
        """Apply the run's input and schedule its first step."""
        # The claim and the record in one round trip: the claim script itself refuses a
        # run that is not pending.
        claimed, raw = self.coordinator.claim_start_reading(thread_id, run_id, self.worker_name)
        try:
            record = self._keep_record(
                thread_id, run_id, self._decode_record(raw, thread_id, run_id)
            )
        except SerializationError as exc:  # a record that cannot be read: the run's error
            self.fail_unreadable_record(thread_id, run_id, exc)
            return
        if record.get("status") != "pending":
            return  # started already, cancelled, or finished
        if not claimed:
            return  # another worker is starting it (a duplicate delivery or a recovery)
        # the process's lease thread renews the claim while the start runs (no thread of
        # its own: most starts end well within one interval and renew nothing)
        claim = self.leases.keep(lambda: self.coordinator.renew_start(thread_id, run_id))
        try:
            self._start_claimed(thread_id, run_id, record)
        finally:
            self.leases.release(claim)

    def _start_claimed(self, thread_id: str, run_id: str, record: dict[str, Any]) -> None:
        try:
            graph = self.graph(record["graph"], record.get("fingerprint"))
        except Exception as exc:  # unknown graph, or another version of it: refuse the run
            self.finish(thread_id, run_id, "error", _describe(exc))
            return
        run = self._run_for(graph, record, thread_id)
        try:
            saved = self.saver.get_tuple(run.read_config())
            if self._start_at_once(graph, record, saved, thread_id, run_id):
                return
            run.load(saved)
            if record.get("start_step") is None:
                self.coordinator.touch_run(thread_id, run_id, start_step=run.step)
                record["start_step"] = run.step
            # A start that died after committing the input left the run's own checkpoint as
            # the head: applying the input again would apply it twice.
            applied = saved is not None and saved.metadata.get("run_id") == run_id
            events: list[tuple[str, Emit]] = []
            if not applied:
                data = record["input_bytes"]
                input = self.serde.loads(data, where="run input") if data is not None else None
                # its chunks go to the stream with the status, in the next round trip
                self._publish(thread_id, run_id, run.begin(input), f"start:{run_id}", events)
            fields = [(key, self._event_fields(emit)) for key, emit in events]
            limits = self._stream_limits()
            if not self.coordinator.touch_run(
                thread_id, run_id, events=fields, status="running", **limits
            ):
                return  # cancelled while it started: nothing more to schedule
        except Exception as exc:
            self.finish(thread_id, run_id, "error", _describe(exc))
            return
        self.schedule(graph, run, record, active=True)

    def _start_at_once(
        self, graph: Any, record: dict[str, Any], saved: Any, thread_id: str, run_id: str
    ) -> bool:
        """A new input's start in one script (start.lua): commit the input checkpoint,
        register the first step, put its tasks on the broker and mark the run running;
        True when that is done, or when the script found nothing left to do (the run
        ended meanwhile, or another worker holds the start claim now).

        False leaves everything as it was (nothing stored, ``saved`` unchanged): the
        step-by-step start then handles the case, as it handles every case. It is taken
        for a start that died after committing its input, a resume or Command input, a
        first step that stops at a breakpoint or a run that ends at once, a saver
        without scripts, and whatever error applying the input raises (the step-by-step
        start meets it again and reports it as it always has).
        """
        if record.get("start_step") is not None:
            return False  # an earlier attempt got this far: see what it left
        if saved is not None and saved.metadata.get("run_id") == run_id:
            return False  # its input is committed already
        run = self._run_for(graph, record, thread_id)
        run.load(saved)
        start_step = run.step
        try:
            data = record["input_bytes"]
            input = self.serde.loads(data, where="run input") if data is not None else None
            begun = capture(self.saver, run.begin(input), f"start:{run_id}")
            run.stop = start_step + run.recursion_limit + 1
            tasks, done, _resume = run.plan()
        except Exception:
            return False
        if begun.put is None or begun.writes or not tasks or done:
            return False
        before = record["config"].get("interrupt_before") or graph.interrupt_before
        if before and should_interrupt(run.checkpoint, before, tasks.values()):
            return False
        step = StepRef(thread_id, run.ns, run.checkpoint["id"], run_id)
        sections: list[tuple[str, list[Any]]] = [("commit", begun.put.args)]
        sections += self._event_sections(begun.events)
        broker_ids, outbox = self._next_step_sections(record, run, tasks, sections)
        put = begun.put
        reply = self.coordinator.start(
            step,
            self.worker_name,
            start_step,
            put.keys,
            sections,
            list(tasks),
            extra=lambda pipe: self.saver.registry_commands(pipe, put),
            queue_keys=outbox[0] if outbox is not None else (),
        )
        if reply is None or reply[0] != "ok":
            if reply is not None and reply[0] == "refused":
                log.info("start of run %s refused (%s)", run_id, reply[1])
                return True  # the run ended meanwhile, or the claim is another worker's
            return False  # a conflict or a missing base: the step-by-step start reports it
        self.saver.put_done(put, begun.committed)
        record["start_step"] = start_step
        crash_point("after_register")
        self._keep_warm(run, run_id, tasks)
        if outbox is None:  # the confirmation rides with this process's next round trip
            self._send_tasks(record, run, list(tasks.values()), broker_ids, later=True)
        return True

    def schedule(
        self, graph: Any, run: Run, record: dict[str, Any], *, active: bool = False
    ) -> None:
        """Register the next step of ``run`` and enqueue its tasks, or finish the run.

        ``active``: the caller has just seen the run active (it marked it running), so
        the status is not read again (registering the step checks it once more anyway).
        """
        thread_id, run_id = run.thread_id or "", record["run_id"]
        if not active and self.coordinator.run_status(thread_id, run_id) not in (
            "pending",
            "running",
        ):
            return  # cancelled or interrupted by another submission: schedule nothing more
        run.stop = int(record.get("start_step", run.step)) + run.recursion_limit + 1
        try:
            tasks, done, _resume = run.plan()
        except GraphRecursionError as exc:
            self.finish(thread_id, run_id, "error", _describe(exc))
            return
        if not tasks:
            self.finish(thread_id, run_id, "success")
            return
        if done and run.emits("updates"):  # a resumed step: its finished tasks, as in-process
            cached = [
                (f"{run.checkpoint['id']}:{task.id}:cached", Emit("updates", update))
                for task in tasks.values()
                if task.id in done and (update := cached_update(run.graph, task)) is not None
            ]
            self.emit_many(thread_id, run_id, cached)
        before = record["config"].get("interrupt_before") or graph.interrupt_before
        if before and should_interrupt(run.checkpoint, before, tasks.values()):
            self._stop_at_breakpoint(run, run_id)
            return
        step = StepRef(thread_id, run.ns, run.checkpoint["id"], run_id)
        # the step's registration and the run's pointer to it: one round trip, in order
        if not self.coordinator.register_and_mark(
            step, run_id, record["graph"], [(task.id, task.name) for task in tasks.values()]
        ):
            self.coordinator.set_step_state(step, "cancelled")  # the run ended meanwhile
            return
        crash_point("after_register")
        self._send_tasks(record, run, list(tasks.values()))

    def _send_tasks(
        self,
        record: dict[str, Any],
        run: Run,
        tasks: list[Any],
        broker_ids: dict[str, str] | None = None,
        later: bool = False,
    ) -> None:
        """Enqueue the first attempt (epoch 0) of tasks of ``run``'s current step."""
        sends = []
        for task in tasks:
            sends.append(
                (self._first_message(record, run, task), run.graph.nodes[task.name].options)
            )
        self.send_all(sends, (broker_ids or {}).get, later=later)

    @staticmethod
    def _first_message(record: dict[str, Any], run: Run, task: Any) -> NodeMessage:
        """The message of a task's first attempt (epoch 0) at ``run``'s current step."""
        return NodeMessage(
            record["graph"],
            run.thread_id or "",
            run.ns,
            run.checkpoint["id"],
            task.id,
            0,
            record["run_id"],
            run.step,
            task.name,
        )

    def send(self, message: NodeMessage, options: dict[str, Any] | None = None) -> None:
        """Enqueue one node task (see :meth:`send_all`)."""
        self.send_all([(message, options or {})])

    def send_all(
        self,
        sends: list[tuple[NodeMessage, dict[str, Any]]],
        broker_id_of: Callable[[str], str | None] = lambda _task_id: None,
        *,
        later: bool = False,
    ) -> None:
        """Enqueue node tasks of one step, then confirm them in one round trip.

        The confirmation ('sent', with the broker id a cancel revokes) tells the sweeper
        the task is on the broker; a task its publisher died before sending stays
        'queued' and is re-enqueued after a lease TTL. ``options`` are the node's
        ``add_node`` options (``queue``, ``time_limit``, ``soft_time_limit``);
        ``broker_id_of(task id)`` a broker id stored with the step already (by hop.lua);
        ``later`` defers the confirmation (:meth:`Coordinator.mark_sent`).
        """
        confirmed: list[tuple[str, int, str]] = []
        for message, options in sends:
            queue, name, limits = self._route(message, options)
            known = broker_id_of(message.task_id)
            sent = self.enqueue(message, queue, name, task_id=known, **limits)
            confirmed.append((message.task_id, message.epoch, "" if known else sent or ""))
        if confirmed:
            self.coordinator.mark_sent(sends[0][0].step, confirmed, later=later)

    def run_node(self, message: NodeMessage) -> str:
        """Run one node task under a lease; returns what happened (for logs and tests).

        A thread whose stored data cannot be read (or a value that cannot be stored)
        fails its run with the reason (``"unreadable"``): the worker goes on serving
        other threads, and no retry meets the same bytes again.
        """
        try:
            return self._run_node(message)
        except (CorruptCheckpointError, SerializationError) as exc:
            self.fail_unreadable(message.thread_id, message.run_id, message.step, exc)
            return "unreadable"

    def fail_unreadable(
        self, thread_id: str, run_id: str, step: StepRef | None, exc: BaseException
    ) -> None:
        """End a run whose thread cannot be read or written (see :meth:`run_node`)."""
        log.error("run %s of thread %r: unreadable thread: %s", run_id, thread_id, exc)
        if step is not None:
            self.coordinator.set_step_state(step, "failed")
        self.finish(thread_id, run_id, "error", _describe(exc))

    def fail_unreadable_record(self, thread_id: str, run_id: str, exc: BaseException) -> None:
        """End a pending or running run whose own record (config) cannot be read: retrying
        it would only meet the same bytes again, with the thread held."""
        if self.coordinator.run_status(thread_id, run_id) in ("pending", "running"):
            self.fail_unreadable(thread_id, run_id, None, exc)

    def _run_node(self, message: NodeMessage) -> str:
        coordinator, step = self.coordinator, message.step
        record = self.run_record(message.thread_id, message.run_id, fresh=False)
        try:
            graph = self.graph(message.graph, record.get("fingerprint"))
        except Exception as exc:  # another version of the graph: refuse, fail the run
            self.finish(message.thread_id, message.run_id, "error", _describe(exc))
            return "refused"
        ran: _Ran | None = None
        prepared: _PreparedHop | bool | None = False  # False: no hop made yet
        warm = self._take_warm(graph, message)
        loaded: str | _Loaded
        if warm is not None:
            run, tasks, task = warm
            acquired, ran, prepared = self._run_warm(run, record, tasks, task, message)
            loaded = (run, tasks, task, set(), {}, acquired)
            if ran is None and acquired.status == "ok":  # an earlier attempt died here:
                loaded = self._load_task(graph, record, message, acquired)  # read what it left
        else:
            loaded = self._load_task(graph, record, message)
        if isinstance(loaded, str):
            return loaded
        run, tasks, task, done, resume_values, acquired = loaded
        if acquired.status == "exhausted":
            if acquired.last:
                self.barrier(message.graph, step, message.run_id)
            return "exhausted"
        if acquired.status != "ok":
            if acquired.status in ("finished", "busy", "stale"):
                metrics.count_duplicate(acquired.status)
            return acquired.status
        if ran is None:
            ran = self._run_held(run, task, done, resume_values, message, acquired)
        status, retry, recorded, held = ran
        if not held:
            return "fenced"
        if retry is not None:
            due = now_ms() + int(retry[0] * 1000)
            coordinator.release(step, task.id, acquired.epoch, due)
            raise RetryLater(*retry)
        if status == "done" and len(tasks) == 1 and task.id not in done:
            if prepared is False:
                hopped = self._hop(run, record, message, task, tasks, acquired.epoch, recorded)
            else:  # made while the lease's answer travelled (None: the step cannot hop)
                hopped = isinstance(prepared, _PreparedHop) and self._send_hop(prepared)
            if hopped:
                return status
        sections = [("writes", w) for w in recorded.writes] + self._event_sections(recorded.events)
        saver_keys = self.saver.thread_keys(message.thread_id)
        result = coordinator.finish_task(
            step, task.id, acquired.epoch, status, saver_keys, sections
        )
        if result == "last":
            crash_point("before_barrier")
            self.barrier(message.graph, step, message.run_id)
        return status

    def _run_held(
        self,
        run: Run,
        task: Any,
        done: set[str],
        resume_values: dict[str, list[Any]],
        message: NodeMessage,
        acquired: Acquired,
    ) -> _Ran:
        """Run the node while the lease keeper renews its lease: (status, retry, what to
        record, whether the lease was still ours at the end)."""
        lease = self.leases.hold(message.step, task.id, acquired.epoch)
        crash_point("node_running")
        retry: tuple[float, BaseException] | None = None
        recorded = Captured()
        try:
            if task.id in done:
                status = "done"  # its writes were stored by an earlier attempt
            else:
                context = log_context(
                    thread_id=message.thread_id,
                    run_id=message.run_id,
                    node=task.name,
                    step=message.step_number,
                )
                started = time.perf_counter()
                with context:
                    status, retry, recorded = self._execute(
                        run, task, resume_values, message, acquired
                    )
                metrics.observe_node(
                    message.graph, task.name, time.perf_counter() - started, status
                )
        finally:
            held = self.leases.release(lease)
        return status, retry, recorded, held

    def _take_warm(
        self, graph: Any, message: NodeMessage
    ) -> tuple[Run, dict[str, Any], Any] | None:
        """The run and tasks this process planned when it committed the message's step
        (a hop), if it did and the message is that step's first attempt of the task."""
        warm = self._warm.pop(_warm_key(message), None)
        if warm is None or message.epoch != 0 or message.node not in graph.nodes:
            return None
        run, tasks = warm
        task = tasks.get(message.task_id)
        if task is None or task.name != message.node:
            return None
        return run, tasks, task

    def _run_warm(
        self,
        run: Run,
        record: dict[str, Any],
        tasks: dict[str, Any],
        task: Any,
        message: NodeMessage,
    ) -> tuple[Acquired, _Ran | None, _PreparedHop | bool | None]:
        """A warm task: its lease is asked for and the node runs while the answer travels
        (the lease is taken when the node starts; only its answer is read after). A node
        that ends its step (the step's only task, done) also gets its hop made before the
        answer is read (:meth:`_prepare_hop`: no I/O): the third item, or False when it
        was not tried.

        The answer is almost always (ok, epoch 0, first attempt): this process scheduled
        the task a moment ago. Any other answer drops the run's result and the hop: a
        duplicate, a cancelled run or an earlier attempt that died (the caller then reads
        what it left and runs the node again under the lease).
        """
        budget = self._budget(run.graph, task.name)
        start = now_ms()  # the first attempt's start, for the acquire and the node alike
        answer = self.coordinator.acquire_later(
            message.step, task.id, 0, budget, self.worker_name, now=start
        )
        prepared: _PreparedHop | bool | None = False
        failed: Exception | None = None
        try:
            expected = Acquired("ok", 0, 1, first_ms=start)
            ran = self._run_held(run, task, set(), {}, message, expected)
            status, retry, recorded, held = ran
            if status == "done" and held and retry is None and len(tasks) == 1:
                try:
                    prepared = self._prepare_hop(run, record, message, task, tasks, 0, recorded)
                except Exception as exc:  # raised below only if the lease is ours
                    failed = exc
        finally:
            acquired = answer()
        if (acquired.status, acquired.epoch, acquired.attempts) == ("ok", 0, 1):
            if failed is not None:
                raise failed
            return acquired, ran, prepared
        return acquired, None, False

    def _load_task(
        self,
        graph: Any,
        record: dict[str, Any],
        message: NodeMessage,
        acquired: Acquired | None = None,
    ) -> str | _Loaded:
        """The run at the step's checkpoint, its tasks, this task, the tasks already done,
        their resume answers, and the lease answer; or why there is nothing to run.

        The lease and the read share one round trip; ``acquired``: the lease is already
        held (read only).
        """
        coordinator, step = self.coordinator, message.step
        run = self._run_for(graph, record, message.thread_id)
        if acquired is None:
            saved, acquired = self._read_and_acquire(graph, message)
        else:
            saved = self.saver.get_tuple(
                make_config(message.thread_id, message.checkpoint_ns, message.checkpoint_id)
            )
        if saved is None:
            if acquired is not None and acquired.status == "ok":
                coordinator.release(step, message.task_id, acquired.epoch)
            return "missing-checkpoint"
        run.load(saved)
        tasks, done, resume_values = run.plan()
        task = tasks.get(message.task_id)
        if task is None or (message.node and task.name != message.node):
            if acquired is not None and acquired.status == "ok":
                coordinator.release(step, message.task_id, acquired.epoch)
            raise LookupError(
                f"task {message.task_id} ({message.node or 'node unknown'}) is not a task of "
                f"checkpoint {message.checkpoint_id}: the graph changed under the run"
            )
        if acquired is None:
            acquired = coordinator.acquire(
                step, task.id, message.epoch, self._budget(graph, task.name), self.worker_name
            )
        return run, tasks, task, done, resume_values, acquired

    def _budget(self, graph: Any, node: str) -> int:
        """Attempts a task of ``node`` gets: its RetryPolicy's, or the worker default."""
        policy = graph.nodes[node].retry_policy
        return max(policy.max_attempts if policy else 1, self.settings.max_attempts)

    def _read_and_acquire(self, graph: Any, message: NodeMessage) -> tuple[Any, Acquired | None]:
        """The step's checkpoint, and the task's lease when the message names its node.

        Both in one round trip; a message without a node name (an older sender) reads
        first and leaves the lease to the caller (None), which learns the node from the
        plan.
        """
        config = make_config(message.thread_id, message.checkpoint_ns, message.checkpoint_id)
        if message.node not in graph.nodes:
            return self.saver.get_tuple(config), None
        read = self.saver.prepare_read(config)
        acquired, reply = self.coordinator.acquire_and_read(
            message.step,
            message.task_id,
            message.epoch,
            self._budget(graph, message.node),
            self.worker_name,
            read,
        )
        return self.saver.finish_read(read, reply), acquired

    def _execute(
        self,
        run: Run,
        task: Any,
        resume_values: dict[str, list[Any]],
        message: NodeMessage,
        acquired: Acquired,
    ) -> tuple[str, tuple[float, BaseException] | None, Captured]:
        """Run the node once: its status, (delay, error) when its RetryPolicy retries it,
        and the writes and events to record (not stored yet: see :meth:`run_node`)."""
        run.resuming = bool(pending_interrupts(run.pending))
        task_run = run.task_run(task, resume_values)
        if run.task_modes:  # the task as it starts, once (a retry's key is the same)
            key = f"{message.checkpoint_id}:{task.id}:start"
            starts = enumerate(task_start_events(run, [task_run]))  # none for START
            events = [(f"{key}:{i}", emit) for i, emit in starts]
            if events:
                self.emit_many(message.thread_id, message.run_id, events)
        sequence = [0]

        subgraphs = streams_subgraphs(run.config)

        def writer(chunk: Any) -> None:
            # Custom chunks, and the messages mode's tokens while the node still runs; a
            # subgraph's own events only when the run streams subgraphs (with their
            # namespace). Keyed by step, task and sequence, so a node that runs again does
            # not deliver its events twice.
            emit = chunk if isinstance(chunk, Emit) else Emit("custom", chunk)
            if (emit.namespace and not subgraphs) or not run.emits(emit.mode):
                return
            key = f"{message.checkpoint_id}:{task.id}:{emit.mode}:{sequence[0]}"
            sequence[0] += 1
            self.emit(message.thread_id, message.run_id, key, emit)

        graph = run.graph
        attempt = acquired.attempts
        outcome = run_task(
            graph,
            task_run,
            run.channels,
            run.null_resume,
            writer,
            retries=False,
            attempt=attempt,
            first_attempt_time=acquired.first_ms / 1000 if acquired.first_ms else None,
        )
        policy = graph.nodes[task.name].retry_policy
        if (
            outcome.error is not None
            and policy is not None
            and attempt < policy.max_attempts
            and policy.should_retry(outcome.error)
        ):
            return "retry", (policy.interval(attempt), outcome.error), Captured()
        prefix = f"{message.checkpoint_id}:{task.id}"
        recorded = capture(self.saver, run.record(outcome), prefix)
        if outcome.error is not None:
            return "error", None, recorded
        return ("interrupted" if outcome.interrupts else "done"), None, recorded

    def _event_sections(self, events: list[tuple[str, Emit]]) -> list[tuple[str, list[Any]]]:
        fields = [(key, self._event_fields(emit)) for key, emit in events]
        return [("event", args) for args in event_batch(fields, **self._stream_limits())]

    def _event_fields(self, emit: Emit) -> dict[str, Any]:
        return {
            "mode": event_mode(emit.mode, emit.namespace),
            "data": self.serde.dumps(emit.payload, where=f"{emit.mode} event"),
        }

    def _route(
        self, message: NodeMessage, options: dict[str, Any]
    ) -> tuple[str, str, dict[str, float]]:
        """A node task's queue, its name in Flower and its time limits."""
        queue = options.get("queue") or self.settings.default_queue
        limits = {k: v for k, v in options.items() if k in ("time_limit", "soft_time_limit")}
        # Flower's task list shows the name (not the kwargs): thread and step belong in it.
        name = f"node {message.graph}.{message.node} thread={message.thread_id}"
        return queue, f"{name} step={message.step_number}", limits

    def _outbox_section(
        self, record: dict[str, Any], run: Run, tasks: dict[str, Any], broker_ids: dict[str, str]
    ) -> tuple[list[str], list[Any]] | None:
        """The list keys and (task id, key index, message) triples that hop.lua pushes with
        the commit, or None: then the tasks are published after it."""
        if self.outbox is None:
            return None
        sends = []
        for task in tasks.values():
            message = self._first_message(record, run, task)
            queue, name, limits = self._route(message, run.graph.nodes[task.name].options)
            sends.append((message, queue, name, broker_ids[task.id], limits))
        try:
            commands = self.outbox.build(sends)
        except Exception:  # the normal publish after the commit reports a broker problem
            log.warning("outbox: could not build the next tasks' messages", exc_info=True)
            return None
        if commands is None or len(commands) != len(sends):
            return None
        keys: list[str] = []
        triples: list[Any] = []
        for task_id, (_name, (key, payload)) in zip(tasks, commands, strict=True):
            key = key.decode() if isinstance(key, bytes) else key
            if key not in keys:
                keys.append(key)
            triples += [task_id, keys.index(key) + 1, payload]
        return keys, triples

    def _next_step_sections(
        self,
        record: dict[str, Any],
        run: Run,
        tasks: dict[str, Any],
        sections: list[tuple[str, list[Any]]],
    ) -> tuple[dict[str, str], tuple[list[str], list[Any]] | None]:
        """Append the sections that register ``run``'s next step (its ``tasks``), give them
        broker ids and, with the outbox, push their messages (hop.lua and start.lua read
        them alike); the broker ids and the outbox's queue keys and triples (or None)."""
        broker_ids = {task_id: str(uuid.uuid4()) for task_id in tasks}
        register: list[Any] = [record["run_id"], record["graph"], now_ms()]
        for task in tasks.values():
            register += [task.id, task.name]
        sections.append(("register", register))
        sections.append(("broker", [part for pair in broker_ids.items() for part in pair]))
        outbox = self._outbox_section(record, run, tasks, broker_ids)
        if outbox is not None:
            sections.append(("publish", outbox[1]))
        return broker_ids, outbox

    def _keep_warm(self, run: Run, run_id: str, tasks: dict[str, Any]) -> None:
        """After this process committed ``run``'s checkpoint: keep the run for the step's
        task, so that if this process gets it, it needs no read (a one-task step only)."""
        if len(tasks) != 1:
            return
        self._warm[(run.thread_id or "", run.ns, run.checkpoint["id"], run_id)] = (run, tasks)
        while len(self._warm) > 64:
            self._warm.popitem(last=False)

    def _stream_limits(self) -> dict[str, int]:
        return {"maxlen": self.settings.stream_maxlen, "ttl": self.settings.stream_ttl}

    def _hop(
        self,
        run: Run,
        record: dict[str, Any],
        message: NodeMessage,
        task: Any,
        tasks: dict[str, Any],
        epoch: int,
        recorded: Captured,
    ) -> bool:
        """The step's only task succeeded: commit the next checkpoint and register the next
        step in the same script that records the task (hop.lua), then enqueue the next
        step. False when the script refused (nothing stored): the caller then takes the
        step-by-step path, which handles every case (cancelled, fenced, conflict).

        This is the barrier of a one-task step run where the task ran: the same
        ``Run.finish_step`` and planning as :meth:`barrier` and :meth:`schedule`, so the
        checkpoints are the same as in-process.
        """
        prepared = self._prepare_hop(run, record, message, task, tasks, epoch, recorded)
        return prepared is not None and self._send_hop(prepared)

    def _prepare_hop(
        self,
        run: Run,
        record: dict[str, Any],
        message: NodeMessage,
        task: Any,
        tasks: dict[str, Any],
        epoch: int,
        recorded: Captured,
    ) -> _PreparedHop | None:
        """Everything :meth:`_hop` sends, made without I/O (it advances ``run`` to the next
        checkpoint); None when the step cannot hop (the step-by-step path handles it)."""
        graph, step, run_id = run.graph, message.step, message.run_id
        try:
            updated = run.apply_step(tasks)
        except Exception:  # the writes cannot be applied: the barrier fails the run with it
            return None
        barrier = capture(
            self.saver, run.finish_step(tasks, updated), f"{step.checkpoint_id}:barrier"
        )
        if barrier.put is None or barrier.committed is None:
            return None
        end, next_tasks = self._after_commit(graph, run, record, tasks)
        sections: list[tuple[str, list[Any]]] = [("commit", barrier.put.args)]
        sections += [("writes", w) for w in recorded.writes]
        sections += self._event_sections(recorded.events + barrier.events)
        next_step = StepRef(step.thread_id, run.ns, run.checkpoint["id"], run_id)
        broker_ids: dict[str, str] = {}
        outbox = None
        if next_tasks:
            broker_ids, outbox = self._next_step_sections(record, run, next_tasks, sections)
        return _PreparedHop(
            run, record, message, task, epoch, barrier, end, next_tasks, sections, next_step,
            broker_ids, outbox,
        )  # fmt: skip

    def _send_hop(self, prepared: _PreparedHop) -> bool:
        """Send a hop :meth:`_prepare_hop` made (see :meth:`_hop`)."""
        run, record, task, barrier = prepared.run, prepared.record, prepared.task, prepared.barrier
        end, next_tasks, outbox = prepared.end, prepared.next_tasks, prepared.outbox
        step, run_id = prepared.message.step, prepared.message.run_id
        assert barrier.put is not None
        crash_point("before_barrier")
        reply = self.coordinator.hop(
            step,
            task.id,
            prepared.epoch,
            barrier.put.keys,
            prepared.sections,
            prepared.next_step,
            list(next_tasks),
            extra=lambda pipe: self.saver.registry_commands(pipe, barrier.put),
            queue_keys=outbox[0] if outbox is not None else (),
        )
        if reply[0] != "ok":
            log.info("hop of %s refused (%s): step by step instead", task.id, reply)
            return False
        self.saver.put_done(barrier.put, barrier.committed)
        metrics.count_step_committed(record["graph"])
        crash_point("after_commit")
        crash_point("after_register")
        if end is not None:
            if end == ("interrupted", ""):  # _after_commit stops only at breakpoints so
                self._stop_at_breakpoint(run, run_id)
            else:
                self.finish(step.thread_id, run_id, *end)
            return True
        self._keep_warm(run, run_id, next_tasks)
        if outbox is not None:
            return True  # hop.lua put them on the broker with the commit
        # The confirmation rides with this process's next round trip: a chain's next hop
        # costs no extra one for it.
        self._send_tasks(record, run, list(next_tasks.values()), prepared.broker_ids, later=True)
        return True

    def _after_commit(
        self, graph: Any, run: Run, record: dict[str, Any], tasks: dict[str, Any]
    ) -> tuple[tuple[str, str] | None, dict[str, Any]]:
        """What follows a committed step: the run's end (status, error) or the next tasks."""
        after = record["config"].get("interrupt_after") or graph.interrupt_after
        if after and should_interrupt(run.checkpoint, after, tasks.values()):
            return ("interrupted", ""), {}
        run.stop = int(record.get("start_step", run.step)) + run.recursion_limit + 1
        try:
            next_tasks, _done, _resume = run.plan()
        except GraphRecursionError as exc:
            return ("error", _describe(exc)), {}
        if not next_tasks:
            return ("success", ""), {}
        before = record["config"].get("interrupt_before") or graph.interrupt_before
        if before and should_interrupt(run.checkpoint, before, next_tasks.values()):
            return ("interrupted", ""), {}
        return None, next_tasks

    def barrier(self, graph_name: str, step: StepRef, run_id: str) -> None:
        """Apply a finished step and commit the next checkpoint, or end the run."""
        record = self.run_record(step.thread_id, run_id, fresh=False)
        if self.coordinator.run_status(step.thread_id, run_id) not in ("pending", "running"):
            self.coordinator.set_step_state(step, "cancelled")
            return
        graph = self.graph(graph_name, record.get("fingerprint"))
        run = self._run_for(graph, record, step.thread_id)
        saved = self.saver.get_tuple(
            make_config(step.thread_id, step.checkpoint_ns, step.checkpoint_id)
        )
        run.load(saved)
        tasks, _done, _resume = run.plan()
        info = self.coordinator.step_info(step)
        status_of = {task_id: info.get(f"s:{task_id}") for task_id in tasks}
        errors: list[tuple[str, Any]] = []
        for task_id, status in status_of.items():
            if status != "error":
                continue
            stored = [v for tid, c, v in run.pending if tid == task_id and c == ERROR]
            reason = stored[-1] if stored else self.coordinator.task_error(step, task_id)
            errors.append((task_id, reason))
        if errors:
            self.coordinator.set_step_state(step, "failed")
            task_id, error = errors[0]
            self.finish(step.thread_id, run_id, "error", f"node {tasks[task_id].name!r}: {error}")
            return
        interrupted = [w for w in run.pending if w[0] in tasks and status_of[w[0]] == "interrupted"]
        order = {task_id: index for index, task_id in enumerate(tasks)}
        interrupted.sort(key=lambda write: order[write[0]])  # task order, as in-process
        interrupts = pending_interrupts(interrupted)
        if interrupts:
            self.coordinator.set_step_state(step, "interrupted")
            chunks = run.paused(tasks, tuple(interrupts.values()))  # the chunks run_loop sends
            self._publish(step.thread_id, run_id, chunks, f"{step.checkpoint_id}:interrupt")
            self.finish(step.thread_id, run_id, "interrupted")
            return
        try:
            updated = run.apply_step(tasks)
        except Exception as exc:
            # A write the graph cannot apply (a reducer's TypeError, a bad message role):
            # the run's error now, never a worker death to retry.
            self.coordinator.set_step_state(step, "failed")
            names = sorted({repr(task.name) for task in tasks.values()})
            who = f"node {names[0]}" if len(names) == 1 else f"nodes {', '.join(names)}"
            self.finish(step.thread_id, run_id, "error", f"{who}: {_describe(exc)}")
            return
        try:
            if not self._commit_barrier(step, run, tasks, updated):
                self.coordinator.set_step_state(step, "cancelled")
                return  # the run ended while its step ran: nothing was stored
            crash_point("after_commit")
            metrics.count_step_committed(graph_name)
        except CheckpointConflict:
            head = self.saver.get_tuple(make_config(step.thread_id, step.checkpoint_ns, ""))
            parent = (head.parent_config or {}).get("configurable", {}) if head else {}
            # Only this run's own commit of this step is a duplicate barrier; a checkpoint
            # someone else put on the step (an update_state meanwhile) moved the thread.
            ours = head is not None and head.metadata.get("run_id") == run_id
            if parent.get("checkpoint_id") != step.checkpoint_id or not ours:
                self.coordinator.set_step_state(step, "failed")
                self.finish(step.thread_id, run_id, "error", "the thread moved under the run")
                return
            # Another worker committed this step already (a duplicate barrier): make sure
            # its next step is scheduled, which is idempotent.
            run = self._run_for(graph, record, step.thread_id)
            run.load(head)
        self.coordinator.set_step_state(step, "committed")
        after = record["config"].get("interrupt_after") or graph.interrupt_after
        if after and should_interrupt(run.checkpoint, after, tasks.values()):
            self._stop_at_breakpoint(run, run_id)
            return
        self.schedule(graph, run, record)

    def _stop_at_breakpoint(self, run: Run, run_id: str) -> None:
        """End a run at ``interrupt_before`` / ``interrupt_after``, streaming the chunk
        that says so (``{"__interrupt__": ()}`` in ``updates``), as in-process."""
        thread_id = run.thread_id or ""
        key = f"{run.checkpoint['id']}:breakpoint"
        self._publish(thread_id, run_id, run.at_breakpoint(), key)
        self.finish(thread_id, run_id, "interrupted")

    def _commit_barrier(
        self, step: StepRef, run: Run, tasks: dict[str, Any], updated: set[str]
    ) -> bool:
        """Commit the next checkpoint (the step's writes, applied as ``updated`` says) with
        its events in one script that checks, in the same atomic step, that the run is still active
        (commit_step.lua, as hop.lua does). False when it is not: nothing was stored.
        Raises :class:`CheckpointConflict` when the thread's head moved."""
        thread_id, run_id = step.thread_id, step.run_id
        barrier = capture(
            self.saver, run.finish_step(tasks, updated), f"{step.checkpoint_id}:barrier"
        )
        put = barrier.put
        reply = None
        resend: dict[str, frozenset[str]] = {}
        for _attempt in range(COMMIT_ATTEMPTS):  # as RedisSaver.put: blobs asked for again
            if put is None:
                break
            sections: list[tuple[str, list[Any]]] = [("commit", put.args)]
            sections += self._event_sections(barrier.events)
            reply = self.coordinator.commit_step(
                step,
                put.keys,
                sections,
                lambda pipe, put=put: self.saver.registry_commands(pipe, put),
            )
            # The resend goes through commit_step.lua too: the run is checked in the script.
            if reply is None or not self.saver.asks_resend(reply, resend):
                break
            assert barrier.put_call is not None
            put = self.saver.prepare_put(
                *barrier.put_call.args, **barrier.put_call.kwargs, resend=resend
            )
        if reply is not None and reply[0] == "ok":
            assert put is not None
            self.saver.put_done(put, barrier.committed)
            return True
        if reply is not None and reply[0] == "refused":
            return False
        if reply is not None and reply[0] == "conflict":
            actual = reply[1] or None
            raise CheckpointConflict(thread_id, step.checkpoint_ns, step.checkpoint_id, actual)
        if reply is not None and self.saver.asks_resend(reply, {}):
            raise RuntimeError(f"barrier commit of {step.key}: blobs still asked for ({reply!r})")
        # No script (or a refusal the saver's put explains): the saver's put, then the events.
        try:
            if barrier.put_call is not None:
                self.saver.put(*barrier.put_call.args, **barrier.put_call.kwargs)
        finally:
            self.emit_many(thread_id, run_id, barrier.events)
        return True


def _warm_key(message: NodeMessage) -> tuple[str, str, str, str]:
    return (message.thread_id, message.checkpoint_ns, message.checkpoint_id, message.run_id)


def crash_armed(name: str) -> bool:
    """Whether a crash test asks this process to die at point ``name`` now
    (``RELAYGRAPH_CRASH_AT``; with ``RELAYGRAPH_CRASH_FLAG``, only the first to get here)."""
    if os.environ.get("RELAYGRAPH_CRASH_AT") != name:
        return False
    flag = os.environ.get("RELAYGRAPH_CRASH_FLAG")
    if flag:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
    return True


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: die here when ``RELAYGRAPH_CRASH_AT`` names it.

    With ``RELAYGRAPH_CRASH_FLAG`` (a file path) only the first process to get here dies.
    Points: ``node_running``, ``after_register``, ``before_barrier``, ``after_commit``.
    """
    if not crash_armed(name):
        return
    log.warning("crash point %s: exiting", name)
    os._exit(137)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
