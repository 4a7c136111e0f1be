"""relaygraph's deliberate deviations from LangGraph (docs/deviations.md), each shown on both.

Every test pairs LangGraph's behaviour (observed on langgraph 1.2) with relaygraph's:
(a) a missing thread_id, or thread_id=None, is one error type everywhere;
(b) update_state with a key the state schema lacks is an error, not a silent drop;
(c) Command(resume=...) with nothing pending (or naming an unknown interrupt id) is an error,
    not a silent no-op (or a new run);
(d) SqliteSaver / PostgresSaver.from_conn_string(...) work directly (as the lesson writes
    them) and as context managers;
(e) a message a node changes in place is never saved (LangGraph saves it only when the
    node also writes ``messages``);
(f) StateSnapshot.tasks[].error keeps the node's exception type (LangGraph: a str);
(g) list_namespaces drops a namespace with its last item (LangGraph's InMemoryStore keeps it);
(h) cache_policy, compile(cache=) and other unimplemented add_node arguments, and
    invoke/stream arguments relaygraph does not implement (output_keys, durability='exit',
    debug=True, ...), are refused by name, never ignored;
(i) a checkpoint_id the thread does not have is an error (LangGraph starts a new lineage);
(j) Overwrite on a messages key stores whole messages with ids (LangGraph: the value as given).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any, TypedDict

import psycopg
import pytest
from differential.libs import LANGGRAPH, relaygraph_lib
from langgraph.checkpoint import sqlite as langgraph_sqlite
from psycopg.conninfo import make_conninfo

import relaygraph
from relaygraph.persistence import postgres as relaygraph_postgres
from relaygraph.persistence import sqlite as relaygraph_sqlite


class State(TypedDict, total=False):
    count: int


def build(lib: Any, checkpointer: Any = None, *, ask: bool = False) -> Any:
    """START -> bump -> END (``bump`` asks ``interrupt`` first when ``ask``)."""

    def bump(state: State) -> dict[str, Any]:
        if ask:
            lib.interrupt("go on?")
        return {"count": state.get("count", 0) + 1}

    builder = lib.StateGraph(State).add_node("bump", bump)
    builder.add_edge(lib.START, "bump").add_edge("bump", lib.END)
    return builder.compile(checkpointer=checkpointer or lib.MemorySaver())


@pytest.fixture
def rg() -> Any:
    return relaygraph_lib()


def _astream(graph: Any, config: Any) -> list[Any]:
    async def collect() -> list[Any]:
        return [chunk async for chunk in graph.astream({"count": 0}, config)]

    return asyncio.run(collect())


#: Every entry point that reads or writes a thread, as ``fn(lib, graph, config)``.
ENTRY_POINTS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "invoke": lambda lib, g, c: g.invoke({"count": 0}, c),
    "stream": lambda lib, g, c: list(g.stream({"count": 0}, c)),
    "get_state": lambda lib, g, c: g.get_state(c),
    "get_state_history": lambda lib, g, c: list(g.get_state_history(c)),
    "update_state": lambda lib, g, c: g.update_state(c, {"count": 5}),
    "bulk_update_state": lambda lib, g, c: g.bulk_update_state(
        c, [[lib.StateUpdate({"count": 5}, "bump")]]
    ),
    "ainvoke": lambda lib, g, c: asyncio.run(g.ainvoke({"count": 0}, c)),
    "astream": lambda lib, g, c: _astream(g, c),
}

#: Configs without a usable thread_id (copy before use: LangGraph may rewrite them in place).
NO_THREAD: dict[str, Any] = {
    "no config": None,
    "empty config": {},
    "no thread_id": {"configurable": {}},
    "thread_id None": {"configurable": {"thread_id": None}},
}


# -- (a) a missing thread_id ------------------------------------------------------------


def test_langgraph_mixes_error_types_without_thread_id() -> None:
    graph = build(LANGGRAPH)
    raised: dict[str, type[BaseException]] = {}
    for name, call in ENTRY_POINTS.items():
        for config_name, config in list(NO_THREAD.items())[:3]:
            with pytest.raises(Exception) as info:
                call(LANGGRAPH, graph, copy.deepcopy(config))
            raised[f"{name}/{config_name}"] = type(info.value)
    assert raised["invoke/no thread_id"] is ValueError
    assert raised["get_state/no thread_id"] is KeyError  # a bare KeyError: 'thread_id'
    assert raised["get_state_history/empty config"] is KeyError
    assert raised["update_state/no config"] is TypeError  # 'NoneType' object is not subscriptable
    assert {ValueError, KeyError, TypeError} <= set(raised.values())


def test_langgraph_runs_with_thread_id_none_and_loses_the_state() -> None:
    graph = build(LANGGRAPH)
    config = copy.deepcopy(NO_THREAD["thread_id None"])
    assert graph.invoke({"count": 0}, config) == {"count": 1}  # no error
    saved = [t.config["configurable"]["thread_id"] for t in graph.checkpointer.list(None)]
    assert saved and set(saved) == {None}  # checkpoints were written, under None...
    assert graph.get_state(config).values == {}  # ...that get_state cannot read back
    assert config == {"configurable": {"thread_id": "None"}}  # (and it rewrote our config)
    assert list(graph.get_state_history(config)) == []


@pytest.mark.parametrize("config_name", list(NO_THREAD))
@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_relaygraph_raises_missing_thread_id_everywhere(
    rg: Any, entry_point: str, config_name: str
) -> None:
    graph = build(rg)
    with pytest.raises(relaygraph.MissingThreadIdError, match="thread_id") as info:
        ENTRY_POINTS[entry_point](rg, graph, copy.deepcopy(NO_THREAD[config_name]))
    assert isinstance(info.value, ValueError)  # code written for LangGraph still catches it
    assert not list(graph.checkpointer.list(None))  # nothing was written anywhere


def test_relaygraph_without_checkpointer_needs_no_thread_id(rg: Any) -> None:
    builder = rg.StateGraph(State).add_node("bump", lambda s: {"count": s["count"] + 1})
    graph = builder.add_edge(rg.START, "bump").add_edge("bump", rg.END).compile()
    assert graph.invoke({"count": 1}) == {"count": 2}
    assert graph.invoke({"count": 1}, {"configurable": {"thread_id": None}}) == {"count": 2}


# -- (b) update_state with a key the schema lacks ------------------------------------------


def test_langgraph_silently_drops_unknown_keys_in_update_state() -> None:
    graph = build(LANGGRAPH)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    graph.update_state(config, {"cuont": 7}, as_node="bump")  # a typo: no error
    assert graph.get_state(config).values == {"count": 1}
    assert graph.get_state(config).metadata["source"] == "update"  # yet a checkpoint is written


@pytest.mark.parametrize(
    ("values", "as_node"),
    [({"cuont": 7}, "bump"), ({"cuont": 7}, None), ({"count": 2, "cuont": 7}, "bump")],
    ids=["as_node", "inferred", "mixed"],
)
def test_relaygraph_rejects_unknown_keys_in_update_state(
    rg: Any, values: dict[str, int], as_node: str | None
) -> None:
    graph = build(rg)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    before = len(list(graph.get_state_history(config)))
    with pytest.raises(relaygraph.InvalidUpdateError, match="cuont") as info:
        graph.update_state(config, values, as_node=as_node)
    assert isinstance(info.value, ValueError)
    assert graph.get_state(config).values == {"count": 1}  # nothing applied...
    assert len(list(graph.get_state_history(config))) == before  # ...and nothing written


def test_relaygraph_bulk_update_rejects_unknown_keys(rg: Any) -> None:
    graph = build(rg)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    with pytest.raises(relaygraph.InvalidUpdateError, match="nope"):
        graph.bulk_update_state(config, [[rg.StateUpdate({"nope": 1}, "bump")]])
    assert graph.get_state(config).values == {"count": 1}


def test_relaygraph_update_state_with_known_keys_still_works(rg: Any) -> None:
    graph = build(rg)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    graph.update_state(config, {"count": 7}, as_node="bump")
    assert graph.get_state(config).values == {"count": 7}


# -- (c) Command(resume=...) with nothing pending -----------------------------------------


def test_langgraph_ignores_resume_with_nothing_pending() -> None:
    graph = build(LANGGRAPH)
    config = {"configurable": {"thread_id": "done"}}
    graph.invoke({"count": 0}, config)
    history = len(list(graph.get_state_history(config)))
    assert graph.invoke(LANGGRAPH.Command(resume="yes"), config) == {"count": 1}
    assert len(list(graph.get_state_history(config))) == history  # the answer is lost
    # on a fresh thread the resume even starts a run, with no input at all
    fresh = {"configurable": {"thread_id": "fresh"}}
    assert graph.invoke(LANGGRAPH.Command(resume="yes"), fresh) == {"count": 1}


@pytest.mark.parametrize("thread", ["finished", "fresh"])
def test_relaygraph_rejects_resume_with_nothing_pending(rg: Any, thread: str) -> None:
    graph = build(rg, ask=True)
    config = {"configurable": {"thread_id": thread}}
    if thread == "finished":
        graph.invoke({"count": 0}, config)
        graph.invoke(rg.Command(resume="yes"), config)
    history = list(graph.get_state_history(config))
    with pytest.raises(relaygraph.InvalidResumeError, match="nothing") as info:
        graph.invoke(rg.Command(resume="again"), config)
    assert isinstance(info.value, RuntimeError)  # as LangGraph's resume errors are
    assert len(list(graph.get_state_history(config))) == len(history)


def test_relaygraph_resume_with_something_pending_still_works(rg: Any) -> None:
    graph = build(rg, ask=True)
    config = {"configurable": {"thread_id": "t"}}
    paused = graph.invoke({"count": 0}, config)
    assert [i.value for i in paused["__interrupt__"]] == ["go on?"]
    assert graph.invoke(rg.Command(resume="yes"), config) == {"count": 1}


UNKNOWN_ID = "0" * 32  # shaped like an interrupt id, naming none


def test_langgraph_ignores_resume_map_with_unknown_interrupt_id() -> None:
    graph = build(LANGGRAPH, ask=True)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    result = graph.invoke(LANGGRAPH.Command(resume={UNKNOWN_ID: "yes"}), config)
    assert [i.value for i in result["__interrupt__"]] == ["go on?"]  # asked again, no error


def test_relaygraph_resume_rejects_unknown_interrupt_id(rg: Any) -> None:
    graph = build(rg, ask=True)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    with pytest.raises(relaygraph.InvalidResumeError, match=UNKNOWN_ID):
        graph.invoke(rg.Command(resume={UNKNOWN_ID: "yes"}), config)
    assert graph.get_state(config).next == ("bump",)  # still waiting


# -- (d) from_conn_string used directly and as a context manager ---------------------------


def test_langgraph_sqlite_from_conn_string_is_only_a_context_manager(tmp_path: Any) -> None:
    # the lesson's line
    saver = langgraph_sqlite.SqliteSaver.from_conn_string(str(tmp_path / "lg.db"))
    graph_builder = LANGGRAPH.StateGraph(State).add_node("bump", lambda s: {"count": 1})
    graph_builder.add_edge(LANGGRAPH.START, "bump")
    with pytest.raises(TypeError):
        graph_builder.compile(checkpointer=saver).invoke({}, {"configurable": {"thread_id": "t"}})


def _sqlite_module() -> Any:
    return relaygraph_sqlite


@pytest.mark.parametrize("where", ["file", ":memory:"])
def test_relaygraph_sqlite_from_conn_string_used_directly(
    rg: Any, tmp_path: Any, where: str
) -> None:
    sqlite = _sqlite_module()
    conn = str(tmp_path / "cp.db") if where == "file" else ":memory:"
    saver = sqlite.SqliteSaver.from_conn_string(conn)  # exactly as the lesson writes it
    graph = build(rg, saver)
    config = {"configurable": {"thread_id": "t"}}
    assert graph.invoke({"count": 0}, config) == {"count": 1}
    assert graph.get_state(config).values == {"count": 1}


def test_relaygraph_sqlite_from_conn_string_as_context_manager(rg: Any, tmp_path: Any) -> None:
    sqlite = _sqlite_module()
    path = str(tmp_path / "cp.db")
    config = {"configurable": {"thread_id": "t"}}
    with sqlite.SqliteSaver.from_conn_string(path) as saver:
        assert build(rg, saver).invoke({"count": 0}, config) == {"count": 1}
    with sqlite.SqliteSaver.from_conn_string(path) as saver:  # the file kept the thread
        assert build(rg, saver).get_state(config).values == {"count": 1}


def test_relaygraph_async_sqlite_from_conn_string(rg: Any, tmp_path: Any) -> None:
    sqlite = _sqlite_module()
    path = str(tmp_path / "cp.db")
    config = {"configurable": {"thread_id": "t"}}

    async def main() -> None:
        async with sqlite.AsyncSqliteSaver.from_conn_string(path) as saver:
            assert await build(rg, saver).ainvoke({"count": 0}, config) == {"count": 1}
        saver = sqlite.AsyncSqliteSaver.from_conn_string(path)  # directly
        assert (await build(rg, saver).aget_state(config)).values == {"count": 1}

    asyncio.run(main())


@pytest.mark.xdist_group("postgres")
def test_relaygraph_postgres_from_conn_string_both_ways(rg: Any, postgres_url: str) -> None:
    postgres = relaygraph_postgres
    schema = f"deviation_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(postgres_url, options=f"-csearch_path={schema}")
    config = {"configurable": {"thread_id": "t"}}
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            saver = postgres.PostgresSaver.from_conn_string(url)
            saver.setup()
            assert build(rg, saver).invoke({"count": 0}, config) == {"count": 1}
            with postgres.PostgresSaver.from_conn_string(url) as saver:
                assert build(rg, saver).get_state(config).values == {"count": 1}
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.xdist_group("postgres")
def test_async_postgres_used_directly_leaves_no_task_on_its_loop(
    rg: Any, postgres_url: str
) -> None:
    """The lesson's ``asyncio.run`` with an AsyncPostgresSaver it never closes: nothing of
    the saver may still run on the loop when the coroutine ends (a psycopg_pool
    AsyncConnectionPool left its tasks there, and cancelling them hung the loop's shutdown
    for good once in a while); the next loop's calls work too."""
    postgres = relaygraph_postgres
    schema = f"deviation_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(postgres_url, options=f"-csearch_path={schema}")
    config = {"configurable": {"thread_id": "t"}}
    saver = postgres.AsyncPostgresSaver.from_conn_string(url)

    async def main(count: int) -> tuple[Any, list[Any]]:
        await saver.setup()
        result = await build(rg, saver).ainvoke({"count": count}, config)
        return result, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            assert asyncio.run(main(0)) == ({"count": 1}, [])
            assert asyncio.run(main(5)) == ({"count": 6}, [])  # a new loop, the same saver
            saver.close()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# --- (e) a message changed in place by a node is never saved ----------------------------


def _edit_in_place_history(lib: Any, writes_messages: bool) -> list[list[str]]:
    """Run a node that edits the first message in place; the contents of every snapshot."""

    def edit(state: Any) -> dict[str, Any]:
        state["messages"][0].content = "EDITED"
        return {"messages": [lib.AIMessage("answer", id="a1")]} if writes_messages else {}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("edit", edit)
    builder.add_edge(lib.START, "edit")
    builder.add_edge("edit", lib.END)
    graph = builder.compile(checkpointer=lib.MemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    graph.invoke({"messages": [lib.HumanMessage("question", id="q1")]}, config)
    return [[m.content for m in s.values.get("messages", [])]
            for s in graph.get_state_history(config)]


def test_langgraph_saves_an_in_place_edit_only_when_the_node_writes_messages() -> None:
    assert _edit_in_place_history(LANGGRAPH, writes_messages=True)[0] == ["EDITED", "answer"]
    assert _edit_in_place_history(LANGGRAPH, writes_messages=False)[0] == ["question"]


def test_relaygraph_never_saves_an_in_place_edit(rg: Any) -> None:
    assert _edit_in_place_history(rg, writes_messages=True) == [
        ["question", "answer"], ["question"], []]
    assert _edit_in_place_history(rg, writes_messages=False) == [["question"], ["question"], []]


# -- (f) a failed task's error keeps its type ------------------------------------------------


class Missing(Exception):
    """A node's own exception class (defined in an imported module)."""


def _failed_task(lib: Any, error: Exception) -> Any:
    def boom(state: State) -> dict[str, Any]:
        raise error

    builder = lib.StateGraph(State).add_node("boom", boom)
    builder.add_edge(lib.START, "boom").add_edge("boom", lib.END)
    graph = builder.compile(checkpointer=lib.MemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(type(error)):
        graph.invoke({"count": 0}, config, **lib.run_kwargs)
    (task,) = graph.get_state(config).tasks
    (old,) = next(iter(graph.get_state_history(config))).tasks
    return task.error, old.error


def test_langgraph_task_error_is_a_string() -> None:
    now, in_history = _failed_task(LANGGRAPH, KeyError("missing"))
    assert now == in_history == "KeyError('missing')"


@pytest.mark.parametrize("error", [KeyError("missing"), Missing("gone"), ConnectionError("x")])
def test_relaygraph_task_error_keeps_its_type(rg: Any, error: Exception) -> None:
    from relaygraph.persistence.serde import StoredError

    for stored in _failed_task(rg, error):
        assert isinstance(stored, type(error)) and isinstance(stored, StoredError)
        assert type(stored).__name__ == type(error).__name__
        assert stored.message == str(error)


def test_relaygraph_task_error_of_an_unloaded_class_stays_a_stored_error() -> None:
    from relaygraph.persistence.serde import StoredError
    from relaygraph.runtime.stored_errors import restore_error

    for name in ("no_such_module.Boom", "builtins_but_not.KeyError", "int", "os.path"):
        restored = restore_error(StoredError(name, "text"))
        assert type(restored) is StoredError and restored.message == "text"
    assert restore_error("a str from another saver") == "a str from another saver"


# -- (g) list_namespaces after the last delete ------------------------------------------------


def _namespaces_after_delete(store: Any) -> list[Any]:
    store.put(("users", "ada"), "k", {"v": 1})
    store.put(("users", "bob"), "k", {"v": 2})
    store.delete(("users", "ada"), "k")
    return sorted(store.list_namespaces())


def test_langgraph_in_memory_store_keeps_an_emptied_namespace() -> None:
    assert _namespaces_after_delete(LANGGRAPH.InMemoryStore()) == [
        ("users", "ada"),
        ("users", "bob"),
    ]


def test_relaygraph_lists_only_namespaces_with_items(rg: Any) -> None:
    assert _namespaces_after_delete(rg.InMemoryStore()) == [("users", "bob")]


# -- (h) unimplemented LangGraph 1.x arguments are refused ---------------------------------------


def test_langgraph_accepts_cache() -> None:
    from langgraph.cache.memory import InMemoryCache
    from langgraph.types import CachePolicy

    builder = LANGGRAPH.StateGraph(State)
    builder.add_node("a", lambda s: {"count": 1}, cache_policy=CachePolicy())
    builder.add_edge(LANGGRAPH.START, "a")
    assert builder.compile(cache=InMemoryCache()).invoke({"count": 0}) == {"count": 1}


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("cache_policy", object()),
        ("error_handler", lambda s: s),
        ("timeout", 5.0),
        ("trace_policy", object()),
    ],
)
def test_relaygraph_refuses_unimplemented_add_node_arguments(
    rg: Any, argument: str, value: Any
) -> None:
    builder = rg.StateGraph(State)
    with pytest.raises(NotImplementedError, match=argument):
        builder.add_node("a", lambda s: s, **{argument: value})
    assert "a" not in builder.nodes  # nothing half-added


def test_relaygraph_refuses_compile_cache_and_unknown_arguments(rg: Any) -> None:
    builder = rg.StateGraph(State).add_node("a", lambda s: s).add_edge(rg.START, "a")
    with pytest.raises(NotImplementedError, match="cache"):
        builder.compile(cache=object())
    with pytest.raises(NotImplementedError, match="debug"):
        builder.compile(debug=True)
    builder.compile(debug=False)
    with pytest.raises(TypeError, match="no_such_option"):
        builder.add_node("b", lambda s: s, no_such_option=1)
    with pytest.raises(NotImplementedError, match="retry_policy"):
        builder.add_node("b", lambda s: s, retry_policy=[rg.RetryPolicy(), rg.RetryPolicy()])
    # what stays accepted: defer=False, None for the refused ones, destinations, one policy
    builder.add_node(
        "c",
        lambda s: s,
        defer=False,
        cache_policy=None,
        timeout=None,
        destinations=("a",),
        retry_policy=[rg.RetryPolicy(max_attempts=2)],
    )
    assert builder.nodes["c"].destinations == {"a": "a"}  # a tuple names targets, no labels
    assert builder.nodes["c"].retry_policy.max_attempts == 2


def test_langgraph_run_arguments_it_ignores_or_honours(capsys: pytest.CaptureFixture) -> None:
    graph = build(LANGGRAPH, ask=False)
    config = {"configurable": {"thread_id": "kw"}}
    assert graph.invoke({"count": 0}, config, output_keys="count") == 1
    assert graph.invoke({"count": 0}, config, stream_mode="updates") == [{"bump": {"count": 1}}]
    assert graph.invoke({"count": 0}, config, no_such_option=1) == {"count": 1}  # ignored
    capsys.readouterr()
    graph.invoke({"count": 0}, config, debug=True)
    assert "bump" in capsys.readouterr().out  # console printing


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("output_keys", "count", NotImplementedError),
        ("output_keys", ["count"], NotImplementedError),
        ("stream_mode", "updates", NotImplementedError),
        ("durability", "exit", NotImplementedError),
        ("checkpoint_during", False, NotImplementedError),
        ("debug", True, NotImplementedError),
        ("print_mode", "values", NotImplementedError),
        ("no_such_option", 1, TypeError),
    ],
)
@pytest.mark.parametrize("method", ["invoke", "stream", "ainvoke", "astream", "batch"])
def test_relaygraph_refuses_run_arguments_it_does_not_implement(
    rg: Any, method: str, argument: str, value: Any, error: type
) -> None:
    saver = rg.MemorySaver()
    graph = build(rg, saver)
    config = {"configurable": {"thread_id": "kw"}}
    kwargs = {argument: value}
    if method in ("stream", "astream") and argument == "stream_mode":  # theirs to take
        kwargs = {"no_such_option": 1}
        error = TypeError
    calls = {
        "invoke": lambda: graph.invoke({"count": 0}, config, **kwargs),
        "stream": lambda: list(graph.stream({"count": 0}, config, **kwargs)),
        "ainvoke": lambda: asyncio.run(graph.ainvoke({"count": 0}, config, **kwargs)),
        "astream": lambda: _astream_with(graph, config, kwargs),
        "batch": lambda: graph.batch([{"count": 0}], config, **kwargs),
    }
    with pytest.raises(error, match=next(iter(kwargs))):
        calls[method]()
    assert saver.get_tuple(config) is None  # nothing ran


def _astream_with(graph: Any, config: Any, kwargs: dict[str, Any]) -> list[Any]:
    async def collect() -> list[Any]:
        return [chunk async for chunk in graph.astream({"count": 0}, config, **kwargs)]

    return asyncio.run(collect())


def test_relaygraph_accepts_run_arguments_that_behave_as_langgraph(rg: Any) -> None:
    graph = build(rg)
    config = {"configurable": {"thread_id": "kw"}}
    for kwargs in (
        {"durability": "sync"},
        {"durability": "async"},
        {"checkpoint_during": True},
        {"debug": False},
        {"print_mode": ()},
        {"output_keys": None},
        {"stream_mode": "values"},
    ):
        assert graph.invoke({"count": 0}, config, **kwargs) == {"count": 1}, kwargs


# -- (i) a checkpoint_id the thread does not have --------------------------------------

MISSING_ID = "1ef00000-0000-6000-8000-000000000000"


def test_langgraph_starts_a_new_lineage_at_an_unknown_checkpoint_id() -> None:
    graph = build(LANGGRAPH)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    at_missing = {"configurable": {"thread_id": "t", "checkpoint_id": MISSING_ID}}
    graph.update_state(at_missing, {"count": 41})
    # the update was written as a new root, detached from the thread's history
    assert graph.get_state(config).values == {"count": 41}


@pytest.mark.parametrize("call", ["invoke", "stream", "update_state", "bulk_update_state"])
def test_relaygraph_refuses_an_unknown_checkpoint_id(rg: Any, call: str) -> None:
    graph = build(rg)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0}, config)
    history = list(graph.get_state_history(config))
    at_missing = {"configurable": {"thread_id": "t", "checkpoint_id": MISSING_ID}}
    with pytest.raises(relaygraph.CheckpointNotFoundError, match=MISSING_ID) as info:
        ENTRY_POINTS[call](rg, graph, at_missing)
    assert isinstance(info.value, LookupError) and "'t'" in str(info.value)
    assert len(list(graph.get_state_history(config))) == len(history)
    # a known checkpoint id still forks from it
    oldest = history[-1].config
    graph.update_state(oldest, {"count": 7}, as_node="bump")
    assert graph.get_state(config).values == {"count": 7}


# -- (j) Overwrite on a messages key -------------------------------------------------------


def _overwrite_messages(lib: Any) -> list[Any]:
    def reset(state: Any) -> dict[str, Any]:
        return {"messages": lib.Overwrite([{"role": "user", "content": "start over"}])}

    builder = lib.StateGraph(lib.MessagesState).add_node("reset", reset)
    graph = builder.add_edge(lib.START, "reset").compile(checkpointer=lib.MemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [lib.HumanMessage("hi", id="h1")]}, config)
    return graph.get_state(config).values["messages"]


def test_langgraph_overwrite_stores_messages_as_given() -> None:
    assert _overwrite_messages(LANGGRAPH) == [{"role": "user", "content": "start over"}]


def test_relaygraph_overwrite_stores_whole_messages(rg: Any) -> None:
    (message,) = _overwrite_messages(rg)
    assert isinstance(message, rg.HumanMessage) and message.content == "start over"
    assert message.id  # given one, as add_messages gives every message
