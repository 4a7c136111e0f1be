"""Checkpoint ids sort in the order a thread's checkpoints were made, across processes.

Two workers may run consecutive steps of one thread in the same millisecond, or with clocks
apart: the child's id must still sort after its parent's, or a history listed newest first
(every saver lists by id) would not start at the thread's head.
"""

from __future__ import annotations

import operator
import time
import uuid
from typing import Annotated, TypedDict

import pytest

from relaygraph import StateGraph
from relaygraph.persistence import ids
from relaygraph.persistence.base import BaseCheckpointSaver
from relaygraph.persistence.ids import new_checkpoint_id
from relaygraph.runtime.constants import END, START

HOUR_NS = 3_600 * 10**9


def test_ids_increase_within_a_process() -> None:
    made = [new_checkpoint_id() for _ in range(1_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(uuid.UUID(value).version == 7 for value in made)


def _made_by_another_process(monkeypatch: pytest.MonkeyPatch, clock_offset_ns: int) -> str:
    """An id as another process with its clock ``clock_offset_ns`` apart would make it."""
    real, last = time.time_ns, ids._last
    with monkeypatch.context() as patched:
        patched.setattr(ids.time, "time_ns", lambda: real() + clock_offset_ns)
        made = new_checkpoint_id()
    monkeypatch.setattr(ids, "_last", last)  # this process never saw that id
    return made


def test_a_child_sorts_after_a_parent_made_by_a_clock_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent came from a worker whose clock is an hour ahead (or the same millisecond)."""
    parent = _made_by_another_process(monkeypatch, HOUR_NS)
    assert new_checkpoint_id() < parent  # this process's clock alone would sort it first
    child = new_checkpoint_id(after=parent)
    assert child > parent
    assert uuid.UUID(child).version == 7
    assert new_checkpoint_id(after=child) > child


A_UUID1 = "1ef5c3a0-6f0e-11ef-8000-0242ac120002"


@pytest.mark.parametrize("foreign", ["not-a-uuid", A_UUID1, ""])
def test_a_parent_id_of_another_layout_imposes_no_order(foreign: str) -> None:
    """Ids of other layouts (e.g. LangGraph's uuid6 ones) have no order to keep with ours."""
    assert uuid.UUID(new_checkpoint_id(after=foreign)).version == 7


class Counter(TypedDict):
    count: Annotated[int, operator.add]


def test_a_step_made_with_a_clock_behind_still_heads_the_history(
    saver: BaseCheckpointSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = StateGraph(Counter)
    builder.add_node("bump", lambda state: {"count": 1})
    builder.add_edge(START, "bump")
    builder.add_edge("bump", END)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"clocks-{uuid.uuid4().hex[:8]}"}}
    graph.invoke({"count": 0}, config)
    real = time.time_ns
    # The next step runs in another process, whose clock is behind this one's.
    monkeypatch.setattr(ids.time, "time_ns", lambda: real() - HOUR_NS)
    monkeypatch.setattr(ids, "_last", 0)
    graph.invoke({"count": 0}, config)
    history = list(graph.get_state_history(config))
    assert history[0].values == {"count": 2}
    assert history[0].config == graph.get_state(config).config
    made = [snapshot.config["configurable"]["checkpoint_id"] for snapshot in history]
    assert made == sorted(made, reverse=True)
