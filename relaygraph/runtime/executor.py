"""Running one task: call the node (with retries), turn its result into writes.

Used by the in-process drivers and, on workers, by the distributed executor. Everything
a node does to the outside world happens here; the result is a :class:`TaskOutcome`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relaygraph.runtime.algorithm import apply_writes, copy_checkpoint
from relaygraph.runtime.channels import BaseChannel
from relaygraph.runtime.context import NO_ANSWER, TaskContext, reset_task_context, set_task_context
from relaygraph.runtime.effects import TaskOutcome, TaskRun
from relaygraph.runtime.errors import GraphInterrupt
from relaygraph.runtime.nodes import (
    CompiledNode,
    ParentCommand,
    acall_function,
    branch_writes,
    call_function,
    goto_writes,
)
from relaygraph.runtime.stream_messages import NodeCall, node_call_config
from relaygraph.runtime.types import Command

if TYPE_CHECKING:
    from relaygraph.runtime.pregel import CompiledStateGraph

__all__ = ["NullResume", "arun_task", "run_task"]


class NullResume:
    """A ``Command(resume=value)`` answer that the first unanswered interrupt claims."""

    def __init__(self, values: list[Any] | None = None) -> None:
        self._values = list(values or [])
        self._lock = threading.Lock()

    def offer(self, value: Any) -> None:
        """Make ``value`` the answer the next unanswered interrupt takes."""
        with self._lock:
            self._values = [value]

    def claim(self) -> Any:
        with self._lock:
            return self._values.pop(0) if self._values else NO_ANSWER


def _context_for(
    run: TaskRun,
    store: Any,
    writer: Callable[[Any], None],
    null_resume: NullResume,
    read_state: Callable[[], Any] | None = None,
    attempt: int = 1,
    first_attempt_time: float | None = None,
) -> TaskContext:
    configurable = run.config.get("configurable", {})
    return TaskContext(
        attempt=attempt,
        first_attempt_time=first_attempt_time,
        task_id=run.task.id,
        config=run.config,
        store=store,
        writer=writer,
        resume_values=list(run.resume_values),
        resume_map=configurable.get("__relaygraph_resume_map"),
        claim_null_resume=null_resume.claim,
        read_state=read_state,
        remaining_steps=run.remaining_steps,
    )


def _state_reader(
    graph: CompiledStateGraph, node: CompiledNode, channels: dict[str, BaseChannel]
) -> Callable[[], Any]:
    """Read the step's state on demand, as the node's input schema shapes it."""

    def read() -> Any:
        schema = node.input_schema or graph.builder.schema
        values = graph.read_state(channels)
        if node.input_schema is not None:
            values = {k: v for k, v in values.items() if k in schema.annotations}
        return schema.to_node_input(values)

    return read


def result_writes(
    graph: CompiledStateGraph,
    node: CompiledNode,
    run: TaskRun,
    result: Any,
    channels: dict[str, BaseChannel],
    call: NodeCall | None = None,
) -> tuple[list[tuple[str, Any]], Any]:
    """The writes of a node's result: state update, static edges, conditional edges.

    With ``call`` traced, each conditional edge's path reports as a run of the node's."""
    known = graph.node_names
    schema = graph.update_schema
    if _is_command_list(result):
        # As LangGraph: a list mixing Commands and updates (a ToolNode whose tools
        # returned Commands) is each part's writes, in list order.
        writes = []
        for part in result:
            if isinstance(part, Command):
                if part.graph == Command.PARENT:
                    raise ParentCommand(part)
                if part.update:
                    writes.extend(schema.update_pairs(part.update, source=node.name))
                writes.extend(goto_writes(part, known))
            else:
                writes.extend(schema.update_pairs(part, source=node.name))
        update = _update_view([(k, v) for k, v in writes if k in graph.state_keys])
    elif isinstance(result, Command):
        if result.graph == Command.PARENT:
            raise ParentCommand(result)
        writes = schema.update_pairs(result.update, source=node.name) if result.update else []
        update = _update_view(writes)
        writes = writes + goto_writes(result, known)
    elif node.is_subgraph:
        writes = schema.update_pairs(result, source=node.name)
        update = _update_view(writes)
    else:
        writes = schema.update_pairs(result, source=node.name)
        update = _update_view(writes) if result is not None else None
    writes.extend(node.static_writes())
    if node.branches:
        fresh = {name: channel.copy() for name, channel in channels.items()}
        scratch = copy_checkpoint(graph.scratch_checkpoint)
        from relaygraph.runtime.algorithm import Task

        apply_writes(scratch, fresh, [Task("", node.name, ("", ""), (), writes=writes)], None)
        state = graph.state_input(graph.read_state(fresh))
        for branch, signature in node.branches:
            if call is not None and call.trace is not None:
                with call.trace.child_run(branch.path, state) as child:
                    config = {**run.config, "callbacks": child.callbacks}
                    chosen = child.done(
                        call_function(branch.path, signature, state, config, graph.store)
                    )
            else:
                chosen = call_function(branch.path, signature, state, run.config, graph.store)
            writes.extend(branch_writes(node, chosen, branch, known))
    return writes, update


def _is_command_list(result: Any) -> bool:
    return isinstance(result, (list, tuple)) and any(isinstance(r, Command) for r in result)


def _update_view(writes: list[tuple[str, Any]]) -> dict[str, Any] | list[Any] | None:
    """A task's writes as the ``updates`` stream shows them.

    As LangGraph: one dict, or, when a key was written more than once (a list of
    Commands), one single-key dict per write, in order.
    """
    if not writes:
        return None
    view: dict[str, Any] = {}
    for key, value in writes:
        if key in view:
            return [{k: v} for k, v in writes]
        view[key] = value
    return view


def run_task(
    graph: CompiledStateGraph,
    run: TaskRun,
    channels: dict[str, BaseChannel],
    null_resume: NullResume,
    writer: Callable[[Any], None],
    *,
    retries: bool = True,
    attempt: int = 1,
    first_attempt_time: float | None = None,
) -> TaskOutcome:
    """Run a task to completion in this thread, retrying per the node's RetryPolicy.

    With ``retries=False`` a failure is returned at once (the distributed executor
    retries through the broker instead, counting attempts in Redis, and says which
    ``attempt`` this is and when the first one started).
    """
    node = graph.nodes[run.task.name]
    first_time = first_attempt_time or (time.time() if attempt == 1 else None)
    attempt -= 1
    while True:
        attempt += 1
        context = _context_for(
            run,
            graph.store,
            writer,
            null_resume,
            _state_reader(graph, node, channels),
            attempt,
            first_time,
        )
        token = set_task_context(context)
        try:
            with node_call_config(run) as call:
                config = context.config = call.config(run)  # under the node's own run
                messages = call.messages
                meta = messages.node_started(run) if messages is not None else None
                try:
                    if node.is_subgraph:
                        result = node.action.invoke_nested(run.input, config, writer)
                    else:
                        result = call_function(
                            node.action, node.signature, run.input, config, graph.store
                        )
                except ParentCommand as exc:
                    result = _for_this_graph(exc.command)
                if meta is not None:
                    messages.node_finished(meta, result)  # type: ignore[union-attr]
                writes, update = result_writes(graph, node, run, result, channels, call)
                call.finished(run.input, result)
            return _finished(context, TaskOutcome(run.task, writes, update))
        except GraphInterrupt as exc:
            return _finished(context, TaskOutcome(run.task, interrupts=exc.interrupts))
        except ParentCommand:
            raise
        except Exception as exc:
            delay = _retry_delay(node, exc, attempt) if retries else None
            if delay is None:
                return _finished(context, TaskOutcome(run.task, error=exc))
        finally:
            reset_task_context(token)
        time.sleep(delay)


async def arun_task(
    graph: CompiledStateGraph,
    run: TaskRun,
    channels: dict[str, BaseChannel],
    null_resume: NullResume,
    writer: Callable[[Any], None],
) -> TaskOutcome:
    """Async :func:`run_task`: async nodes are awaited, sync ones run in a thread."""
    node = graph.nodes[run.task.name]
    first_time = time.time()
    attempt = 0
    while True:
        attempt += 1
        context = _context_for(
            run,
            graph.store,
            writer,
            null_resume,
            _state_reader(graph, node, channels),
            attempt,
            first_time,
        )
        token = set_task_context(context)
        try:
            with node_call_config(run) as call:
                config = context.config = call.config(run)  # under the node's own run
                messages = call.messages
                meta = messages.node_started(run) if messages is not None else None
                try:
                    if node.is_subgraph:
                        result = await node.action.ainvoke_nested(run.input, config, writer)
                    else:
                        result = await acall_function(
                            node.action, node.signature, run.input, config, graph.store
                        )
                except ParentCommand as exc:
                    result = _for_this_graph(exc.command)
                if meta is not None:
                    messages.node_finished(meta, result)  # type: ignore[union-attr]
                writes, update = result_writes(graph, node, run, result, channels, call)
                call.finished(run.input, result)
            return _finished(context, TaskOutcome(run.task, writes, update))
        except GraphInterrupt as exc:
            return _finished(context, TaskOutcome(run.task, interrupts=exc.interrupts))
        except ParentCommand:
            raise
        except Exception as exc:
            delay = _retry_delay(node, exc, attempt)
            if delay is None:
                return _finished(context, TaskOutcome(run.task, error=exc))
        finally:
            reset_task_context(token)
        await asyncio.sleep(delay)


def _for_this_graph(command: Command) -> Command:
    """A child graph's ``Command(graph=Command.PARENT)``: this task's own result now."""
    return dataclasses.replace(command, graph=None)


def _finished(context: TaskContext, outcome: TaskOutcome) -> TaskOutcome:
    """Attach what the task's ``interrupt()`` calls answered to its outcome."""
    outcome.new_resume_values = context.new_resume_values
    outcome.claimed_null_resume = context.claimed_null_resume
    return outcome


def _retry_delay(node: CompiledNode, exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before the next attempt, or None when the task has failed for good."""
    policy = node.retry_policy
    if policy is None or attempt >= policy.max_attempts or not policy.should_retry(exc):
        return None
    return policy.interval(attempt)
