"""Store routes (semantic search with the offline model) and the optional API key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import AuthenticationError, NotFoundError

from .conftest import ApiFleet


def test_store_items(sync_client: Any) -> None:
    user = uuid.uuid4().hex[:8]
    ns = ["notes", user]
    store = sync_client.store
    store.put_item(ns, "pets", {"text": "I have a cat and a dog", "kind": "home"})
    store.put_item(ns, "food", {"text": "pizza with olives is my favourite", "kind": "home"})
    store.put_item(ns, "car", {"text": "the car needs new tyres", "kind": "errand"})
    store.put_item(["notes", user, "deep"], "x", {"text": "nested"}, index=False)
    item = store.get_item(ns, "pets")
    assert item["value"]["kind"] == "home" and item["namespace"] == ns and item["created_at"]
    ranked = store.search_items(ns, query="what animals live with me?", limit=3)["items"]
    assert ranked[0]["key"] == "pets" and ranked[0]["score"] is not None
    assert ranked[0]["score"] > ranked[-1]["score"]
    filtered = store.search_items(ns, filter={"kind": "errand"})["items"]
    assert [i["key"] for i in filtered] == ["car"]
    everything = store.search_items(["notes", user], limit=10)["items"]
    assert {i["key"] for i in everything} == {"pets", "food", "car", "x"}
    assert len(store.search_items(["notes", user], limit=2, offset=2)["items"]) == 2
    spaces = store.list_namespaces(prefix=["notes", user])["namespaces"]
    assert sorted(spaces) == [["notes", user], ["notes", user, "deep"]]
    assert store.list_namespaces(prefix=["notes", user], max_depth=2)["namespaces"] == [
        ["notes", user]
    ]
    store.delete_item(ns, "pets")
    with pytest.raises(NotFoundError):
        store.get_item(ns, "pets")
    store.delete_item(ns, "pets")  # deleting a missing item is a no-op


def test_store_errors(api_url: str) -> None:
    bad = httpx.put(f"{api_url}/store/items", json={"namespace": ["a"], "key": "k"})
    assert bad.status_code == 422 and "value" in bad.json()["detail"]
    dotted = httpx.put(
        f"{api_url}/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}}
    )
    assert dotted.status_code == 422 and "namespace" in dotted.json()["detail"]
    empty = httpx.put(f"{api_url}/store/items", json={"namespace": [], "key": "k", "value": {}})
    assert empty.status_code == 422
    # the store's own checks: the first store call of a server loads the embedding model
    bad_ttl = httpx.put(
        f"{api_url}/store/items",
        json={"namespace": ["a"], "key": "k", "value": {}, "ttl": -1},
        timeout=120,
    )
    assert bad_ttl.status_code == 422 and "ttl" in bad_ttl.json()["detail"]
    bad_filter = httpx.post(
        f"{api_url}/store/items/search",
        json={"namespace_prefix": ["a"], "filter": {"x": {"$bogus": 1}}},
        timeout=120,
    )
    assert bad_filter.status_code == 422 and "$bogus" in bad_filter.json()["detail"]
    found = httpx.post(
        f"{api_url}/store/items/search", json={"namespace_prefix": ["a"]}, timeout=120
    )
    assert found.json() == {"items": []}  # nothing was stored by the rejected puts


@pytest.fixture(scope="module")
def keyed_url(api_fleet: ApiFleet) -> Iterator[str]:
    url = api_fleet.serve("api-keyed", RELAYGRAPH_API_KEY="s3cret")
    try:
        yield url
    finally:
        api_fleet.kill("api-keyed")


def test_api_key_required(keyed_url: str) -> None:
    from langgraph_sdk import get_sync_client

    assert httpx.get(f"{keyed_url}/ok").status_code == 200  # probes need no key
    assert httpx.get(f"{keyed_url}/info").status_code == 401
    wrong = httpx.get(f"{keyed_url}/info", headers={"x-api-key": "nope"})
    assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"]
    with pytest.raises(AuthenticationError):
        get_sync_client(url=keyed_url, api_key=None).threads.create()
    with pytest.raises(AuthenticationError):
        get_sync_client(url=keyed_url, api_key="nope").assistants.search()
    client = get_sync_client(url=keyed_url, api_key="s3cret")
    thread_id = client.threads.create()["thread_id"]
    assert client.runs.wait(thread_id, "steps", input={"items": []}) == {"items": ["a", "b", "c"]}
    parts = list(client.runs.stream(thread_id, "steps", input=None))
    assert parts[-1].event == "end"


def test_no_key_configured(api_url: str) -> None:
    assert httpx.get(f"{api_url}/info").status_code == 200
    assert httpx.get(f"{api_url}/info", headers={"x-api-key": "anything"}).status_code == 200


@pytest.mark.parametrize("placeholder", ["change-me", "CHANGE-ME", " changeme "])
def test_the_shipped_placeholder_key_is_refused(placeholder: str) -> None:
    """deploy/'s Secret ships a placeholder key: a server must not start with it."""
    from pydantic import ValidationError

    from relaygraph.api.settings import ApiSettings

    with pytest.raises(ValidationError, match="placeholder"):
        ApiSettings(api_key=placeholder)
    assert ApiSettings(api_key="a-real-key").api_key is not None
