"""Reading and editing a thread's state: get_state, history, update_state.

Generators of saver effects (like the run loop), so the sync and async methods of
:class:`~relaygraph.runtime.pregel.CompiledStateGraph` share one implementation.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from relaygraph.persistence.base import ANY_HEAD, CheckpointTuple, checkpoint_ns_of, thread_id_of
from relaygraph.runtime.algorithm import (
    PULL,
    Task,
    apply_writes,
    channels_from_checkpoint,
    copy_checkpoint,
    create_checkpoint,
    empty_checkpoint,
    make_task_id,
    prepare_tasks,
)
from relaygraph.runtime.constants import (
    END,
    ERROR,
    INPUT,
    INTERRUPT,
    NO_WRITES,
    NULL_TASK_ID,
    RESUME,
    START,
)
from relaygraph.runtime.effects import SaverCall
from relaygraph.runtime.errors import InvalidUpdateError
from relaygraph.runtime.loop import checkpoint_metadata, missing_checkpoint
from relaygraph.runtime.stored_errors import restore_error
from relaygraph.runtime.types import Interrupt, PregelTask, StateSnapshot, StateUpdate

if TYPE_CHECKING:
    from relaygraph.runtime.pregel import CompiledStateGraph

__all__ = ["bulk_update", "get_state", "get_state_history", "snapshot_of"]


def _read_config(config: dict[str, Any]) -> dict[str, Any]:
    configurable = {"thread_id": thread_id_of(config), "checkpoint_ns": checkpoint_ns_of(config)}
    checkpoint_id = (config.get("configurable") or {}).get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def get_state(
    graph: CompiledStateGraph, config: dict[str, Any], subgraphs: bool
) -> Generator[Any, Any, StateSnapshot]:
    """The snapshot of the checkpoint ``config`` names (live view of the head)."""
    read = _read_config(config)
    saved = yield SaverCall("get_tuple", (read,))
    live = "checkpoint_id" not in read["configurable"]
    snapshot = snapshot_of(graph, saved, read, live=live)
    if subgraphs and saved is not None:
        snapshot = yield from _with_subgraph_states(graph, snapshot)
    return snapshot


def node_namespace(ns: str) -> str:
    """A checkpoint namespace with its task ids left out (``compile(checkpointer=True)``)."""
    return "|".join(part.split(":")[0] for part in ns.split("|"))


def _subgraph_config(config: dict[str, Any], task: Any) -> dict[str, Any]:
    """The config that addresses a subgraph task's own checkpoints."""
    ns = config["configurable"].get("checkpoint_ns") or ""
    task_ns = f"{task.name}:{task.id}"
    return {
        "configurable": {
            "thread_id": config["configurable"]["thread_id"],
            "checkpoint_ns": f"{ns}|{task_ns}" if ns else task_ns,
        }
    }


def _with_subgraph_states(
    graph: CompiledStateGraph, snapshot: StateSnapshot
) -> Generator[Any, Any, StateSnapshot]:
    tasks = []
    subgraph_of = dict(graph.get_subgraphs())
    for task in snapshot.tasks:
        if task.name in subgraph_of:
            sub_config = _subgraph_config(snapshot.config, task)
            if subgraph_of[task.name].checkpointer is True:  # its one lasting thread
                ns = sub_config["configurable"]["checkpoint_ns"]
                sub_config["configurable"]["checkpoint_ns"] = node_namespace(ns)
            sub_saved = yield SaverCall("get_tuple", (sub_config,))
            if sub_saved is not None:
                sub = snapshot_of(subgraph_of[task.name], sub_saved, sub_config, live=True)
                task = task._replace(state=sub)
        tasks.append(task)
    return snapshot._replace(tasks=tuple(tasks))


def get_state_history(
    graph: CompiledStateGraph,
    config: dict[str, Any],
    filter: dict[str, Any] | None,
    before: dict[str, Any] | None,
    limit: int | None,
) -> Generator[Any, Any, list[StateSnapshot]]:
    """Snapshots of the thread's checkpoints, newest first (``filter``/``before``/``limit``).

    A ``config`` naming a ``checkpoint_id`` lists that checkpoint only, as LangGraph's
    savers do (then ``filter`` and ``before`` still apply to it).
    """
    read = _read_config(config)
    checkpoint_id = read["configurable"].pop("checkpoint_id", None)
    if checkpoint_id is None:
        items = yield SaverCall(
            "list", (read,), {"filter": filter, "before": before, "limit": limit}
        )
    else:
        read["configurable"]["checkpoint_id"] = checkpoint_id
        saved = yield SaverCall("get_tuple", (read,))
        items = [saved] if saved is not None and _listed(saved, filter, before, limit) else []
    return [snapshot_of(graph, saved, saved.config, live=False) for saved in items]


def _listed(
    saved: CheckpointTuple,
    filter: dict[str, Any] | None,
    before: dict[str, Any] | None,
    limit: int | None,
) -> bool:
    """Whether one checkpoint passes ``list``'s ``filter``, ``before`` and ``limit``."""
    if limit is not None and limit < 1:
        return False
    if any(saved.metadata.get(key) != value for key, value in (filter or {}).items()):
        return False
    before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    return not before_id or saved.checkpoint["id"] < before_id


def snapshot_of(
    graph: CompiledStateGraph,
    saved: CheckpointTuple | None,
    config: dict[str, Any],
    *,
    live: bool,
) -> StateSnapshot:
    """A StateSnapshot of a stored checkpoint and its pending writes.

    ``live`` (the head, read by ``get_state``) folds in the writes of tasks that already
    finished, so ``values`` shows their output and ``next`` only what still has to run.
    """
    if saved is None:
        return StateSnapshot({}, (), config, None, None, None, (), ())
    checkpoint = copy_checkpoint(saved.checkpoint)
    channels = channels_from_checkpoint(graph.channel_prototypes, checkpoint)
    step = int(saved.metadata.get("step", -1)) + 1
    ns = saved.config["configurable"].get("checkpoint_ns") or ""
    tasks = prepare_tasks(checkpoint, channels, graph.triggers_of, step=step, checkpoint_ns=ns)
    null_writes = [(c, v) for tid, c, v in saved.pending_writes if tid == NULL_TASK_ID]
    if null_writes:
        apply_writes(
            checkpoint, channels, [Task(NULL_TASK_ID, INPUT, (), (), writes=null_writes)], None
        )
    errors: dict[str, Exception] = {}
    interrupts: dict[str, list[Interrupt]] = {}
    answered: dict[str, int] = {}
    finished: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in saved.pending_writes:
        if task_id not in tasks:
            continue
        if channel == ERROR:
            errors[task_id] = restore_error(value)
        elif channel == INTERRUPT:
            interrupts.setdefault(task_id, []).extend(value)
        elif channel == RESUME:
            answered[task_id] = len(value)
        else:
            finished.setdefault(task_id, [])
            if channel != NO_WRITES:
                finished[task_id].append((channel, value))
    if live and finished:
        done = []
        for task_id, writes in finished.items():
            task = tasks[task_id]
            task.writes = list(writes)
            done.append(task)
        apply_writes(checkpoint, channels, done, None)
    task_views = []
    subgraph_names = graph.subgraph_names
    for task in tasks.values():
        task_interrupts = tuple(interrupts.get(task.id, ()))
        if live and task.id in finished:
            task_interrupts = ()
        result = None
        if task.id in finished:
            result = graph.update_of(finished[task.id]) or {}
        task_views.append(
            PregelTask(
                id=task.id,
                name=task.name,
                path=task.path,
                error=errors.get(task.id),
                interrupts=task_interrupts,
                # a subgraph task names where its checkpoints are (LangGraph's signal)
                state=_subgraph_config(saved.config, task) if task.name in subgraph_names else None,
                result=result,
            )
        )
    next_names = tuple(t.name for t in tasks.values() if not (live and t.id in finished))
    return StateSnapshot(
        values=graph.read_state(channels),
        next=next_names,
        config=saved.config,
        metadata=saved.metadata,
        created_at=saved.checkpoint.get("ts"),
        parent_config=saved.parent_config,
        tasks=tuple(task_views),
        interrupts=tuple(i for view in task_views for i in view.interrupts),
    )


def _infer_as_node(graph: CompiledStateGraph, checkpoint: Any) -> str:
    """The node an update without ``as_node`` is attributed to (LangGraph's rule)."""
    seen_all = checkpoint["versions_seen"]
    if not any(v for seen in seen_all.values() for v in seen.values()):
        return START
    last_seen = sorted(
        (version, node)
        for node, seen in seen_all.items()
        if node in graph.nodes
        for version in seen.values()
    )
    if len(last_seen) == 1 or (last_seen and last_seen[-1][0] != last_seen[-2][0]):
        return last_seen[-1][1]
    raise InvalidUpdateError("Ambiguous update, specify as_node")


def bulk_update(
    graph: CompiledStateGraph, config: dict[str, Any], supersteps: Sequence[Sequence[StateUpdate]]
) -> Generator[Any, Any, dict[str, Any]]:
    """Apply ``supersteps`` of updates, one checkpoint each; returns the last one's config."""
    if not supersteps:
        raise InvalidUpdateError("bulk_update_state needs at least one superstep of updates")
    read = _read_config(config)
    saved = yield SaverCall("get_tuple", (read,))
    missing_checkpoint(read, saved)
    if saved is not None:
        checkpoint = copy_checkpoint(saved.checkpoint)
        parent_config = saved.config
        step = int(saved.metadata.get("step", -1)) + 1
        pending = list(saved.pending_writes)
        plan_step = step
    else:
        checkpoint = empty_checkpoint()
        parent_config = {"configurable": dict(read["configurable"])}
        step = 0  # LangGraph numbers a first update of a new thread 0, its input then 1
        pending = []
        plan_step = -1
    channels = channels_from_checkpoint(graph.channel_prototypes, checkpoint)
    ns = read["configurable"]["checkpoint_ns"]
    if saved is not None and "checkpoint_id" not in read["configurable"] and pending:
        # Tasks of this step that already finished keep their writes (their siblings may
        # have failed or interrupted): fold them in before the update.
        tasks = prepare_tasks(
            checkpoint, channels, graph.triggers_of, step=plan_step, checkpoint_ns=ns
        )
        done = []
        for task_id, channel, value in pending:
            if task_id == NULL_TASK_ID and channel not in (ERROR, INTERRUPT, RESUME, NO_WRITES):
                done.append(Task(NULL_TASK_ID, INPUT, (), (), writes=[(channel, value)]))
            elif task_id in tasks and channel not in (ERROR, INTERRUPT, RESUME):
                tasks[task_id].writes.append((channel, value))
        done.extend(t for t in tasks.values() if t.writes)
        if done:
            apply_writes(checkpoint, channels, done, graph.next_version)
    stored_versions = dict(saved.checkpoint["channel_versions"]) if saved else {}
    # An update of the head builds on it by compare-and-set: of two concurrent updates the
    # second fails with CheckpointConflict instead of silently dropping the first. An
    # update at a named (older) checkpoint forks from it, whatever the head.
    expected: Any = ANY_HEAD
    if "checkpoint_id" not in read["configurable"]:
        expected = saved.checkpoint["id"] if saved is not None else None
    for updates in supersteps:
        if not updates:
            raise InvalidUpdateError("a superstep of bulk_update_state has no updates")
        tasks = []
        for update in updates:
            if not isinstance(update, StateUpdate):
                update = StateUpdate(*update)  # plain (values, as_node[, task_id]) tuples
            as_node = update.as_node or _infer_as_node_for(graph, checkpoint, len(updates))
            tasks.append(_update_task(graph, checkpoint, channels, update, as_node, step, ns))
        apply_writes(checkpoint, channels, tasks, graph.next_version)
        new = create_checkpoint(checkpoint, channels)
        metadata = checkpoint_metadata(config, "update", step, {})
        new_versions = {
            k: v for k, v in new["channel_versions"].items() if stored_versions.get(k) != v
        }
        parent_config = yield SaverCall(
            "put", (parent_config, new, metadata, new_versions), {"expected_head": expected}
        )
        if expected is not ANY_HEAD:
            expected = new["id"]
        stored_versions = dict(new["channel_versions"])
        checkpoint = copy_checkpoint(new)
        step += 1
    return parent_config


def _infer_as_node_for(graph: CompiledStateGraph, checkpoint: Any, count: int) -> str:
    if count > 1:
        raise InvalidUpdateError("Ambiguous update, specify as_node for each update of a step")
    return _infer_as_node(graph, checkpoint)


def _update_task(
    graph: CompiledStateGraph,
    checkpoint: Any,
    channels: dict[str, Any],
    update: StateUpdate,
    as_node: str,
    step: int,
    ns: str,
) -> Task:
    """The writes of one update, as a task of node ``as_node``."""
    from relaygraph.runtime.effects import TaskRun
    from relaygraph.runtime.executor import result_writes

    if as_node == END:
        if update.values is not None:
            raise InvalidUpdateError("an update as END can only clear the next tasks: values=None")
        return Task(make_task_id(checkpoint["id"], ns, step, END, "update"), END, (), (INTERRUPT,))
    if as_node not in graph.nodes:
        raise InvalidUpdateError(
            f"as_node {as_node!r} is not a node of this graph; nodes: {list(graph.node_names)}"
        )
    _check_keys(graph, update.values, as_node)
    node = graph.nodes[as_node]
    values = update.values
    if as_node == START and values is not None:
        values = graph.coerce_input(values)
    task_id = update.task_id or make_task_id(checkpoint["id"], ns, step, as_node, "update")
    task = Task(task_id, as_node, (PULL, as_node), (INTERRUPT,))
    run = TaskRun(task, node, None, {"configurable": {}})
    writes, _ = result_writes(graph, node, run, values, channels)
    task.writes = writes
    return task


def _check_keys(graph: CompiledStateGraph, values: Any, as_node: str) -> None:
    """An update naming a key the state does not have is an error, not a silent drop."""
    if values is None or not isinstance(values, dict):
        return
    unknown = [k for k in values if k not in graph.state_keys]
    if unknown:
        raise InvalidUpdateError(
            f"update_state(as_node={as_node!r}) got key(s) {unknown} that the state schema "
            f"does not have; state keys: {list(graph.state_keys)}"
        )
