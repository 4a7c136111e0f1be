"""Bad input is not a dead worker: refused at submit, or the run's error at once.

In-process engines on a private Redis (tests/workers/test_protocol_scripts.py's ``Inline``);
test_cli.py checks the same through the real command and worker processes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest

from relaygraph import START, StateGraph
from relaygraph.examples.assistant import graph as assistant
from relaygraph.persistence.base import make_config
from relaygraph.persistence.redis_server import EmbeddedRedis
from relaygraph.workers.client import Client, InvalidInputError, check_input
from relaygraph.workers.keys import ThreadKeys
from relaygraph.workers.recovery import Sweeper

from .test_protocol_scripts import Inline


class Trail(TypedDict):
    n: int
    trail: Annotated[list, operator.add]


def _node(update: dict[str, Any]) -> Any:
    return lambda state: update


def _one_bad_node() -> Any:
    builder = StateGraph(Trail).add_node("a", _node({"trail": 5}))
    return builder.add_edge(START, "a").compile()


def _a_bad_pair() -> Any:
    builder = StateGraph(Trail).add_node("good", _node({"trail": ["g"]}))
    builder.add_node("bad", _node({"trail": 5}))
    return builder.add_edge(START, "good").add_edge(START, "bad").compile()


GRAPHS = {"one": _one_bad_node(), "pair": _a_bad_pair(), "assistant": assistant}


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(modules=False) as embedded:
        yield embedded


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"messages": 5}, "cannot convert int to a message: 5"),
        ({"messages": [["robot", "hi"]]}, "unknown message role 'robot'"),
        ({"messages": [{"role": "user"}]}, ""),  # a dict message without content
        ([["user", "hi"]], "Expected a dict from 'input', got list"),
        ({"nothing": 1}, "Expected 'input' to update at least one of ['messages']"),
    ],
)
def test_submit_refuses_input_the_graph_cannot_take_before_storing_anything(
    server: EmbeddedRedis, value: Any, reason: str
) -> None:
    with Client(server.url, graphs=GRAPHS) as client:
        with pytest.raises(InvalidInputError, match=r"^input of graph 'assistant': ") as raised:
            client.submit("assistant", value, thread_id="t")
        assert reason in str(raised.value)
        assert not list(client.redis.scan_iter(match=f"{ThreadKeys('t').base}*"))
        assert client.redis.dbsize() == 0  # no run record, no start task queued


def test_good_input_and_commands_pass_the_check() -> None:
    from relaygraph import Command

    check_input("assistant", assistant, {"messages": [["user", "hi"]]})
    check_input("assistant", assistant, {"messages": [{"role": "ai", "content": "hello"}]})
    check_input("assistant", assistant, {})
    check_input("assistant", assistant, None)  # continue the thread
    check_input("assistant", assistant, Command(resume="yes"))  # checked at the start


@pytest.mark.parametrize("outbox", [False, True], ids=["publish", "outbox"])
@pytest.mark.parametrize(
    ("graph", "reason"),
    [
        ("one", "node 'a': TypeError: can only concatenate list (not \"int\") to list"),
        ("pair", "nodes 'bad', 'good': TypeError: can only concatenate list (not \"int\") to"),
    ],
)
def test_a_write_the_state_cannot_take_is_the_runs_error_at_once(
    server: EmbeddedRedis, graph: str, reason: str, outbox: bool
) -> None:
    inline = Inline(server.url, GRAPHS, outbox=outbox)
    run = inline.client.submit(graph, {"n": 0, "trail": []}, thread_id="t")
    inline.engine.start_run("t", run.id)
    inline.engine.run_node(inline.queue.popleft())  # __start__: the step the nodes run on
    head = inline.saver.get_tuple(make_config("t", "", ""))
    inline.drain()  # each task runs once: no exception escapes run_node
    assert inline.status(run) == "error"
    assert run.error is not None and run.error.startswith(reason), run.error
    # nothing left for the sweeper to take for a dead worker's task
    report = Sweeper(inline.engine).sweep()
    assert (report.requeued, report.barriers, report.rescheduled) == ([], [], [])
    # nothing stored is lost or half-applied: the head is the step the nodes ran on
    after = inline.saver.get_tuple(make_config("t", "", ""))
    assert after.config == head.config and after.checkpoint["id"] == head.checkpoint["id"]
