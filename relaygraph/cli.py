"""The ``relaygraph`` command: workers, runs, threads, recovery and a one-machine dev fleet.

Configuration comes from the environment (``RELAYGRAPH_REDIS_URL``, ``RELAYGRAPH_GRAPHS``,
...; see :class:`relaygraph.workers.settings.WorkerSettings`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="relaygraph: stateful agent graphs on Celery workers.", no_args_is_help=True)
threads_app = typer.Typer(help="Read a thread's state and history.", no_args_is_help=True)
app.add_typer(threads_app, name="threads")
console = Console()


def _client() -> Any:
    from relaygraph.workers.client import Client

    return Client()


def _parse_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from exc


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="processes in the pool")] = 2,
    queues: Annotated[str, typer.Option(help="comma-separated queues to serve")] = "",
    loglevel: Annotated[str, typer.Option()] = "info",
    hostname: Annotated[str | None, typer.Option(help="Celery node name")] = None,
) -> None:
    """Run a Celery worker with relaygraph's app (and its recovery sweeper); exits non-zero
    whenever Celery's worker does (e.g. its pool processes could not start)."""
    from relaygraph.workers.app import app as celery_app
    from relaygraph.workers.app import run_worker

    settings = celery_app.relaygraph_settings
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        f"--queues={queues or settings.default_queue}",
    ]
    if settings.task_events:  # Flower's task list (RELAYGRAPH_TASK_EVENTS)
        argv.append("--events")
    if hostname:
        argv.append(f"--hostname={hostname}")
    code = run_worker(argv, celery_app)
    if code:
        raise typer.Exit(code)


@app.command()
def submit(
    graph: Annotated[str, typer.Argument(help="registered graph name")],
    thread: Annotated[str, typer.Option("--thread", "-t", help="thread id")],
    input: Annotated[str, typer.Option("--input", "-i", help="input as JSON")] = "{}",
    strategy: Annotated[str, typer.Option(help="reject|enqueue|interrupt|rollback")] = "reject",
    wait: Annotated[bool, typer.Option(help="follow the run's events until it ends")] = True,
    stream_mode: Annotated[
        str, typer.Option(help="recorded events: values,updates,custom,debug")
    ] = "values,updates,custom",
) -> None:
    """Submit a run and (by default) follow it."""
    client = _client()
    from relaygraph.workers.engine import stream_modes

    try:
        modes = stream_modes([mode.strip() for mode in stream_mode.split(",") if mode.strip()])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--stream-mode") from exc
    run = client.submit(
        graph,
        _parse_json(input),
        thread_id=thread,
        multitask_strategy=strategy,
        stream_mode=modes,
    )
    console.print(f"run [bold]{run.id}[/] on thread [bold]{thread}[/]")
    if wait:
        for event in run.stream(timeout=3600):
            console.print(f"[dim]{event.id}[/] {event.mode}: {event.data!r}")
        console.print(f"status: [bold]{run.status}[/]")


@app.command()
def resume(
    graph: Annotated[str, typer.Argument()],
    thread: Annotated[str, typer.Argument()],
    value: Annotated[str, typer.Argument(help="the answer, as JSON")],
) -> None:
    """Answer a thread's pending interrupt."""
    run = _client().resume(graph, thread, _parse_json(value))
    console.print(f"run [bold]{run.id}[/]: {run.wait(timeout=3600)}")


@app.command()
def runs(thread: Annotated[str, typer.Argument()]) -> None:
    """List the runs of a thread."""
    from relaygraph.workers.keys import ThreadKeys

    client = _client()
    keys = ThreadKeys(thread)
    table = Table("run", "graph", "status", "updated", "error")
    for key in sorted(client.redis.scan_iter(match=f"{keys.base}:run:*", count=1000)):
        run_id = key.decode().rsplit(":", 1)[-1]
        info = {
            k.decode(): v.decode(errors="replace")
            for k, v in client.redis.hgetall(key).items()
            if k not in (b"input", b"config")
        }
        updated = time.strftime("%H:%M:%S", time.localtime(int(info.get("updated", 0)) / 1000))
        table.add_row(
            run_id,
            info.get("graph", ""),
            info.get("status", ""),
            updated,
            info.get("error", "")[:60],
        )
    console.print(table)


@threads_app.command("state")
def thread_state(
    graph: Annotated[str, typer.Argument()], thread: Annotated[str, typer.Argument()]
) -> None:
    """The thread's current values and next nodes."""
    snapshot = _client().get_state(graph, thread)
    table = Table("key", "value")
    for key, value in snapshot.values.items():
        table.add_row(key, repr(value)[:200])
    console.print(table)
    console.print(f"next: {snapshot.next}")


@threads_app.command("history")
def thread_history(
    graph: Annotated[str, typer.Argument()],
    thread: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """The thread's checkpoints, newest first."""
    table = Table("step", "source", "next", "checkpoint", "created")
    for snapshot in _client().get_state_history(graph, thread, limit=limit):
        table.add_row(
            str(snapshot.metadata.get("step")),
            str(snapshot.metadata.get("source")),
            ",".join(snapshot.next),
            snapshot.config["configurable"]["checkpoint_id"],
            snapshot.created_at or "",
        )
    console.print(table)


@app.command()
def recover(
    once: Annotated[bool, typer.Option(help="one sweep, then exit")] = False,
    interval: Annotated[float, typer.Option()] = 1.0,
) -> None:
    """Run the recovery sweeper (workers run one too)."""
    from relaygraph.workers.app import app as celery_app
    from relaygraph.workers.app import get_engine
    from relaygraph.workers.recovery import Sweeper

    sweeper = Sweeper(get_engine(celery_app))
    while True:
        report = sweeper.sweep()
        console.print(
            f"requeued {len(report.requeued)}, barriers {len(report.barriers)}, "
            f"rescheduled {len(report.rescheduled)}"
        )
        if once:
            return
        time.sleep(interval)


@app.command()
def dev(
    workers: Annotated[int, typer.Option(help="worker processes")] = 2,
    flower_port: Annotated[int, typer.Option()] = 5555,
    graphs: Annotated[str, typer.Option(help="name=module:attr,...")] = "",
    store_embed: Annotated[
        str, typer.Option(help="embeddings of the store's semantic index ('default': offline)")
    ] = "",
    store_fields: Annotated[str, typer.Option(help="value paths to embed")] = "$",
) -> None:
    """Start an embedded Redis with search, N workers and Flower; Ctrl-C stops them all.

    The workers' memory store (``RedisStore``) lives on the same embedded Redis; give
    ``--store-embed default`` for semantic search with the offline model.
    """
    from relaygraph.persistence.redis_server import EmbeddedRedis

    with EmbeddedRedis() as server:
        env = {
            **os.environ,
            "RELAYGRAPH_REDIS_URL": server.url,
            "RELAYGRAPH_STORE_URL": server.url,
            "RELAYGRAPH_STORE_FIELDS": store_fields,
        }
        if store_embed:
            env["RELAYGRAPH_STORE_EMBED"] = store_embed
        if graphs:
            env["RELAYGRAPH_GRAPHS"] = graphs
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "relaygraph.cli",
                    "worker",
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"worker{i}@%h",
                ],
                env=env,
            )
            for i in range(workers)
        ]
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "relaygraph.workers.app",
                    "flower",
                    f"--port={flower_port}",
                ],
                env=env,
            )
        )
        console.print(
            f"redis {server.url} | {workers} workers | flower http://127.0.0.1:{flower_port}"
        )
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()


def main() -> None:
    """Entry point of the ``relaygraph`` console script."""
    app()


if __name__ == "__main__":
    main()
