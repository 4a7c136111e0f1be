"""The ``relaygraph`` command: workers, runs, threads, recovery and a one-machine dev fleet.

Configuration comes from the environment (``RELAYGRAPH_REDIS_URL``, ``RELAYGRAPH_GRAPHS``,
...; see :class:`relaygraph.workers.settings.WorkerSettings`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

# typer prints an argument's Python type (``<str>``) beside its name in --help; the names
# (GRAPH, THREAD, JSON) already say what goes there.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]

app = typer.Typer(
    help="relaygraph: stateful agent graphs on Celery workers.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help and plain one-line usage errors
    pretty_exceptions_enable=False,
)
threads_app = typer.Typer(
    help="Read a thread's state and history.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(threads_app, name="threads")
console = Console()
errors = Console(stderr=True)

USAGE = 2
"""Exit status of a usage error (a bad option, an unknown graph, input the graph refuses)."""
FAILED = 1
"""Exit status of a run that failed, a missing thread, an unreachable Redis."""


class CliError(Exception):
    """A one-line error for the user: printed as ``error: ...``, exit status ``code``."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Turn the errors a user can cause into one ``error:`` line and an exit status."""
    import redis

    from relaygraph.workers.client import InvalidInputError, RunRejectedError
    from relaygraph.workers.connect import BrokerOnClusterError
    from relaygraph.workers.registry import UnknownGraphError

    try:
        yield
    except CliError as exc:
        _fail(str(exc), exc.code)
    except (UnknownGraphError, InvalidInputError) as exc:
        _fail(str(exc), USAGE)
    except RunRejectedError as exc:
        _fail(str(exc), FAILED)
    except BrokerOnClusterError as exc:
        _fail(str(exc), USAGE)
    except redis.ConnectionError as exc:
        url = os.environ.get("RELAYGRAPH_REDIS_URL", "")
        _fail(f"cannot reach Redis at {url}: {exc}", FAILED)


def _fail(message: str, code: int) -> NoReturn:
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _configure() -> None:
    """Fill unset ``RELAYGRAPH_*`` connection settings from a running ``relaygraph dev``;
    without either, say exactly what to set (never fall back to a Redis on 6379)."""
    from relaygraph.workers.dev_state import read_state

    state = read_state()
    if state is not None:
        for key, value in state.env.items():
            os.environ.setdefault(key, value)
    if not os.environ.get("RELAYGRAPH_REDIS_URL"):
        raise CliError(
            "no Redis to talk to: start `relaygraph dev`, or set RELAYGRAPH_REDIS_URL "
            "(and RELAYGRAPH_GRAPHS=name=module:attr,...) to your workers' settings",
            USAGE,
        )


# The client's multitask strategies (not imported from it: --help stays quick).
STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")


def _client() -> Any:
    _configure()
    from relaygraph.workers.client import Client

    return Client()


def _parse_json(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{option}: not valid JSON ({exc}): {text}", USAGE) from exc


def _nonempty(value: str, what: str) -> str:
    if not value.strip():
        raise CliError(f"{what} must not be empty", USAGE)
    return value


def _print_json(value: Any) -> None:
    """One JSON document on stdout (anything JSON cannot hold as its repr)."""
    sys.stdout.write(json.dumps(value, default=repr) + "\n")


def _table(*columns: str) -> Table:
    """A table whose cells wrap rather than cut: ids stay whole and copyable."""
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _id_column(table: Table, name: str) -> None:
    table.add_column(name, no_wrap=True, min_width=36)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(metavar="N", help="processes in the pool")] = 2,
    queues: Annotated[
        str, typer.Option(metavar="QUEUES", help="comma-separated queues to serve")
    ] = "",
    loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="Celery's log level")] = "info",
    hostname: Annotated[
        str | None, typer.Option(metavar="NAME", help="Celery node name (name@%h)")
    ] = None,
) -> None:
    """Run a Celery worker with relaygraph's app (and its recovery sweeper); exits non-zero
    whenever Celery's worker does (e.g. its pool processes could not start)."""
    from relaygraph.workers.app import app as celery_app
    from relaygraph.workers.app import run_worker
    from relaygraph.workers.connect import check_broker

    settings = celery_app.relaygraph_settings
    with _reported():
        check_broker(settings.broker)  # before Celery connects to it
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


GRAPH = typer.Argument(metavar="GRAPH", help="registered graph name")
THREAD = typer.Argument(metavar="THREAD", help="thread id")
JSON_OUT = typer.Option("--json", help="print JSON for scripts instead of tables")


@app.command()
def submit(
    graph: Annotated[str, GRAPH],
    thread: Annotated[str, typer.Option("--thread", "-t", metavar="THREAD", help="thread id")],
    input: Annotated[
        str, typer.Option("--input", "-i", metavar="JSON", help="the run's input, as JSON")
    ] = "{}",
    strategy: Annotated[
        str,
        typer.Option(metavar="STRATEGY", help="when the thread is busy: " + "|".join(STRATEGIES)),
    ] = "reject",
    wait: Annotated[bool, typer.Option(help="follow the run's events until it ends")] = True,
    stream_mode: Annotated[
        str,
        typer.Option(
            metavar="MODES",
            help="recorded events: values,updates,custom,messages,tasks,checkpoints,debug",
        ),
    ] = "values,updates,custom",
    subgraphs: Annotated[
        bool, typer.Option(help="record subgraphs' events too (shown as MODE|NAMESPACE)")
    ] = False,
    as_json: Annotated[bool, JSON_OUT] = False,
) -> None:
    """Submit a run and (by default) follow it; exit status 1 when it fails."""
    from relaygraph.workers.engine import stream_modes

    with _reported():
        _nonempty(thread, "--thread")
        if strategy not in STRATEGIES:
            raise CliError(
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}", USAGE
            )
        try:
            modes = stream_modes([mode.strip() for mode in stream_mode.split(",") if mode.strip()])
        except ValueError as exc:
            raise CliError(f"--stream-mode: {exc}", USAGE) from exc
        value = _parse_json(input, "--input")
        client = _client()
        run = client.submit(
            graph,
            value,
            thread_id=thread,
            multitask_strategy=strategy,
            stream_mode=modes,
            subgraphs=subgraphs,
        )
        _follow(run, wait, as_json)


@app.command()
def resume(
    graph: Annotated[str, GRAPH],
    thread: Annotated[str, THREAD],
    value: Annotated[str, typer.Argument(metavar="JSON", help="the answer, as JSON")],
    as_json: Annotated[bool, JSON_OUT] = False,
) -> None:
    """Answer a thread's pending interrupt; exit status 1 when the run fails."""
    with _reported():
        _nonempty(thread, "THREAD")
        answer = _parse_json(value, "the answer")
        run = _client().resume(graph, thread, answer)
        _follow(run, True, as_json)


class _TokenLine:
    """``messages`` events as a person reads them: a model's tokens on one line per node
    (``agent: The answer ...``), printed as they arrive; other messages as one line each."""

    def __init__(self) -> None:
        self.node: str | None = None

    def show(self, data: Any) -> bool:
        """Print a token of a ``(message chunk, metadata)`` event; False for anything else."""
        if not (isinstance(data, tuple | list) and len(data) == 2):
            return False
        message, metadata = data
        if type(message).__name__ != "AIMessageChunk" or not isinstance(message.content, str):
            return False
        node = str((metadata or {}).get("langgraph_node", "?"))
        if node != self.node:
            self.end()
            console.print(f"{node}: ", end="", markup=False, highlight=False)
            self.node = node
        console.print(message.content, end="", markup=False, highlight=False, soft_wrap=True)
        return True

    def end(self) -> None:
        """Close an open token line."""
        if self.node is not None:
            console.print()
            self.node = None


def _follow(run: Any, wait: bool, as_json: bool) -> None:
    """Print the run's events until it ends, then its status; a failed run fails the command."""
    if not as_json:
        console.print(f"run [bold]{run.id}[/] on thread [bold]{run.thread_id}[/]", soft_wrap=True)
    if not wait:
        if as_json:
            _print_json({"run_id": run.id, "thread_id": run.thread_id, "status": run.status})
        return
    tokens = _TokenLine()
    for event in run.stream(timeout=3600):
        if as_json or event.mode == "status":
            continue
        if event.mode == "messages" and tokens.show(event.data):
            continue
        tokens.end()
        mode = "|".join((event.mode, *event.namespace))
        console.print(f"[dim]{event.id}[/] {mode}: {event.data!r}", soft_wrap=True)
    tokens.end()
    status, error = run.status, run.error
    if as_json:
        _print_json(
            {"run_id": run.id, "thread_id": run.thread_id, "status": status, "error": error}
        )
    else:
        console.print(f"status: [bold]{status}[/]")
    if status == "interrupted" and not as_json:
        console.print(f"waiting for an answer: relaygraph resume GRAPH {run.thread_id} JSON")
    if status in ("error", "cancelled"):
        if not as_json:
            errors.print(f"error: {error or status}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(FAILED)


@app.command()
def runs(thread: Annotated[str, THREAD], as_json: Annotated[bool, JSON_OUT] = False) -> None:
    """List the runs of a thread, newest first."""
    from relaygraph.workers.keys import ThreadKeys

    with _reported():
        _nonempty(thread, "THREAD")
        client = _client()
        keys = ThreadKeys(thread)
        found = []
        for key in client.redis.scan_iter(match=f"{keys.base}:run:*", count=1000):
            raw = client.redis.hgetall(key)
            if not raw or b"status" not in raw:
                continue  # a run's event stream or another record under the prefix
            info = {
                k.decode(): v.decode(errors="replace")
                for k, v in raw.items()
                if k not in (b"input", b"config")
            }
            info["run_id"] = key.decode().rsplit(":", 1)[-1]
            found.append(info)
        if not found:
            raise CliError(f"thread {thread!r} has no runs")
        found.sort(
            key=lambda i: (int(i.get("created") or 0), int(i.get("updated") or 0)), reverse=True
        )
        if as_json:
            _print_json(
                [
                    {
                        "run_id": i["run_id"],
                        "graph": i.get("graph", ""),
                        "status": i.get("status", ""),
                        "created": _iso(i.get("created")),
                        "updated": _iso(i.get("updated")),
                        "error": i.get("error") or None,
                    }
                    for i in found
                ]
            )
            return
        table = Table()
        _id_column(table, "run")
        for column in ("graph", "status", "updated", "error"):
            table.add_column(column, overflow="fold")
        for info in found:
            table.add_row(
                info["run_id"],
                info.get("graph", ""),
                info.get("status", ""),
                _iso(info.get("updated")),
                info.get("error", ""),
            )
        console.print(table)


def _iso(ms: str | None) -> str:
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(ms) / 1000))


@threads_app.command("state")
def thread_state(
    graph: Annotated[str, GRAPH],
    thread: Annotated[str, THREAD],
    as_json: Annotated[bool, JSON_OUT] = False,
) -> None:
    """The thread's current values and next nodes."""
    with _reported():
        _nonempty(thread, "THREAD")
        snapshot = _client().get_state(graph, thread)
        if not snapshot.config.get("configurable", {}).get("checkpoint_id"):
            raise CliError(f"thread {thread!r} has no checkpoints (graph {graph!r})")
        if as_json:
            _print_json(
                {
                    "values": snapshot.values,
                    "next": list(snapshot.next),
                    "checkpoint_id": snapshot.config["configurable"]["checkpoint_id"],
                }
            )
            return
        table = _table("key", "value")
        for key, value in snapshot.values.items():
            table.add_row(key, repr(value))
        console.print(table)
        console.print(f"next: {snapshot.next}")


@threads_app.command("history")
def thread_history(
    graph: Annotated[str, GRAPH],
    thread: Annotated[str, THREAD],
    limit: Annotated[int, typer.Option(metavar="N", help="checkpoints to show")] = 20,
    as_json: Annotated[bool, JSON_OUT] = False,
) -> None:
    """The thread's checkpoints, newest first."""
    with _reported():
        _nonempty(thread, "THREAD")
        history = _client().get_state_history(graph, thread, limit=limit)
        if not history:
            raise CliError(f"thread {thread!r} has no checkpoints (graph {graph!r})")
        rows = [
            {
                "step": snapshot.metadata.get("step"),
                "source": snapshot.metadata.get("source"),
                "next": list(snapshot.next),
                "checkpoint_id": snapshot.config["configurable"]["checkpoint_id"],
                "created": snapshot.created_at,
            }
            for snapshot in history
        ]
        if as_json:
            _print_json(rows)
            return
        table = Table()
        for column in ("step", "source", "next"):
            table.add_column(column, overflow="fold")
        _id_column(table, "checkpoint")
        table.add_column("created", overflow="fold")
        for row in rows:
            table.add_row(
                str(row["step"]),
                str(row["source"]),
                ",".join(row["next"]),
                row["checkpoint_id"],
                row["created"] or "",
            )
        console.print(table)


@app.command()
def recover(
    once: Annotated[bool, typer.Option(help="one sweep, then exit")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help="between sweeps (default: RELAYGRAPH_SWEEP_INTERVAL, 1)"
        ),
    ] = None,
) -> None:
    """Run the recovery sweeper (workers run one too)."""
    with _reported():
        _configure()
        from relaygraph.workers.app import app as celery_app
        from relaygraph.workers.app import get_engine
        from relaygraph.workers.recovery import Sweeper

        # The workers' cadence: a pass holds its buckets' sweep locks for one
        # RELAYGRAPH_SWEEP_INTERVAL, so sweeping at it keeps the fleet's rhythm.
        if interval is None:
            interval = celery_app.relaygraph_settings.sweep_interval
        elif interval <= 0:
            raise CliError(f"--interval must be above 0, got {interval}", USAGE)
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
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 8123,
    workers: Annotated[int, typer.Option(metavar="N", help="server processes")] = 1,
    loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="uvicorn's log level")] = "info",
) -> None:
    """Serve the HTTP API that langgraph-sdk clients speak; runs go to the workers."""
    from relaygraph.api.server import serve as run_server

    run_server(host=host, port=port, workers=workers, log_level=loglevel)


@app.command()
def dev(
    workers: Annotated[int, typer.Option(metavar="N", help="worker processes")] = 2,
    flower_port: Annotated[int, typer.Option(metavar="PORT", help="Flower's port")] = 5555,
    flower_address: Annotated[
        str,
        typer.Option(
            metavar="HOST",
            help="address of Flower and the API; any other than 127.0.0.1 needs "
            "FLOWER_BASIC_AUTH (and RELAYGRAPH_API_KEY, unless --api-port 0)",
        ),
    ] = "127.0.0.1",
    graphs: Annotated[
        str, typer.Option(metavar="NAME=MODULE:ATTR,...", help="the graphs the workers serve")
    ] = "",
    store_embed: Annotated[
        str,
        typer.Option(
            metavar="EMBED", help="embeddings of the store's semantic index ('default': offline)"
        ),
    ] = "",
    store_fields: Annotated[str, typer.Option(metavar="PATHS", help="value paths to embed")] = "$",
    api_port: Annotated[
        int, typer.Option(metavar="PORT", help="HTTP API port (0: no API)")
    ] = 8123,
) -> None:
    """Start an embedded Redis with search, N workers, Flower and the HTTP API on this
    machine.

    The workers' memory store (RedisStore) lives on the same embedded Redis; give
    --store-embed default for semantic search with the offline model. Prints "ready"
    when the fleet takes work; Ctrl-C or SIGTERM stops the API, workers, Flower, then
    Redis.
    The other commands find this fleet on their own (or use the printed exports).
    """
    from relaygraph.workers.dev_fleet import DevFleet, DevFleetError

    fleet = DevFleet(
        workers=workers,
        flower_port=flower_port,
        flower_address=flower_address,
        api_port=api_port,
        graphs=graphs,
        store_embed=store_embed,
        store_fields=store_fields,
        say=lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True),
    )
    try:
        fleet.run()
    except DevFleetError as exc:
        _fail(str(exc), FAILED)


def main() -> None:
    """Entry point of the ``relaygraph`` console script."""
    app()


if __name__ == "__main__":
    main()
