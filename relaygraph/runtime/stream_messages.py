"""``stream_mode="messages"``: chat model tokens and node messages, as LangGraph streams them.

When a run streams messages, :func:`with_messages_handler` puts a :class:`MessagesHandler`
among the run config's LangChain callbacks. Around each node call the executor installs a
LangChain child config (:func:`node_call_config`), so a chat model invoked anywhere inside
the node (``model.invoke(state["messages"])``) reports to the handler: its tokens are
streamed as ``(AIMessageChunk, metadata)`` pairs while the node runs, and a model that did
not stream is reported once, whole, when it ends. Messages a node returns that the stream
has not shown yet (not among the node's input, not streamed already) follow when the node
ends. ``metadata`` carries what LangGraph's does: the run's metadata, its
``thread_id``, ``langgraph_step``, ``langgraph_node``,
``langgraph_triggers``, ``langgraph_path``, ``langgraph_checkpoint_ns``, and the model's own
``ls_*`` keys.

The handler writes through the running task's stream writer, so the same code streams
tokens in-process and, on a worker, into the run's event stream in Redis.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, CallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from relaygraph.runtime.algorithm import PUSH
from relaygraph.runtime.constants import START
from relaygraph.runtime.context import current_task
from relaygraph.runtime.effects import Emit, TaskRun
from relaygraph.runtime.run_callbacks import NodeRun, start_node_run, tracing_enabled
from relaygraph.runtime.types import Command

__all__ = [
    "MessagesHandler",
    "NodeCall",
    "node_call_config",
    "node_metadata",
    "with_messages_handler",
]

_NOSTREAM = "nostream"  # LangGraph's tag for a model whose tokens must not be streamed
_HIDDEN = "langsmith:hidden"
Meta = tuple[tuple[str, ...], dict[str, Any]]
# The run's configurable values LangGraph copies into a node's metadata. A model call inside
# the node adds the task's own checkpoint_ns to its metadata when the run had none.
_PROPAGATED = (
    "thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id", "assistant_id", "graph_id"
)


class MessagesHandler(BaseCallbackHandler, _StreamingCallbackHandler):
    """Streams chat model tokens and node output messages of one run (see the module doc).

    Being a streaming handler makes ``BaseChatModel.invoke`` stream its tokens internally,
    as LangGraph's handler does. ``run_inline`` keeps callbacks on the model's own thread,
    where the running task's writer is reachable.
    """

    run_inline = True

    def __init__(self, *, subgraphs: bool) -> None:
        self.subgraphs = subgraphs
        self._models: dict[UUID, Meta] = {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    # -- what a node does ---------------------------------------------------------------

    def node_started(self, run: TaskRun) -> Meta | None:
        """Remember the node's input messages as seen; the metadata its messages carry."""
        meta = _meta_of(run.config, self.subgraphs)
        if meta is None:
            return None
        ids = [m.id for m in _messages_in(run.input) if m.id is not None]
        with self._lock:
            self._seen.update(ids)
        return meta

    def node_finished(self, meta: Meta, result: Any) -> None:
        """Stream the messages of a node's result the stream has not shown yet."""
        if isinstance(result, Command):
            result = result.update
        elif isinstance(result, (list, tuple)) and any(isinstance(r, Command) for r in result):
            for item in result:
                self.node_finished(meta, item)
            return
        for message in _messages_in(result):
            self._emit(meta, message, dedupe=True)

    # -- LangChain callbacks ------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not metadata or "langgraph_node" not in metadata or _NOSTREAM in (tags or ()):
            return
        ns = _graph_namespace(metadata)
        if ns and not self.subgraphs:
            return
        self._models[run_id] = (ns, metadata)

    def on_llm_new_token(
        self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any
    ) -> None:
        meta = self._models.get(run_id)
        if meta is not None and isinstance(chunk, ChatGenerationChunk):
            self._emit(meta, chunk.message)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        meta = self._models.pop(run_id, None)
        if meta is not None and response.generations and response.generations[0]:
            generation = response.generations[0][0]
            if isinstance(generation, ChatGeneration):
                self._emit(meta, generation.message, dedupe=True)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._models.pop(run_id, None)

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        return output

    def tap_output_aiter(self, run_id: UUID, output: Any) -> Any:
        return output

    # -- emitting -----------------------------------------------------------------------

    def _emit(self, meta: Meta, message: BaseMessage, *, dedupe: bool = False) -> None:
        with self._lock:
            if dedupe and message.id in self._seen:
                return
            if message.id is None:
                message.id = str(uuid.uuid4())
            self._seen.add(message.id)
        current_task().writer(Emit("messages", (message, meta[1]), meta[0]))


def with_messages_handler(config: dict[str, Any], *, subgraphs: bool) -> dict[str, Any]:
    """``config`` with a fresh :class:`MessagesHandler` added to its callbacks."""
    handler = MessagesHandler(subgraphs=subgraphs)
    callbacks = config.get("callbacks")
    # A manager, not a list: LangChain merges a node's config with the child config it
    # inherits (a bound model does), and merging managers drops repeated handlers where
    # merging lists would report every token twice.
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
    else:
        manager = CallbackManager(handlers=[])
        for callback in callbacks or ():
            manager.add_handler(callback, inherit=True)
    manager.add_handler(handler, inherit=True)
    return {**config, "callbacks": manager}


def messages_handler_of(config: dict[str, Any]) -> MessagesHandler | None:
    """The run's :class:`MessagesHandler`, when it streams messages."""
    callbacks = config.get("callbacks")
    if callbacks is None:
        return None
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", [])
    for handler in handlers:
        if isinstance(handler, MessagesHandler):
            return handler
    return None


def node_metadata(
    run_config: dict[str, Any], task: Any, step: int, task_ns: str
) -> dict[str, Any]:
    """The metadata a node's config carries (as LangGraph's): the run's and the task's.

    ``run_config`` is the config of the run the task belongs to (for a subgraph's run, the
    parent task's config, whose ``checkpoint_ns`` LangGraph also copies).
    """
    configurable = run_config.get("configurable") or {}
    metadata = dict(run_config.get("metadata") or {})
    for key in _PROPAGATED:
        value = configurable.get(key)
        if value and key not in metadata:
            metadata[key] = value
    metadata.update(
        ls_integration="langgraph",
        langgraph_step=step,
        langgraph_node=task.name,
        langgraph_triggers=tuple(task.triggers),
        langgraph_path=_langgraph_path(task.path),
        langgraph_checkpoint_ns=task_ns,
    )
    return metadata


def _langgraph_path(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """A task's path as LangGraph's metadata shows it: a Send task's ends in ``False``
    (LangGraph's flag for a call made from a ``@task``, which relaygraph has not)."""
    if len(path) == 2 and path[0] == PUSH:
        return (*path, False)
    return tuple(path)


class NodeCall:
    """What :func:`node_call_config` gives a node call: the run's messages handler and the
    node's chain run (each None when the run has no callbacks)."""

    __slots__ = ("messages", "trace")

    def __init__(self, messages: MessagesHandler | None, trace: NodeRun | None) -> None:
        self.messages = messages
        self.trace = trace

    def config(self, run: TaskRun) -> dict[str, Any]:
        """The task's config for a subgraph: its nodes' runs are this node run's children."""
        if self.trace is None:
            return run.config
        return {**run.config, "callbacks": self.trace.child}

    def finished(self, input: Any, result: Any) -> None:
        """Report the node's result to its chain run."""
        if self.trace is not None:
            self.trace.end(input, result)


_NO_CALLBACKS = NodeCall(None, None)


@contextlib.contextmanager
def node_call_config(run: TaskRun) -> Iterator[NodeCall]:
    """Around a node call: LangChain runnables inside it inherit the run's callbacks, as
    children of the node's chain run (:mod:`relaygraph.runtime.run_callbacks`).

    Without callbacks in the config, nothing is installed: a run that streams no messages
    and reports to no tracer pays nothing here.
    """
    config = run.config
    if config.get("callbacks") is None or run.task.name == START:  # the input: no node
        yield _NO_CALLBACKS
        return
    metadata = config.get("metadata") or {}
    callbacks = config["callbacks"]
    trace = None
    if not _only_messages(callbacks):  # a tracer or an event stream listens: a node run
        trace = start_node_run(config, run.task.name, run.input, metadata.get("langgraph_step", 0))
        callbacks = trace.child
    configurable = {
        k: v for k, v in (config.get("configurable") or {}).items() if not k.startswith("__")
    }
    child = {
        "callbacks": callbacks,
        "metadata": metadata,
        "tags": list(config.get("tags") or []),
        "configurable": configurable,
    }
    if "recursion_limit" in config:
        child["recursion_limit"] = config["recursion_limit"]
    token = var_child_runnable_config.set(child)  # type: ignore[arg-type]
    try:
        yield NodeCall(messages_handler_of(config), trace)
    except BaseException as exc:
        if trace is not None:
            trace.error(exc)
        raise
    finally:
        var_child_runnable_config.reset(token)


def _only_messages(callbacks: Any) -> bool:
    """Whether a run's only callback is its own messages stream (then node calls need no
    chain runs of their own, and skip their cost), with LangSmith tracing off."""
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", [])
    return all(isinstance(h, MessagesHandler) for h in handlers) and not tracing_enabled()


def _meta_of(config: dict[str, Any], subgraphs: bool) -> Meta | None:
    metadata = config.get("metadata") or {}
    if "langgraph_node" not in metadata or _HIDDEN in (config.get("tags") or ()):
        return None
    ns = _graph_namespace(metadata)
    if ns and not subgraphs:
        return None
    return ns, metadata


def _graph_namespace(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The namespace of the graph a task runs in: its checkpoint_ns without its own part."""
    ns = metadata.get("langgraph_checkpoint_ns") or ""
    return tuple(ns.split("|"))[:-1] if ns else ()


def _messages_in(value: Any) -> list[BaseMessage]:
    """The messages a node input or output holds at its top level (LangGraph's rule)."""
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, dict):
        values: Sequence[Any] = list(value.values())
    elif isinstance(value, (list, tuple)):
        values = value
    elif hasattr(type(value), "model_fields"):
        values = [getattr(value, name) for name in type(value).model_fields]
    else:
        return []
    found: list[BaseMessage] = []
    for item in values:
        if isinstance(item, BaseMessage):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            found.extend(m for m in item if isinstance(m, BaseMessage))
    return found
