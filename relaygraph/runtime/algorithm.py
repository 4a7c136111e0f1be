"""The pure step algorithm: plan a superstep's tasks, fold their writes into a checkpoint.

Both executors (in-process and Celery) drive these functions and nothing else decides what
runs or how state changes, so for the same graph and input they produce the same
checkpoints. Nothing here does I/O.

* :func:`prepare_tasks` — which nodes run next: a *pull* task per node whose trigger
  channel changed since the node last saw it, and a *push* task per ``Send`` packet.
* :func:`apply_writes` — fold the tasks' writes into the channels in task order (never
  completion order), consume the triggers and bump the changed channels' versions.
* :func:`create_checkpoint` — the new immutable checkpoint from the channels.
"""

from __future__ import annotations

import operator
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from relaygraph.persistence.base import Checkpoint
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.runtime.channels import MISSING, BaseChannel
from relaygraph.runtime.constants import (
    ERROR,
    INTERRUPT,
    NO_WRITES,
    RESERVED_NAMES,
    RESUME,
    RESUME_MAP,
    SCHEDULED,
    TASKS,
)
from relaygraph.runtime.errors import InvalidUpdateError
from relaygraph.runtime.types import Send

__all__ = [
    "PULL",
    "PUSH",
    "Task",
    "apply_writes",
    "channels_from_checkpoint",
    "create_checkpoint",
    "empty_checkpoint",
    "prepare_tasks",
    "should_interrupt",
    "task_path_key",
]

PULL = "__pregel_pull"
PUSH = "__pregel_push"
_TASK_ID_NAMESPACE = uuid.UUID("6f1c9f3e-54a4-4a51-9d0e-5b1f3e0a7c11")
_SPECIAL_CHANNELS = frozenset({ERROR, INTERRUPT, RESUME, RESUME_MAP, SCHEDULED, NO_WRITES})


@dataclass
class Task:
    """One unit of work of a superstep: a node run on one input.

    ``path`` is ``(PULL, node)`` for a node woken by its trigger channels, or
    ``(PUSH, index)`` for the ``index``-th ``Send`` packet of the step; tasks apply their
    writes in path order. ``id`` is deterministic: the same checkpoint always plans the
    same task ids, which is what makes pending writes and resumes line up.
    """

    id: str
    name: str
    path: tuple[Any, ...]
    triggers: tuple[str, ...]
    input: Any = None
    send: Send | None = None
    writes: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def state_writes(self) -> list[tuple[str, Any]]:
        """The writes that reach channels (not errors, interrupts or markers)."""
        return [(c, v) for c, v in self.writes if c not in _SPECIAL_CHANNELS]


def task_path_key(task: Task) -> tuple[str, Any]:
    """Sort key of task order: pull tasks by node name, then push tasks by Send index."""
    if len(task.path) < 2:
        return ("", "")  # input and update pseudo-tasks come first
    kind, detail = task.path[0], task.path[1]
    return (kind, (detail, "") if kind == PUSH else (0, str(detail)))


def make_task_id(checkpoint_id: str, checkpoint_ns: str, step: int, name: str, path: Any) -> str:
    """Deterministic task id from the checkpoint, namespace, step, node and path."""
    return str(
        uuid.uuid5(_TASK_ID_NAMESPACE, f"{checkpoint_id}|{checkpoint_ns}|{step}|{name}|{path!r}")
    )


def empty_checkpoint() -> Checkpoint:
    """The checkpoint of a thread that has none yet."""
    return Checkpoint(
        v=1,
        id=new_checkpoint_id(),
        ts=datetime.now(UTC).isoformat(),
        channel_values={},
        channel_versions={},
        versions_seen={},
        updated_channels=None,
        channel_appends={},
    )


def channels_from_checkpoint(
    prototypes: Mapping[str, BaseChannel], checkpoint: Checkpoint
) -> dict[str, BaseChannel]:
    """Fresh channels holding the checkpoint's values (channels not stored are empty)."""
    values = checkpoint.get("channel_values") or {}
    return {
        name: proto.from_checkpoint(values.get(name, MISSING)) for name, proto in prototypes.items()
    }


def prepare_tasks(
    checkpoint: Checkpoint,
    channels: Mapping[str, BaseChannel],
    triggers_of: Mapping[str, Sequence[str]],
    *,
    step: int,
    checkpoint_ns: str = "",
) -> dict[str, Task]:
    """The tasks of the next superstep, in task order, keyed by task id.

    ``triggers_of`` maps each node to the channels that wake it. A node runs when one of
    them has a version newer than the one the node last saw (``versions_seen``).
    """
    tasks: list[Task] = []
    versions = checkpoint["channel_versions"]
    seen_all = checkpoint["versions_seen"]
    # Send packets first, then nodes woken by their triggers (LangGraph's order).
    if TASKS in channels and channels[TASKS].is_available():
        for index, packet in enumerate(channels[TASKS].get()):
            if not isinstance(packet, Send):
                raise InvalidUpdateError(f"expected a Send packet in {TASKS}, got {packet!r}")
            if packet.node not in triggers_of:
                raise InvalidUpdateError(f"Send to unknown node {packet.node!r}")
            path = (PUSH, index)
            tasks.append(
                Task(
                    id=make_task_id(checkpoint["id"], checkpoint_ns, step, packet.node, path),
                    name=packet.node,
                    path=path,
                    triggers=(PUSH,),
                    input=packet.arg,
                    send=packet,
                )
            )
    for name in triggers_of:  # the graph's node order, as LangGraph lists `next`
        seen = seen_all.get(name, {})
        fired = tuple(
            sorted(
                trigger
                for trigger in triggers_of[name]
                if trigger in versions
                and channels[trigger].is_available()
                and versions[trigger] > seen.get(trigger, "")
            )
        )
        if not fired:
            continue
        path = (PULL, name)
        tasks.append(
            Task(
                id=make_task_id(checkpoint["id"], checkpoint_ns, step, name, path),
                name=name,
                path=path,
                triggers=fired,
            )
        )
    return {task.id: task for task in tasks}


def apply_writes(
    checkpoint: Checkpoint,
    channels: dict[str, BaseChannel],
    tasks: Iterable[Task],
    get_next_version: Callable[[str | None], str] | None,
    finish_triggers: frozenset[str] | None = None,
) -> set[str]:
    """Fold ``tasks``' writes into ``channels`` and update ``checkpoint``'s versions.

    Mutates both. Writes are applied in task order; every channel that changes in this
    step gets the same new version. Returns the names of the channels that changed.
    When a list channel's new value only extends its old one (the old items are the very
    same objects, as ``add_messages`` returns them), ``checkpoint["channel_appends"]``
    records it so savers can store just the new items.
    """
    ordered = sorted(tasks, key=task_path_key)
    versions = checkpoint["channel_versions"]
    seen_all = checkpoint["versions_seen"]
    for task in ordered:
        if task.triggers and task.triggers != (PUSH,):
            seen = seen_all.setdefault(task.name, {})
            for trigger in task.triggers:
                if trigger in versions:
                    seen[trigger] = versions[trigger]
    next_version = (
        get_next_version(max(versions.values()) if versions else None) if get_next_version else None
    )
    updated: set[str] = set()

    def bump(name: str) -> None:
        updated.add(name)
        if next_version is not None:
            versions[name] = next_version

    # A task's triggers are consumed once it ran (a fan-in barrier resets).
    for task in ordered:
        for trigger in task.triggers:
            if trigger in channels and channels[trigger].consume():
                bump(trigger)

    pending: dict[str, list[Any]] = defaultdict(list)
    for task in ordered:
        for channel, value in task.state_writes:
            if channel not in channels:
                raise InvalidUpdateError(f"write to unknown channel {channel!r}")
            pending[channel].append(value)

    appends: dict[str, tuple[str, int]] = {}
    for name, values in pending.items():
        channel = channels[name]
        before, before_version = channel.value, versions.get(name)
        if channel.update(values):
            bump(name)
            base = _append_base(before, channel.value, before_version)
            if base is not None:
                appends[name] = base
    # Ephemeral channels (triggers, Send packets) last one step: clear those not written,
    # but only when tasks actually ran (an update_state or an input does not clear them).
    if any(task.triggers for task in ordered):
        for name, channel in channels.items():
            clearable = name not in pending and channel.is_available() and _is_ephemeral(channel)
            if clearable and channel.update([]):
                bump(name)
    # A graph with deferred nodes: when no channel that wakes a node changed, this was
    # (tentatively) the last step, so deferred triggers become available (LangGraph's rule).
    if finish_triggers is not None and any(task.triggers for task in ordered):
        woken = any(name in finish_triggers and channels[name].is_available() for name in updated)
        if not woken:
            for name, channel in channels.items():
                if channel.finish():
                    bump(name)
    checkpoint["updated_channels"] = sorted(updated)
    checkpoint["channel_appends"] = appends
    return updated


def _is_ephemeral(channel: BaseChannel) -> bool:
    from relaygraph.runtime.channels import EphemeralValue, Topic

    return isinstance(channel, (EphemeralValue, Topic))


def _append_base(before: Any, after: Any, before_version: str | None) -> tuple[str, int] | None:
    """``(version, length)`` of ``before`` when ``after`` extends it item for item."""
    if before_version is None or not isinstance(before, list) or not isinstance(after, list):
        return None
    if not before or len(after) < len(before):
        return None
    if all(map(operator.is_, before, after[: len(before)])):
        return (before_version, len(before))
    return None


def create_checkpoint(checkpoint: Checkpoint, channels: Mapping[str, BaseChannel]) -> Checkpoint:
    """A new immutable checkpoint holding the channels' values (with a fresh id and time)."""
    values: dict[str, Any] = {}
    versions = checkpoint["channel_versions"]
    for name, channel in channels.items():
        # A channel never written (a reducer's empty initial value) is not stored: it is
        # rebuilt empty on load, exactly as it started.
        if name not in versions:
            continue
        if channel.is_available() or isinstance(channel.value, set) or channel.keeps_unavailable:
            stored = channel.checkpoint()
            if stored is not MISSING:
                values[name] = stored
    return Checkpoint(
        v=1,
        id=new_checkpoint_id(after=checkpoint["id"]),
        ts=datetime.now(UTC).isoformat(),
        channel_values=values,
        channel_versions=dict(versions),
        versions_seen={node: dict(seen) for node, seen in checkpoint["versions_seen"].items()},
        updated_channels=checkpoint.get("updated_channels"),
        channel_appends={
            name: base
            for name, base in (checkpoint.get("channel_appends") or {}).items()
            if name in values
        },
    )


def copy_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """A copy whose version maps can be mutated without touching the original."""
    return Checkpoint(
        v=checkpoint.get("v", 1),
        id=checkpoint["id"],
        ts=checkpoint["ts"],
        channel_values=dict(checkpoint.get("channel_values") or {}),
        channel_versions=dict(checkpoint.get("channel_versions") or {}),
        versions_seen={
            node: dict(seen) for node, seen in (checkpoint.get("versions_seen") or {}).items()
        },
        updated_channels=checkpoint.get("updated_channels"),
        channel_appends=dict(checkpoint.get("channel_appends") or {}),
    )


def should_interrupt(
    checkpoint: Checkpoint, names: Sequence[str] | str | None, tasks: Iterable[Task]
) -> list[Task]:
    """The tasks a static breakpoint (``interrupt_before/after``) stops at.

    A breakpoint fires only if some channel changed since the last interrupt was resumed,
    so resuming does not stop at the same breakpoint again.
    """
    if not names:
        return []
    seen = checkpoint["versions_seen"].get(INTERRUPT, {})
    changed = any(
        version > seen.get(name, "") for name, version in checkpoint["channel_versions"].items()
    )
    if not changed:
        return []
    return [
        task
        for task in tasks
        if task.name not in RESERVED_NAMES and (names == "*" or task.name in names)
    ]
