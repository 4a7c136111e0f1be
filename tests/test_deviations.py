"""relaygraph's deliberate deviations from LangGraph (docs/deviations.md), each shown on both.

Every test pairs LangGraph's behaviour (observed on langgraph 1.2) with relaygraph's:
(a) a missing thread_id, or thread_id=None, is one error type everywhere;
(b) update_state with a key the state schema lacks is an error, not a silent drop;
(c) Command(resume=...) with nothing pending (or naming an unknown interrupt id) is an error,
    not a silent no-op (or a new run);
(d) SqliteSaver / PostgresSaver.from_conn_string(...) work directly (as the lesson writes
    them) and as context managers.
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
