"""A stream survives its server: SIGKILL the serve process mid-stream, and the client
resumes on a new one from Last-Event-ID, missing and repeating nothing."""

from __future__ import annotations

from typing import Any

from .conftest import ApiFleet, free_port


def test_stream_resumes_after_server_killed(api_fleet: ApiFleet) -> None:
    from langgraph_sdk import get_sync_client

    port = free_port()
    url = api_fleet.serve("api-a", port=port)
    client = get_sync_client(url=url, api_key=None, timeout=60)
    thread_id = client.threads.create()["thread_id"]
    seen: list[Any] = []
    for part in client.runs.stream(
        thread_id, "slow", input={"items": ["in"]}, stream_mode=["values", "updates"]
    ):
        seen.append(part)
        if len(seen) == 2:  # metadata, then the input's values: the run is under way
            api_fleet.kill("api-a")  # SIGKILL: no goodbye to the client
            api_fleet.serve("api-b", port=port)  # a replica comes up where it was
    events = [p.event for p in seen]
    assert events[0] == "metadata" and events[-1] == "end"
    values = [p.data["items"] for p in seen if p.event == "values"]
    assert values == [
        ["in"],
        ["in", "first"],
        ["in", "first", "slow"],
        ["in", "first", "slow", "last"],
    ]
    ids = [p.id for p in seen if p.id]
    assert len(ids) == len(set(ids))  # nothing delivered twice
    assert client.runs.list(thread_id)[0]["status"] == "success"


def test_resume_on_another_replica(api_fleet: ApiFleet, api_url: str) -> None:
    """Any replica continues any stream: the events are in Redis, not in a server."""
    from langgraph_sdk import get_sync_client

    other = api_fleet.serve("api-c")
    try:
        first = get_sync_client(url=api_url, api_key=None)
        second = get_sync_client(url=other, api_key=None)
        thread_id = first.threads.create()["thread_id"]
        stream = first.runs.stream(thread_id, "steps", input={"items": []}, stream_mode="custom")
        head = [next(stream), next(stream)]  # metadata, the first custom event
        stream.close()
        run_id = head[0].data["run_id"]
        rest = list(second.runs.join_stream(thread_id, run_id, last_event_id=head[1].id))
        assert [p.data for p in head[1:] + rest if p.event == "custom"] == [
            {"node": "a"},
            {"node": "b"},
            {"node": "c"},
        ]
        assert rest[-1].event == "end"
    finally:
        api_fleet.kill("api-c")
