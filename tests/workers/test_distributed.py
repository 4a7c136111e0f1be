"""The distributed executor with real worker processes on a private Redis.

Every test starts its own Redis and its own workers (``relaygraph worker`` subprocesses),
and kills them with SIGKILL where the test is about crashes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from relaygraph import CheckpointNotFoundError, MemorySaver
from relaygraph.workers.client import Client, RunRejectedError
from relaygraph.workers.keys import ThreadKeys

from . import graphs
from .fleet import Fleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LEASE_TTL, SWEEP = 2.0, 0.5


def local_history(graph: Any, input: Any) -> tuple[dict[str, Any], list[tuple]]:
    """The oracle: the same graph on the in-process executor."""
    compiled = graph.builder.compile(checkpointer=MemorySaver())
    config = {"configurable": {"thread_id": "oracle"}}
    values = compiled.invoke(input, config)
    history = [
        (s.metadata["step"], s.metadata["source"], s.next)
        for s in compiled.get_state_history(config)
    ]
    return values, history


def remote_history(client: Client, graph: str, thread: str) -> list[tuple]:
    return [
        (s.metadata["step"], s.metadata["source"], s.next)
        for s in client.get_state_history(graph, thread)
    ]


def test_linear_graph_matches_the_local_executor(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    run = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
    assert run.wait(timeout=60) == "success", run.error
    values, history = local_history(graphs.linear, {"items": [], "total": 0})
    assert client.get_state("linear", "t").values == values
    assert remote_history(client, "linear", "t") == history


def test_a_graph_with_config_defaults_keeps_them_on_workers(
    fleet: Fleet, client: Client
) -> None:
    fleet.start("w1")
    limited = client.submit("bounded", {"items": [], "total": 0}, thread_id="b1")
    assert limited.wait(timeout=60) == "error"
    assert "Recursion limit of 5" in (limited.error or ""), limited.error
    # a run's own limit is laid over the graph's
    run = client.submit(
        "bounded", {"items": [], "total": 0}, thread_id="b2", config={"recursion_limit": 50}
    )
    assert run.wait(timeout=60) == "success", run.error
    assert client.get_state("bounded", "b2").values["total"] == graphs.LOOP_HOPS


def test_a_run_from_an_older_checkpoint_goes_on_from_there(fleet: Fleet, client: Client) -> None:
    """As ``invoke(None, config naming a checkpoint_id)``: a fork, later history kept."""
    fleet.start("w1")
    first = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
    assert first.wait(timeout=60) == "success", first.error
    history = client.get_state_history("linear", "t")
    after_a = next(s for s in history if s.values.get("items") == ["a"])
    assert after_a.next == ("b",)
    older = after_a.config["configurable"]["checkpoint_id"]
    again = client.submit("linear", None, thread_id="t", config={"configurable": {
        "checkpoint_id": older}})  # fmt: skip
    assert again.wait(timeout=60) == "success", again.error
    state = client.get_state("linear", "t")
    assert state.values == {"items": ["a", "b", "c"], "total": 3}
    assert state.parent_config is not None
    assert len(client.get_state_history("linear", "t")) == len(history) + 3  # fork, b, c


def test_a_run_from_a_checkpoint_the_thread_lacks_or_while_busy_is_refused(
    fleet: Fleet, client: Client
) -> None:
    fleet.start("w1")
    run = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
    assert run.wait(timeout=60) == "success", run.error
    before = client.get_state_history("linear", "t")
    missing = {"configurable": {"checkpoint_id": "1f0-not-a-checkpoint"}}
    with pytest.raises(CheckpointNotFoundError, match="1f0-not-a-checkpoint"):
        client.submit("linear", None, thread_id="t", config=missing)
    client.redis.set(ThreadKeys("t").active, "someone")  # a run holds the thread
    older = {"configurable": {"checkpoint_id": before[-1].config["configurable"]["checkpoint_id"]}}
    with pytest.raises(RunRejectedError, match="busy"):
        client.submit("linear", None, thread_id="t", config=older)
    assert len(client.get_state_history("linear", "t")) == len(before)  # nothing stored


def test_send_fanout_on_two_workers_keeps_task_order(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    fleet.start("w2")
    run = client.submit("fanout", {"items": [], "total": 0}, thread_id="t")
    assert run.wait(timeout=60) == "success", run.error
    values, history = local_history(graphs.fanout, {"items": [], "total": 0})
    assert client.get_state("fanout", "t").values == values
    assert remote_history(client, "fanout", "t") == history
    worked = [name for name in ("w1", "w2") if "node fanout.work" in fleet.log(name)]
    assert worked, "no worker logged a work task"


def test_events_stream_live_and_resume_from_an_event_id(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    run = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
    events = list(run.stream(timeout=60))
    assert events[-1].mode == "status" and events[-1].data["status"] == "success"
    custom = [e.data for e in events if e.mode == "custom"]
    assert custom == [{"node": "a"}, {"node": "b"}, {"node": "c"}]
    assert [e.data for e in events if e.mode == "values"][-1]["items"] == ["a", "b", "c"]
    middle = events[2].id
    resumed = list(run.stream(after=middle, timeout=10))
    assert [e.id for e in resumed] == [e.id for e in events[3:]]


def test_interrupt_is_resumed_on_another_worker(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    first = client.submit("ask", {"items": [], "total": 0}, thread_id="t")
    assert first.wait(timeout=60) == "interrupted"
    state = client.get_state("ask", "t")
    assert state.next == ("ask",) and state.interrupts[0].value == "your name?"
    fleet.kill("w1")
    fleet.start("w2")
    second = client.resume("ask", "t", "Ada")
    assert second.wait(timeout=60) == "success", second.error
    assert client.get_state("ask", "t").values["items"] == ["hello Ada"]


def _holder_of(fleet: Fleet, marker: Path, timeout: float = 30) -> str:
    """The worker whose pool child runs the slow node (it writes its pid to ``marker``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text():
            pid = int(marker.read_text())
            for name, process in fleet.workers.items():
                if os.getpgid(pid) == process.pid:
                    return name
        time.sleep(0.05)
    raise AssertionError("the slow node never started")


def test_sigkill_of_a_whole_worker_mid_node_resumes_on_another(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="2"
    )
    try:
        fleet.start("w1")
        fleet.start("w2")
        run = client.submit("slow", {"items": [], "total": 0}, thread_id="t")
        holder = _holder_of(fleet, marker)
        marker.write_text("")
        killed_at = time.monotonic()
        fleet.kill(holder)
        assert run.wait(timeout=60) == "success", run.error
        recovered_in = time.monotonic() - killed_at
        values = client.get_state("slow", "t").values
        # each reducer applied exactly once, whatever ran twice
        assert values == {"items": ["before", "slow", "after"], "total": 3}
        # the bound: lease TTL + sweep interval to notice, the node's 2 s to re-run, margin
        assert recovered_in < LEASE_TTL + SWEEP + 2 + 10, recovered_in
    finally:
        fleet.stop()


def _running_task(client: Client, thread: str, node: str) -> tuple[bytes, str]:
    """The step key and task id of ``node``'s task on ``thread``."""
    for key in client.redis.scan_iter(match=f"{ThreadKeys(thread).base}:step:*"):
        info = {k.decode(): v.decode() for k, v in client.redis.hgetall(key).items()}
        for field, value in info.items():
            if field.startswith("n:") and value == node:
                return key, field[2:]
    raise AssertionError(f"no step runs {node!r}")


def test_duplicate_delivery_commits_the_step_once(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="1.5"
    )
    try:
        fleet.start("w1")
        fleet.start("w2")
        run = client.submit("slow", {"items": [], "total": 0}, thread_id="t")
        _holder_of(fleet, marker)
        step_key, task_id = _running_task(client, "t", "slow")
        _, _ns, checkpoint_id, run_id = step_key.decode().split(":", 2)[2].split(":", 3)
        # the broker hands the same message out again while the first copy still runs
        client.app.send_task(
            "relaygraph.node",
            kwargs={
                "graph": "slow",
                "thread_id": "t",
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
                "task_id": task_id,
                "epoch": 0,
                "run_id": run_id,
            },
        )
        assert run.wait(timeout=60) == "success", run.error
        assert client.get_state("slow", "t").values["total"] == 3
        steps = [h.metadata["step"] for h in client.get_state_history("slow", "t")]
        assert steps == sorted(set(steps), reverse=True)  # no step committed twice
    finally:
        fleet.stop()


def test_cancel_stops_scheduling(redis_server: Any, tmp_path: Path, client: Client) -> None:
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="1"
    )
    try:
        fleet.start("w1")
        run = client.submit("slow", {"items": [], "total": 0}, thread_id="t")
        _holder_of(fleet, marker)
        run.cancel()
        assert run.status == "cancelled"
        time.sleep(2.5)
        assert "after" not in client.get_state("slow", "t").values.get("items", [])
    finally:
        fleet.stop()


def test_a_cancelled_queued_run_never_takes_the_thread(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    """Cancelling a run that waits behind another (enqueue) takes it out of the queue: when
    the active run ends, the thread is free, not held by a run nothing will start."""
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="1"
    )
    try:
        fleet.start("w1")
        first = client.submit("slow", {"items": [], "total": 0}, thread_id="t")
        waiting = client.submit(
            "slow", {"items": [], "total": 0}, thread_id="t", multitask_strategy="enqueue"
        )
        assert waiting.status == "pending"
        waiting.cancel()
        assert first.wait(timeout=60) == "success"
        assert waiting.status == "cancelled"
        keys = ThreadKeys("t")
        assert client.redis.get(keys.active) is None and client.redis.llen(keys.queue) == 0
        after = client.submit("linear", {"items": [], "total": 0}, thread_id="t")  # not rejected
        assert after.wait(timeout=60) == "success"
    finally:
        fleet.stop()


def test_multitask_strategies(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    first = client.submit("ask", {"items": [], "total": 0}, thread_id="t")
    assert first.wait(timeout=60) == "interrupted"
    # an interrupted run no longer holds the thread
    second = client.submit("linear", {"items": [], "total": 0}, thread_id="u")
    with pytest.raises(RunRejectedError, match="already has an active run"):
        client.submit("linear", {"items": [], "total": 0}, thread_id="u")
    queued = client.submit(
        "linear", {"items": ["q"], "total": 0}, thread_id="u", multitask_strategy="enqueue"
    )
    assert second.wait(timeout=60) == "success" and queued.wait(timeout=60) == "success"
    assert client.get_state("linear", "u").values["items"] == ["a", "b", "c", "q", "a", "b", "c"]


def test_rollback_removes_the_interrupted_runs_checkpoints(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    marker = tmp_path / "slow.pid"
    fleet = Fleet(
        redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(marker), RELAYGRAPH_TEST_SLOW="1"
    )
    try:
        fleet.start("w1")
        first = client.submit("slow", {"items": [], "total": 0}, thread_id="t")
        _holder_of(fleet, marker)
        second = client.submit(
            "linear", {"items": [], "total": 0}, thread_id="t", multitask_strategy="rollback"
        )
        assert first.status == "interrupted"
        assert second.wait(timeout=60) == "success", second.error
        values = client.get_state("linear", "t").values
        assert values["items"] == ["a", "b", "c"]  # nothing of the rolled-back run remains
    finally:
        fleet.stop()


def test_a_worker_with_another_graph_version_refuses_the_run(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    client.registry.register("linear", graphs.gpu)  # the client has another "linear"
    run = client.submit("linear", {"items": [], "total": 0}, thread_id="t")
    assert run.wait(timeout=60) == "error"
    assert "fingerprint" in (run.error or "")
    assert client.get_state("linear", "t").values == {}


def test_retry_policy_runs_through_broker_retries(
    redis_server: Any, tmp_path: Path, client: Client
) -> None:
    fleet = Fleet(redis_server.url, tmp_path, RELAYGRAPH_TEST_MARKER=str(tmp_path / "count"))
    try:
        fleet.start("w1")
        run = client.submit("flaky", {"items": [], "total": 0}, thread_id="t")
        assert run.wait(timeout=60) == "success", run.error
        assert client.get_state("flaky", "t").values["items"] == ["ok after 3"]
        # each retry is a new broker message: the runtime still knows the first attempt
        seen = [line.split() for line in (tmp_path / "count.info").read_text().splitlines()]
        assert [int(attempt) for attempt, _, _ in seen] == [1, 2, 3]
        first = {float(first) for _, first, _ in seen}
        assert len(first) == 1, seen  # one first attempt time, as LangGraph gives
        (first_time,) = first
        started = [float(at) for _, _, at in seen]
        assert started[0] - 1 <= first_time <= started[0]  # the first attempt's start (ms)
    finally:
        fleet.stop()


def test_a_node_that_kills_its_worker_stops_after_its_budget(fleet: Fleet, client: Client) -> None:
    fleet.start("w1")
    run = client.submit("crashy", {"items": [], "total": 0}, thread_id="t")
    assert run.wait(timeout=90) == "error"
    assert "attempts" in (run.error or "")


def test_nodes_route_to_the_queue_they_name(fleet: Fleet, client: Client) -> None:
    fleet.start("cpu-worker")
    run = client.submit("gpu", {"items": [], "total": 0}, thread_id="t")
    time.sleep(3)
    assert run.status == "running"  # nobody serves the gpu queue yet
    assert client.get_state("gpu", "t").next == ("gpu",)
    fleet.start("gpu-worker", queues="gpu")
    assert run.wait(timeout=60) == "success", run.error
    assert "node gpu.gpu" in fleet.log("gpu-worker")
