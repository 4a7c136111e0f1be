"""Assistants created, updated, versioned and deleted through the official SDK, and runs
that take their config and context from them."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from relaygraph.workers.threads import assistant_id_of


def _report(client: Any, assistant: str, **kwargs: Any) -> list[str]:
    """What the `configured` graph saw of the run's config, on a new thread."""
    thread = client.threads.create()
    values = client.runs.wait(thread["thread_id"], assistant, input={"items": []}, **kwargs)
    return values["items"]


def test_create_get_search_and_count(sync_client: Any) -> None:
    tag = uuid.uuid4().hex
    made = sync_client.assistants.create(
        "configured",
        config={"configurable": {"model": "big"}},
        context={"tone": "dry"},
        metadata={"tag": tag, "team": "a"},
        name=f"Support Bot {tag}",
        description="answers tickets",
    )
    assert made["graph_id"] == "configured" and made["version"] == 1
    assert made["config"] == {"configurable": {"model": "big"}}
    assert made["context"] == {"tone": "dry"} and made["description"] == "answers tickets"
    assert made["created_at"] and made["updated_at"]
    assert sync_client.assistants.get(made["assistant_id"]) == made
    # name: a substring in any case; metadata: every key equal; graph: exactly
    assert sync_client.assistants.search(name=f"bot {tag}".upper()) == [made]
    assert sync_client.assistants.search(metadata={"tag": tag}, graph_id="configured") == [made]
    assert sync_client.assistants.search(metadata={"tag": tag}, graph_id="echo") == []
    assert sync_client.assistants.search(metadata={"tag": tag, "team": "b"}) == []
    assert sync_client.assistants.count(metadata={"tag": tag}) == 1
    untitled = sync_client.assistants.create("configured", metadata={"tag": tag})
    assert untitled["name"] == "Untitled" and untitled["config"] == {}
    assert sync_client.assistants.count(metadata={"tag": tag}) == 2
    # pages: sorted, the next offset in X-Pagination-Next, only selected fields
    newest = sync_client.assistants.search(metadata={"tag": tag}, limit=1, response_format="object")
    assert [a["assistant_id"] for a in newest["assistants"]] == [untitled["assistant_id"]]
    assert newest["next"] == "1"
    rest = sync_client.assistants.search(
        metadata={"tag": tag}, offset=1, limit=1, response_format="object"
    )
    assert [a["assistant_id"] for a in rest["assistants"]] == [made["assistant_id"]]
    assert rest["next"] is None
    by_name = sync_client.assistants.search(
        metadata={"tag": tag}, sort_by="name", sort_order="asc", select=["assistant_id", "name"]
    )
    assert by_name == [
        {"assistant_id": made["assistant_id"], "name": made["name"]},
        {"assistant_id": untitled["assistant_id"], "name": "Untitled"},
    ]


def test_create_refusals(sync_client: Any, api_url: str) -> None:
    with pytest.raises(NotFoundError, match="not registered"):
        sync_client.assistants.create("no-such-graph")
    chosen = str(uuid.uuid4())
    first = sync_client.assistants.create("configured", assistant_id=chosen, name="first")
    with pytest.raises(ConflictError, match="already exists"):
        sync_client.assistants.create("configured", assistant_id=chosen, name="second")
    # do_nothing hands back the stored one, unchanged
    again = sync_client.assistants.create(
        "configured", assistant_id=chosen, name="second", if_exists="do_nothing"
    )
    assert again == first == sync_client.assistants.get(chosen)
    # a graph's default assistant, by its id or by the graph's name, is taken too
    for taken in (assistant_id_of("configured"), "configured"):
        with pytest.raises(ConflictError):
            sync_client.assistants.create("configured", assistant_id=taken)
    with pytest.raises(UnprocessableEntityError):
        sync_client.assistants.create("")
    missing = httpx.post(f"{api_url}/assistants", json={"config": {}})
    assert missing.status_code == 422 and "graph_id" in missing.text


def test_update_versions_and_latest(sync_client: Any) -> None:
    made = sync_client.assistants.create(
        "configured",
        config={"configurable": {"model": "small"}},
        context={"tone": "warm"},
        metadata={"owner": "ann"},
        name="v1",
    )
    aid = made["assistant_id"]
    assert _report(sync_client, aid) == ["model=small", "tone=warm", f"assistant_id={aid}"]
    updated = sync_client.assistants.update(
        aid, config={"configurable": {"model": "large"}}, metadata={"stage": "prod"}
    )
    # a new current version: the fields sent replaced, metadata merged, the rest kept
    assert updated["version"] == 2 and updated["name"] == "v1"
    assert updated["config"] == {"configurable": {"model": "large"}}
    assert updated["context"] == {"tone": "warm"}
    assert updated["metadata"] == {"owner": "ann", "stage": "prod"}
    assert updated["created_at"] == made["created_at"]
    assert sync_client.assistants.get(aid) == updated
    assert _report(sync_client, aid) == ["model=large", "tone=warm", f"assistant_id={aid}"]
    versions = sync_client.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["config"] == {"configurable": {"model": "small"}}
    assert [v["version"] for v in sync_client.assistants.get_versions(aid, limit=1)] == [2]
    staged = sync_client.assistants.get_versions(aid, metadata={"stage": "prod"})
    assert [v["version"] for v in staged] == [2]
    # back to version 1: runs take its config again; versions stay as they were
    back = sync_client.assistants.set_latest(aid, 1)
    assert back["version"] == 1 and back["config"] == {"configurable": {"model": "small"}}
    assert _report(sync_client, aid)[0] == "model=small"
    assert [v["version"] for v in sync_client.assistants.get_versions(aid)] == [2, 1]
    # an update after that is version 3, made from the current version (1)
    third = sync_client.assistants.update(aid, name="v3")
    assert third["version"] == 3 and third["config"] == {"configurable": {"model": "small"}}
    with pytest.raises(NotFoundError, match="no version 9"):
        sync_client.assistants.set_latest(aid, 9)
    with pytest.raises(NotFoundError):
        sync_client.assistants.update(str(uuid.uuid4()), name="x")
    with pytest.raises(NotFoundError, match="not registered"):
        sync_client.assistants.update(aid, graph_id="no-such-graph")
    assert sync_client.assistants.get(aid) == third  # the refused update stored nothing


def test_run_config_over_assistant_config(sync_client: Any) -> None:
    made = sync_client.assistants.create(
        "configured", config={"configurable": {"model": "base"}}, context={"tone": "calm"}
    )
    aid = made["assistant_id"]
    # the assistant's configurable and context fill in what the run leaves out
    assert _report(sync_client, aid) == ["model=base", "tone=calm", f"assistant_id={aid}"]
    assert _report(sync_client, aid, config={"configurable": {"model": "mine"}}) == [
        "model=mine", "tone=calm", f"assistant_id={aid}",
    ]  # fmt: skip
    assert _report(sync_client, aid, context={"tone": "loud"}) == [
        "model=base", "tone=loud", f"assistant_id={aid}",
    ]  # fmt: skip
    with pytest.raises(httpx.HTTPStatusError, match="configurable") as caught:
        _report(sync_client, aid, config={"configurable": ["not", "a", "dict"]})
    assert caught.value.response.status_code == 422
    # the run, its thread and the thread's metadata name the assistant used
    thread = sync_client.threads.create()
    run = sync_client.runs.create(thread["thread_id"], aid, input={"items": []})
    sync_client.runs.join(thread["thread_id"], run["run_id"])
    assert sync_client.runs.get(thread["thread_id"], run["run_id"])["assistant_id"] == aid
    new = sync_client.runs.wait(None, aid, input={"items": []})
    assert new["items"][0] == "model=base"
    fresh = str(uuid.uuid4())
    sync_client.runs.wait(fresh, aid, input={"items": []}, if_not_exists="create")
    assert sync_client.threads.get(fresh)["metadata"]["assistant_id"] == aid


def test_default_assistant_update_and_delete(sync_client: Any) -> None:
    default = sync_client.assistants.get("configured")
    assert default["version"] == 1 and default["metadata"] == {"created_by": "system"}
    with pytest.raises(ConflictError, match="default"):
        sync_client.assistants.delete("configured")
    with pytest.raises(NotFoundError):
        sync_client.assistants.set_latest("configured", 2)
    assert sync_client.assistants.set_latest("configured", 1) == default
    try:
        updated = sync_client.assistants.update(
            "configured", config={"configurable": {"model": "tuned"}}
        )
        assert updated["assistant_id"] == default["assistant_id"] and updated["version"] == 2
        assert updated["metadata"] == {"created_by": "system"}
        # its first stored version is the default as it was
        assert sync_client.assistants.get_versions("configured")[1]["config"] == {}
        assert _report(sync_client, "configured")[0] == "model=tuned"
        system = {"created_by": "system"}
        found = sync_client.assistants.search(graph_id="configured", metadata=system)
        assert [a["version"] for a in found] == [2]
    finally:
        sync_client.assistants.set_latest("configured", 1)
    assert _report(sync_client, "configured")[0] == "model=None"


def test_delete(sync_client: Any) -> None:
    kept = sync_client.assistants.create("configured", name="kept")
    gone = sync_client.assistants.create("configured", name="gone")
    thread = sync_client.threads.create()
    sync_client.runs.wait(thread["thread_id"], gone["assistant_id"], input={"items": []})
    other = sync_client.threads.create()
    sync_client.runs.wait(other["thread_id"], kept["assistant_id"], input={"items": []})
    sync_client.assistants.delete(gone["assistant_id"])
    with pytest.raises(NotFoundError):
        sync_client.assistants.get(gone["assistant_id"])
    with pytest.raises(NotFoundError):
        sync_client.assistants.delete(gone["assistant_id"])
    with pytest.raises(httpx.HTTPStatusError, match="not found") as caught:
        sync_client.runs.wait(thread["thread_id"], gone["assistant_id"], input={"items": []})
    assert caught.value.response.status_code == 404
    assert sync_client.threads.get(thread["thread_id"])  # kept without delete_threads
    # with delete_threads, the threads whose metadata names the assistant go too
    sync_client.assistants.delete(kept["assistant_id"], delete_threads=True)
    with pytest.raises(NotFoundError):
        sync_client.threads.get(other["thread_id"])
    assert sync_client.threads.get(thread["thread_id"])


def test_concurrent_updates_all_land(sync_client: Any) -> None:
    aid = sync_client.assistants.create("configured", metadata={})["assistant_id"]

    def update(i: int) -> int:
        return sync_client.assistants.update(aid, metadata={f"k{i}": i})["version"]

    with ThreadPoolExecutor(8) as pool:
        versions = sorted(pool.map(update, range(8)))
    assert versions == list(range(2, 10))  # each its own version, none lost
    stored = sync_client.assistants.get_versions(aid, limit=100)
    assert [v["version"] for v in stored] == list(range(9, 0, -1))
    assert sync_client.assistants.get(aid)["metadata"] == {f"k{i}": i for i in range(8)}


async def test_async_client(client: Any) -> None:
    made = await client.assistants.create("configured", config={"configurable": {"model": "a"}})
    updated = await client.assistants.update(made["assistant_id"], name="renamed")
    assert updated["version"] == 2 and (await client.assistants.get_versions(made["assistant_id"]))
    await client.assistants.delete(made["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.assistants.get(made["assistant_id"])
