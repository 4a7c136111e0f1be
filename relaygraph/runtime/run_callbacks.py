"""LangChain callback runs for a graph run and its nodes, as LangGraph reports them.

With callbacks in a run's config (a tracer, ``astream_events``'s handler, LangSmith
through ``LANGSMITH_TRACING``), the run is one chain run named after the graph and every
node call a child chain run named after the node (tagged ``graph:step:N``, with the
node's ``langgraph_*`` metadata); chat models and tools called inside a node are that
run's children. Without callbacks, nothing here runs: a run pays nothing for it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackManager, CallbackManager
from langchain_core.tracers._streaming import _StreamingCallbackHandler

__all__ = ["GraphRun", "NodeRun", "start_graph_run", "start_node_run", "tracing_enabled"]


class GraphRun:
    """The chain run of one graph call; :meth:`end` or :meth:`error` closes it."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def end(self, output: Any) -> None:
        self.manager.on_chain_end(output)

    def error(self, exc: BaseException) -> None:
        self.manager.on_chain_error(exc)


def start_graph_run(
    name: str, input: Any, config: dict[str, Any]
) -> tuple[dict[str, Any], GraphRun | None]:
    """Open the graph call's chain run; ``config`` with its child callbacks for the nodes.

    ``config["run_id"]`` (``astream_events`` sets one) is the run's id. With no handler
    to report to (no callbacks and no tracing from the environment), nothing is opened.
    """
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager) and not callbacks.handlers:
        callbacks = None
    if not callbacks and not tracing_enabled():
        return config, None  # the common case, without configuring a manager (~35 us)
    manager = CallbackManager.configure(
        inheritable_callbacks=callbacks,
        inheritable_tags=config.get("tags"),
        inheritable_metadata=config.get("metadata"),
    )
    if not manager.handlers:
        return config, None
    run_id = config.get("run_id")
    run = manager.on_chain_start(
        None,
        input,
        run_id=run_id if isinstance(run_id, uuid.UUID) else None,
        name=config.get("run_name") or name,
    )
    return {**config, "callbacks": run.get_child()}, GraphRun(run)


class NodeRun:
    """The chain run of one node call."""

    def __init__(self, manager: Any, child: Any) -> None:
        self.manager = manager
        self.child = child
        """The callbacks a node's LangChain calls report to (this run's children)."""

    def end(self, input: Any, output: Any) -> None:
        """Report the node's result as its stream chunk (``on_chain_stream``) and its end."""
        for handler in self.manager.handlers:
            if isinstance(handler, _StreamingCallbackHandler) and not _is_messages(handler):
                for _ in handler.tap_output_iter(self.manager.run_id, iter([output])):
                    pass
        self.manager.on_chain_end(output, inputs=input)

    def error(self, exc: BaseException) -> None:
        self.manager.on_chain_error(exc)

    @contextlib.contextmanager
    def child_run(self, func: Any, input: Any) -> Iterator[ChildRun]:
        """A run of this node's for ``func`` (a conditional edge's path), as LangGraph
        reports the edges a node's writers evaluate."""
        name = getattr(func, "__name__", None) or type(func).__name__
        run = self.child.on_chain_start(None, input, name=name)
        child = ChildRun(run)
        try:
            yield child
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(child.output)


class ChildRun:
    """An open child run: its callbacks, and :meth:`done` to record its output."""

    def __init__(self, manager: Any) -> None:
        self.callbacks = manager.get_child()
        self.output: Any = None

    def done(self, output: Any) -> Any:
        self.output = output
        return output


def start_node_run(config: dict[str, Any], name: str, input: Any, step: int) -> NodeRun:
    """Open a node call's chain run under the graph run whose callbacks ``config`` holds."""
    manager = CallbackManager.configure(
        inheritable_callbacks=config["callbacks"],
        inheritable_tags=config.get("tags"),
        local_tags=[f"graph:step:{step}"],
        inheritable_metadata=config.get("metadata"),
    )
    run = manager.on_chain_start(None, input, name=name)
    return NodeRun(run, run.get_child())


def tracing_enabled() -> bool:
    """Whether LangSmith tracing is on (environment or ``tracing_v2_enabled()``)."""
    try:
        from langchain_core.tracers.context import _tracing_v2_is_enabled
    except ImportError:  # a langchain_core without it: let configure() decide
        return True
    return bool(_tracing_v2_is_enabled())


def _is_messages(handler: Any) -> bool:
    from relaygraph.runtime.stream_messages import MessagesHandler

    return isinstance(handler, MessagesHandler)
