"""The run loop: input, supersteps, checkpoints, interrupts — as a generator of effects.

One run of a graph on one thread. The loop yields :mod:`~relaygraph.runtime.effects`
(saver calls, task batches, stream chunks) and receives their results, so the same loop
runs under the sync driver, the asyncio driver, and is mirrored step for step by the
distributed executor. A superstep is: plan tasks from the head checkpoint, run them, fold
their writes (in task order) into the channels, commit one checkpoint by compare-and-set
on the thread's head.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from relaygraph.persistence.base import ANY_HEAD, make_config
from relaygraph.persistence.errors import CheckpointNotFoundError
from relaygraph.runtime.algorithm import (
    Task,
    apply_writes,
    channels_from_checkpoint,
    copy_checkpoint,
    create_checkpoint,
    empty_checkpoint,
    prepare_tasks,
    should_interrupt,
)
from relaygraph.runtime.constants import (
    ERROR,
    INPUT,
    INTERRUPT,
    NO_WRITES,
    NULL_TASK_ID,
    RESUME,
    RESUME_MAP,
    START,
)
from relaygraph.runtime.effects import Emit, Execute, SaverCall, TaskOutcome, TaskRun
from relaygraph.runtime.errors import (
    EmptyInputError,
    GraphInterrupt,
    GraphRecursionError,
    InvalidResumeError,
)
from relaygraph.runtime.executor import NullResume
from relaygraph.runtime.stream_messages import node_metadata
from relaygraph.runtime.types import Command, Interrupt

if TYPE_CHECKING:
    from relaygraph.runtime.pregel import CompiledStateGraph

__all__ = ["Run", "RunResult", "run_loop"]

Effects = Generator[Any, Any, "RunResult"]

def _default_recursion_limit() -> int:
    """``LANGGRAPH_DEFAULT_RECURSION_LIMIT`` when set (as LangGraph reads it), else 10007."""
    value = os.environ.get("LANGGRAPH_DEFAULT_RECURSION_LIMIT", "10007")
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(
            f"LANGGRAPH_DEFAULT_RECURSION_LIMIT must be an integer of at least 1, got {value!r}"
        )
    return limit


DEFAULT_RECURSION_LIMIT = _default_recursion_limit()
"""Supersteps a run may take when its config sets no ``recursion_limit`` (LangGraph 1.x's
default, 10007, or ``LANGGRAPH_DEFAULT_RECURSION_LIMIT`` as the process started)."""


class RunResult:
    """How a run ended: its output values, interrupts, and status."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.interrupts: list[Interrupt] = []
        self.status = "pending"
        self.config: dict[str, Any] | None = None


def missing_checkpoint(read: dict[str, Any], saved: Any) -> None:
    """Raise :class:`CheckpointNotFoundError` when ``read`` names a checkpoint id that
    reading found nothing for (LangGraph would silently start a new lineage there)."""
    configurable = read.get("configurable") or {}
    if saved is None and configurable.get("checkpoint_id"):
        raise CheckpointNotFoundError(
            str(configurable.get("thread_id")),
            str(configurable.get("checkpoint_ns") or ""),
            str(configurable["checkpoint_id"]),
        )


def checkpoint_metadata(
    config: dict[str, Any], source: str, step: int, parents: dict[str, str]
) -> dict[str, Any]:
    """``source``, ``step``, ``parents`` plus the run's scalar custom keys."""
    metadata: dict[str, Any] = {"source": source, "step": step, "parents": dict(parents)}
    for key, value in (config.get("configurable") or {}).items():
        if key.startswith("__") or key in ("thread_id", "checkpoint_id", "checkpoint_ns"):
            continue
        if key.startswith("checkpoint_"):
            continue
        if isinstance(value, (str, int, float, bool)) or value is None:
            metadata[key] = value
    metadata.update(config.get("metadata") or {})
    run_id = config.get("run_id") or (config.get("configurable") or {}).get("__relaygraph_run_id")
    if run_id is not None:
        metadata["run_id"] = str(run_id)
    metadata.update({"source": source, "step": step, "parents": dict(parents)})
    return metadata


def pending_interrupts(pending_writes: list[Any]) -> dict[str, Interrupt]:
    """The interrupts recorded against a checkpoint, by id."""
    found: dict[str, Interrupt] = {}
    for _task_id, channel, value in pending_writes:
        if channel == INTERRUPT:
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Interrupt):
                    found[item.id] = item
    return found


class Run:
    """The state of one run on one thread, and the steps both executors take with it.

    The in-process loop (:func:`run_loop`) calls these in order; the distributed executor
    calls the same methods from different workers: :meth:`load` + :meth:`begin` when a
    run starts, :meth:`load` + :meth:`plan` + :meth:`task_run` in a node task, and
    :meth:`load` + :meth:`plan` + :meth:`finish_step` in the barrier.
    """

    def __init__(
        self,
        graph: CompiledStateGraph,
        config: dict[str, Any],
        modes: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        from relaygraph.persistence.base import thread_id_of

        self.graph = graph
        self.config = config
        self.modes = modes
        self.task_modes = "tasks" in modes or "debug" in modes
        """True when the run streams per-task events (``tasks`` or ``debug``)."""
        self.saver = graph.saver_for(config)
        self.configurable = config.setdefault("configurable", {})
        self.ns = str(self.configurable.get("checkpoint_ns") or "")
        self.parents: dict[str, str] = dict(self.configurable.get("__relaygraph_parents") or {})
        self.thread_id: str | None = thread_id_of(config) if self.saver is not None else None
        self.checkpoint_config: dict[str, Any] = {}
        self.head: Any = None
        self.stored_versions: dict[str, str] = {}
        self.checkpoint: Any = None
        self.channels: dict[str, Any] = {}
        self.pending: list[Any] = []
        self.step = -1
        self.stop = 0
        self.previous_source: str | None = None
        self.resuming = False
        self.null_resume: NullResume = (
            self.configurable.get("__relaygraph_null_resume") or NullResume()
        )

    def emits(self, mode: str) -> bool:
        return mode in self.modes

    @property
    def streams_live(self) -> bool:
        """Whether nodes stream while they run (messages, custom): run them off this thread."""
        return "messages" in self.modes or "custom" in self.modes

    def read_config(self) -> dict[str, Any]:
        """The config that addresses what this run starts from (the head, or a checkpoint)."""
        return _read_config(self, self.config)

    def load(self, saved: Any) -> None:
        """Start from a stored checkpoint tuple (or None for a new thread)."""
        graph = self.graph
        if saved is not None:
            self.checkpoint = copy_checkpoint(saved.checkpoint)
            self.pending = list(saved.pending_writes)
            self.step = int(saved.metadata.get("step", -1)) + 1
            self.checkpoint_config = saved.config
            self.head = saved.checkpoint["id"]
            self.previous_source = saved.metadata.get("source")
            self.stored_versions = dict(saved.checkpoint["channel_versions"])
            self._take_stored_answers()
        else:
            self.checkpoint = empty_checkpoint()
            self.pending = []
            self.step = -1
            self.checkpoint_config = {
                "configurable": {"thread_id": self.thread_id or "", "checkpoint_ns": self.ns}
            }
            self.head = None
        if self.configurable.get("checkpoint_id"):
            self.head = ANY_HEAD  # a replay forks from an old checkpoint: a new branch
        self.channels = channels_from_checkpoint(graph.channel_prototypes, self.checkpoint)
        self.recursion_limit = int(self.config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT)
        self.stop = self.step + self.recursion_limit + 1
        self.saved = saved

    def _take_stored_answers(self) -> None:
        """Pick up a stored, unclaimed ``Command(resume=...)`` answer and the resume maps.

        A resume map is stored under a task id of its own (:func:`resume_map_task_id`):
        answers given one resume at a time to parallel interrupts are merged.
        """
        for task_id, channel, value in self.pending:
            if channel == RESUME_MAP and isinstance(value, dict):
                known = self.configurable.get("__relaygraph_resume_map") or {}
                self.configurable["__relaygraph_resume_map"] = {**value, **known}
            elif (
                task_id == NULL_TASK_ID
                and channel == RESUME
                and isinstance(value, dict)
                and not value.get("consumed")
            ):
                self.null_resume.offer(value.get("value"))

    def begin(self, input: Any) -> Generator[Any, Any, None]:
        """Apply the run's input: new input, a Command, or None to continue / replay."""
        graph, saved = self.graph, self.saved
        resume_given = isinstance(input, Command) and input.resume is not None
        if saved is None and resume_given and self.saver is None:
            raise InvalidResumeError("Command(resume=...) needs a checkpointer to resume from")
        if (
            self.configurable.get("__relaygraph_resuming")
            and saved is not None
            and pending_interrupts(self.pending)
        ):
            input = None  # a subgraph re-run by its resumed parent continues where it stopped
        self.resuming = saved is not None and (input is None or isinstance(input, Command))
        if isinstance(input, Command):
            null_writes = yield from _accept_command(
                self, input, self.pending, self.null_resume, saved
            )
            self.pending.extend((NULL_TASK_ID, c, v) for c, v in null_writes)
        if input is None and saved is None and not self.configurable.get("__relaygraph_resuming"):
            raise EmptyInputError(
                "Received no input: pass the graph's input, or a thread to resume"
            )
        null_writes = [(c, v) for tid, c, v in self.pending if tid == NULL_TASK_ID]
        if null_writes:
            null_task = Task(NULL_TASK_ID, INPUT, (), (), writes=null_writes)
            apply_writes(self.checkpoint, self.channels, [null_task], graph.next_version)
        if self.resuming:
            self.checkpoint["versions_seen"][INTERRUPT] = dict(self.checkpoint["channel_versions"])
            addressed = bool(self.configurable.get("checkpoint_id"))
            if addressed and self.previous_source not in ("update", "fork"):
                yield from self.commit("fork")
            elif self.emits("checkpoints") or self.emits("debug"):
                yield from _resumed_checkpoint_events(self)
            if self.emits("values"):
                yield Emit("values", graph.read_state(self.channels))
        elif input is not None:
            discarded = prepare_tasks(
                self.checkpoint,
                self.channels,
                graph.triggers_of,
                step=self.step,
                checkpoint_ns=self.ns,
            )
            input_task = Task(
                NULL_TASK_ID, INPUT, (), (), writes=[(START, graph.coerce_input(input))]
            )
            apply_writes(
                self.checkpoint,
                self.channels,
                [*discarded.values(), input_task],
                graph.next_version,
            )
            yield from self.commit("input")

    def plan(self) -> tuple[dict[str, Task], set[str], dict[str, list[Any]]]:
        """The next step's tasks, those already finished, and their recorded resume answers."""
        tasks = prepare_tasks(
            self.checkpoint,
            self.channels,
            self.graph.triggers_of,
            step=self.step,
            checkpoint_ns=self.ns,
        )
        if self.step > self.stop:  # as LangGraph: even when nothing is left to run
            raise GraphRecursionError(
                f"Recursion limit of {self.recursion_limit} reached without hitting a stop "
                "condition. You can increase the limit by setting the `recursion_limit` "
                "config key."
            )
        done, resume_values = _match_pending(tasks, self.pending)
        return tasks, done, resume_values

    def task_run(self, task: Task, resume_values: dict[str, list[Any]]) -> TaskRun:
        """What executing ``task`` needs: the node, its input and its config."""
        graph = self.graph
        config = graph.task_config(
            self.config, task, self.ns, self.checkpoint["id"], self.resuming, self.null_resume
        )
        task_ns = config["configurable"]["checkpoint_ns"]
        config["metadata"] = node_metadata(self.config, task, self.step, task_ns)
        return TaskRun(
            task,
            graph.nodes[task.name],
            graph.task_input(task, self.channels),
            config,
            resume_values.get(task.id, []),
            remaining_steps=self.stop - self.step,
        )

    def record(self, outcome: TaskOutcome) -> Generator[Any, Any, None]:
        """Store a finished task's writes (or error / interrupt); stream its update."""
        yield from _record_outcome(self, outcome)

    def apply_step(self, tasks: dict[str, Task]) -> set[str]:
        """Apply the step's writes in task order (no I/O: raises what a reducer raises)."""
        graph = self.graph
        return apply_writes(
            self.checkpoint,
            self.channels,
            tasks.values(),
            graph.next_version,
            graph.finish_triggers,
        )

    def finish_step(
        self, tasks: dict[str, Task], updated: set[str] | None = None
    ) -> Generator[Any, Any, set[str]]:
        """Apply the step's writes in task order (unless ``updated`` says
        :meth:`apply_step` did) and commit the next checkpoint."""
        graph = self.graph
        if updated is None:
            updated = self.apply_step(tasks)
        if self.emits("values") and updated & graph.state_key_set:
            yield Emit("values", graph.read_state(self.channels))
        yield from self.commit("loop")
        return updated

    def paused(
        self, tasks: dict[str, Task], interrupts: tuple[Interrupt, ...]
    ) -> Generator[Any, Any, None]:
        """The stream chunks of a step that stopped at ``interrupt()`` (both executors)."""
        yield from _interrupt_chunks(self, interrupts)
        yield from self.show_interrupted(tasks)

    def at_breakpoint(self) -> Generator[Any, Any, None]:
        """The stream chunk of a run stopped by ``interrupt_before`` / ``interrupt_after``."""
        yield from _interrupt_chunks(self, ())

    def show_interrupted(self, tasks: dict[str, Task]) -> Generator[Any, Any, None]:
        """Show the caller the finished siblings' writes (the head keeps them pending)."""
        finished = [task for task in tasks.values() if task.writes]
        changed = finished and apply_writes(self.checkpoint, self.channels, finished, None)
        if changed and self.emits("values"):
            yield Emit("values", self.graph.read_state(self.channels))

    def commit(self, source: str) -> Generator[Any, Any, None]:
        """Write the next checkpoint (compare-and-set on the head) and make it current."""
        self.checkpoint = yield from _commit(
            self, self.checkpoint, self.channels, source, self.step
        )
        self.pending = []
        self.step += 1


def run_loop(
    graph: CompiledStateGraph,
    input: Any,
    config: dict[str, Any],
    *,
    modes: set[str],
    interrupt_before: Any = None,
    interrupt_after: Any = None,
) -> Effects:
    """Run ``graph`` on ``input`` (None or a Command to continue a thread); see module doc."""
    run = Run(graph, config, modes)
    result = RunResult()
    saved = None
    if run.saver is not None:
        read = run.read_config()
        saved = yield SaverCall("get_tuple", (read,))
        missing_checkpoint(read, saved)
    run.load(saved)
    yield from run.begin(input)
    while True:
        tasks, done, resume_values = run.plan()
        if not tasks:
            result.status = "done"
            break
        if interrupt_before and should_interrupt(run.checkpoint, interrupt_before, tasks.values()):
            result.status = "interrupt_before"
            yield from run.at_breakpoint()
            break
        if done and run.emits("updates"):
            for task in tasks.values():
                update = cached_update(graph, task) if task.id in done else None
                if update is not None:
                    yield Emit("updates", update)
        runs = [run.task_run(t, resume_values) for t in tasks.values() if t.id not in done]
        if run.task_modes:
            yield from task_start_events(run, runs)
        outcomes: list[TaskOutcome] = (
            (yield Execute(runs, run.channels, run.null_resume, live=run.streams_live))
            if runs
            else []
        )
        error: BaseException | None = None
        interrupts: list[Interrupt] = []
        for outcome in outcomes:
            yield from run.record(outcome)
            if outcome.error is not None and error is None:
                error = outcome.error
            interrupts.extend(outcome.interrupts)
        if error is not None:
            raise error
        if interrupts:
            result.status = "interrupted"
            result.interrupts = interrupts
            yield from run.paused(tasks, tuple(interrupts))
            break
        yield from run.finish_step(tasks)
        if interrupt_after and should_interrupt(run.checkpoint, interrupt_after, tasks.values()):
            result.status = "interrupt_after"
            yield from run.at_breakpoint()
            break
    result.values = graph.read_output(run.channels)
    result.config = run.checkpoint_config
    if result.status == "interrupted" and run.configurable.get("__relaygraph_nested"):
        raise GraphInterrupt(result.interrupts)
    return result


def cached_update(graph: CompiledStateGraph, task: Task) -> dict[str, Any] | None:
    """The ``updates`` chunk of a task that finished before the run resumed its step."""
    if task.name == START:
        return None
    return {task.name: graph.update_of(task.state_writes), "__metadata__": {"cached": True}}


def _interrupt_chunks(run: Run, interrupts: tuple[Interrupt, ...]) -> Generator[Any, Any, None]:
    """The stream's word that the run paused, as LangGraph sends it: ``updates`` gets
    ``{"__interrupt__": interrupts}`` (empty for a breakpoint), ``values`` the state with
    the pending interrupts (``interrupt()`` only)."""
    if run.emits("updates"):
        yield Emit("updates", {INTERRUPT: interrupts})
    if interrupts and run.emits("values"):
        yield Emit("values", {**run.graph.read_state(run.channels), INTERRUPT: interrupts})


def _read_config(run: Run, config: dict[str, Any]) -> dict[str, Any]:
    configurable = {"thread_id": run.thread_id, "checkpoint_ns": run.ns}
    if config["configurable"].get("checkpoint_id"):
        configurable["checkpoint_id"] = config["configurable"]["checkpoint_id"]
    return {"configurable": configurable}


def _accept_command(
    run: Run, command: Command, pending: list[Any], null_resume: NullResume, saved: Any
) -> Generator[Any, Any, list[tuple[str, Any]]]:
    """Check a Command input and turn it into writes of the null task."""
    writes: list[tuple[str, Any]] = []
    if command.resume is not None:
        waiting = pending_interrupts(pending)
        if not waiting and not run.configurable.get("__relaygraph_nested"):
            raise InvalidResumeError(
                "Command(resume=...) was given but nothing is waiting to be resumed on thread "
                f"{run.thread_id!r}: no pending interrupt"
            )
        resume = command.resume
        if isinstance(resume, dict) and resume and all(_looks_like_id(k) for k in resume):
            unknown = sorted(set(resume) - set(waiting))
            if unknown and waiting:
                raise InvalidResumeError(
                    f"Command(resume=...) names unknown interrupt {unknown[0]}"
                )
            # Answers from earlier resumes of the same step stay valid (parallel interrupts
            # answered one at a time); this resume's answers win.
            stored = run.configurable.get("__relaygraph_resume_map") or {}
            run.configurable["__relaygraph_resume_map"] = {**stored, **resume}
            answers = [(RESUME_MAP, dict(resume))]
            answers_task = resume_map_task_id(resume)
        else:
            if len(waiting) > 1:
                raise InvalidResumeError(
                    "When there are multiple pending interrupts, you must specify the interrupt "
                    "id when resuming: Command(resume={interrupt.id: value, ...})"
                )
            null_resume.offer(resume)
            answers = [(RESUME, {"value": resume, "consumed": False})]
            answers_task = NULL_TASK_ID
        # Stored with the checkpoint, so tasks that run elsewhere (workers) find the answer.
        if run.saver is not None and saved is not None:
            yield SaverCall("put_writes", (saved.config, answers, answers_task))
    if command.update is not None:
        writes.extend(run.graph.update_schema.update_pairs(command.update, source="Command"))
    if command.goto:
        from relaygraph.runtime.nodes import goto_writes

        writes.extend(goto_writes(command, run.graph.node_names))
    if writes and run.saver is not None and saved is not None:
        yield SaverCall("put_writes", (saved.config, writes, NULL_TASK_ID))
    return writes


def resume_map_task_id(resume: dict[str, Any]) -> str:
    """The task id a ``Command(resume={id: value})`` is stored under.

    Pending writes keep the first write per (task id, index), so two resumes of one step
    stored under the same id would drop the second's answers: each set of interrupt ids
    gets an id of its own, and loading merges them all.
    """
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_OID, "relaygraph-resume:" + "|".join(sorted(resume))))


def _looks_like_id(key: Any) -> bool:
    return isinstance(key, str) and len(key) == 32 and all(c in "0123456789abcdef" for c in key)


def _match_pending(
    tasks: dict[str, Task], pending: list[Any]
) -> tuple[set[str], dict[str, list[Any]]]:
    """Tasks that already finished against this checkpoint, and recorded resume answers."""
    done: set[str] = set()
    resume_values: dict[str, list[Any]] = {}
    for task_id, channel, value in pending:
        task = tasks.get(task_id)
        if task is None:
            continue
        if channel == RESUME:
            resume_values[task_id] = list(value)
        elif channel in (ERROR, INTERRUPT):
            continue
        else:
            done.add(task_id)
            if channel != NO_WRITES:
                task.writes.append((channel, value))
    return done, resume_values


def _record_outcome(run: Run, outcome: TaskOutcome) -> Generator[Any, Any, None]:
    """Store a finished task's writes (or its error / interrupt) against the checkpoint."""
    task = outcome.task
    saver_writes: list[tuple[str, Any]] = []
    if outcome.new_resume_values is not None:
        saver_writes.append((RESUME, outcome.new_resume_values))
    if (
        outcome.claimed_null_resume
        and run.saver is not None
        and run.checkpoint_config.get("configurable", {}).get("checkpoint_id")
    ):
        # The Command(resume=...) answer now belongs to this task: never hand it out again.
        consumed = [(RESUME, {"value": None, "consumed": True})]
        yield SaverCall("put_writes", (run.checkpoint_config, consumed, NULL_TASK_ID))
    if outcome.error is not None:
        saver_writes.append((ERROR, outcome.error))
    elif outcome.interrupts:
        saver_writes.append((INTERRUPT, list(outcome.interrupts)))
    else:
        task.writes = list(outcome.writes)
        saver_writes.extend(outcome.writes or [(NO_WRITES, None)])
    for chunk in outcome.custom:
        if run.emits("custom"):
            yield Emit("custom", chunk)
    finished = outcome.error is None and not outcome.interrupts
    if finished and run.emits("updates") and task.name != START:
        yield Emit("updates", {task.name: outcome.update})
    if run.task_modes and task.name != START:
        yield from _task_result_events(run, outcome)
    if run.saver is not None and run.checkpoint_config.get("configurable", {}).get("checkpoint_id"):
        yield SaverCall("put_writes", (run.checkpoint_config, saver_writes, task.id))


# -- the "tasks" and "debug" stream modes ------------------------------------------------


def task_start_events(run: Run, runs: list[TaskRun]) -> Generator[Any, Any, None]:
    """A ``tasks`` / ``debug`` event for each task about to run (START has none); workers
    send them as their node starts."""
    for task_run in runs:
        if task_run.task.name == START:
            continue
        payload = run.graph.task_payload(task_run.task, task_run.input)
        yield from _task_mode_emits(run, "task", payload)


def _task_result_events(run: Run, outcome: TaskOutcome) -> Generator[Any, Any, None]:
    """A ``tasks`` / ``debug`` event for a finished task."""
    yield from _task_mode_emits(run, "task_result", run.graph.task_result_payload(outcome))


def _task_mode_emits(run: Run, kind: str, payload: dict[str, Any]) -> Generator[Any, Any, None]:
    if run.emits("tasks"):
        yield Emit("tasks", payload)
    if run.emits("debug"):
        stamp = datetime.now(UTC).isoformat()
        yield Emit(
            "debug", {"step": run.step, "timestamp": stamp, "type": kind, "payload": payload}
        )


def _resumed_checkpoint_events(run: Run) -> Generator[Any, Any, None]:
    """A resumed run first shows the checkpoint it continues (with its pending
    interrupts), as LangGraph does."""
    saved = run.saved
    snapshot = run.graph.checkpoint_event(
        saved.config,
        saved.parent_config,
        saved.checkpoint,
        saved.metadata,
        run.channels,
        int(saved.metadata.get("step", -1)),
        pending_interrupts=_interrupts_by_task(run.pending),
    )
    yield from _checkpoint_emits(
        run, snapshot, saved.checkpoint["ts"], snapshot["metadata"]["step"]
    )


def _interrupts_by_task(pending: list[Any]) -> dict[str, tuple[Interrupt, ...]]:
    found: dict[str, tuple[Interrupt, ...]] = {}
    for task_id, channel, value in pending:
        if channel == INTERRUPT:
            found[task_id] = tuple(value if isinstance(value, (list, tuple)) else [value])
    return found


def _checkpoint_emits(
    run: Run, snapshot: dict[str, Any], ts: str, step: int
) -> Generator[Any, Any, None]:
    if run.emits("checkpoints"):
        yield Emit("checkpoints", snapshot)
    if run.emits("debug"):
        yield Emit(
            "debug", {"step": step, "timestamp": ts, "type": "checkpoint", "payload": snapshot}
        )


def _commit(
    run: Run, checkpoint: Any, channels: dict[str, Any], source: str, step: int
) -> Generator[Any, Any, Any]:
    """Write the next checkpoint (compare-and-set on the head) and make it current."""
    graph = run.graph
    new = create_checkpoint(checkpoint, channels)
    metadata = checkpoint_metadata(run.config, source, step, run.parents)
    previous_versions = run.stored_versions
    new_versions = {
        name: version
        for name, version in new["channel_versions"].items()
        if previous_versions.get(name) != version
    }
    parent_config = (
        run.checkpoint_config
        if (run.checkpoint_config.get("configurable") or {}).get("checkpoint_id")
        else None
    )
    if run.saver is not None:
        stored = yield SaverCall(
            "put",
            (parent_config or run.checkpoint_config, new, metadata, new_versions),
            {"expected_head": run.head},
        )
        run.checkpoint_config = stored
        run.head = new["id"]
    else:
        run.checkpoint_config = make_config(run.thread_id or "", run.ns, new["id"])
    run.stored_versions = dict(new["channel_versions"])
    if run.emits("checkpoints") or run.emits("debug"):
        snapshot = graph.checkpoint_event(
            run.checkpoint_config, parent_config, new, metadata, channels, step
        )
        yield from _checkpoint_emits(run, snapshot, new["ts"], step)
    return copy_checkpoint(new)
