"""System routes, assistants and threads through the official sync and async clients."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError


def test_ok_and_info(api_url: str) -> None:
    assert httpx.get(f"{api_url}/ok").json() == {"ok": True}
    info = httpx.get(f"{api_url}/info").json()
    assert "echo" in info["graphs"] and info["flags"]["assistants"] is True


def test_assistants(sync_client: Any) -> None:
    found = sync_client.assistants.search(limit=100)
    by_graph = {a["graph_id"]: a for a in found}
    assert {"echo", "facts", "steps", "ask", "slow", "fail"} <= set(by_graph)
    echo = by_graph["echo"]
    # stable: the same id from any lookup (by id or by graph name), on any replica
    assert sync_client.assistants.get(echo["assistant_id"]) == echo
    assert sync_client.assistants.get("echo")["assistant_id"] == echo["assistant_id"]
    assert sync_client.assistants.search(graph_id="steps")[0]["graph_id"] == "steps"
    drawing = sync_client.assistants.get_graph("steps")
    assert {n["id"] for n in drawing["nodes"]} >= {"a", "b", "c"}
    assert {"source": "a", "target": "b", "conditional": False} in drawing["edges"]
    schemas = sync_client.assistants.get_schemas(echo["assistant_id"])
    assert schemas["graph_id"] == "echo" and "messages" in schemas["state_schema"]["properties"]
    with pytest.raises(NotFoundError):
        sync_client.assistants.get(str(uuid.uuid4()))


def test_thread_lifecycle(sync_client: Any) -> None:
    tag = uuid.uuid4().hex
    thread = sync_client.threads.create(metadata={"tag": tag, "user": "ann"})
    assert thread["status"] == "idle" and thread["metadata"]["tag"] == tag
    thread_id = thread["thread_id"]
    assert sync_client.threads.get(thread_id)["metadata"] == {"tag": tag, "user": "ann"}
    # if_exists: raise -> 409, do_nothing -> the existing thread, metadata untouched
    with pytest.raises(ConflictError):
        sync_client.threads.create(thread_id=thread_id, metadata={"tag": "other"})
    same = sync_client.threads.create(thread_id=thread_id, if_exists="do_nothing")
    assert same["metadata"]["tag"] == tag
    updated = sync_client.threads.update(thread_id, metadata={"user": "bob"})
    assert updated["metadata"] == {"tag": tag, "user": "bob"}
    other = sync_client.threads.create(metadata={"tag": tag, "user": "cy"})
    found = sync_client.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found] == [other["thread_id"], thread_id]  # newest first
    assert (
        sync_client.threads.search(metadata={"tag": tag, "user": "bob"}, limit=5)[0]["thread_id"]
        == thread_id
    )
    assert len(sync_client.threads.search(metadata={"tag": tag}, limit=1, offset=1)) == 1
    assert sync_client.threads.search(metadata={"tag": tag}, status="busy") == []
    sync_client.threads.delete(thread_id)
    with pytest.raises(NotFoundError):
        sync_client.threads.get(thread_id)
    with pytest.raises(NotFoundError):
        sync_client.threads.delete(thread_id)
    assert [t["thread_id"] for t in sync_client.threads.search(metadata={"tag": tag})] == [
        other["thread_id"]
    ]


def test_state_history_update_and_copy(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    thread_id = thread["thread_id"]
    result = sync_client.runs.wait(thread_id, "steps", input={"items": ["in"]})
    assert result == {"items": ["in", "a", "b", "c"]}
    state = sync_client.threads.get_state(thread_id)
    assert state["values"] == result and state["next"] == []
    assert state["checkpoint"]["thread_id"] == thread_id
    history = sync_client.threads.get_history(thread_id, limit=10)
    assert [h["values"]["items"][-1] for h in history[:4]] == ["c", "b", "a", "in"]
    older = history[2]["checkpoint"]["checkpoint_id"]
    at = sync_client.threads.get_state(thread_id, checkpoint_id=older)
    assert at["values"]["items"] == ["in", "a"] and at["next"] == ["b"]
    assert len(sync_client.threads.get_history(thread_id, limit=2)) == 2
    before = sync_client.threads.get_history(thread_id, before=history[1]["checkpoint"], limit=10)
    assert before[0]["checkpoint"]["checkpoint_id"] == older
    # update_state as a node: the next step follows that node's edges
    saved = sync_client.threads.update_state(thread_id, {"items": ["edit"]}, as_node="a")
    assert saved["checkpoint"]["thread_id"] == thread_id
    edited = sync_client.threads.get_state(thread_id)
    assert edited["values"]["items"][-1] == "edit" and edited["next"] == ["b"]
    assert sync_client.threads.get(thread_id)["values"]["items"][-1] == "edit"
    # copy: the same history under a new id, independent of the original
    copy = sync_client.threads.copy(thread_id)
    assert copy["thread_id"] != thread_id
    assert sync_client.threads.get_state(copy["thread_id"])["values"] == edited["values"]
    sync_client.threads.delete(thread_id)
    assert sync_client.threads.get_state(copy["thread_id"])["values"] == edited["values"]
    with pytest.raises(NotFoundError):
        sync_client.threads.get_state(thread_id)


def test_state_errors(sync_client: Any) -> None:
    thread_id = sync_client.threads.create()["thread_id"]
    # before its first run a thread has an empty state and no history (LangGraph's server
    # answers so; a chat front end reads them when it opens a new thread)
    fresh = sync_client.threads.get_state(thread_id)
    assert fresh["values"] == {} and fresh["next"] == [] and fresh["checkpoint"] is None
    assert sync_client.threads.get_history(thread_id) == []
    with pytest.raises(ConflictError, match="no graph yet"):  # nothing to apply it to
        sync_client.threads.update_state(thread_id, {"items": ["x"]})
    sync_client.runs.wait(thread_id, "steps", input={"items": []})
    with pytest.raises(NotFoundError, match="checkpoint"):
        sync_client.threads.get_state(thread_id, checkpoint_id=str(uuid.uuid4()))
    with pytest.raises(UnprocessableEntityError, match="as_node"):
        sync_client.threads.update_state(thread_id, {"items": ["x"]}, as_node="nope")
    with pytest.raises(UnprocessableEntityError, match="limit"):
        sync_client.threads.search(limit=0)


async def test_async_client_threads(client: Any) -> None:
    thread = await client.threads.create(metadata={"async": True})
    got = await client.threads.get(thread["thread_id"])
    assert got["metadata"] == {"async": True}
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])


def test_a_thread_run_from_the_python_client_is_a_thread_of_the_api(
    sync_client: Any, api_redis: Any
) -> None:
    """Threads run only from ``relaygraph.workers.Client`` (as the CLI's ``submit`` does) are
    the API's too: get, search, status, runs, join stream; deleted there, gone here."""
    from relaygraph.workers.client import Client
    from relaygraph.workers.settings import WorkerSettings
    from relaygraph.workers.threads import assistant_id_of

    from .graphs import REGISTRY

    settings = WorkerSettings(redis_url=api_redis.url, graphs=REGISTRY)
    thread_id = f"py-{uuid.uuid4().hex}"
    with Client(settings=settings) as py:
        run = py.submit("steps", {"items": ["py"]}, thread_id=thread_id)
        assert run.wait(timeout=60) == "success"
        thread = sync_client.threads.get(thread_id)
        assert thread["metadata"] == {"graph_id": "steps", "assistant_id": assistant_id_of("steps")}
        assert thread["status"] == "idle" and thread["values"] == {"items": ["py", "a", "b", "c"]}
        found = sync_client.threads.search(metadata={"graph_id": "steps"}, limit=1000)
        assert thread_id in [t["thread_id"] for t in found]
        (listed,) = sync_client.runs.list(thread_id)
        assert listed["run_id"] == run.id and listed["status"] == "success"
        assert sorted(listed["kwargs"]["stream_mode"]) == ["custom", "updates", "values"]
        parts = list(sync_client.runs.join_stream(thread_id, run.id))  # the modes it recorded
        assert [p.data for p in parts if p.event == "custom"] == [{"node": n} for n in "abc"]
        assert sync_client.threads.get_state(thread_id)["values"]["items"][-1] == "c"
        # a thread made through the API and run from Python: its status follows that run
        api_thread = sync_client.threads.create(metadata={"who": "api"})["thread_id"]
        assert py.submit("fail", {"items": []}, thread_id=api_thread).wait(timeout=60) == "error"
        made = sync_client.threads.get(api_thread)
        assert made["status"] == "error" and made["metadata"]["who"] == "api"
        assert made["metadata"]["graph_id"] == "fail"
        assert [r["status"] for r in sync_client.runs.list(api_thread)] == ["error"]
        py.delete(thread_id)
    with pytest.raises(NotFoundError):
        sync_client.threads.get(thread_id)
    found = sync_client.threads.search(metadata={"graph_id": "steps"}, limit=1000)
    assert thread_id not in [t["thread_id"] for t in found]


def test_search_pages_across_record_batches(sync_client: Any) -> None:
    """Search reads records in batches of 200: pages that straddle a batch come out whole,
    newest first, with metadata and status filters."""
    from relaygraph.api.backend import SEARCH_BATCH

    tag = uuid.uuid4().hex
    made = [
        sync_client.threads.create(metadata={"tag": tag, "n": n})["thread_id"]
        for n in range(SEARCH_BATCH + 20)
    ]
    for _ in range(5):  # other threads in between, which the filter skips
        sync_client.threads.create(metadata={"tag": "other"})
    newest_first = made[::-1]
    page = sync_client.threads.search(metadata={"tag": tag}, offset=SEARCH_BATCH - 2, limit=5)
    assert [t["thread_id"] for t in page] == newest_first[SEARCH_BATCH - 2 : SEARCH_BATCH + 3]
    idle = sync_client.threads.search(
        metadata={"tag": tag}, status="idle", offset=SEARCH_BATCH + 15, limit=10
    )
    assert [t["thread_id"] for t in idle] == newest_first[SEARCH_BATCH + 15 :]
    assert sync_client.threads.count(metadata={"tag": tag}) == SEARCH_BATCH + 20


def test_search_and_count_by_ids_keep_the_newest_first_order(sync_client: Any) -> None:
    tag = uuid.uuid4().hex
    made = [sync_client.threads.create(metadata={"tag": tag})["thread_id"] for _ in range(4)]
    asked = [made[0], str(uuid.uuid4()), made[2], made[0]]  # an unknown id, a repeat
    found = sync_client.threads.search(ids=asked, limit=10)
    assert [t["thread_id"] for t in found] == [made[2], made[0]]
    assert sync_client.threads.count(metadata={"tag": tag}) == 4
    assert sync_client.threads.count(metadata={"tag": tag}, status="idle") == 4
    assert sync_client.threads.count(metadata={"tag": tag}, status="busy") == 0
    page = sync_client.threads.search(ids=made, metadata={"tag": tag}, offset=1, limit=2)
    assert [t["thread_id"] for t in page] == [made[2], made[1]]


def test_a_thread_whose_record_expired_leaves_search_and_the_list(
    sync_client: Any, api_redis: Any
) -> None:
    import redis

    from relaygraph.workers.threads import THREADS, thread_key

    tag = uuid.uuid4().hex
    kept, gone = (sync_client.threads.create(metadata={"tag": tag})["thread_id"] for _ in "ab")
    client = redis.Redis.from_url(api_redis.url)
    try:
        client.delete(thread_key(gone))  # as RELAYGRAPH_THREAD_TTL expires it
        found = sync_client.threads.search(metadata={"tag": tag})
        assert [t["thread_id"] for t in found] == [kept]
        assert client.zscore(THREADS, gone) is None and client.zscore(THREADS, kept)
        assert sync_client.threads.count(metadata={"tag": tag}) == 1
    finally:
        client.close()


def test_create_with_supersteps(sync_client: Any) -> None:
    """A thread made with its history (as copying one between deployments does): one
    checkpoint per superstep, and a run goes on from where the last update left it."""
    steps = [
        {"updates": [{"values": {"items": ["x"]}, "as_node": "a"}]},
        {"updates": [{"values": {"items": ["y"]}, "as_node": "b"}]},
    ]
    thread = sync_client.threads.create(graph_id="steps", supersteps=steps)
    thread_id = thread["thread_id"]
    state = sync_client.threads.get_state(thread_id)
    assert state["values"] == {"items": ["x", "y"]} and state["next"] == ["c"]
    assert len(sync_client.threads.get_history(thread_id)) >= 2
    assert sync_client.runs.wait(thread_id, "steps", input=None) == {"items": ["x", "y", "c"]}


def test_create_with_bad_supersteps_stores_nothing(sync_client: Any) -> None:
    good = [{"updates": [{"values": {"items": ["x"]}, "as_node": "a"}]}]
    cases = [
        ({"graph_id": "steps", "supersteps": [{"updates": [{"values": {}, "as_node": "z"}]}]},
         "'z' is not a node"),
        ({"supersteps": good}, "graph_id"),
        ({"graph_id": "nope", "supersteps": good}, "graph_id"),
        ({"graph_id": "steps",
          "supersteps": [{"updates": [{"values": {"nope": 1}, "as_node": "a"}]}]}, "supersteps"),
        ({"graph_id": "steps", "supersteps": [{"updates": [
            {"values": None, "command": {"goto": "b"}, "as_node": "a"}]}]}, "command"),
    ]  # fmt: skip
    for kwargs, named in cases:
        thread_id = str(uuid.uuid4())
        with pytest.raises(UnprocessableEntityError, match=named):
            sync_client.threads.create(thread_id=thread_id, **kwargs)
        with pytest.raises(NotFoundError):
            sync_client.threads.get(thread_id)
    # an existing thread: do_nothing returns it as it is, supersteps not applied
    made = sync_client.threads.create(graph_id="steps", supersteps=good)
    again = sync_client.threads.create(
        thread_id=made["thread_id"], graph_id="steps", supersteps=good, if_exists="do_nothing"
    )
    assert again["values"] == made["values"] == {"items": ["x"]}


def _gone_within(client: Any, thread_id: str, seconds: float) -> float:
    """Seconds until the thread is deleted (fails after ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            client.threads.get(thread_id)
        except NotFoundError:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"thread {thread_id} still there after {seconds} s")


def test_thread_ttl_deletes_idle_threads(sync_client: Any, api_redis: Any) -> None:
    import redis

    from relaygraph.workers.threads import THREAD_EXPIRY

    ttl = {"ttl": 0.03, "strategy": "delete"}  # 1.8 s of idleness
    brief = sync_client.threads.create(ttl=ttl)["thread_id"]
    kept = sync_client.threads.create()["thread_id"]
    # a busy thread is not idle: its TTL (0.3 s) counts from its run's end
    busy = sync_client.threads.create()["thread_id"]
    sync_client.runs.create(busy, "slow", input={"items": []})  # 2 s and more
    sync_client.threads.update(busy, metadata={}, ttl={"ttl": 0.005})
    time.sleep(1.2)  # sweeps every 0.5 s
    # still there long after 0.3 s: its idleness has not begun
    assert sync_client.threads.get(busy)["status"] == "busy"
    assert _gone_within(sync_client, brief, 15) < 15
    # once its run ends (maybe before brief went, on a loaded machine), it goes too;
    # no join here: the thread and its runs may already be deleted by then
    _gone_within(sync_client, busy, 15)
    assert sync_client.threads.get(kept)  # no TTL: stays
    # a TTL set later by update; deleted with its checkpoints and runs, off the lists
    later = sync_client.threads.create()["thread_id"]
    sync_client.runs.wait(later, "steps", input={"items": []})
    sync_client.threads.update(later, metadata={"n": 1}, ttl=0.03)
    _gone_within(sync_client, later, 15)
    assert later not in [t["thread_id"] for t in sync_client.threads.search(limit=1000)]
    client = redis.Redis.from_url(api_redis.url)
    try:
        assert client.zscore(THREAD_EXPIRY, later) is None
        assert not client.keys(f"*{{{later}}}*")  # nothing of the thread left
    finally:
        client.close()


def test_thread_ttl_refusals(sync_client: Any, api_url: str) -> None:
    bad_ttls = [{"ttl": 0}, {"ttl": -5}, {"ttl": 5, "strategy": "keep_latest"}, {"strategy": "x"}]
    for bad in bad_ttls:
        response = httpx.post(f"{api_url}/threads", json={"ttl": bad})
        assert response.status_code == 422 and "ttl" in response.text
    thread_id = sync_client.threads.create()["thread_id"]
    response = httpx.patch(f"{api_url}/threads/{thread_id}", json={"ttl": {"ttl": 0}})
    assert response.status_code == 422
    with pytest.raises(NotFoundError):
        sync_client.threads.update(str(uuid.uuid4()), metadata={}, ttl=5)
