"""``Runtime``: the run-scoped context a node asks for with a ``runtime`` parameter.

LangGraph 1.x hands a node ``runtime: Runtime[Ctx]`` holding the run's ``context`` (the
value given as ``invoke(..., context=...)``), the graph's ``store`` and the custom
``stream_writer``. relaygraph builds one only for nodes that ask for it (a ``runtime``
parameter, or a :func:`get_runtime` call), so graphs that do not use it pay nothing.

The context travels with the run in its config (``configurable["__relaygraph_context"]``),
so subgraphs see their parent's context and, on Celery workers, it is stored with the run
record and serialized like the run's input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

__all__ = [
    "CONTEXT_KEY",
    "ExecutionInfo",
    "RunControl",
    "Runtime",
    "coerce_context",
    "get_runtime",
    "runtime_for",
]

CONTEXT_KEY = "__relaygraph_context"
"""Where a run's context sits in ``config["configurable"]``."""

ContextT = TypeVar("ContextT")


def _no_op_writer(_chunk: Any) -> None:
    return None


def _no_op_heartbeat() -> None:
    return None


@dataclass(frozen=True)
class ExecutionInfo:
    """Where and how often the running node runs (LangGraph 1.x's ``ExecutionInfo``).

    ``checkpoint_id`` is the checkpoint the node's step runs against, ``checkpoint_ns`` the
    node's namespace (``"<node>:<task id>"``, nested with ``|``), ``node_attempt`` counts
    from 1 (retries by a ``RetryPolicy`` add one, on workers too);
    ``node_first_attempt_time`` is the first attempt's start (Unix seconds; on workers,
    when the first attempt took the task's lease, to the millisecond).
    """

    checkpoint_id: str
    checkpoint_ns: str
    task_id: str
    thread_id: str | None = None
    run_id: str | None = None
    node_attempt: int = 1
    node_first_attempt_time: float | None = None

    def patch(self, **overrides: Any) -> ExecutionInfo:
        """A copy with the given fields replaced."""
        return replace(self, **overrides)


class RunControl:
    """LangGraph's run control: a drain request a node may poll. relaygraph never requests
    one itself (a worker shutting down finishes the running node instead)."""

    def __init__(self) -> None:
        self._drain_reason: str | None = None

    def request_drain(self, reason: str = "shutdown") -> None:
        """Ask the node to wind down (``drain_requested`` becomes True)."""
        self._drain_reason = reason

    @property
    def drain_requested(self) -> bool:
        """Whether a drain was requested."""
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> str | None:
        """The reason given with the drain request."""
        return self._drain_reason


@dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """What a running node can reach besides its state.

    * ``context``: the run's static context (``invoke(..., context=...)``), e.g. a user id;
    * ``store``: the store the graph was compiled with (or None);
    * ``stream_writer``: sends a chunk to ``stream_mode="custom"`` consumers;
    * ``heartbeat``: a no-op (LangGraph's platform uses it);
    * ``previous``: always None (LangGraph fills it in its functional API only);
    * ``execution_info``: the node's :class:`ExecutionInfo` (None outside a node);
    * ``server_info``: always None (LangGraph's platform fills it);
    * ``control``: a :class:`RunControl` (nothing requests a drain in relaygraph).

    >>> Runtime(context={"user": "ada"}).context["user"]
    'ada'
    """

    context: ContextT = field(default=None)  # type: ignore[assignment]
    store: Any = None
    stream_writer: Callable[[Any], None] = _no_op_writer
    heartbeat: Callable[[], None] = _no_op_heartbeat
    previous: Any = None
    execution_info: ExecutionInfo | None = None
    server_info: Any = None
    control: RunControl | None = None

    def override(self, **overrides: Any) -> Runtime[ContextT]:
        """A copy with the given fields replaced."""
        return replace(self, **overrides)

    def merge(self, other: Runtime[ContextT]) -> Runtime[ContextT]:
        """``other``'s fields where set, else this runtime's."""
        return Runtime(
            context=other.context if other.context is not None else self.context,
            store=other.store if other.store is not None else self.store,
            stream_writer=other.stream_writer
            if other.stream_writer is not _no_op_writer
            else self.stream_writer,
            heartbeat=other.heartbeat
            if other.heartbeat is not _no_op_heartbeat
            else self.heartbeat,
            previous=other.previous if other.previous is not None else self.previous,
            execution_info=other.execution_info or self.execution_info,
            server_info=other.server_info or self.server_info,
            control=other.control or self.control,
        )


def coerce_context(schema: Any, context: Any) -> Any:
    """A dict context becomes an instance of a dataclass or pydantic ``context_schema``."""
    if context is None or schema is None or not isinstance(context, dict):
        return context
    from pydantic import BaseModel

    if (isinstance(schema, type) and issubclass(schema, BaseModel)) or (
        dataclasses.is_dataclass(schema) and isinstance(schema, type)
    ):
        return schema(**context)
    return context


def runtime_for(
    config: dict[str, Any], store: Any, writer: Callable[[Any], None] | None
) -> Runtime:
    """The runtime a node of a run with ``config`` sees."""
    configurable = config.get("configurable") or {}
    return Runtime(
        context=configurable.get(CONTEXT_KEY),
        store=store,
        stream_writer=writer or _no_op_writer,
        execution_info=_execution_info(config),
        control=RunControl(),
    )


def _execution_info(config: dict[str, Any]) -> ExecutionInfo | None:
    """The running task's :class:`ExecutionInfo` (None outside a node)."""
    from relaygraph.runtime.context import current_task_or_none

    task = current_task_or_none()
    if task is None:
        return None
    configurable = config.get("configurable") or {}
    ns = configurable.get("checkpoint_ns") or ""
    graph_ns = ns.rpartition("|")[0]  # the namespace of the graph the node belongs to
    run_id = config.get("run_id") or configurable.get("__relaygraph_run_id")
    if graph_ns:  # LangGraph's subgraph calls run in a child config without the run_id
        run_id = None
    return ExecutionInfo(
        checkpoint_id=(configurable.get("__relaygraph_parents") or {}).get(graph_ns, ""),
        checkpoint_ns=ns,
        task_id=task.task_id,
        thread_id=configurable.get("thread_id"),
        run_id=None if run_id is None else str(run_id),
        node_attempt=task.attempt,
        node_first_attempt_time=task.first_attempt_time,
    )


def get_runtime(context_schema: Any = None) -> Runtime:
    """The running node's :class:`Runtime` (``context_schema`` is a typing hint only).

    Raises a clear error outside a graph node.
    """
    from relaygraph.runtime.context import current_task

    task = current_task()
    return runtime_for(task.config, task.store, task.writer)
