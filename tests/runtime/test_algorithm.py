"""The pure step algorithm: planning, write order, versions, append detection."""

from __future__ import annotations

import operator

from relaygraph.persistence.base import next_version
from relaygraph.runtime.algorithm import (
    PULL,
    PUSH,
    Task,
    apply_writes,
    channels_from_checkpoint,
    empty_checkpoint,
    prepare_tasks,
)
from relaygraph.runtime.channels import BinaryOperatorAggregate, EphemeralValue, Topic
from relaygraph.runtime.constants import TASKS
from relaygraph.runtime.types import Send

PROTOTYPES = {
    "items": BinaryOperatorAggregate("items", operator.add, []),
    "branch:to:a": EphemeralValue("branch:to:a", guard=False),
    "branch:to:b": EphemeralValue("branch:to:b", guard=False),
    TASKS: Topic(TASKS),
}
TRIGGERS = {"a": ("branch:to:a",), "b": ("branch:to:b",)}


def fresh():
    checkpoint = empty_checkpoint()
    return checkpoint, channels_from_checkpoint(PROTOTYPES, checkpoint)


def test_writes_apply_in_task_order_whatever_the_order_given() -> None:
    checkpoint, channels = fresh()
    tasks = [
        Task("3", "w", (PUSH, 1), (PUSH,), writes=[("items", ["push1"])]),
        Task("2", "w", (PUSH, 0), (PUSH,), writes=[("items", ["push0"])]),
        Task("1", "b", (PULL, "b"), (), writes=[("items", ["b"])]),
        Task("0", "a", (PULL, "a"), (), writes=[("items", ["a"])]),
    ]
    apply_writes(checkpoint, channels, tasks, next_version)
    assert channels["items"].get() == ["a", "b", "push0", "push1"]


def test_one_new_version_per_step_for_every_changed_channel() -> None:
    checkpoint, channels = fresh()
    writes = [("items", ["x"]), ("branch:to:a", None)]
    updated = apply_writes(
        checkpoint, channels, [Task("0", "s", (PULL, "s"), (), writes=writes)], next_version
    )
    assert updated == {"items", "branch:to:a"}
    versions = checkpoint["channel_versions"]
    assert versions["items"] == versions["branch:to:a"]


def test_triggered_nodes_run_once_and_see_their_trigger() -> None:
    checkpoint, channels = fresh()
    apply_writes(
        checkpoint,
        channels,
        [Task("0", "s", (PULL, "s"), (), writes=[("branch:to:a", None)])],
        next_version,
    )
    tasks = prepare_tasks(checkpoint, channels, TRIGGERS, step=1)
    assert [t.name for t in tasks.values()] == ["a"]
    apply_writes(checkpoint, channels, tasks.values(), next_version)
    assert prepare_tasks(checkpoint, channels, TRIGGERS, step=2) == {}


def test_send_packets_become_push_tasks_in_order() -> None:
    checkpoint, channels = fresh()
    sends = [(TASKS, Send("a", {"i": i})) for i in range(3)]
    apply_writes(
        checkpoint, channels, [Task("0", "s", (PULL, "s"), (), writes=sends)], next_version
    )
    tasks = list(prepare_tasks(checkpoint, channels, TRIGGERS, step=1).values())
    assert [(t.path, t.input) for t in tasks] == [((PUSH, i), {"i": i}) for i in range(3)]


def test_appends_are_detected_by_identity_of_the_old_items() -> None:
    checkpoint, channels = fresh()
    apply_writes(
        checkpoint,
        channels,
        [Task("0", "s", (PULL, "s"), (), writes=[("items", ["x"])])],
        next_version,
    )
    old_version = checkpoint["channel_versions"]["items"]
    apply_writes(
        checkpoint,
        channels,
        [Task("1", "s", (PULL, "s"), (), writes=[("items", ["y"])])],
        next_version,
    )
    assert checkpoint["channel_appends"] == {"items": (old_version, 1)}


def test_task_ids_depend_on_the_checkpoint() -> None:
    checkpoint, channels = fresh()
    apply_writes(
        checkpoint,
        channels,
        [Task("0", "s", (PULL, "s"), (), writes=[("branch:to:a", None)])],
        next_version,
    )
    first = prepare_tasks(checkpoint, channels, TRIGGERS, step=1)
    again = prepare_tasks(checkpoint, channels, TRIGGERS, step=1)
    assert list(first) == list(again)
    checkpoint["id"] = "another"
    assert list(prepare_tasks(checkpoint, channels, TRIGGERS, step=1)) != list(first)
