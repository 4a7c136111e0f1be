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

__all__ = ["CONTEXT_KEY", "Runtime", "coerce_context", "get_runtime", "runtime_for"]

CONTEXT_KEY = "__relaygraph_context"
"""Where a run's context sits in ``config["configurable"]``."""

ContextT = TypeVar("ContextT")


def _no_op_writer(_chunk: Any) -> None:
    return None


@dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """What a running node can reach besides its state.

    * ``context``: the run's static context (``invoke(..., context=...)``), e.g. a user id;
    * ``store``: the store the graph was compiled with (or None);
    * ``stream_writer``: sends a chunk to ``stream_mode="custom"`` consumers;
    * ``previous``: always None (LangGraph fills it in its functional API only).

    >>> Runtime(context={"user": "ada"}).context["user"]
    'ada'
    """

    context: ContextT = field(default=None)  # type: ignore[assignment]
    store: Any = None
    stream_writer: Callable[[Any], None] = _no_op_writer
    previous: Any = None

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
            previous=other.previous if other.previous is not None else self.previous,
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
    context = (config.get("configurable") or {}).get(CONTEXT_KEY)
    return Runtime(context=context, store=store, stream_writer=writer or _no_op_writer)


def get_runtime(context_schema: Any = None) -> Runtime:
    """The running node's :class:`Runtime` (``context_schema`` is a typing hint only).

    Raises a clear error outside a graph node.
    """
    from relaygraph.runtime.context import current_task

    task = current_task()
    return runtime_for(task.config, task.store, task.writer)
