"""``CompiledStateGraph``: run a graph (invoke / stream, sync and async) and read its threads."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from relaygraph.persistence.blobs import isolated_reads
from relaygraph.runtime import state_ops
from relaygraph.runtime.algorithm import PUSH, Task
from relaygraph.runtime.channels import MISSING, BaseChannel, Topic
from relaygraph.runtime.config_merge import merge_configs
from relaygraph.runtime.constants import INTERRUPT, START, SUBGRAPH_MODES, TASKS
from relaygraph.runtime.context import current_task_or_none
from relaygraph.runtime.drivers import adrive, adrive_to_end, drive, drive_to_end
from relaygraph.runtime.effects import Emit, TaskOutcome
from relaygraph.runtime.loop import RunResult, run_loop
from relaygraph.runtime.nodes import compile_nodes
from relaygraph.runtime.run_callbacks import GraphRun, start_graph_run
from relaygraph.runtime.run_options import check_run_options
from relaygraph.runtime.runtime import CONTEXT_KEY, coerce_context
from relaygraph.runtime.stream_messages import with_messages_handler
from relaygraph.runtime.types import StateSnapshot, StateUpdate

if TYPE_CHECKING:
    from relaygraph.runtime.graph import StateGraph

__all__ = ["CompiledStateGraph"]

_STREAM_MODES = {"values", "updates", "checkpoints", "tasks", "debug", "custom", "messages"}


class CompiledStateGraph:
    """A runnable graph. Build it with ``StateGraph(...).compile(checkpointer=..., store=...)``.

    With a checkpointer every call needs ``config={"configurable": {"thread_id": ...}}``:
    the thread's state is saved after every superstep and the next call continues it.
    """

    _is_relaygraph_compiled = True

    def __init__(
        self,
        builder: StateGraph,
        *,
        checkpointer: Any = None,
        store: Any = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        debug: bool = False,
        name: str | None = None,
    ) -> None:
        self.builder = builder
        self.checkpointer = checkpointer
        self.store = store
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.debug = debug
        self.name = name or "LangGraph"
        self.config: dict[str, Any] | None = None
        """Defaults every call's config is laid over (:meth:`with_config`)."""
        self.nodes, extra_channels = compile_nodes(builder)
        self.node_names = tuple(n for n in self.nodes if n != START)
        self.subgraph_names = frozenset(n for n, node in self.nodes.items() if node.is_subgraph)
        self.triggers_of = {name: node.triggers for name, node in self.nodes.items()}
        deferred = any(spec.defer for spec in builder.nodes.values())
        self.finish_triggers: frozenset[str] | None = (
            frozenset(t for triggers in self.triggers_of.values() for t in triggers)
            if deferred
            else None
        )
        """Every node trigger, when the graph has deferred nodes (else None: no finish)."""
        state_channels: dict[str, BaseChannel] = {}
        schemas = [builder.schema, builder.input_schema, builder.output_schema]
        schemas += [node.input_schema for node in self.nodes.values() if node.input_schema]
        for schema in schemas:
            for key, channel in schema.channels().items():
                state_channels.setdefault(key, channel)
        self.state_keys = tuple(state_channels)
        self.state_key_set = frozenset(state_channels)
        self.update_schema = _update_schema(builder.schema, state_channels, schemas)
        """How node results, ``Command.update`` and ``update_state`` become writes: the
        state schema, widened to every channel the input/output and node schemas add."""
        self.channel_prototypes: dict[str, BaseChannel] = {
            **state_channels,
            **extra_channels,
            TASKS: Topic(TASKS),
        }
        self.output_keys = frozenset(
            builder.output_schema.keys if builder.output_schema.kind != "dict" else self.state_keys
        )
        self.scratch_checkpoint = {
            "v": 1,
            "id": "",
            "ts": "",
            "channel_values": {},
            "channel_versions": {},
            "versions_seen": {},
        }

    # -- helpers the loop and executors use ------------------------------------------

    def saver_for(self, config: dict[str, Any]) -> Any:
        """The checkpointer of a run: the graph's own, or the parent graph's for a subgraph."""
        if self.checkpointer is False:
            return None
        if self.checkpointer is not None and self.checkpointer is not True:
            return self.checkpointer
        return (config.get("configurable") or {}).get("__relaygraph_checkpointer")

    @staticmethod
    def next_version(current: str | None) -> str:
        from relaygraph.persistence.base import next_version

        return next_version(current)

    def coerce_input(self, value: Any) -> Any:
        """The run input as a dict of state keys (schema instances are accepted)."""
        pairs = self.builder.input_schema.update_pairs(value, source="input")
        return dict(pairs)

    def read_state(self, channels: dict[str, BaseChannel]) -> dict[str, Any]:
        """The state keys' current values."""
        values = {}
        for key in self.state_keys:
            channel = channels[key]
            if channel.is_available():
                values[key] = channel.get()
        return values

    def state_input(self, values: dict[str, Any]) -> Any:
        """``values`` as the state schema's node input (keys of other schemas left out)."""
        schema = self.builder.schema
        if schema.kind in ("dict", "typeddict") and schema is self.update_schema:
            return values
        if schema.kind != "dict":
            values = {k: v for k, v in values.items() if k in schema.annotations}
        return schema.to_node_input(values)

    def read_output(self, channels: dict[str, BaseChannel]) -> dict[str, Any]:
        """The output keys' current values."""
        return {k: v for k, v in self.read_state(channels).items() if k in self.output_keys}

    def task_input(self, task: Task, channels: dict[str, BaseChannel]) -> Any:
        """What the task's node receives: the state (as its schema) or the Send argument."""
        if task.path[0] == PUSH:
            return task.input
        if task.name == START:
            return channels[START].get()
        node = self.nodes[task.name]
        values = self.read_state(channels)
        if node.is_subgraph:
            return values
        if node.input_schema is None:
            return self.state_input(values)
        schema = node.input_schema
        values = {k: v for k, v in values.items() if k in schema.annotations}
        return schema.to_node_input(values)

    def task_config(
        self,
        config: dict[str, Any],
        task: Task,
        ns: str,
        checkpoint_id: str,
        resuming: bool,
        null_resume: Any = None,
    ) -> dict[str, Any]:
        """The config a node sees (and passes to a subgraph)."""
        configurable = dict(config.get("configurable") or {})
        task_ns = f"{task.name}:{task.id}"
        configurable.update(
            {
                "checkpoint_ns": f"{ns}|{task_ns}" if ns else task_ns,
                "__relaygraph_parents": {
                    **(configurable.get("__relaygraph_parents") or {}),
                    ns: checkpoint_id,
                },
                "__relaygraph_nested": True,
                "__relaygraph_resuming": resuming,
                "__relaygraph_checkpointer": self.saver_for(config),
                "__relaygraph_task_id": task.id,
                "__relaygraph_null_resume": null_resume,
            }
        )
        configurable.pop("checkpoint_id", None)
        # The run's id names the run, not the node's calls: LangChain would give every
        # model and tool call of the run that id (and every AIMessage the same message
        # id). A subgraph still records it in its checkpoints' metadata.
        if config.get("run_id") is not None:
            configurable["__relaygraph_run_id"] = config["run_id"]
        return {**{k: v for k, v in config.items() if k != "run_id"}, "configurable": configurable}

    def update_of(self, writes: list[tuple[str, Any]]) -> dict[str, Any] | None:
        """A task's state writes as the ``updates`` stream shows them."""
        view = {k: v for k, v in writes if k in self.state_keys}
        return view or None

    def task_payload(self, task: Task, input: Any) -> dict[str, Any]:
        """A task about to run, as the ``tasks`` / ``debug`` streams show it."""
        return {"id": task.id, "name": task.name, "input": input, "triggers": task.triggers}

    def task_result_payload(self, outcome: TaskOutcome) -> dict[str, Any]:
        """A finished task, as the ``tasks`` / ``debug`` streams show it."""
        task = outcome.task
        return {
            "id": task.id,
            "name": task.name,
            "error": repr(outcome.error) if outcome.error else None,
            "result": {k: v for k, v in outcome.writes if k in self.state_key_set},
            "interrupts": _interrupt_dicts(outcome.interrupts),
        }

    def checkpoint_event(
        self,
        config: dict[str, Any],
        parent_config: dict[str, Any] | None,
        checkpoint: Any,
        metadata: dict[str, Any],
        channels: dict[str, BaseChannel],
        step: int,
        pending_interrupts: dict[str, tuple[Any, ...]] | None = None,
    ) -> dict[str, Any]:
        """The ``checkpoints`` stream payload for a just-written (or resumed) checkpoint."""
        from relaygraph.runtime.algorithm import channels_from_checkpoint, prepare_tasks

        fresh = channels_from_checkpoint(self.channel_prototypes, checkpoint)
        tasks = prepare_tasks(checkpoint, fresh, self.triggers_of, step=step + 1)
        return {
            "config": config,
            "parent_config": parent_config,
            "values": self.read_state(channels),
            "metadata": metadata,
            "next": [t.name for t in tasks.values()],
            "tasks": [
                {
                    "id": t.id,
                    "name": t.name,
                    "interrupts": tuple(_interrupt_dicts((pending_interrupts or {}).get(t.id, ()))),
                    "state": None,
                }
                for t in tasks.values()
            ],
        }

    # -- running -----------------------------------------------------------------------

    def _prepare(
        self, input: Any, config: dict[str, Any] | None, stream_mode: Any, kwargs: dict
    ) -> tuple[Any, dict[str, Any], list[str], bool]:
        config = _inherit_task_config(_copy_config(self._configured(config)))
        for key in ("recursion_limit",):
            if key in kwargs and kwargs[key] is not None:
                config[key] = kwargs.pop(key)
        limit = config.get("recursion_limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"recursion_limit must be an integer of at least 1, got {limit!r}")
        if self.checkpointer is True and config["configurable"].get("__relaygraph_nested"):
            # compile(checkpointer=True): the subgraph keeps one thread of its own across
            # its parent's runs, as LangGraph does: its namespace names nodes, not tasks.
            ns = config["configurable"].get("checkpoint_ns") or ""
            config["configurable"]["checkpoint_ns"] = state_ops.node_namespace(ns)
        context = kwargs.pop("context", None)
        if context is not None:
            config["configurable"][CONTEXT_KEY] = coerce_context(
                self.builder.context_schema, context
            )
        if stream_mode is None:
            stream_mode = "updates"
        single = isinstance(stream_mode, str)
        modes = [stream_mode] if single else list(stream_mode)
        for mode in modes:
            if mode not in _STREAM_MODES:
                raise ValueError(
                    f"unknown stream_mode {mode!r}; use one of {sorted(_STREAM_MODES)}"
                )
        config, trace = start_graph_run(self.name, input, config)
        effects = run_loop(
            self,
            input,
            config,
            modes=set(modes),
            interrupt_before=kwargs.get("interrupt_before") or self.interrupt_before,
            interrupt_after=kwargs.get("interrupt_after") or self.interrupt_after,
        )
        if trace is not None:
            effects = _traced(effects, trace)
        return effects, config, modes, single

    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: Any = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        subgraphs: bool = False,
        context: Any = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks of the chosen ``stream_mode`` (or modes) as they come."""
        check_run_options("stream", kwargs)
        kwargs.update(
            interrupt_before=interrupt_before, interrupt_after=interrupt_after, context=context
        )
        if subgraphs:
            config = _with_stream_modes(config, stream_mode)
        config = _with_messages_stream(config, stream_mode, subgraphs)
        effects, config, modes, single = self._prepare(input, config, stream_mode, kwargs)
        saver = self.saver_for(config)
        driver = drive(self, effects, saver)
        while True:
            try:
                emit = next(driver)
            except StopIteration as stop:
                self._last_result = stop.value
                return
            if emit.mode in modes:
                yield _shape(emit, single, subgraphs)

    async def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: Any = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        subgraphs: bool = False,
        context: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        check_run_options("astream", kwargs)
        kwargs.update(
            interrupt_before=interrupt_before, interrupt_after=interrupt_after, context=context
        )
        if subgraphs:
            config = _with_stream_modes(config, stream_mode)
        config = _with_messages_stream(config, stream_mode, subgraphs)
        effects, config, modes, single = self._prepare(input, config, stream_mode, kwargs)
        box: list[Any] = []
        async for emit in adrive(self, effects, self.saver_for(config), box):
            if emit.mode in modes:
                yield _shape(emit, single, subgraphs)
        self._last_result = box[0] if box else None

    async def astream_events(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        version: str = "v2",
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """LangChain's event stream of a run (``version="v2"``): the graph's and every
        node's ``on_chain_start`` / ``_stream`` / ``_end``, and the events of the chat models
        and tools called inside nodes (``on_chat_model_stream`` carries each token).
        ``kwargs`` go to :meth:`astream` (``stream_mode``, ``context``, ...)."""
        from langchain_core.tracers.event_stream import _astream_events_implementation_v2

        if version != "v2":
            raise NotImplementedError(
                f"astream_events(version={version!r}): only version='v2' is supported"
            )
        events = _astream_events_implementation_v2(
            self,  # type: ignore[arg-type] - it needs only astream(input, config, **kwargs)
            input,
            config,
            include_names=include_names,
            include_types=include_types,
            include_tags=include_tags,
            exclude_names=exclude_names,
            exclude_types=exclude_types,
            exclude_tags=exclude_tags,
            **kwargs,
        )
        async for event in events:
            yield event  # type: ignore[misc]

    def invoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the graph to the end (or to an interrupt) and return the final state.

        When the run stopped at ``interrupt()``, the result also has ``"__interrupt__"``: the
        list of pending :class:`~relaygraph.runtime.types.Interrupt`.
        """
        check_run_options("invoke", kwargs)
        kwargs.update(
            interrupt_before=interrupt_before, interrupt_after=interrupt_after, context=context
        )
        modes, sink = _passed_up()
        effects, config, _modes, _single = self._prepare(input, config, modes, kwargs)
        namespace = _namespace_of(config)
        driver = drive(self, effects, self.saver_for(config))
        while True:
            try:
                emit = next(driver)
            except StopIteration as stop:
                return _output(stop.value)
            if sink is not None and emit.mode in modes:
                sink(Emit(emit.mode, emit.payload, emit.namespace or namespace))

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`invoke`."""
        check_run_options("ainvoke", kwargs)
        kwargs.update(
            interrupt_before=interrupt_before, interrupt_after=interrupt_after, context=context
        )
        modes, sink = _passed_up()
        effects, config, _modes, _single = self._prepare(input, config, modes, kwargs)
        namespace = _namespace_of(config)
        box: list[Any] = []
        async for emit in adrive(self, effects, self.saver_for(config), box):
            if sink is not None and emit.mode in modes:
                sink(Emit(emit.mode, emit.payload, emit.namespace or namespace))
        return _output(box[0])

    def batch(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """:meth:`invoke` on each input (concurrently, in threads); results in input order.

        ``config`` is one config for all or a list, one per input; its
        ``max_concurrency`` caps the threads. With ``return_exceptions`` a failed input's
        exception takes its place in the list instead of being raised.
        """
        from concurrent.futures import ThreadPoolExecutor

        configs = _batch_configs(config, len(inputs))
        if not inputs:
            return []

        def one(pair: tuple[Any, dict[str, Any]]) -> Any:
            try:
                return self.invoke(pair[0], pair[1], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        workers = configs[0].get("max_concurrency") or len(inputs)
        with ThreadPoolExecutor(max_workers=min(workers, len(inputs))) as pool:
            return list(pool.map(one, zip(inputs, configs, strict=True)))

    async def abatch(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Async :meth:`batch`: the inputs run as concurrent :meth:`ainvoke` calls."""
        import asyncio

        configs = _batch_configs(config, len(inputs))
        if not inputs:
            return []
        limit = asyncio.Semaphore(configs[0].get("max_concurrency") or len(inputs))

        async def one(value: Any, cfg: dict[str, Any]) -> Any:
            async with limit:
                return await self.ainvoke(value, cfg, **kwargs)

        return list(
            await asyncio.gather(
                *(one(v, c) for v, c in zip(inputs, configs, strict=True)),
                return_exceptions=return_exceptions,
            )
        )

    # -- as a node of a parent graph --------------------------------------------------

    def invoke_nested(self, input: Any, config: dict[str, Any], sink: Any) -> Any:
        """Run as a parent's node; with the parent streaming subgraphs, pass events up."""
        modes = (config.get("configurable") or {}).get(SUBGRAPH_MODES) or []
        effects, config, _modes, _single = self._prepare(input, config, list(modes), {})
        namespace = _namespace_of(config)
        driver = drive(self, effects, self.saver_for(config))
        while True:
            try:
                emit = next(driver)
            except StopIteration as stop:
                return _output(stop.value)
            if emit.mode in modes:
                sink(Emit(emit.mode, emit.payload, emit.namespace or namespace))

    async def ainvoke_nested(self, input: Any, config: dict[str, Any], sink: Any) -> Any:
        """Async :meth:`invoke_nested`."""
        modes = (config.get("configurable") or {}).get(SUBGRAPH_MODES) or []
        effects, config, _modes, _single = self._prepare(input, config, list(modes), {})
        namespace = _namespace_of(config)
        box: list[Any] = []
        async for emit in adrive(self, effects, self.saver_for(config), box):
            if emit.mode in modes:
                sink(Emit(emit.mode, emit.payload, emit.namespace or namespace))
        return _output(box[0])

    # -- thread state --------------------------------------------------------------------

    def get_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's current state (or the checkpoint ``config`` names)."""
        config = self._configured(config)
        saver = self._require_saver(config)
        with isolated_reads():  # the caller may change what it gets: no shared objects
            return drive_to_end(self, state_ops.get_state(self, config, subgraphs), saver)

    async def aget_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """Async :meth:`get_state`."""
        config = self._configured(config)
        saver = self._require_saver(config)
        with isolated_reads():
            return await adrive_to_end(self, state_ops.get_state(self, config, subgraphs), saver)

    def get_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints as snapshots, newest first."""
        config = self._configured(config)
        saver = self._require_saver(config)
        effects = state_ops.get_state_history(self, config, filter, before, limit)
        with isolated_reads():
            snapshots = drive_to_end(self, effects, saver)
        yield from snapshots

    async def aget_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """Async :meth:`get_state_history`."""
        config = self._configured(config)
        saver = self._require_saver(config)
        effects = state_ops.get_state_history(self, config, filter, before, limit)
        with isolated_reads():
            snapshots = await adrive_to_end(self, effects, saver)
        for snapshot in snapshots:
            yield snapshot

    def update_state(
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Write ``values`` to the thread as if node ``as_node`` had returned them.

        The update goes through the reducers and ``as_node``'s edges decide what runs next.
        Returns the config of the new checkpoint (metadata ``source`` is ``"update"``).
        """
        return self.bulk_update_state(config, [[StateUpdate(values, as_node, task_id)]])

    async def aupdate_state(
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Async :meth:`update_state`."""
        return await self.abulk_update_state(config, [[StateUpdate(values, as_node, task_id)]])

    def bulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[StateUpdate]]
    ) -> dict[str, Any]:
        """Apply several updates: one checkpoint per superstep, its updates applied together."""
        config = self._configured(config)
        saver = self._require_saver(config)
        return drive_to_end(self, state_ops.bulk_update(self, config, supersteps), saver)

    async def abulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[StateUpdate]]
    ) -> dict[str, Any]:
        """Async :meth:`bulk_update_state`."""
        config = self._configured(config)
        saver = self._require_saver(config)
        return await adrive_to_end(self, state_ops.bulk_update(self, config, supersteps), saver)

    def _configured(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        """``config`` over this graph's :meth:`with_config` defaults."""
        return merge_configs(self.config, config) if self.config else config

    def _require_saver(self, config: dict[str, Any] | None) -> Any:
        from relaygraph.persistence.base import thread_id_of

        saver = self.saver_for(config or {})
        if saver is None:
            raise ValueError("No checkpointer set: compile the graph with checkpointer=...")
        thread_id_of(config)
        return saver

    # -- introspection -------------------------------------------------------------------

    def with_config(self, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A copy of this graph whose calls (and runs on workers) start from ``config``
        and ``kwargs`` (e.g. ``recursion_limit=50``, ``configurable={...}``); a call's own
        config is laid over them."""
        bound = copy.copy(self)
        bound.config = merge_configs(self.config, config, kwargs)
        return bound

    def get_graph(self, config: dict[str, Any] | None = None, *, xray: int | bool = False) -> Any:
        """The graph's nodes and edges as a ``langchain_core`` drawable graph
        (``draw_mermaid()``, ``draw_ascii()``, ``draw_mermaid_png()``); ``xray`` draws
        compiled subgraphs' own nodes, that many levels deep (``True``: all)."""
        from relaygraph.runtime.drawing import draw

        return draw(self, xray)

    async def aget_graph(
        self, config: dict[str, Any] | None = None, *, xray: int | bool = False
    ) -> Any:
        """Async :meth:`get_graph`."""
        return self.get_graph(config, xray=xray)

    def get_subgraphs(self) -> Iterator[tuple[str, CompiledStateGraph]]:
        """The (node name, subgraph) pairs of nodes that are compiled graphs."""
        for name, node in self.nodes.items():
            if node.is_subgraph:
                yield name, node.action

    def __repr__(self) -> str:
        return f"<CompiledStateGraph {self.name!r} nodes={list(self.node_names)}>"


def _traced(effects: Any, trace: GraphRun) -> Any:
    """``effects`` reporting the run's end (its values) or its error to ``trace``."""
    try:
        result = yield from effects
    except BaseException as exc:
        trace.error(exc)
        raise
    trace.end(result.values if result is not None else None)
    return result


def _with_stream_modes(config: dict[str, Any] | None, stream_mode: Any) -> dict[str, Any]:
    """Ask subgraphs to pass their events of these modes up (``stream(subgraphs=True)``)."""
    config = _copy_config(config)
    modes = [stream_mode or "updates"] if isinstance(stream_mode, str | None) else stream_mode
    config["configurable"][SUBGRAPH_MODES] = list(modes)
    return config


def _with_messages_stream(
    config: dict[str, Any] | None, stream_mode: Any, subgraphs: bool
) -> dict[str, Any] | None:
    """``config`` with a messages handler among its callbacks when the stream asks for it."""
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode or ())
    if "messages" not in modes:
        return config
    return with_messages_handler(dict(config or {}), subgraphs=subgraphs)


def _interrupt_dicts(interrupts: Sequence[Any]) -> list[dict[str, Any]]:
    """Interrupts as LangGraph's stream events show them (``asdict``; relaygraph has no
    response schemas)."""
    return [{"value": i.value, "id": i.id, "response_schema": None} for i in interrupts]


def _batch_configs(
    config: dict[str, Any] | Sequence[dict[str, Any]] | None, count: int
) -> list[dict[str, Any]]:
    """One config per batch input (a single config is shared)."""
    if config is None or isinstance(config, dict):
        return [dict(config or {}) for _ in range(count)]
    configs = [dict(c or {}) for c in config]
    if len(configs) != count:
        raise ValueError(f"batch() got {count} inputs but {len(configs)} configs")
    return configs


def _update_schema(base: Any, channels: dict[str, BaseChannel], schemas: list[Any]) -> Any:
    if base.kind == "dict" or set(channels) == set(base.annotations):
        return base
    from relaygraph.runtime.state import StateSchema

    annotations = dict(base.annotations)
    for schema in schemas:
        for key, annotation in schema.annotations.items():
            annotations.setdefault(key, annotation)
    return StateSchema(base.cls, base.kind, annotations)


def _inherit_task_config(config: dict[str, Any]) -> dict[str, Any]:
    """A graph run from inside a node (``sub.invoke(...)`` in a node function) is that
    node's child, as in LangGraph: it takes the task's config (namespace, checkpointer,
    resume answers, context) under its own, so its ``interrupt()`` pauses the parent."""
    if config["configurable"].get("__relaygraph_nested"):
        return config
    task = current_task_or_none()
    if task is None:
        return config
    parent = task.config
    merged = {**parent, **config}
    merged["configurable"] = {**(parent.get("configurable") or {}), **config["configurable"]}
    return merged


def _copy_config(config: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    config["configurable"] = dict(config.get("configurable") or {})
    if "metadata" in config:
        config["metadata"] = copy.copy(config["metadata"])
    return config


def _passed_up() -> tuple[list[str], Callable[[Emit], None] | None]:
    """For a graph invoked inside a node whose run streams subgraphs: the modes of its
    events to pass up and the node's writer that takes them (LangGraph streams a graph a
    node calls as a subgraph too); else ``([], None)``."""
    task = current_task_or_none()
    if task is None:
        return [], None
    modes = (task.config.get("configurable") or {}).get(SUBGRAPH_MODES)
    return (list(modes), task.writer) if modes else ([], None)


def _namespace_of(config: dict[str, Any]) -> tuple[str, ...]:
    ns = (config.get("configurable") or {}).get("checkpoint_ns") or ""
    return tuple(ns.split("|")) if ns else ()


def _shape(emit: Emit, single: bool, subgraphs: bool) -> Any:
    """A chunk as LangGraph 1.x yields it: ``payload``, ``(mode, payload)`` for several
    modes, and with ``subgraphs`` the namespace first: ``(namespace, payload)`` or
    ``(namespace, mode, payload)``."""
    if subgraphs:
        if single:
            return (emit.namespace, emit.payload)
        return (emit.namespace, emit.mode, emit.payload)
    return emit.payload if single else (emit.mode, emit.payload)


def _output(result: RunResult) -> Any:
    values = dict(result.values)
    if result.interrupts:
        values[INTERRUPT] = list(result.interrupts)
    return values


_ = MISSING  # re-exported for subclasses that read raw channels
