"""Conformance tests every checkpoint saver passes (run per backend by test_saver_contract).

Plain test functions using the ``saver`` fixture of conftest.py; they only use the public
saver interface, so a new backend gets them all by adding a ``backend_*.py`` module.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from relaygraph.persistence.base import (
    ANY_HEAD,
    ERROR,
    INTERRUPT,
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointTuple,
)
from relaygraph.persistence.errors import (
    CheckpointConflict,
    MissingThreadIdError,
    SerializationError,
)
from relaygraph.persistence.ids import new_checkpoint_id

# -- helpers ---------------------------------------------------------------------------


def _config(thread_id: str, checkpoint_id: str | None = None, ns: str = "") -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class Thread:
    """Builds a thread's history step by step, the way the runtime does."""

    def __init__(self, saver: BaseCheckpointSaver, thread_id: str | None = None, ns: str = ""):
        self.saver = saver
        self.thread_id = thread_id or f"t-{uuid.uuid4().hex}"
        self.ns = ns
        self.values: dict[str, Any] = {}
        self.versions: dict[str, str] = {}
        self.head: str | None = None
        self.step = -1

    def commit(
        self,
        updates: dict[str, Any] | None = None,
        *,
        append: dict[str, list[Any]] | None = None,
        clear: tuple[str, ...] = (),
        parent: Any = ANY_HEAD,
        expected_head: Any = ANY_HEAD,
        **metadata: Any,
    ) -> str:
        """Store a child of ``parent`` (default: the current head) with some channels changed."""
        parent_id = self.head if parent is ANY_HEAD else parent
        changed: dict[str, str] = {}
        top = max(self.versions.values()) if self.versions else None
        new_version = self.saver.get_next_version(top)
        appends: dict[str, tuple[str, int]] = {}
        for name, value in (updates or {}).items():
            self.values[name] = value
            changed[name] = new_version
        for name, items in (append or {}).items():
            old = self.values.get(name, [])
            if name in self.versions and old:
                appends[name] = (self.versions[name], len(old))
            self.values[name] = [*old, *items]
            changed[name] = new_version
        for name in clear:
            self.values.pop(name, None)
            changed[name] = new_version
        self.versions.update(changed)
        self.step += 1
        checkpoint = Checkpoint(
            v=1,
            id=new_checkpoint_id(),
            ts=dt.datetime.now(dt.UTC).isoformat(),
            channel_values=dict(self.values),
            channel_versions=dict(self.versions),
            versions_seen={"node": {k: v for k, v in self.versions.items()}},
            updated_channels=sorted(changed),
            channel_appends=appends,
        )
        meta = {"source": "loop", "step": self.step, "parents": {}, **metadata}
        stored = self.saver.put(
            _config(self.thread_id, parent_id, self.ns),
            checkpoint,
            meta,
            changed,
            expected_head=expected_head,
        )
        assert stored == _config(self.thread_id, checkpoint["id"], self.ns)
        self.head = checkpoint["id"]
        return checkpoint["id"]

    def config(self, checkpoint_id: str | None = None) -> dict[str, Any]:
        return _config(self.thread_id, checkpoint_id, self.ns)

    def get(self, checkpoint_id: str | None = None) -> CheckpointTuple:
        saved = self.saver.get_tuple(self.config(checkpoint_id))
        assert saved is not None
        return saved


def _ids(tuples: Any) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


# -- basic round trips -----------------------------------------------------------------


def test_put_and_get_round_trip(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1, "b": (1, {2}), "when": dt.date(2024, 1, 2)}, run_id="r1")
    second = thread.commit({"a": 2}, custom="x")
    saved = thread.get()
    assert saved.config == thread.config(second)
    assert saved.parent_config == thread.config(first)
    assert saved.checkpoint["id"] == second
    assert saved.checkpoint["channel_values"] == {
        "a": 2,
        "b": (1, {2}),
        "when": dt.date(2024, 1, 2),
    }
    assert type(saved.checkpoint["channel_values"]["b"]) is tuple
    assert saved.checkpoint["channel_versions"] == thread.versions
    assert saved.checkpoint["versions_seen"] == {"node": thread.versions}
    assert saved.checkpoint["updated_channels"] == ["a"]
    assert saved.metadata == {"source": "loop", "step": 1, "parents": {}, "custom": "x"}
    assert saved.pending_writes == []

    older = thread.get(first)
    assert older.checkpoint["channel_values"]["a"] == 1
    assert older.parent_config is None
    assert older.metadata["run_id"] == "r1"


def test_unknown_thread_and_checkpoint_give_none(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    assert saver.get_tuple(thread.config()) is None
    assert saver.get(thread.config()) is None
    thread.commit({"a": 1})
    assert saver.get_tuple(thread.config(new_checkpoint_id())) is None
    assert saver.get_tuple(_config(thread.thread_id, ns="no-such-ns")) is None
    assert list(saver.list(_config(f"t-{uuid.uuid4().hex}"))) == []


def test_unchanged_channels_are_read_from_older_blobs(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    thread.commit({"big": "x" * 1000, "n": 0})
    for i in range(1, 5):
        thread.commit({"n": i})
    saved = thread.get()
    assert saved.checkpoint["channel_values"] == {"big": "x" * 1000, "n": 4}


def test_cleared_channel_has_no_value(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1, "tmp": "x"})
    thread.commit(clear=("tmp",))
    assert thread.get().checkpoint["channel_values"] == {"a": 1}
    assert "tmp" in thread.get().checkpoint["channel_versions"]
    assert thread.get(first).checkpoint["channel_values"] == {"a": 1, "tmp": "x"}


def test_stored_values_are_isolated_from_the_caller(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    items = [{"k": 1}]
    checkpoint_id = thread.commit({"items": items})
    items.append({"k": 2})
    items[0]["k"] = 99
    read = thread.get(checkpoint_id).checkpoint["channel_values"]["items"]
    assert read == [{"k": 1}]
    read.append("mine")
    read[0]["k"] = -1
    assert thread.get(checkpoint_id).checkpoint["channel_values"]["items"] == [{"k": 1}]


def test_namespaces_are_separate(saver: BaseCheckpointSaver) -> None:
    root = Thread(saver)
    child = Thread(saver, root.thread_id, ns="child:1")
    root_id = root.commit({"a": "root"})
    child_id = child.commit({"a": "child"})
    assert root.get().checkpoint["id"] == root_id
    assert child.get().checkpoint["channel_values"] == {"a": "child"}
    assert child.get().config == _config(root.thread_id, child_id, "child:1")
    assert _ids(saver.list(root.config())) == [root_id]
    assert _ids(saver.list(child.config())) == [child_id]
    everything = saver.list({"configurable": {"thread_id": root.thread_id}})
    assert _ids(everything) == [child_id, root_id]


# -- listing ---------------------------------------------------------------------------


def test_list_newest_first_with_filter_before_limit(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    ids = [thread.commit({"n": i}, kind="even" if i % 2 == 0 else "odd") for i in range(6)]
    newest_first = ids[::-1]
    assert _ids(saver.list(thread.config())) == newest_first
    assert _ids(saver.list(thread.config(), limit=2)) == newest_first[:2]
    assert _ids(saver.list(thread.config(), before=thread.config(ids[3]))) == ids[:3][::-1]
    assert _ids(saver.list(thread.config(), filter={"kind": "odd"})) == [ids[5], ids[3], ids[1]]
    assert _ids(saver.list(thread.config(), filter={"kind": "odd"}, limit=1)) == [ids[5]]
    assert _ids(saver.list(thread.config(), filter={"kind": "odd", "step": 3})) == [ids[3]]
    assert _ids(saver.list(thread.config(), filter={"missing": None})) == []
    assert _ids(
        saver.list(thread.config(), filter={"kind": "even"}, before=thread.config(ids[4]))
    ) == [ids[2], ids[0]]
    listed = list(saver.list(thread.config()))
    assert [t.checkpoint["channel_values"]["n"] for t in listed] == [5, 4, 3, 2, 1, 0]
    assert listed[0].parent_config == thread.config(ids[4])


def test_list_all_threads_with_config_none(saver: BaseCheckpointSaver) -> None:
    one, two = Thread(saver), Thread(saver)
    marker = uuid.uuid4().hex
    a = one.commit({"x": 1}, marker=marker)
    b = two.commit({"x": 2}, marker=marker)
    found = list(saver.list(None, filter={"marker": marker}))
    assert _ids(found) == [b, a]
    assert {t.config["configurable"]["thread_id"] for t in found} == {
        one.thread_id,
        two.thread_id,
    }


def test_list_includes_pending_writes(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    checkpoint_id = thread.commit({"a": 1})
    saver.put_writes(thread.config(checkpoint_id), [("a", 5)], "task-1")
    (listed,) = saver.list(thread.config())
    assert [tuple(w) for w in listed.pending_writes] == [("task-1", "a", 5)]


# -- pending writes --------------------------------------------------------------------


def test_pending_writes_order_and_idempotency(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    config = thread.config(thread.commit({"a": 1}))
    saver.put_writes(config, [("a", 1), ("b", (2,))], "task-b")
    saver.put_writes(config, [("a", 10)], "task-a")
    saver.put_writes(config, [("a", "again"), ("b", "again"), ("c", 3)], "task-b")
    writes = [tuple(w) for w in thread.get().pending_writes]
    assert writes == [
        ("task-b", "a", 1),
        ("task-b", "b", (2,)),
        ("task-a", "a", 10),
        ("task-b", "c", 3),
    ]
    assert type(writes[1][2]) is tuple


def test_special_channel_writes_replace(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    config = thread.config(thread.commit({"a": 1}))
    saver.put_writes(config, [(ERROR, ValueError("first"))], "task-1")
    saver.put_writes(config, [(ERROR, ValueError("second"))], "task-1")
    saver.put_writes(config, [(INTERRUPT, ["ask"])], "task-2")
    saver.put_writes(config, [(INTERRUPT, ["ask again"])], "task-2")
    writes = thread.get().pending_writes
    assert len(writes) == 2
    error = writes[0]
    assert error.task_id == "task-1" and error.channel == ERROR
    assert getattr(error.value, "message", str(error.value)).endswith("second")
    assert tuple(writes[1]) == ("task-2", INTERRUPT, ["ask again"])


def test_writes_belong_to_their_checkpoint(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1})
    saver.put_writes(thread.config(first), [("a", 2)], "task-1")
    second = thread.commit({"a": 2})
    assert thread.get(second).pending_writes == []
    assert len(thread.get(first).pending_writes) == 1


def test_unserializable_write_fails_and_stores_nothing(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    config = thread.config(thread.commit({"a": 1}))
    with pytest.raises(SerializationError, match="'bad'"):
        saver.put_writes(config, [("ok", 1), ("bad", threading.Lock())], "task-1")
    assert thread.get().pending_writes == []


# -- compare-and-set and forks ---------------------------------------------------------


def test_cas_commits_only_on_the_expected_head(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    with pytest.raises(CheckpointConflict):
        thread.commit({"a": 0}, expected_head="not-the-head")
    assert saver.get_tuple(thread.config()) is None
    first = thread.commit({"a": 1}, expected_head=None)
    second = thread.commit({"a": 2}, expected_head=first)

    before = [t.checkpoint["id"] for t in saver.list(thread.config())]
    stale = Thread(saver, thread.thread_id)
    stale.values, stale.versions, stale.head = {"a": 1}, dict(thread.versions), first
    with pytest.raises(CheckpointConflict) as info:
        stale.commit({"a": "lost", "new_channel": 1}, expected_head=first)
    assert info.value.expected == first and info.value.actual == second
    assert info.value.thread_id == thread.thread_id
    with pytest.raises(CheckpointConflict):
        thread.commit({"a": 3}, expected_head=None)
    # nothing of the losing commits is visible
    assert [t.checkpoint["id"] for t in saver.list(thread.config())] == before
    assert thread.get().checkpoint["id"] == second
    assert thread.get().checkpoint["channel_values"] == {"a": 2}


def test_forks_two_children_of_one_parent(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    root = thread.commit({"a": "root"}, append={"log": ["r"]})
    left = thread.commit({"a": "left"}, append={"log": ["l"]})
    right_thread = Thread(saver, thread.thread_id)
    right_thread.values = {"a": "root", "log": ["r"]}
    right_thread.versions = dict(thread.get(root).checkpoint["channel_versions"])
    right = right_thread.commit({"a": "right"}, append={"log": ["r2"]}, parent=root, source="fork")
    assert thread.get().checkpoint["id"] == right  # the newest commit is the head
    assert thread.get(left).checkpoint["channel_values"] == {"a": "left", "log": ["r", "l"]}
    assert thread.get(right).checkpoint["channel_values"] == {"a": "right", "log": ["r", "r2"]}
    assert thread.get(left).parent_config == thread.get(right).parent_config == thread.config(root)
    assert _ids(saver.list(thread.config())) == [right, left, root]


def test_concurrent_commits_on_one_head_exactly_one_wins(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    head = thread.commit({"a": 0})
    barrier = threading.Barrier(8)
    outcomes: list[Any] = [None] * 8

    def contend(i: int) -> None:
        mine = Thread(saver, thread.thread_id)
        mine.values, mine.versions, mine.head = {"a": 0}, dict(thread.versions), head
        barrier.wait()
        try:
            outcomes[i] = mine.commit({"a": i + 1}, expected_head=head)
        except CheckpointConflict as exc:
            outcomes[i] = exc

    workers = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1
    assert sum(isinstance(o, CheckpointConflict) for o in outcomes) == 7
    saved = thread.get()
    assert saved.checkpoint["id"] == winners[0]
    assert saved.checkpoint["channel_values"]["a"] == outcomes.index(winners[0]) + 1
    assert len(list(saver.list(thread.config()))) == 2


# -- errors ----------------------------------------------------------------------------


def test_unserializable_value_names_the_channel(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = thread.commit({"ok": 1})
    with pytest.raises(SerializationError) as info:
        thread.commit({"ok": 2, "bad_channel": {"inner": [object()]}})
    assert "bad_channel" in str(info.value) and "object" in str(info.value)
    assert thread.get().checkpoint["id"] == first
    assert thread.get().checkpoint["channel_values"] == {"ok": 1}
    with pytest.raises(SerializationError, match="metadata"):
        Thread(saver, thread.thread_id).commit({"ok": 3}, parent=first, meta=object())
    assert thread.get().checkpoint["id"] == first


NO_THREAD_ID = [{}, {"configurable": {}}, {"configurable": {"thread_id": None}}]


@pytest.mark.parametrize("config", NO_THREAD_ID)
def test_missing_thread_id_is_one_clear_error(saver: BaseCheckpointSaver, config: Any) -> None:
    checkpoint = Checkpoint(
        v=1,
        id=new_checkpoint_id(),
        ts="2024-01-01T00:00:00+00:00",
        channel_values={},
        channel_versions={},
        versions_seen={},
        updated_channels=[],
    )
    with pytest.raises(MissingThreadIdError, match="thread_id"):
        saver.get_tuple(config)
    with pytest.raises(MissingThreadIdError, match="thread_id"):
        saver.put(config, checkpoint, {}, {})
    with pytest.raises(MissingThreadIdError, match="thread_id"):
        list(saver.list(config))
    with pytest.raises(MissingThreadIdError, match="thread_id"):
        saver.put_writes(config, [("a", 1)], "task")


# -- size ------------------------------------------------------------------------------


def test_large_state(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    first = thread.commit({"blob": big, "text": "é" * 100_000})
    thread.commit({"n": 1})
    values = thread.get().checkpoint["channel_values"]
    assert values["blob"] == big and values["text"] == "é" * 100_000
    assert thread.get(first).checkpoint["channel_values"]["blob"] == big


def test_appended_messages_are_stored_as_suffixes(
    saver: BaseCheckpointSaver, stored_bytes: Callable[[str], int]
) -> None:
    thread = Thread(saver)
    message = {"role": "user", "content": "x" * 200}
    sizes: dict[int, int] = {}
    ids: dict[int, str] = {}
    for i in range(1000):
        ids[i] = thread.commit(append={"messages": [{**message, "n": i}]})
        if i + 1 in (250, 500, 1000):
            sizes[i + 1] = stored_bytes(thread.thread_id)
    # linear: the second 500 steps cost about what the first 500 did (quadratic would be 3x)
    first_half, second_half = sizes[500], sizes[1000] - sizes[500]
    assert second_half < 1.3 * first_half
    # ~0.5-1.5 kB a step (message, header, index overhead); whole copies would be ~115 MB
    assert sizes[1000] < 4_000_000
    values = thread.get().checkpoint["channel_values"]["messages"]
    assert [m["n"] for m in values] == list(range(1000))
    middle = thread.get(ids[499]).checkpoint["channel_values"]["messages"]
    assert [m["n"] for m in middle] == list(range(500))


# -- retention -------------------------------------------------------------------------


def test_delete_thread(saver: BaseCheckpointSaver) -> None:
    doomed, kept = Thread(saver), Thread(saver)
    child = Thread(saver, doomed.thread_id, ns="sub:1")
    doomed.commit({"a": 1})
    child.commit({"a": 2})
    saver.put_writes(doomed.config(doomed.head), [("a", 3)], "t")
    kept.commit({"a": 4})
    saver.delete_thread(doomed.thread_id)
    assert saver.get_tuple(doomed.config()) is None
    assert saver.get_tuple(child.config()) is None
    assert list(saver.list({"configurable": {"thread_id": doomed.thread_id}})) == []
    assert kept.get().checkpoint["channel_values"] == {"a": 4}
    saver.delete_thread(doomed.thread_id)  # deleting nothing is fine
    # the id is reusable afterwards
    again = Thread(saver, doomed.thread_id)
    again.commit({"b": 1}, expected_head=None)
    assert again.get().checkpoint["channel_values"] == {"b": 1}


def test_copy_thread(saver: BaseCheckpointSaver) -> None:
    source = Thread(saver)
    first = source.commit({"a": 1}, append={"log": ["x"]})
    second = source.commit({"a": 2}, append={"log": ["y"]})
    saver.put_writes(source.config(second), [("a", 9)], "task-1")
    Thread(saver, source.thread_id, ns="sub:1").commit({"s": 1})
    target_id = f"t-{uuid.uuid4().hex}"
    saver.copy_thread(source.thread_id, target_id)
    target = Thread(saver, target_id)
    copied = target.get()
    assert copied.config == _config(target_id, second)
    assert copied.parent_config == _config(target_id, first)
    assert copied.checkpoint["channel_values"] == {"a": 2, "log": ["x", "y"]}
    assert [tuple(w) for w in copied.pending_writes] == [("task-1", "a", 9)]
    assert _ids(saver.list(target.config())) == [second, first]
    assert saver.get_tuple(_config(target_id, ns="sub:1")) is not None
    # independent afterwards
    saver.delete_thread(source.thread_id)
    assert target.get(first).checkpoint["channel_values"] == {"a": 1, "log": ["x"]}
    with pytest.raises(ValueError, match=target_id):
        saver.copy_thread(target_id, target_id)
    other = Thread(saver)
    other.commit({"z": 1})
    with pytest.raises(ValueError, match="target"):
        saver.copy_thread(target_id, other.thread_id)
    assert other.get().checkpoint["channel_values"] == {"z": 1}


def test_prune_keeps_the_newest_and_their_values(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    other = Thread(saver)
    ids = [thread.commit({"n": i}, append={"log": [i]}) for i in range(10)]
    saver.put_writes(thread.config(ids[0]), [("n", 0)], "t")
    other_ids = [other.commit({"n": i}) for i in range(3)]
    saver.prune([thread.thread_id], keep_last=3)
    assert _ids(saver.list(thread.config())) == ids[:6:-1]
    assert saver.get_tuple(thread.config(ids[0])) is None
    # the kept checkpoints still read their whole appended history
    assert thread.get().checkpoint["channel_values"]["log"] == list(range(10))
    assert thread.get(ids[7]).checkpoint["channel_values"] == {"n": 7, "log": list(range(8))}
    assert _ids(saver.list(other.config())) == other_ids[::-1]
    thread.commit({"n": 10}, append={"log": [10]}, expected_head=ids[9])
    assert thread.get().checkpoint["channel_values"]["log"] == list(range(11))
    saver.prune([thread.thread_id, other.thread_id], keep_last=1)
    assert len(list(saver.list(thread.config()))) == 1
    assert len(list(saver.list(other.config()))) == 1
    with pytest.raises(ValueError):
        saver.prune([thread.thread_id], keep_last=0)


def test_delete_for_runs(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    run_a, run_b = f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}"
    a1 = thread.commit({"n": 1}, append={"log": [1]}, run_id=run_a)
    a2 = thread.commit({"n": 2}, append={"log": [2]}, run_id=run_a)
    b1 = thread.commit({"n": 3}, append={"log": [3]}, run_id=run_b)
    b2 = thread.commit({"n": 4}, append={"log": [4]}, run_id=run_b)
    saver.put_writes(thread.config(b2), [("n", 5)], "t")
    saver.delete_for_runs([run_b])
    assert _ids(saver.list(thread.config())) == [a2, a1]
    head = thread.get()
    assert head.checkpoint["id"] == a2
    assert head.checkpoint["channel_values"] == {"n": 2, "log": [1, 2]}
    assert saver.get_tuple(thread.config(b1)) is None
    saver.delete_for_runs([run_a, "no-such-run"])
    assert list(saver.list(thread.config())) == []
    assert saver.get_tuple(thread.config()) is None


def test_get_next_version(saver: BaseCheckpointSaver) -> None:
    one = saver.get_next_version(None)
    two = saver.get_next_version(one)
    assert one < two
    assert saver.get_next_version(one) != two  # unique across branches


# -- async twins -----------------------------------------------------------------------


async def test_async_twins(saver: BaseCheckpointSaver) -> None:
    try:
        await _async_twins(saver)
    finally:
        # Close the pools the async calls opened on this test's event loop while it runs:
        # left to the loop's shutdown, a PostgreSQL pool's workers were cancelled by
        # pytest-asyncio's teardown, which once hung there for 300 s under load in CI.
        aclose = getattr(saver, "aclose", None)
        if aclose is not None:
            await aclose()


async def _async_twins(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = await asyncio.to_thread(thread.commit, {"a": 1}, run_id="r-async")
    checkpoint = Checkpoint(
        v=1,
        id=new_checkpoint_id(),
        ts="2024-01-01T00:00:00+00:00",
        channel_values={"a": 2},
        channel_versions={"a": saver.get_next_version(thread.versions["a"])},
        versions_seen={},
        updated_channels=["a"],
    )
    stored = await saver.aput(
        thread.config(first),
        checkpoint,
        {"source": "loop", "step": 1},
        dict(checkpoint["channel_versions"]),
        expected_head=first,
    )
    assert stored == thread.config(checkpoint["id"])
    with pytest.raises(CheckpointConflict):
        await saver.aput(thread.config(first), checkpoint, {}, {}, expected_head=first)
    await saver.aput_writes(stored, [("a", 3)], "task-1")
    saved = await saver.aget_tuple(thread.config())
    assert saved is not None and saved.checkpoint["channel_values"] == {"a": 2}
    assert [tuple(w) for w in saved.pending_writes] == [("task-1", "a", 3)]
    assert (await saver.aget(thread.config(first)))["channel_values"] == {"a": 1}
    listed = [t async for t in saver.alist(thread.config(), limit=1)]
    assert _ids(listed) == [checkpoint["id"]]
    target = f"t-{uuid.uuid4().hex}"
    await saver.acopy_thread(thread.thread_id, target)
    await saver.aprune([target], keep_last=1)
    assert len([t async for t in saver.alist(_config(target))]) == 1
    await saver.adelete_for_runs(["r-async"])
    assert _ids([t async for t in saver.alist(thread.config())]) == [checkpoint["id"]]
    await saver.adelete_thread(thread.thread_id)
    assert await saver.aget_tuple(thread.config()) is None
    with pytest.raises(MissingThreadIdError):
        await saver.aget_tuple({})
