"""What a running node can reach without parameters: ``interrupt``, the stream writer, config.

The executor sets a :class:`TaskContext` in a context variable around each node call, so
these functions work from any depth of the node's call stack (and in async nodes).
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relaygraph.runtime.errors import GraphInterrupt, RelaygraphError
from relaygraph.runtime.types import Interrupt

__all__ = [
    "TaskContext",
    "get_config",
    "get_store",
    "get_stream_writer",
    "get_task_id",
    "interrupt",
]

_UNSET: Any = object()


@dataclass
class TaskContext:
    """The state one task's node call sees.

    ``resume_values`` answers the task's earlier ``interrupt()`` calls in call order;
    ``null_resume`` is a ``Command(resume=value)`` not yet claimed by any task; the first
    unanswered ``interrupt()`` call that finds it takes it (and the claim is recorded so a
    re-run sees the same answer).
    """

    task_id: str
    config: dict[str, Any]
    store: Any = None
    writer: Callable[[Any], None] = lambda _chunk: None
    resume_values: list[Any] = field(default_factory=list)
    resume_map: dict[str, Any] | None = None
    claim_null_resume: Callable[[], Any] = lambda: _UNSET
    counter: int = 0
    new_resume_values: list[Any] | None = None
    claimed_null_resume: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    read_state: Callable[[], Any] | None = None
    remaining_steps: int | None = None
    """The graph state at the start of the task's step, as the node's schema gives it
    (what a tool node needs when a ``Send`` hands it only tool calls)."""
    attempt: int = 1
    """This call's attempt at the task (1 first; a RetryPolicy's retries count on)."""
    first_attempt_time: float | None = None
    """When the task's first attempt started (Unix seconds), where this process knows it."""


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "relaygraph_task", default=None
)


def current_task() -> TaskContext:
    """The running task's context; a clear error outside a node."""
    context = _current.get()
    if context is None:
        raise RelaygraphError("this function can only be called from inside a graph node")
    return context


def current_task_or_none() -> TaskContext | None:
    """The running task's context, or None outside a node."""
    return _current.get()


def set_task_context(context: TaskContext | None) -> contextvars.Token:
    """Install ``context`` for the current node call (returns the token to reset)."""
    return _current.set(context)


def reset_task_context(token: contextvars.Token) -> None:
    """Restore the context that was current before :func:`set_task_context`."""
    _current.reset(token)


def interrupt_id(task_id: str, index: int) -> str:
    """The stable id of a task's ``index``-th interrupt (32 hex digits)."""
    return hashlib.sha256(f"{task_id}:{index}".encode()).hexdigest()[:32]


def interrupt(value: Any) -> Any:
    """Pause the graph and hand ``value`` to the caller; return the answer on resume.

    The first call raises :class:`GraphInterrupt` (the run stops, the thread's state is
    saved); after ``graph.invoke(Command(resume=answer), config)`` the node runs again
    from the start and this call returns ``answer``. A node may call it several times:
    answers are matched by call order.

    >>> from relaygraph import Command, MemorySaver, StateGraph, START, interrupt
    >>> from typing import TypedDict
    >>> class S(TypedDict):
    ...     name: str
    >>> def ask(state: S):
    ...     return {"name": interrupt("What is your name?")}
    >>> graph = StateGraph(S).add_node("ask", ask).add_edge(START, "ask")
    >>> graph = graph.compile(checkpointer=MemorySaver())
    >>> cfg = {"configurable": {"thread_id": "t"}}
    >>> graph.invoke({"name": ""}, cfg)["__interrupt__"][0].value
    'What is your name?'
    >>> graph.invoke(Command(resume="Ada"), cfg)
    {'name': 'Ada'}
    """
    context = current_task()
    with context.lock:
        index = context.counter
        context.counter += 1
        if index < len(context.resume_values):
            return context.resume_values[index]
        identifier = interrupt_id(context.task_id, index)
        if context.resume_map is not None and identifier in context.resume_map:
            answer = context.resume_map[identifier]
        else:
            answer = context.claim_null_resume()
            context.claimed_null_resume = answer is not _UNSET
        if answer is not _UNSET:
            context.resume_values.append(answer)
            context.new_resume_values = list(context.resume_values)
            return answer
    raise GraphInterrupt([Interrupt(value=value, id=identifier)])


def get_stream_writer() -> Callable[[Any], None]:
    """A function that sends a chunk to ``stream_mode="custom"`` consumers of the run."""
    context = _current.get()
    if context is None:
        return lambda _chunk: None
    return context.writer


def get_config() -> dict[str, Any]:
    """The config of the running node's run."""
    return current_task().config


def get_task_id() -> str:
    """The running task's id: the same on every retry and every worker that runs it.

    Use it as the idempotency key of a node's outside side effects (node execution is at
    least once; the step's commit is exactly once).
    """
    return current_task().task_id


def read_task_state() -> Any:
    """The graph state the running task's step started from (None outside a node)."""
    context = _current.get()
    if context is None or context.read_state is None:
        return None
    return context.read_state()


def get_remaining_steps() -> int | None:
    """Supersteps the running task's run may still take (None outside a node)."""
    context = _current.get()
    return None if context is None else context.remaining_steps


def get_store() -> Any:
    """The store the graph was compiled with (or None)."""
    return current_task().store


NO_ANSWER = _UNSET
"""What ``TaskContext.claim_null_resume`` returns when there is no answer to claim."""
