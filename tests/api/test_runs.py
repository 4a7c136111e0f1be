"""Runs through the official client: wait, background + join, streams, interrupts, cancel,
multitask strategies, stateless runs and every error status."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError


def _text(result: dict[str, Any]) -> str:
    return result["messages"][-1]["content"]


def test_lesson_facts_across_threads(sync_client: Any) -> None:
    """The lesson's exercise: what a user said in one thread is known in another."""
    user = f"ann-{uuid.uuid4().hex[:6]}"
    config = {"configurable": {"user_id": user}}
    first = sync_client.threads.create()["thread_id"]
    said = {"messages": [{"role": "user", "content": "remember I like tea"}]}
    assert _text(sync_client.runs.wait(first, "facts", input=said, config=config)) == (
        "I know: I like tea"
    )
    second = sync_client.threads.create()["thread_id"]
    asked = {"messages": [{"role": "user", "content": "what do you know?"}]}
    assert _text(sync_client.runs.wait(second, "facts", input=asked, config=config)) == (
        "I know: I like tea"
    )
    other = {"configurable": {"user_id": f"bob-{uuid.uuid4().hex[:6]}"}}
    assert _text(sync_client.runs.wait(second, "facts", input=asked, config=other)) == "I know: "
    # the conversation itself stays in its own thread
    messages = sync_client.threads.get_state(second)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]


def test_background_run_join_get_list(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    run = sync_client.runs.create(thread_id, "slow", input={"items": []}, metadata={"n": 1})
    assert run["status"] in ("pending", "running") and run["metadata"] == {"n": 1}
    assert run["thread_id"] == thread_id
    assert sync_client.threads.get(thread_id)["status"] == "busy"
    assert sync_client.runs.join(thread_id, run["run_id"]) == {"items": ["first", "slow", "last"]}
    done = sync_client.runs.get(thread_id, run["run_id"])
    assert done["status"] == "success"
    assert sync_client.threads.get(thread_id)["status"] == "idle"
    second = sync_client.runs.create(thread_id, "steps", input={"items": []})
    sync_client.runs.join(thread_id, second["run_id"])
    listed = sync_client.runs.list(thread_id)
    assert [r["run_id"] for r in listed] == [second["run_id"], run["run_id"]]
    assert [r["run_id"] for r in sync_client.runs.list(thread_id, limit=1, offset=1)] == [
        run["run_id"]
    ]
    sync_client.runs.delete(thread_id, run["run_id"])
    with pytest.raises(NotFoundError):
        sync_client.runs.get(thread_id, run["run_id"])


def test_stream_modes(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    parts = list(
        sync_client.runs.stream(
            thread_id,
            "steps",
            input={"items": ["in"]},
            stream_mode=["values", "updates", "custom", "debug"],
        )
    )
    events = [p.event for p in parts]
    assert events[0] == "metadata" and parts[0].data["run_id"]
    assert events[-1] == "end"
    values = [p.data["items"] for p in parts if p.event == "values"]
    assert values == [["in"], ["in", "a"], ["in", "a", "b"], ["in", "a", "b", "c"]]
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates == [{"a": {"items": ["a"]}}, {"b": {"items": ["b"]}}, {"c": {"items": ["c"]}}]
    assert [p.data for p in parts if p.event == "custom"] == [
        {"node": "a"},
        {"node": "b"},
        {"node": "c"},
    ]
    assert any(p.event == "debug" for p in parts)
    ids = [p.id for p in parts if p.event not in ("metadata",)]
    assert all(ids) and ids[:-1] == sorted(ids[:-1], key=lambda i: tuple(map(int, i.split("-"))))
    # one mode only: nothing else comes through
    only = list(
        sync_client.runs.stream(thread_id, "steps", input={"items": []}, stream_mode="updates")
    )
    assert [p.event for p in only] == ["metadata", "updates", "updates", "updates", "end"]


def test_tasks_and_checkpoints_modes(sync_client: Any) -> None:
    """What LangGraph Studio reads: each task as it starts and finishes, each checkpoint
    as it is written, recorded by the workers and sent under the modes' names."""
    thread_id = sync_client.threads.create()["thread_id"]
    parts = list(
        sync_client.runs.stream(
            thread_id, "steps", input={"items": ["in"]}, stream_mode=["tasks", "checkpoints"]
        )
    )
    assert {p.event for p in parts} == {"metadata", "tasks", "checkpoints", "end"}
    tasks = [p.data for p in parts if p.event == "tasks"]
    started = [t["name"] for t in tasks if "input" in t]
    finished = [(t["name"], t["error"], t["result"]) for t in tasks if "result" in t]
    assert started == ["a", "b", "c"]
    assert finished == [(n, None, {"items": [n]}) for n in ("a", "b", "c")]
    checkpoints = [p.data for p in parts if p.event == "checkpoints"]
    assert [c["values"]["items"] for c in checkpoints] == [
        [],
        ["in"],
        ["in", "a"],
        ["in", "a", "b"],
        ["in", "a", "b", "c"],
    ]
    assert [c["next"] for c in checkpoints] == [["__start__"], ["a"], ["b"], ["c"], []]
    assert [c["metadata"]["source"] for c in checkpoints] == ["input", *["loop"] * 4]
    history = sync_client.threads.get_history(thread_id)  # newest first
    assert [c["config"]["configurable"]["checkpoint_id"] for c in checkpoints] == [
        h["checkpoint"]["checkpoint_id"] for h in reversed(history)
    ]


def test_stream_subgraphs(sync_client: Any) -> None:
    """stream_subgraphs: the subgraph's own chunks under ``mode|child:<task id>``, between
    the parent's, as LangGraph's server names them; without it, the parent's only."""
    thread_id = sync_client.threads.create()["thread_id"]
    parts = list(
        sync_client.runs.stream(
            thread_id, "nested", input={"items": []}, stream_mode="updates", stream_subgraphs=True
        )
    )
    updates = [(p.event.partition(":")[0], p.data) for p in parts if p.event.startswith("updates")]
    assert updates == [
        ("updates", {"before": {"items": ["before"]}}),
        ("updates|child", {"inner": {"items": ["inner"]}}),
        ("updates|child", {"deeper": {"items": ["deeper"]}}),
        ("updates", {"child": {"items": ["before", "inner", "deeper"]}}),
        ("updates", {"after": {"items": ["after"]}}),
    ]
    plain = list(
        sync_client.runs.stream(thread_id, "nested", input={"items": []}, stream_mode="updates")
    )
    assert [p.event for p in plain] == ["metadata", *["updates"] * 3, "end"]


def test_a_subgraphs_model_tokens_stream_with_its_namespace(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    hello = {"messages": [{"role": "user", "content": "hi"}]}
    parts = list(
        sync_client.runs.stream(
            thread_id,
            "nested_model",
            input=hello,
            stream_mode="messages-tuple",
            stream_subgraphs=True,
        )
    )
    tokens = [p for p in parts if p.event.startswith("messages|child:")]
    assert "".join(chunk["content"] for chunk, _ in (p.data for p in tokens)) == (
        "deep inner thought"
    )
    assert {meta["langgraph_node"] for _, meta in (p.data for p in tokens)} == {"think"}


AGENT_ANSWER = "Tell me something to remember, or ask what I remember about a topic."


def test_an_agents_tokens_stream_through_the_sdk(sync_client: Any) -> None:
    """messages-tuple: the agent's model tokens, as the worker produces them; messages:
    the SDK's partial/complete form of the same."""
    thread_id = sync_client.threads.create()["thread_id"]
    hello = {"messages": [{"role": "user", "content": "hello"}]}
    parts = list(
        sync_client.runs.stream(thread_id, "agent", input=hello, stream_mode="messages-tuple")
    )
    tokens = [p.data for p in parts if p.event == "messages"]
    chunks = [(m, meta) for m, meta in tokens if m["type"] == "AIMessageChunk"]
    assert len(chunks) > 5, "the answer came word by word"
    assert "".join(m["content"] for m, _ in chunks) == AGENT_ANSWER
    assert {meta["langgraph_node"] for _, meta in chunks} == {"agent"}
    assert all(meta["thread_id"] == thread_id for _, meta in chunks)
    partial = list(
        sync_client.runs.stream(thread_id, "agent", input=hello, stream_mode="messages")
    )
    events = [p.event for p in partial]
    assert "messages/metadata" in events and "messages/partial" in events
    last = [p.data for p in partial if p.event == "messages/partial"][-1]
    assert last[0]["content"] == AGENT_ANSWER


def test_join_stream_and_last_event_id(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    run = sync_client.runs.create(
        thread_id, "steps", input={"items": []}, stream_mode=["values", "custom"]
    )
    parts = list(sync_client.runs.join_stream(thread_id, run["run_id"]))
    assert [p.event for p in parts][-1] == "end"
    assert [p.data for p in parts if p.event == "custom"] == [
        {"node": "a"},
        {"node": "b"},
        {"node": "c"},
    ]
    # resuming after the second event gives exactly what followed it
    with_ids = [p for p in parts if p.id]
    later = list(
        sync_client.runs.join_stream(thread_id, run["run_id"], last_event_id=with_ids[1].id)
    )
    assert [(p.event, p.data) for p in later] == [(p.event, p.data) for p in with_ids[2:]]
    only_custom = list(sync_client.runs.join_stream(thread_id, run["run_id"], stream_mode="custom"))
    assert {p.event for p in only_custom} == {"metadata", "custom", "end"}


def test_interrupt_and_resume(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    parts = list(sync_client.runs.stream(thread_id, "ask", input={"items": []}))
    interrupts = [
        p.data["__interrupt__"] for p in parts if p.event == "values" and "__interrupt__" in p.data
    ]
    assert interrupts and interrupts[0][0]["value"] == "your name?"
    thread = sync_client.threads.get(thread_id)
    assert thread["status"] == "interrupted" and thread["interrupts"]
    assert sync_client.threads.get_state(thread_id)["next"] == ["ask"]
    result = sync_client.runs.wait(thread_id, "ask", command={"resume": "Ann"})
    assert result == {"items": ["hello Ann"]}
    assert sync_client.threads.get(thread_id)["status"] == "idle"


def test_interrupt_before_and_after(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    stopped = sync_client.runs.wait(thread_id, "steps", input={"items": []}, interrupt_before=["b"])
    assert stopped == {"items": ["a"]}
    assert sync_client.threads.get_state(thread_id)["next"] == ["b"]
    assert sync_client.runs.wait(thread_id, "steps", input=None, interrupt_after=["b"]) == {
        "items": ["a", "b"]
    }
    assert sync_client.runs.wait(thread_id, "steps", input=None) == {"items": ["a", "b", "c"]}
    with pytest.raises(httpx.HTTPStatusError, match="interrupt_before") as caught:
        sync_client.runs.wait(thread_id, "steps", input=None, interrupt_before=["nope"])
    assert caught.value.response.status_code == 422


def test_cancel_interrupt_and_rollback(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    run = sync_client.runs.create(thread_id, "slow", input={"items": []})
    _wait_for(lambda: sync_client.runs.get(thread_id, run["run_id"])["status"] == "running")
    sync_client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert sync_client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    assert sync_client.threads.get(thread_id)["status"] == "idle"
    with pytest.raises(ConflictError):  # over already
        sync_client.runs.cancel(thread_id, run["run_id"])
    # the thread takes new runs; rollback drops the run and what it wrote
    run = sync_client.runs.create(thread_id, "slow", input={"items": ["x"]})
    _wait_for(lambda: "x" in sync_client.threads.get_state(thread_id)["values"]["items"])
    sync_client.runs.cancel(thread_id, run["run_id"], action="rollback")
    with pytest.raises(NotFoundError):
        sync_client.runs.get(thread_id, run["run_id"])
    assert "x" not in sync_client.threads.get_state(thread_id)["values"].get("items", [])


def test_multitask_strategies(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    first = sync_client.runs.create(thread_id, "slow", input={"items": ["one"]})
    # reject: 409, and nothing stored
    with pytest.raises(ConflictError, match="active run"):
        sync_client.runs.create(
            thread_id, "slow", input={"items": ["two"]}, multitask_strategy="reject"
        )
    assert [r["run_id"] for r in sync_client.runs.list(thread_id)] == [first["run_id"]]
    # enqueue: runs after the first
    queued = sync_client.runs.create(
        thread_id, "steps", input={"items": ["q"]}, multitask_strategy="enqueue"
    )
    assert sync_client.runs.join(thread_id, queued["run_id"])["items"] == [
        "one", "first", "slow", "last", "q", "a", "b", "c"
    ]  # fmt: skip
    assert sync_client.runs.get(thread_id, first["run_id"])["status"] == "success"
    # interrupt: the active run stops, its checkpoints stay, the new one runs
    active = sync_client.runs.create(thread_id, "slow", input={"items": ["i1"]})
    # "running" is set when the run's first task starts, before its input is committed: wait
    # for the input checkpoint so there is something of the interrupted run to keep
    _wait_for(
        lambda: "i1" in sync_client.threads.get_state(thread_id)["values"].get("items", [])
    )
    newer = sync_client.runs.create(
        thread_id, "steps", input={"items": ["i2"]}, multitask_strategy="interrupt"
    )
    sync_client.runs.join(thread_id, newer["run_id"])
    assert sync_client.runs.get(thread_id, active["run_id"])["status"] == "interrupted"
    items = sync_client.threads.get_state(thread_id)["values"]["items"]
    assert "i1" in items and items[-4:] == ["i2", "a", "b", "c"]
    # rollback: the active run and what it wrote are gone
    doomed = sync_client.runs.create(thread_id, "slow", input={"items": ["r1"]})
    _wait_for(lambda: sync_client.runs.get(thread_id, doomed["run_id"])["status"] == "running")
    winner = sync_client.runs.create(
        thread_id, "steps", input={"items": ["r2"]}, multitask_strategy="rollback"
    )
    sync_client.runs.join(thread_id, winner["run_id"])
    with pytest.raises(NotFoundError):
        sync_client.runs.get(thread_id, doomed["run_id"])
    items = sync_client.threads.get_state(thread_id)["values"]["items"]
    assert "r1" not in items and items[-4:] == ["r2", "a", "b", "c"]


def test_stateless_runs(sync_client: Any) -> None:
    said = {"messages": [{"role": "user", "content": "hi"}]}
    created: list[Any] = []
    result = sync_client.runs.wait(None, "echo", input=said, on_run_created=created.append)
    assert _text(result) == "echo: hi"
    with pytest.raises(NotFoundError):  # its thread is gone with the run
        sync_client.threads.get(created[0]["thread_id"])
    parts = list(sync_client.runs.stream(None, "echo", input=said, stream_mode="values"))
    assert parts[-1].event == "end"
    assert parts[-2].data["messages"][-1]["content"] == "echo: hi"
    kept = sync_client.runs.wait(
        None, "echo", input=said, on_completion="keep", on_run_created=created.append
    )
    assert sync_client.threads.get(created[1]["thread_id"])["values"] == kept


def test_background_stateless_run_deletes_its_thread_after_the_run(sync_client: Any) -> None:
    run = sync_client.runs.create(None, "slow", input={"items": []})
    thread_id = run["thread_id"]
    assert sync_client.threads.get(thread_id)["status"] == "busy"  # there while it runs
    time.sleep(1.2)  # housekeeping every 0.5 s leaves a running one alone
    sync_client.runs.join(thread_id, run["run_id"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            sync_client.threads.get(thread_id)
        except NotFoundError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the stateless run's thread outlived its run by 15 s")
    said = {"messages": [{"role": "user", "content": "hi"}]}
    kept = sync_client.runs.create(None, "echo", input=said, on_completion="keep")
    sync_client.runs.join(kept["thread_id"], kept["run_id"])
    time.sleep(1.5)
    assert sync_client.threads.get(kept["thread_id"])["status"] == "idle"


def test_failed_run(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    with pytest.raises(Exception, match="boom"):
        sync_client.runs.wait(thread_id, "fail", input={"items": []})
    assert sync_client.threads.get(thread_id)["status"] == "error"
    parts = list(sync_client.runs.stream(thread_id, "fail", input={"items": []}))
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and "boom" in errors[0]["message"]


def test_error_statuses(sync_client: Any, api_url: str) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    with pytest.raises(NotFoundError, match="assistant"):
        sync_client.runs.create(thread_id, "nope", input={})
    with pytest.raises(NotFoundError, match="thread"):
        sync_client.runs.create(str(uuid.uuid4()), "echo", input={})
    with pytest.raises(NotFoundError, match="run"):
        sync_client.runs.get(thread_id, str(uuid.uuid4()))
    with pytest.raises(httpx.HTTPStatusError, match="404") as caught:  # join: a plain error
        sync_client.runs.join(thread_id, str(uuid.uuid4()))
    assert "not found" in caught.value.response.text
    with pytest.raises(UnprocessableEntityError, match="input and command"):
        sync_client.runs.create(thread_id, "echo", input={}, command={"resume": 1})
    # a malformed body: 422 naming the field, and no run stored
    bad = httpx.post(
        f"{api_url}/threads/{thread_id}/runs",
        json={"assistant_id": "echo", "stream_mode": ["values", "bogus"]},
    )
    assert bad.status_code == 422 and "stream_mode[1]" in bad.json()["detail"]
    missing = httpx.post(f"{api_url}/threads/{thread_id}/runs", json={"input": {}})
    assert missing.status_code == 422 and "assistant_id" in missing.json()["detail"]
    not_json = httpx.post(
        f"{api_url}/threads/{thread_id}/runs",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body"
    with pytest.raises(UnprocessableEntityError, match=r"config\.configurable"):
        sync_client.runs.create(thread_id, "echo", input={}, config={"configurable": ["x"]})
    with pytest.raises(UnprocessableEntityError, match="webhook"):
        sync_client.runs.create(thread_id, "echo", input={}, webhook="http://example.test/hook")
    assert sync_client.runs.list(thread_id) == []
    # if_not_exists=create makes the thread
    new_id = str(uuid.uuid4())
    sync_client.runs.wait(new_id, "steps", input={"items": []}, if_not_exists="create")
    assert sync_client.threads.get(new_id)["values"] == {"items": ["a", "b", "c"]}


def _wait_for(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_run_from_an_older_checkpoint(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    sync_client.runs.wait(thread_id, "steps", input={"items": ["in"]})
    history = sync_client.threads.get_history(thread_id)
    after_a = next(h for h in history if h["next"] == ["b"])
    replayed = sync_client.runs.wait(
        thread_id, "steps", input=None, checkpoint_id=after_a["checkpoint"]["checkpoint_id"]
    )
    assert replayed == {"items": ["in", "a", "b", "c"]}  # b and c ran again from there
    newer = sync_client.threads.get_history(thread_id, limit=100)
    assert len(newer) == len(history) + 3  # the fork and two steps; the old branch stays
    with pytest.raises(httpx.HTTPStatusError, match="404") as caught:
        sync_client.runs.wait(thread_id, "steps", input=None, checkpoint_id=str(uuid.uuid4()))
    assert "checkpoint" in caught.value.response.text
    assert len(sync_client.threads.get_history(thread_id, limit=100)) == len(newer)


async def test_async_client_runs(client: Any) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    parts = [
        part
        async for part in client.runs.stream(
            thread_id, "steps", input={"items": []}, stream_mode=["updates", "custom"]
        )
    ]
    assert [p.event for p in parts if p.event != "custom"] == [
        "metadata", "updates", "updates", "updates", "end"
    ]  # fmt: skip
    run = await client.runs.create(thread_id, "ask", input={"items": []})
    assert (await client.runs.join(thread_id, run["run_id"]))["__interrupt__"][0]["value"] == (
        "your name?"
    )
    resumed = await client.runs.wait(thread_id, "ask", command={"resume": "Bo"})
    assert resumed["items"][-1] == "hello Bo"
    await client.runs.create(thread_id, "slow", input={"items": []})
    with pytest.raises(ConflictError):
        await client.runs.create(thread_id, "slow", input=None, multitask_strategy="reject")


def test_delete_active_run_refused_and_cancel_on_disconnect(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    stream = sync_client.runs.stream(thread_id, "slow", input={"items": []}, on_disconnect="cancel")
    run_id = next(stream).data["run_id"]  # metadata
    with pytest.raises(ConflictError, match="cancel it first"):
        sync_client.runs.delete(thread_id, run_id)
    stream.close()  # the client goes away mid-run: the run is cancelled
    _wait_for(lambda: sync_client.runs.get(thread_id, run_id)["status"] == "interrupted")
    assert sync_client.threads.get(thread_id)["status"] == "idle"
    sync_client.runs.delete(thread_id, run_id)
    assert sync_client.runs.list(thread_id) == []


def test_run_metadata_and_config_reach_the_graph(sync_client: Any) -> None:
    """A run's ``metadata`` is in its config's metadata (so in its checkpoints' metadata,
    as LangGraph's server puts it), its ``configurable`` keys too; history filters on it."""
    thread_id = sync_client.threads.create()["thread_id"]
    tag = uuid.uuid4().hex
    sync_client.runs.wait(
        thread_id,
        "steps",
        input={"items": []},
        metadata={"tag": tag},
        config={"configurable": {"user_id": "ann"}},
    )
    sync_client.runs.wait(thread_id, "steps", input={"items": []})  # untagged
    newest = sync_client.threads.get_history(thread_id, limit=100)
    tagged = sync_client.threads.get_history(thread_id, limit=100, metadata={"tag": tag})
    assert 0 < len(tagged) < len(newest)
    assert all(h["metadata"]["tag"] == tag and h["metadata"]["user_id"] == "ann" for h in tagged)
    assert "tag" not in newest[0]["metadata"]


def test_an_input_the_graph_cannot_take_is_a_422_and_stores_nothing(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    bad = {"messages": 5}  # add_messages cannot take it
    created: list[Any] = []
    for call in (
        lambda: sync_client.runs.create(thread_id, "echo", input=bad),
        lambda: sync_client.runs.wait(thread_id, "echo", input=bad),
        lambda: list(sync_client.runs.stream(thread_id, "echo", input=bad)),
        lambda: sync_client.runs.wait(None, "echo", input=bad, on_run_created=created.append),
    ):
        with pytest.raises(httpx.HTTPStatusError, match="input of graph 'echo'") as caught:
            call()
        assert caught.value.response.status_code == 422
    assert created == []
    assert sync_client.runs.list(thread_id) == []
    assert sync_client.threads.get(thread_id)["status"] == "idle"
