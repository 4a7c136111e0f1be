"""InMemorySaver specifics beyond the shared contract (saver_contract.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from relaygraph.persistence import blobs
from relaygraph.persistence.base import Checkpoint
from relaygraph.persistence.memory import InMemorySaver, MemorySaver
from relaygraph.persistence.serde import Serializer


def _checkpoint(
    checkpoint_id: str,
    values: dict[str, Any],
    versions: dict[str, str],
    appends: dict[str, tuple[str, int]] | None = None,
) -> Checkpoint:
    return Checkpoint(
        v=1,
        id=checkpoint_id,
        ts="2024-01-01T00:00:00+00:00",
        channel_values=values,
        channel_versions=versions,
        versions_seen={},
        updated_channels=sorted(versions),
        channel_appends=appends or {},
    )


def _config(thread_id: str = "t", checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _values(saver: InMemorySaver, thread_id: str = "t", checkpoint_id: str | None = None) -> Any:
    saved = saver.get_tuple(_config(thread_id, checkpoint_id))
    assert saved is not None
    return saved.checkpoint["channel_values"]


def test_aliases_and_top_level_exports() -> None:
    import relaygraph

    assert MemorySaver is InMemorySaver
    assert relaygraph.MemorySaver is InMemorySaver and relaygraph.InMemorySaver is InMemorySaver


def test_it_works_under_a_graph() -> None:
    from relaygraph import END, START, MessagesState, StateGraph

    def echo(state: Any) -> dict[str, Any]:
        return {"messages": [("ai", "Echo: " + state["messages"][-1].content)]}

    builder = StateGraph(MessagesState)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)
    config = _config("chat")
    for turn in range(5):
        out = graph.invoke({"messages": [("user", f"hi {turn}")]}, config)
    assert [m.content for m in out["messages"][-2:]] == ["hi 4", "Echo: hi 4"]
    space = saver._threads["chat"][""]
    kinds = [blobs.decode_blob(b)[0] for (c, _), b in space.blobs.items() if c == "messages"]
    assert kinds.count("full") == 1 and kinds.count("append") == len(kinds) - 1


def test_put_stores_bytes_so_a_failed_put_leaves_no_trace() -> None:
    saver = InMemorySaver()
    with pytest.raises(TypeError):  # SerializationError is a TypeError
        saver.put(_config(), _checkpoint("c1", {"a": object()}, {"a": "1"}), {}, {"a": "1"})
    assert saver._threads == {}
    assert saver.stored_bytes() == 0


def test_a_value_without_a_version_is_refused() -> None:
    saver = InMemorySaver()
    with pytest.raises(ValueError, match="'orphan'"):
        saver.put(_config(), _checkpoint("c1", {"orphan": 1}, {}), {}, {})


def test_versions_missing_from_new_versions_are_still_stored() -> None:
    saver = InMemorySaver()
    saver.put(_config(), _checkpoint("c1", {"a": 1, "b": 2}, {"a": "1", "b": "1"}), {}, {"a": "1"})
    assert _values(saver) == {"a": 1, "b": 2}


def test_put_writes_needs_a_checkpoint_id() -> None:
    saver = InMemorySaver()
    with pytest.raises(ValueError, match="checkpoint_id"):
        saver.put_writes(_config(), [("a", 1)], "task")


def test_reads_never_share_objects_even_inside_lists() -> None:
    saver = InMemorySaver()
    saver.put(_config(), _checkpoint("c1", {"m": [{"k": 1}]}, {"m": "1"}), {}, {"m": "1"})
    first = _values(saver)["m"]
    first[0]["k"] = "mutated"
    assert _values(saver)["m"] == [{"k": 1}]


def test_opt_in_cache_returns_copies_of_lists_and_resolves_once() -> None:
    saver = InMemorySaver(cache_size=8)
    saver.put(_config(), _checkpoint("c1", {"m": [1]}, {"m": "1"}), {}, {"m": "1"})
    for i in range(2, 30):
        checkpoint = _checkpoint(
            f"c{i:02d}", {"m": list(range(1, i + 1))}, {"m": str(i)}, {"m": (str(i - 1), i - 1)}
        )
        saver.put(_config(), checkpoint, {}, {"m": str(i)})
    head = _values(saver)["m"]
    assert head == list(range(1, 30))
    head.append("caller's")
    assert _values(saver)["m"] == list(range(1, 30))


def test_cache_never_serves_a_deleted_threads_values() -> None:
    # user-chosen versions can repeat after a delete: the cache must not answer for them
    saver = InMemorySaver(cache_size=8)
    saver.put(_config(), _checkpoint("c1", {"m": ["old"]}, {"m": "1"}), {}, {"m": "1"})
    assert _values(saver) == {"m": ["old"]}
    saver.delete_thread("t")
    saver.put(_config(), _checkpoint("c1", {"m": ["new"]}, {"m": "1"}), {}, {"m": "1"})
    assert _values(saver) == {"m": ["new"]}
    # re-storing a version with other content (a fork with counter versions) too
    saver.put(_config(), _checkpoint("c2", {"m": ["fork"]}, {"m": "1"}), {}, {"m": "1"})
    assert _values(saver) == {"m": ["fork"]}


def test_cache_is_scoped_per_thread() -> None:
    saver = InMemorySaver(cache_size=8)
    for thread_id in ("a", "b"):
        checkpoint = _checkpoint("c1", {"m": [thread_id]}, {"m": "1"})
        saver.put(_config(thread_id), checkpoint, {}, {"m": "1"})
    assert _values(saver, "a") == {"m": ["a"]} and _values(saver, "b") == {"m": ["b"]}


def test_prune_keeps_the_head_even_when_its_id_is_not_the_newest() -> None:
    saver = InMemorySaver()
    for checkpoint_id in ("c3", "c2", "c1"):  # the head (last put) has the smallest id
        checkpoint = _checkpoint(checkpoint_id, {"a": checkpoint_id}, {"a": checkpoint_id})
        saver.put(_config(), checkpoint, {}, {"a": checkpoint_id})
    saver.prune(["t"], keep_last=1)
    kept = [t.checkpoint["id"] for t in saver.list(_config())]
    assert kept == ["c3", "c1"]
    assert _values(saver) == {"a": "c1"}
    saver.prune(["no-such-thread"], keep_last=1)


def test_prune_drops_blobs_nobody_reads() -> None:
    saver = InMemorySaver()
    for i in range(1, 6):
        checkpoint = _checkpoint(f"c{i}", {"big": "x" * 10_000 + str(i)}, {"big": str(i)})
        saver.put(_config(), checkpoint, {}, {"big": str(i)})
    before = saver.stored_bytes("t")
    saver.prune(["t"], keep_last=1)
    assert saver.stored_bytes("t") < before / 4
    assert _values(saver) == {"big": "x" * 10_000 + "5"}


def test_stored_bytes_and_delete() -> None:
    saver = InMemorySaver()
    saver.put(_config(), _checkpoint("c1", {"a": "x" * 1000}, {"a": "1"}), {}, {"a": "1"})
    saver.put_writes(_config("t", "c1"), [("a", "y" * 500)], "task")
    assert saver.stored_bytes("t") > 1500 and saver.stored_bytes() == saver.stored_bytes("t")
    saver.delete_thread("t")
    assert saver.stored_bytes() == 0


def test_custom_serializer_is_used() -> None:
    class Counting(Serializer):
        calls = 0

        def dumps(self, value: Any, *, where: str | None = None) -> bytes:
            Counting.calls += 1
            return super().dumps(value, where=where)

    saver = InMemorySaver(serde=Counting())
    saver.put(_config(), _checkpoint("c1", {"a": 1}, {"a": "1"}), {"step": 0}, {"a": "1"})
    assert Counting.calls == 2  # the metadata and the one channel
    assert _values(saver) == {"a": 1}


def test_concurrent_writers_and_readers() -> None:
    saver = InMemorySaver()
    saver.put(_config(), _checkpoint("c1", {"a": 0}, {"a": "1"}), {}, {"a": "1"})
    errors: list[BaseException] = []

    def write(task: int) -> None:
        try:
            for index in range(50):
                saver.put_writes(_config("t", "c1"), [("ch", index)], f"task-{task}-{index}")
                saver.get_tuple(_config())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    saved = saver.get_tuple(_config())
    assert saved is not None and len(saved.pending_writes) == 4 * 50


def test_delete_for_runs_removes_an_emptied_thread() -> None:
    saver = InMemorySaver()
    saver.put(_config(), _checkpoint("c1", {"a": 1}, {"a": "1"}), {"run_id": "r"}, {"a": "1"})
    saver.delete_for_runs("r")  # a lone string is one run id, not its characters
    assert saver._threads == {}
    assert saver.get_tuple(_config()) is None
