"""Checkpoints are immutable on every saver; a commit whose reply was lost is not a conflict;
two concurrent ``update_state`` calls never both silently win."""

from __future__ import annotations

import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from relaygraph import CheckpointConflict, CheckpointExistsError, StateGraph
from relaygraph.persistence.base import ANY_HEAD, BaseCheckpointSaver, Checkpoint

from .saver_contract import Thread, _config


def _checkpoint_of(saver: BaseCheckpointSaver, thread: Thread, checkpoint_id: str) -> Checkpoint:
    saved = saver.get_tuple(_config(thread.thread_id, checkpoint_id))
    assert saved is not None
    return saved.checkpoint


def test_putting_the_same_checkpoint_again_is_a_no_op(saver: BaseCheckpointSaver) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1})
    stored = saver.get_tuple(_config(thread.thread_id, first))
    assert stored is not None
    second = thread.commit({"a": 2})
    again = saver.put(
        _config(thread.thread_id),  # the first one's parent: none
        stored.checkpoint,
        stored.metadata,
        dict(stored.checkpoint["channel_versions"]),
    )
    assert again["configurable"]["checkpoint_id"] == first
    head = saver.get_tuple(_config(thread.thread_id))
    assert head is not None and head.checkpoint["id"] == second  # the head did not move back
    assert _checkpoint_of(saver, thread, first)["channel_values"] == {"a": 1}


@pytest.mark.parametrize("change", ["metadata", "values", "parent"])
def test_other_content_under_a_stored_id_is_refused(
    saver: BaseCheckpointSaver, change: str
) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1})
    second = thread.commit({"a": 2}, note="kept")
    stored = saver.get_tuple(_config(thread.thread_id, second))
    assert stored is not None
    checkpoint = dict(stored.checkpoint)
    metadata = dict(stored.metadata)
    parent = first
    versions = dict(checkpoint["channel_versions"])
    if change == "metadata":
        metadata["note"] = "overwritten"
    elif change == "values":
        versions["a"] = saver.get_next_version(versions["a"])
        checkpoint["channel_versions"] = versions
        checkpoint["channel_values"] = {"a": 99}
    else:
        parent = None
    with pytest.raises(CheckpointExistsError, match="immutable") as info:
        saver.put(
            _config(thread.thread_id, parent), checkpoint, metadata, versions,
            expected_head=ANY_HEAD,
        )  # fmt: skip
    assert info.value.checkpoint_id == second and info.value.thread_id == thread.thread_id
    kept = saver.get_tuple(_config(thread.thread_id, second))
    assert kept is not None
    assert kept.checkpoint["channel_values"] == {"a": 2}
    assert kept.metadata["note"] == "kept"
    assert kept.parent_config == _config(thread.thread_id, first)
    head = saver.get_tuple(_config(thread.thread_id))
    assert head is not None and head.checkpoint["id"] == second


def test_a_compare_and_set_against_a_moved_head_is_still_a_conflict(
    saver: BaseCheckpointSaver,
) -> None:
    thread = Thread(saver)
    first = thread.commit({"a": 1})
    second = thread.commit({"a": 2})
    stored = saver.get_tuple(_config(thread.thread_id, second))
    assert stored is not None
    with pytest.raises(CheckpointConflict):
        saver.put(
            _config(thread.thread_id, first), stored.checkpoint, {"other": 1}, {},
            expected_head=first,
        )  # fmt: skip


# -- update_state ----------------------------------------------------------------------


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(saver: BaseCheckpointSaver) -> Any:
    builder = StateGraph(State)
    builder.add_node("note", lambda state: {"log": ["node"]})
    builder.add_edge("__start__", "note")
    return builder.compile(checkpointer=saver)


class _Racing:
    """Wraps a saver: the first ``put`` first lets another update_state run to the end,
    exactly between the outer update's read of the head and its commit."""

    def __init__(self, saver: BaseCheckpointSaver, race: Any) -> None:
        self._saver = saver
        self._race = race
        self._raced = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saver, name)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        if not self._raced.is_set():
            self._raced.set()
            self._race()
        return self._saver.put(*args, **kwargs)


def test_two_concurrent_update_states_never_both_silently_win(
    saver: BaseCheckpointSaver,
) -> None:
    config = {"configurable": {"thread_id": "racing"}}
    plain = _graph(saver)
    plain.invoke({"log": ["start"]}, config)
    racing = _graph(saver)
    racing.checkpointer = _Racing(saver, lambda: plain.update_state(config, {"log": ["first"]}))
    with pytest.raises(CheckpointConflict):
        racing.update_state(config, {"log": ["second"]})
    # The first update is the head; the second stored nothing and can be retried on it.
    assert plain.get_state(config).values["log"] == ["start", "node", "first"]
    plain.update_state(config, {"log": ["second"]})
    assert plain.get_state(config).values["log"] == ["start", "node", "first", "second"]


def test_update_state_at_a_named_checkpoint_still_forks(saver: BaseCheckpointSaver) -> None:
    config = {"configurable": {"thread_id": "fork"}}
    graph = _graph(saver)
    graph.invoke({"log": ["start"]}, config)
    history = list(graph.get_state_history(config))
    oldest_with_values = [s for s in history if s.values.get("log")][-1]
    forked = graph.update_state(oldest_with_values.config, {"log": ["fork"]})
    assert graph.get_state(config).config == forked
    assert graph.get_state(config).values["log"] == ["start", "fork"]


# -- a commit whose reply was lost -------------------------------------------------------


def test_a_commit_whose_reply_was_lost_is_not_reported_as_a_conflict(
    redis_search_url: str,
) -> None:
    """The lane's EVALSHA ran but its connection died before the reply: the saver runs
    the commit again through the client, which must find its own checkpoint, not a
    conflict (before: CheckpointConflict naming the caller's own checkpoint as head)."""
    import redis as redis_py

    from relaygraph.persistence.redis import RedisSaver

    saver = RedisSaver.from_conn_string(redis_search_url)
    thread = Thread(saver)
    first = thread.commit({"a": 1})
    lane = saver._lane
    assert lane is not None
    real = lane.evalsha
    lost: list[bool] = []

    def run_then_lose_the_reply(sha: str, keys: list[str], args: list[Any]) -> Any:
        real(sha, keys, args)  # the commit lands
        lane.close()  # and the connection dies before its reply is read
        lost.append(True)
        raise redis_py.ConnectionError("Connection closed by server.")

    lane.evalsha = run_then_lose_the_reply  # type: ignore[method-assign]
    second = thread.commit({"a": 2}, expected_head=first)
    lane.evalsha = real  # type: ignore[method-assign]
    assert lost == [True]
    head = saver.get_tuple(_config(thread.thread_id))
    assert head is not None and head.checkpoint["id"] == second
    assert head.checkpoint["channel_values"] == {"a": 2}
    assert head.parent_config == _config(thread.thread_id, first)
    saver.close()


# -- list filters: a server-side pre-filter may only let more rows through ----------------


def test_list_filters_agree_with_python_equality_on_every_saver(
    saver: BaseCheckpointSaver,
) -> None:
    thread = Thread(saver)
    one = thread.commit({"a": 1}, flag=1, ratio=1.0, off=0)
    true = thread.commit({"a": 2}, flag=True, ratio=True, off=False)
    other = thread.commit({"a": 3}, flag=2, ratio=0.5, off=2)

    def ids(**filter: Any) -> list[str]:
        listed = saver.list(_config(thread.thread_id), filter=filter)
        return sorted(t.config["configurable"]["checkpoint_id"] for t in listed)

    assert ids(flag=True) == sorted([one, true])  # 1 == True in Python, as everywhere else
    assert ids(flag=1) == sorted([one, true])
    assert ids(ratio=1) == sorted([one, true])
    assert ids(off=False) == sorted([one, true])
    assert ids(flag=2) == [other]


def test_list_filters_on_odd_scalars_agree_with_python_equality_on_every_saver(
    saver: BaseCheckpointSaver,
) -> None:
    """Values the SQL savers' JSON copy of the metadata cannot hold as they are (a NUL in a
    string, infinities, an int past str()'s 4,300 digits) are stored, and a filter on them
    finds what Python equality finds (before on SQLite: a NUL string found nothing and an
    infinity was a 'malformed JSON' error; on both SQL savers a huge int failed the put)."""
    huge = 2**20000
    values = {"nul": "a\0b", "inf": float("inf"), "ninf": float("-inf"), "huge": huge}
    thread = Thread(saver)
    stored = {
        name: thread.commit({"a": i}, k=value) for i, (name, value) in enumerate(values.items())
    }
    plain = thread.commit({"a": 9}, k="ab")  # what the NUL string's JSON copy reads as

    def ids(value: Any) -> list[str]:
        listed = saver.list(_config(thread.thread_id), filter={"k": value})
        return [t.config["configurable"]["checkpoint_id"] for t in listed]

    for name, value in values.items():
        assert ids(value) == [stored[name]], name
    assert ids("ab") == [plain]
    assert ids(huge + 1) == []
    saved = saver.get_tuple(_config(thread.thread_id, stored["huge"]))
    assert saved is not None and saved.metadata["k"] == huge
    odd_key = thread.commit({"a": 10}, **{"odd\0key": "v"})
    listed = saver.list(_config(thread.thread_id), filter={"odd\0key": "v"})
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [odd_key]
