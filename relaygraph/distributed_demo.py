"""The lesson's exercise on a worker fleet: embedded Redis, two workers, Flower, the HTTP
API (one question asked through langgraph-sdk), a SIGKILL.

Everything it starts it stops again, also on Ctrl-C or an error. Started by
``python -m relaygraph.demo`` (``make demo``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from relaygraph.persistence.redis_server import EmbeddedRedis, free_port
from relaygraph.workers.local_fleet import LocalFleet

console = Console()
GRAPHS = (
    "assistant=relaygraph.examples.assistant:graph,agent=relaygraph.examples.agent:graph"
)


def _say(client: Any, thread: str, text: str, user: str = "alice") -> tuple[str, str, float]:
    started = time.monotonic()
    run = client.submit(
        "assistant",
        {"messages": [("user", text)]},
        thread_id=thread,
        config={"configurable": {"user_id": user}},
        multitask_strategy="enqueue",
    )
    status = run.wait(timeout=300)
    if status != "success":
        raise RuntimeError(f"run on {thread} ended {status}: {run.error}")
    reply = client.get_state("assistant", thread).values["messages"][-1].content
    return run.id, reply, time.monotonic() - started


def _agent_checks(client: Any) -> list[tuple[str, str, bool]]:
    """The tool-using agent on the fleet: remember in one thread, recall (streamed) in another."""
    config = {"configurable": {"user_id": "bob"}}
    run = client.submit(
        "agent",
        {"messages": [("user", "Remember that my favourite language is Python")]},
        thread_id="agent-1",
        config=config,
    )
    outcome = run.wait(timeout=120)
    messages = client.get_state("agent", "agent-1").values.get("messages", [])
    tools = [m.name for m in messages if m.type == "tool"]
    checks = [
        (
            "agent calls a tool",
            f"{outcome}: tools {tools}, answer {messages[-1].content!r}" if messages else outcome,
            outcome == "success" and tools == ["remember"],
        )
    ]
    started = time.monotonic()
    run = client.submit(
        "agent",
        {"messages": [("user", "What do you remember about programming?")]},
        thread_id="agent-2",
        config=config,
        stream_mode=["messages", "updates"],
    )
    first_token, tokens = None, []
    for event in run.stream(timeout=120):
        if event.mode == "messages" and event.data[0].type == "AIMessageChunk":
            first_token = first_token or time.monotonic() - started
            tokens.append(event.data[0].content)
    answer = "".join(tokens)
    checks.append(
        (
            "agent recalls across threads, streamed",
            f"{len(tokens)} tokens, first after {first_token or 0:.2f}s: {answer!r}",
            run.status == "success" and "Python" in answer,
        )
    )
    return checks


def _flower_tasks(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as answer:
            return len(json.load(answer))
    except (OSError, ValueError):
        return -1


def _start_api(fleet: LocalFleet, port: int) -> str:
    """``relaygraph serve`` on ``port`` as fleet process ``api``; its URL once it answers."""
    argv = [sys.executable, "-m", "relaygraph.cli", "serve", "--port", str(port)]
    fleet.start("api", [*argv, "--loglevel", "warning"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=1):
                return url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start:\n{fleet.log('api')[-2000:]}")


def _ask_over_http(url: str, text: str) -> str:
    """One run of the assistant through the HTTP API with LangGraph's own client."""
    from langgraph_sdk import get_sync_client

    sdk = get_sync_client(url=url, api_key=None)
    thread = sdk.threads.create(metadata={"demo": True})
    said = {"messages": [{"role": "user", "content": text}]}
    config = {"configurable": {"user_id": "alice"}}
    result = sdk.runs.wait(thread["thread_id"], "assistant", input=said, config=config)
    return result["messages"][-1]["content"]


def run_distributed() -> int:
    """Run the exercise on two workers; exit status 0 when every check held."""
    from relaygraph.workers.client import Client
    from relaygraph.workers.settings import WorkerSettings

    started = time.monotonic()
    checks: list[tuple[str, str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="relaygraph-demo-") as tmp:
        logs, marker = Path(tmp), Path(tmp) / "think.pid"
        with (
            console.status("starting Redis with search (embedded)...") as status,
            EmbeddedRedis(appendonly=True, dir=Path(tmp) / "redis") as redis_server,
        ):
            env = {
                **os.environ,
                "RELAYGRAPH_REDIS_URL": redis_server.url,
                "RELAYGRAPH_STORE_URL": redis_server.url,
                "RELAYGRAPH_STORE_EMBED": "default",
                "RELAYGRAPH_STORE_FIELDS": "fact",
                "RELAYGRAPH_GRAPHS": GRAPHS,
                "RELAYGRAPH_LEASE_TTL": "2",
                "RELAYGRAPH_SWEEP_INTERVAL": "0.5",
                "RELAYGRAPH_DEMO_MARKER": str(marker),
                "RELAYGRAPH_DEMO_THINK": "1.5",
                "HF_HUB_OFFLINE": "1",
                "FLOWER_UNAUTHENTICATED_API": "true",  # the demo reads its task list
            }
            flower_port = free_port()
            with LocalFleet(env, logs) as fleet:
                status.update("starting two workers and Flower...")
                for name in ("worker1", "worker2"):
                    fleet.start_worker(name, wait=False)
                fleet.start_flower(flower_port)
                for name in ("worker1", "worker2"):
                    fleet.wait_for(name, b"ready.")
                status.update("starting the HTTP API (relaygraph serve)...")
                api_url = _start_api(fleet, free_port())
                settings = WorkerSettings(redis_url=redis_server.url, graphs=GRAPHS)
                with Client(settings=settings) as client:
                    status.update("thread t1: telling the assistant three facts...")
                    for fact in (
                        "I love Python",
                        "I enjoy hiking in the mountains",
                        "My cat is called Ada",
                    ):
                        _say(client, "t1", fact)
                    status.update("thread t2: what does it know? (another thread)")
                    _, known, _ = _say(client, "t2", "What do you know about me?")
                    checks.append(("facts cross threads", known, "i love python" in known))
                    status.update("thread t2: semantic recall with the offline model...")
                    _, recalled, _ = _say(client, "t2", "recall outdoor activities")
                    checks.append(("semantic recall", recalled, "hiking" in recalled))
                    status.update("a new thread through the HTTP API (langgraph-sdk)...")
                    over_http = _ask_over_http(api_url, "What do you know about me?")
                    checks.append(
                        ("langgraph-sdk over HTTP", over_http, "i love python" in over_http)
                    )
                    status.update("thread t2: a run whose worker is killed mid-node...")
                    marker.unlink(missing_ok=True)
                    run = client.submit(
                        "assistant",
                        {"messages": [("user", "forget cat")]},
                        thread_id="t2",
                        config={"configurable": {"user_id": "alice"}},
                    )
                    deadline = time.monotonic() + 60
                    while not (marker.exists() and marker.read_text()):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the think node never started")
                        time.sleep(0.05)
                    victim = fleet.holder_of(int(marker.read_text())) or "worker1"
                    killed_at = time.monotonic()
                    fleet.kill(victim)
                    outcome = run.wait(timeout=120)
                    recovered = time.monotonic() - killed_at
                    survivor = next(iter(fleet.processes.keys() - {"flower", "api"}), "?")
                    reply = client.get_state("assistant", "t2").values["messages"][-1].content
                    checks.append(
                        (
                            f"SIGKILL {victim} mid-node",
                            f"{outcome} on {survivor} {recovered:.1f}s after the kill: {reply}",
                            outcome == "success" and "forgot 1" in reply.lower(),
                        )
                    )
                    _, after, _ = _say(client, "t2", "What do you know about me?")
                    checks.append(("forget command", after, "cat" not in after))
                    history = client.get_state_history("assistant", "t1")
                    checks.append(
                        (
                            "thread t1 history",
                            f"{len(history)} checkpoints, newest step "
                            f"{history[0].metadata['step']}",
                            len(history) == 3 * 4,
                        )
                    )
                    status.update("the LLM agent: a tool call that writes the memory store...")
                    checks.extend(_agent_checks(client))
                    tasks_seen = _flower_tasks(flower_port)
                    checks.append(
                        ("Flower lists node tasks", f"{tasks_seen} tasks", tasks_seen > 0)
                    )
    table = Table(title="relaygraph demo: the persistence lesson's exercise on two workers")
    table.add_column("check")
    table.add_column("result")
    table.add_column("", justify="center")
    for name, shown, ok in checks:
        table.add_row(name, shown, "[green]ok[/]" if ok else "[red]FAIL[/]")
    console.print(table)
    console.print(
        f"Flower was at http://127.0.0.1:{flower_port}, the HTTP API at {api_url} "
        "(run `relaygraph dev` to keep a fleet up). "
        f"{sum(ok for *_, ok in checks)}/{len(checks)} checks held in "
        f"{time.monotonic() - started:.0f}s; everything started was stopped."
    )
    return 0 if all(ok for *_, ok in checks) else 1
