"""Checkpoint savers and the memory store against LangGraph's, on the same servers, in one run.

    python bench/persistence.py [--quick] [--rounds N] [--long-rounds N] [--turns N]
                                [--store-sizes 10000,100000] [--queries N] [--puts N]

Checkpoint savers: relaygraph's RedisSaver, PostgresSaver, SqliteSaver (a file) and
InMemorySaver next to langgraph-checkpoint-redis, langgraph-checkpoint-postgres, LangGraph's
SqliteSaver and InMemorySaver, all on the same servers: a private Redis with the search and
JSON modules (both Redis savers share it), the PostgreSQL at 127.0.0.1:5432 in a private
schema dropped afterwards, SQLite files in a temporary directory.

The same echo conversation (a ``MessagesState`` graph whose node answers each human
message) runs once in each library on an in-memory recorder. The recorded saver calls --
``get_tuple``, ``put`` with the real checkpoints (relaygraph's with its compare-and-set
``expected_head``), ``put_writes`` -- are replayed turn by turn into every saver on fresh
threads, all savers advancing in lockstep with their order rotating every turn, so machine
noise hits all alike. A *step* is a turn's last ``put`` (the node's commit, which grows the
thread to ``2 * turn`` messages) plus the ``get_tuple`` of the head that starts the next turn.
The floor is one pipelined ``SET`` + ``ZADD`` round trip with a payload the size of
relaygraph's checkpoint write at that step, plus one ``GET`` of it, replayed in the same
lockstep.

Also measured: ``list`` of 100 checkpoints; bytes Redis holds for a 50-turn thread (``MEMORY
USAGE`` of its keys, and ``INFO used_memory`` growth); bytes each step sends to Redis
(``INFO total_net_input_bytes``); and the memory store: put and semantic search p50/p95 at
two sizes of 384-dim items, next to the same KNN query sent by RedisVL itself on the same
index, and langgraph-checkpoint-redis's RedisStore, with recall@10 against exact (numpy)
search. Vectors are synthetic (see :func:`vectors`): the embed functions look them up,
nothing runs a model.

Everything is printed and saved to ``bench/results/persistence.json`` (``bench/report.py``
renders docs/benchmarks.md's tables and plots from it). Read medians and ratios, not
absolute times: the machine is a shared 2-core VM.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _results  # noqa: E402
from bench._libs import graph_libs  # noqa: E402
from bench._results import Plot, Table, print_table, save  # noqa: E402
from bench._targets import Target, met_line, targets_table, title  # noqa: E402
from relaygraph.persistence.redis_server import EmbeddedRedis  # noqa: E402

POSTGRES = os.environ.get(
    "RELAYGRAPH_BENCH_POSTGRES", "host=127.0.0.1 port=5432 dbname=test user=postgres"
)
DIMS = 384
SIZES = (10, 100, 1000)  # messages: the step rows of the saver table
GROWTH = (10, 20, 50, 100, 200, 300, 500, 700, 1000)  # messages: the growing-thread rows
MEMORY_TURNS = 50
COLD_READS = 5  # cold get_tuple calls per sampled turn (their median is the sample)
HUMAN = "Can you summarise what we said about the deployment plan, step {i}? " * 2
ECHO = "Here is the summary you asked for, point by point: "
BACKENDS = ("Redis", "PostgreSQL", "SQLite", "in-memory")

Op = tuple[Any, ...]


# -- the conversation, recorded once per library -----------------------------------------


def _recorder(base: type) -> Any:
    """An in-memory saver of class ``base`` that also logs every call the graph makes."""

    class Recorder(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[Op] = []

        def get_tuple(self, config: Any) -> Any:
            self.ops.append(("get_tuple", config))
            return super().get_tuple(config)

        def put(self, config: Any, checkpoint: Any, metadata: Any, versions: Any, **kw: Any) -> Any:
            self.ops.append(("put", config, checkpoint, metadata, versions, kw))
            return super().put(config, checkpoint, metadata, versions, **kw)

        def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> Any:
            self.ops.append(("put_writes", config, list(writes), task_id, task_path))
            return super().put_writes(config, writes, task_id, task_path)

    return Recorder()


def record(lib: SimpleNamespace, turns: int) -> list[list[Op]]:
    """The saver calls of each turn of one echo conversation of ``turns`` turns."""

    def respond(state: Any) -> dict[str, Any]:
        return {"messages": [lib.AIMessage(content=ECHO + state["messages"][-1].content)]}

    builder = lib.StateGraph(lib.MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(lib.START, "respond")
    builder.add_edge("respond", lib.END)
    saver = _recorder(lib.Saver)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "recorded"}}
    out = []
    for turn in range(turns):
        start = len(saver.ops)
        graph.invoke({"messages": [lib.HumanMessage(content=HUMAN.format(i=turn))]}, config)
        out.append(saver.ops[start:])
    return out


def _on_thread(config: dict[str, Any], thread_id: str) -> dict[str, Any]:
    return {**config, "configurable": {**config["configurable"], "thread_id": thread_id}}


def _head(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def _last_put(ops: Sequence[Op]) -> int:
    return max(i for i, op in enumerate(ops) if op[0] == "put")


# -- the systems under test ----------------------------------------------------------------


class Floor:
    """The 1-round-trip floor of a checkpoint write: pipelined SET + ZADD; a GET reads it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._payloads: dict[int, bytes] = {}

    def put(self, thread_id: str, size: int) -> None:
        """Write ``size`` bytes and index them, in one round trip."""
        payload = self._payloads.get(size)
        if payload is None:
            payload = self._payloads[size] = os.urandom(size)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(f"floor:{{{thread_id}}}:head", payload)
        pipe.zadd(f"floor:{{{thread_id}}}:ix", {secrets.token_hex(8): 0})
        pipe.execute()

    def get_tuple(self, config: dict[str, Any]) -> bytes | None:
        """Read the last write back: one GET."""
        return self.client.get(f"floor:{{{config['configurable']['thread_id']}}}:head")

    def delete_thread(self, thread_id: str) -> None:
        """Drop the thread's two keys."""
        self.client.delete(f"floor:{{{thread_id}}}:head", f"floor:{{{thread_id}}}:ix")


@dataclass
class System:
    """One saver under test (or the floor) and how it replays a recorded turn."""

    name: str
    lib: str  # "relaygraph", "langgraph" or "floor"
    backend: str
    saver: Any
    cold: Any = None  # relaygraph: a second saver with its cache off (a reader that never wrote)

    @property
    def log(self) -> str:
        """Whose recorded conversation this system replays."""
        return "langgraph" if self.lib == "langgraph" else "relaygraph"

    def call(self, op: Op, thread_id: str, size: int) -> None:
        """One recorded saver call, on ``thread_id`` (the floor writes ``size`` bytes)."""
        kind = op[0]
        if kind == "get_tuple":
            self.saver.get_tuple(_on_thread(op[1], thread_id))
        elif kind == "put":
            _, config, checkpoint, metadata, versions, kwargs = op
            if self.lib == "floor":
                self.saver.put(thread_id, size)
            else:
                extra = kwargs if self.lib == "relaygraph" else {}  # expected_head (CAS)
                self.saver.put(
                    _on_thread(config, thread_id), checkpoint, metadata, versions, **extra
                )
        elif self.lib != "floor":  # the floor has no pending writes
            _, config, writes, task_id, task_path = op
            self.saver.put_writes(_on_thread(config, thread_id), writes, task_id, task_path)


def put_sizes(turns: list[list[Op]]) -> list[list[int]]:
    """Per recorded relaygraph call, the bytes its RedisSaver ``put`` sends (0 for others)."""
    from relaygraph import RedisSaver

    encoder = RedisSaver(url="redis://unused")  # prepare_put only encodes: it never connects
    out = []
    for ops in turns:
        sizes = []
        for op in ops:
            if op[0] != "put":
                sizes.append(0)
                continue
            _, config, checkpoint, metadata, versions, kwargs = op
            prepared = encoder.prepare_put(config, checkpoint, metadata, versions, **kwargs)
            parts = [*prepared.keys, *prepared.args]
            sizes.append(sum(len(p) if isinstance(p, bytes | str) else len(str(p)) for p in parts))
        out.append(sizes)
    return out


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A private schema for this run, dropped afterwards; yields a conninfo that uses it."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"rg_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(POSTGRES, options=f"-c search_path={name}")
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextlib.contextmanager
def redis_client(url: str) -> Iterator[Any]:
    """A plain redis-py client (bytes replies), closed afterwards."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def open_systems(url: str, conninfo: str, tmp: Path) -> Iterator[list[System]]:
    """Every saver under test, set up on the shared servers, and the floor."""
    import psycopg
    from langgraph.checkpoint.memory import InMemorySaver as LangGraphMemory
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgres
    from langgraph.checkpoint.redis import RedisSaver as LangGraphRedis
    from langgraph.checkpoint.sqlite import SqliteSaver as LangGraphSqlite
    from psycopg.rows import dict_row

    import relaygraph as rg

    rg_db, lg_db = str(tmp / "relaygraph.db"), str(tmp / "langgraph.db")
    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        redis_saver = enter(rg.RedisSaver.from_conn_string(url))
        postgres = enter(rg.PostgresSaver.from_conn_string(conninfo))
        postgres.setup()
        sqlite = enter(rg.SqliteSaver.from_conn_string(rg_db))
        sqlite.setup()
        cold_redis = enter(rg.RedisSaver.from_conn_string(url, cache_size=0))
        cold_postgres = enter(rg.PostgresSaver.from_conn_string(conninfo, cache_size=0))
        cold_sqlite = enter(rg.SqliteSaver.from_conn_string(rg_db, cache_size=0))
        lg_redis = enter(LangGraphRedis.from_conn_string(url))
        lg_redis.setup()
        # The connection LangGraph's PostgresSaver.from_conn_string opens.
        conn = enter(
            psycopg.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        )
        lg_postgres = LangGraphPostgres(conn)
        lg_postgres.setup()
        lite = sqlite3.connect(lg_db, check_same_thread=False)
        stack.callback(lite.close)
        lg_sqlite = LangGraphSqlite(lite)
        lg_sqlite.setup()
        floor = Floor(enter(redis_client(url)))
        yield [
            System("relaygraph Redis", "relaygraph", "Redis", redis_saver, cold_redis),
            System("LangGraph Redis", "langgraph", "Redis", lg_redis),
            System("floor", "floor", "Redis", floor),
            System("relaygraph PostgreSQL", "relaygraph", "PostgreSQL", postgres, cold_postgres),
            System("LangGraph PostgreSQL", "langgraph", "PostgreSQL", lg_postgres),
            System("relaygraph SQLite", "relaygraph", "SQLite", sqlite, cold_sqlite),
            System("LangGraph SQLite", "langgraph", "SQLite", lg_sqlite),
            System("relaygraph in-memory", "relaygraph", "in-memory", rg.InMemorySaver()),
            System("LangGraph in-memory", "langgraph", "in-memory", LangGraphMemory()),
        ]


# -- checkpoint measurements ---------------------------------------------------------------


Book = dict[tuple[int, int], float]  # (round, turn) -> seconds


@dataclass
class Samples:
    """What the replay rounds measured, per system name."""

    put: dict[str, Book] = field(default_factory=dict)
    get: dict[str, Book] = field(default_factory=dict)
    cold: dict[str, Book] = field(default_factory=dict)
    lists: dict[str, list[float]] = field(default_factory=dict)
    sent: dict[str, dict[int, int]] = field(default_factory=dict)  # turn -> bytes of its step
    turns: int = 0  # the longest thread replayed


class NetInput:
    """Bytes the Redis server has received (``INFO stats``), less INFO's own request."""

    def __init__(self, client: Any) -> None:
        self.client = client
        first = self.read()
        self.overhead = self.read() - first

    def read(self) -> int:
        """The server's ``total_net_input_bytes``."""
        return int(self.client.info("stats")["total_net_input_bytes"])


def run_rounds(
    systems: list[System],
    logs: dict[str, list[list[Op]]],
    sizes: list[list[int]],
    samples: Samples,
    *,
    rounds: int,
    turns: int,
    first_round: int = 0,
    sampled: frozenset[int] = frozenset(),
    net: NetInput | None = None,
    list_limit: int | None = None,
) -> None:
    """Replay ``turns`` turns on fresh threads, every system in lockstep, ``rounds`` times.

    Each turn visits the systems (and a cold reader per relaygraph saver that has one) in a
    fresh random order, so none always follows the same neighbour. Every call is timed:
    turn ``t``'s step is its last put and the get_tuple opening turn ``t + 1``. A cold
    reader reads its saver's head when that thread is at a ``sampled`` turn (the median of
    :data:`COLD_READS` reads); in the first round ``net`` counts the bytes each Redis saver's
    step put sends.
    """
    samples.turns = max(samples.turns, turns)
    shuffle = random.Random(first_round).shuffle
    for s in systems:
        for book in (samples.put, samples.get, samples.cold, samples.sent):
            book.setdefault(s.name, {})
        samples.lists.setdefault(s.name, [])
    actors = [(s, False) for s in systems] + [(s, True) for s in systems if s.cold is not None]
    for r in range(first_round, first_round + rounds):
        threads = {s.name: f"bench-{r}-{secrets.token_hex(4)}" for s in systems}
        done = dict.fromkeys(threads, 0)  # turns each thread has completed
        for t in range(turns + 1):
            shuffle(actors)
            for s, cold in actors:
                thread = threads[s.name]
                if cold:
                    if done[s.name] in sampled:
                        reads = []
                        for _ in range(COLD_READS):
                            start = time.perf_counter()
                            s.cold.get_tuple(_head(thread))
                            reads.append(time.perf_counter() - start)
                        samples.cold[s.name][r, done[s.name]] = statistics.median(reads)
                    continue
                ops = logs[s.log][t]
                last = _last_put(ops)
                count = net if r == first_round and t + 1 in sampled else None
                if s.backend != "Redis" or s.lib == "floor":
                    count = None
                times = []
                for n, op in enumerate(ops):
                    before = count.read() if count is not None and n == last else 0
                    start = time.perf_counter()
                    s.call(op, thread, sizes[t][n])
                    times.append(time.perf_counter() - start)
                    if count is not None and n == last:
                        samples.sent[s.name][t + 1] = count.read() - before - count.overhead
                if ops[0][0] != "get_tuple":
                    raise RuntimeError(f"turn {t + 1} of {s.log} does not open with get_tuple")
                if t > 0:
                    samples.get[s.name][r, t] = times[0]  # the head after turn t
                if t < turns:
                    samples.put[s.name][r, t + 1] = times[last]
                done[s.name] = t + 1
        if list_limit:
            for s in systems:
                if s.lib == "floor":
                    continue
                start = time.perf_counter()
                got = list(s.saver.list(_head(threads[s.name]), limit=list_limit))
                samples.lists[s.name].append(time.perf_counter() - start)
                if len(got) != list_limit:
                    raise RuntimeError(f"{s.name} listed {len(got)} checkpoints, not {list_limit}")
        for s in systems:
            s.saver.delete_thread(threads[s.name])
        gc.collect()


def window(messages: int, turns: int) -> list[int]:
    """The turns whose steps stand for a thread of ``messages`` messages: the turn that
    reaches it and its two neighbours (within the ``turns`` replayed)."""
    centre = min(messages // 2, turns)
    return [t for t in (centre - 1, centre, centre + 1) if 1 <= t <= turns]


def cold_window(messages: int, turns: int) -> list[int]:
    """The turns whose cold reads stand for a thread of ``messages`` messages: the turn that
    reaches it, the five before and the one after (noise comes in bursts: spread them)."""
    centre = min(messages // 2, turns)
    return [t for t in range(centre - 5, centre + 2) if 1 <= t <= turns]


def _pick(book: Book, turns: list[int]) -> list[float]:
    return [v for (_, t), v in book.items() if t in turns]


def _steps(samples: Samples, name: str, turns: list[int]) -> list[float]:
    puts, gets = samples.put.get(name, {}), samples.get.get(name, {})
    return [puts[k] + gets[k] for k in puts if k[1] in turns and k in gets]


def med_ms(values: Sequence[float]) -> float | None:
    """Median of ``values`` (seconds) in ms; None when there are none."""
    return statistics.median(values) * 1000 if values else None


def p95_ms(values: Sequence[float]) -> float | None:
    """95th percentile (nearest rank) of ``values`` (seconds) in ms; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-95 * len(ordered) // 100) - 1))] * 1000


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """``ours / theirs``, None when either is missing."""
    return None if ours is None or not theirs else ours / theirs


def step_sizes(turns: int) -> list[int]:
    """The message counts of :data:`SIZES` the replayed thread reaches."""
    return [n for n in SIZES if n <= 2 * turns]


def values(samples: Samples, kind: str, name: str, turns: list[int]) -> list[float]:
    """Seconds of one kind of call ("put", "get", "cold" or "step") by ``name`` at ``turns``.

    LangGraph's savers keep no cache, so their cold read is their get_tuple; the floor and
    the in-memory saver have none.
    """
    if kind == "step":
        return _steps(samples, name, turns)
    if kind == "cold":
        if name.startswith("LangGraph"):
            return _pick(samples.get.get(name, {}), turns)
        spread = sorted({c for t in turns for c in cold_window(2 * t, samples.turns)})
        return _pick(samples.cold.get(name, {}), spread)
    book = samples.put if kind == "put" else samples.get
    return _pick(book.get(name, {}), turns)


ROWS = (
    ("put", "put"),
    ("get", "get_tuple"),
    ("cold", "get_tuple cold"),
    ("step", "put + get_tuple"),
)


def saver_table(samples: Samples) -> Table:
    """put, get_tuple (warm and cold), put + get_tuple and list medians of every saver."""
    columns = ["operation (median ms)"]
    for backend in BACKENDS:
        columns += [f"relaygraph {backend}", f"LangGraph {backend}", f"{backend} ratio"]
        if backend == "Redis":
            columns += ["floor", "relaygraph Redis / floor"]
    table = Table(
        "Checkpoint savers: relaygraph vs LangGraph's, on the same servers",
        columns,
        notes=[
            "ratio = relaygraph / LangGraph (below 1: relaygraph is faster); medians over "
            "every round of the step reaching that many messages and its two neighbours",
            "a step = the node's put + the get_tuple of the head opening the next turn; "
            "floor = a pipelined SET+ZADD of relaygraph's put payload, and a GET back",
            "get_tuple cold: a second relaygraph saver with its cache off reads the head "
            f"(another worker's read; each sample the median of {COLD_READS} reads, at the "
            "turn reaching that many messages, the five before and the one after); "
            "LangGraph's savers keep no cache, so their cold read is their get_tuple",
            "list of 100: list(config, limit=100) on each short round's thread (53 turns, "
            "159 checkpoints)",
            "LangGraph "
            + version("langgraph")
            + ", langgraph-checkpoint-redis "
            + version("langgraph-checkpoint-redis")
            + ", langgraph-checkpoint-postgres "
            + version("langgraph-checkpoint-postgres")
            + ", langgraph-checkpoint-sqlite "
            + version("langgraph-checkpoint-sqlite"),
        ],
        plot=Plot(
            "bar",
            x="operation (median ms)",
            y=["relaygraph Redis", "LangGraph Redis", "floor"],
            ylabel="ms (median)",
            log=True,
        ),
        formats={c: ".2f" for c in columns[1:]},
    )
    for n in step_sizes(samples.turns):
        turns = window(n, samples.turns)
        for kind, label in ROWS:
            cells: list[Any] = [f"{label}, {n} messages"]
            for backend in BACKENDS:
                ours = med_ms(values(samples, kind, f"relaygraph {backend}", turns))
                theirs = med_ms(values(samples, kind, f"LangGraph {backend}", turns))
                cells += [ours, theirs, ratio(ours, theirs)]
                if backend == "Redis":
                    floor = med_ms(values(samples, kind, "floor", turns))
                    cells += [floor, ratio(ours, floor)]
            table.add(*cells)
    if not any(samples.lists.values()):
        return table
    cells = ["list of 100"]
    for backend in BACKENDS:
        ours = med_ms(samples.lists.get(f"relaygraph {backend}", []))
        theirs = med_ms(samples.lists.get(f"LangGraph {backend}", []))
        cells += [ours, theirs, ratio(ours, theirs)]
        if backend == "Redis":
            cells += [None, None]
    table.add(*cells)
    return table


def growth_table(
    samples: Samples,
    names: list[str],
    title: str = "A step's cost as one thread grows (put + get_tuple, median ms)",
    note: str = "each backend's savers (and the floor) ran in their own lockstep",
) -> Table:
    """put + get_tuple per step as one thread grows, per system (a line each)."""
    table = Table(
        title,
        ["messages", *names],
        notes=[
            "median over every round of the step reaching that many messages and its two "
            "neighbours; " + note
        ],
        plot=Plot("line", x="messages", y=names, ylabel="ms per step (median)", log=True),
        formats={name: ".2f" for name in names},
    )
    for n in GROWTH:
        if n > 2 * samples.turns:
            continue
        turns = window(n, samples.turns)
        table.add(n, *(med_ms(_steps(samples, name, turns)) for name in names))
    return table


def bytes_table(samples: Samples) -> Table:
    """Bytes each step's put sends to Redis as the thread grows."""
    names = ["relaygraph Redis", "LangGraph Redis"]
    table = Table(
        "Bytes a step sends to Redis as one thread grows",
        ["messages", *names],
        notes=[
            "INFO total_net_input_bytes around the node's put (the turn's last), first long round"
        ],
        plot=Plot("line", x="messages", y=names, ylabel="bytes per step", log=True),
        formats={name: ",.0f" for name in names},
    )
    for n in GROWTH:
        turn = n // 2
        if turn in samples.sent.get(names[0], {}):
            table.add(n, *(samples.sent[name].get(turn) for name in names))
    return table


# -- bytes held per thread -----------------------------------------------------------------


def thread_memory(url: str, logs: dict[str, list[list[Op]]], threads: int) -> dict[str, Any]:
    """Bytes Redis holds for a :data:`MEMORY_TURNS`-turn thread, relaygraph vs LangGraph.

    Both savers replay the recorded conversation into ``threads`` threads each; per thread,
    ``MEMORY USAGE`` of every key it owns (exact, ``SAMPLES 0``), and per saver the growth of
    ``used_memory`` (which includes the search index langgraph-checkpoint-redis maintains).
    """
    from langgraph.checkpoint.redis import RedisSaver as LangGraphRedis

    import relaygraph as rg

    out: dict[str, Any] = {}
    with (
        redis_client(url) as client,
        rg.RedisSaver.from_conn_string(url, prefix="mem") as ours,
        LangGraphRedis.from_conn_string(url) as theirs,
    ):
        theirs.setup()
        systems = [
            System("relaygraph Redis", "relaygraph", "Redis", ours),
            System("LangGraph Redis", "langgraph", "Redis", theirs),
        ]
        for s in systems:
            ids = [f"memory{secrets.token_hex(6)}" for _ in range(threads)]
            gc.collect()
            client.execute_command("MEMORY", "PURGE")
            before = int(client.info("memory")["used_memory"])
            for thread in ids:
                for ops in logs[s.log][:MEMORY_TURNS]:
                    for op in ops:
                        s.call(op, thread, 0)
            client.execute_command("MEMORY", "PURGE")
            grown = int(client.info("memory")["used_memory"]) - before
            per_thread = []
            for thread in ids:
                if s.lib == "relaygraph":
                    keys = ours.thread_keys(thread)
                else:
                    keys = list(client.scan_iter(match=f"*:{thread}:*", count=1000))
                per_thread.append(sum(int(client.memory_usage(k, samples=0) or 0) for k in keys))
            out[s.name] = {"keys": statistics.median(per_thread), "used_memory": grown / threads}
            for thread in ids:
                s.saver.delete_thread(thread)
    return out


def memory_table(memory: dict[str, Any], threads: int) -> Table:
    """Bytes per 50-turn thread in Redis, relaygraph vs langgraph-checkpoint-redis."""
    table = Table(
        f"Bytes Redis holds for one {MEMORY_TURNS}-turn thread ({2 * MEMORY_TURNS} messages)",
        ["measure", "relaygraph Redis", "LangGraph Redis", "ratio"],
        notes=[
            f"{threads} threads per saver; ratio = relaygraph / LangGraph",
            "MEMORY USAGE: every key of the thread (SAMPLES 0); used_memory: the server's "
            "growth per thread, search-index entries included",
        ],
        formats={"relaygraph Redis": ",.0f", "LangGraph Redis": ",.0f", "ratio": ".3f"},
    )
    ours, theirs = memory["relaygraph Redis"], memory["LangGraph Redis"]
    for key, label in (("keys", "MEMORY USAGE of its keys"), ("used_memory", "used_memory growth")):
        table.add(label, ours[key], theirs[key], ratio(ours[key], theirs[key]))
    return table


# -- the memory store ----------------------------------------------------------------------


def vectors(count: int, queries: int, seed: int = 7) -> tuple[Any, Any]:
    """Unit 384-dim vectors shaped like sentence embeddings: clusters with noise.

    ``count // 100`` random centres; every item and query is a centre plus Gaussian noise
    (norm about 1.6 times the centre's), normalised. Queries are fresh draws, not items.
    """
    import numpy as np

    rng = np.random.default_rng(seed)

    def unit(x: Any) -> Any:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    centres = unit(rng.standard_normal((max(10, count // 100), DIMS)))
    items = unit(
        centres[rng.integers(0, len(centres), count)] + 0.08 * rng.standard_normal((count, DIMS))
    )
    asks = unit(
        centres[rng.integers(0, len(centres), queries)]
        + 0.08 * rng.standard_normal((queries, DIMS))
    )
    return items, asks


@dataclass
class StoreRun:
    """One store size's samples per system (seconds) and recall@10 per system."""

    size: int
    put: dict[str, list[float]] = field(default_factory=dict)
    search: dict[str, list[float]] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)


STORE_SYSTEMS = ("relaygraph RedisStore", "raw RedisVL", "LangGraph RedisStore")


def store_run(url: str, size: int, queries: int, puts: int) -> StoreRun:
    """Load ``size`` items into both stores, then time searches and puts, alternating."""
    import numpy as np
    from langgraph.store.base import PutOp as LangGraphPutOp
    from langgraph.store.redis import RedisStore as LangGraphStore
    from redisvl.index import SearchIndex
    from redisvl.query import VectorQuery

    from relaygraph.persistence.store.base import PutOp
    from relaygraph.persistence.store.redis import RedisStore

    items, asks = vectors(size + puts, queries)
    lookup = {f"item {i}": items[i] for i in range(size + puts)}
    lookup.update({f"query {j}": asks[j] for j in range(queries)})

    def embed(texts: list[str]) -> list[list[float]]:
        return [lookup[text].tolist() for text in texts]

    run = StoreRun(size)
    tag = f"{size}_{secrets.token_hex(3)}"
    index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
    namespace = ("memories",)
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(RedisStore.from_conn_string(url, index=index, name=f"rg_{tag}"))
        theirs = stack.enter_context(
            LangGraphStore.from_conn_string(
                url, index=index, store_prefix=f"lgs_{tag}", vector_prefix=f"lgv_{tag}"
            )
        )
        client = stack.enter_context(redis_client(url))
        stack.callback(_drop_indexes, client, [f"rg_{tag}", f"lgs_{tag}", f"lgv_{tag}"])
        ours.setup()
        theirs.setup()
        for name, store, op in (
            ("relaygraph RedisStore", ours, PutOp),
            ("LangGraph RedisStore", theirs, LangGraphPutOp),
        ):
            start = time.perf_counter()
            for first in range(0, size, 500):  # pipelined batches of 500
                store.batch(
                    [
                        op(namespace, f"k{i}", {"text": f"item {i}"})
                        for i in range(first, min(size, first + 500))
                    ]
                )
            run.load_seconds[name] = time.perf_counter() - start
        _wait_indexed(client, [f"rg_{tag}", f"lgs_{tag}", f"lgv_{tag}"])

        raw = SearchIndex.from_existing(f"rg_{tag}", redis_client=client)

        def raw_search(j: int) -> list[str]:
            query = VectorQuery(
                vector=embed([f"query {j}"])[0],
                vector_field_name="vec",
                return_fields=["$.key", "$.value"],
                num_results=10,
                dialect=3,
            )
            return [_raw_key(doc) for doc in raw.query(query)]

        search: dict[str, Callable[[int], list[str]]] = {
            "relaygraph RedisStore": lambda j: [
                item.key for item in ours.search(namespace, query=f"query {j}", limit=10)
            ],
            "raw RedisVL": raw_search,
            "LangGraph RedisStore": lambda j: [
                item.key for item in theirs.search(namespace, query=f"query {j}", limit=10)
            ],
        }
        exact = np.argsort(-(asks @ items[:size].T), axis=1)[:, :10]
        hits: dict[str, list[float]] = {name: [] for name in STORE_SYSTEMS}
        run.search = {name: [] for name in STORE_SYSTEMS}
        for j in range(queries):
            shift = j % len(STORE_SYSTEMS)
            for name in STORE_SYSTEMS[shift:] + STORE_SYSTEMS[:shift]:
                start = time.perf_counter()
                keys = search[name](j)
                run.search[name].append(time.perf_counter() - start)
                truth = {f"k{i}" for i in exact[j]}
                hits[name].append(len(truth & set(keys)) / 10)
        run.recall = {name: statistics.fmean(values) for name, values in hits.items()}

        from relaygraph.persistence.store import redis_query as rq

        def raw_put(i: int) -> None:
            # The document relaygraph's store writes, loaded by RedisVL itself (one JSON.SET).
            doc = rq.build_document(
                namespace, f"raw{i}", {"text": f"item {i}"}, embed([f"item {i}"]), 0
            )
            now = time.time_ns() // 1000
            raw.load(
                [{**doc, "created_at": now, "updated_at": now, "seq": 0}],
                keys=[f"rg_{tag}:item:raw{i}"],
            )

        put: dict[str, Callable[[int], None]] = {
            "relaygraph RedisStore": lambda i: ours.put(
                namespace, f"new{i}", {"text": f"item {i}"}
            ),
            "raw RedisVL": raw_put,
            "LangGraph RedisStore": lambda i: theirs.put(
                namespace, f"new{i}", {"text": f"item {i}"}
            ),
        }
        run.put = {name: [] for name in STORE_SYSTEMS}
        for n in range(puts):
            shift = n % len(STORE_SYSTEMS)
            for name in STORE_SYSTEMS[shift:] + STORE_SYSTEMS[:shift]:
                start = time.perf_counter()
                put[name](size + n)
                run.put[name].append(time.perf_counter() - start)
    return run


def _raw_key(doc: dict[str, Any]) -> str:
    import json

    raw = doc.get("$.key")
    return json.loads(raw)[0] if isinstance(raw, str) and raw.startswith("[") else str(raw)


def _wait_indexed(client: Any, names: Sequence[str], timeout: float = 600) -> None:
    from relaygraph.persistence.store.redis_query import info_field

    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            if not info_field(client.execute_command("FT.INFO", name), "indexing"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"index {name} still indexing after {timeout} s")
            time.sleep(0.1)


def _drop_indexes(client: Any, names: Sequence[str]) -> None:
    import redis

    for name in names:
        with contextlib.suppress(redis.ResponseError):
            client.execute_command("FT.DROPINDEX", name, "DD")
    for name in names:
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        for first in range(0, len(keys), 1000):
            client.delete(*keys[first : first + 1000])


def store_table(runs: list[StoreRun]) -> Table:
    """put and search p50/p95 and recall@10 of the three systems, per size."""
    columns = ["measure", *STORE_SYSTEMS, "relaygraph / raw", "relaygraph / LangGraph"]
    table = Table(
        "Memory store: put and semantic search, 384-dim items",
        columns,
        notes=[
            "raw RedisVL: the same KNN (k=10) sent by RedisVL's VectorQuery to relaygraph's own "
            "index, no namespace filter, returning key and value; its put: SearchIndex.load of "
            "the JSON document relaygraph writes",
            "LangGraph RedisStore: langgraph-checkpoint-redis with its defaults (a FLAT, exact "
            "vector index); recall@10 against exact numpy search over the loaded items",
            "searches and puts alternate between the systems; put: new items, one at a time",
        ],
        plot=Plot("bar", x="measure", y=list(STORE_SYSTEMS), ylabel="ms", log=True),
        formats={
            **{name: ".2f" for name in STORE_SYSTEMS},
            "relaygraph / raw": ".2f",
            "relaygraph / LangGraph": ".2f",
        },
    )
    for run in runs:
        label = f"{run.size:,} items"
        for what, book in (("put", run.put), ("search", run.search)):
            for stat, fn in (("p50", med_ms), ("p95", p95_ms)):
                values = [fn(book[name]) for name in STORE_SYSTEMS]
                table.add(
                    f"{what} {stat}, {label} (ms)",
                    *values,
                    ratio(values[0], values[1]),
                    ratio(values[0], values[2]),
                )
        recall = [run.recall[name] for name in STORE_SYSTEMS]
        table.add(f"recall@10, {label}", *recall, None, None)
    return table


# -- targets -------------------------------------------------------------------------------


def _growth(samples: Samples, name: str, longest: int) -> float | None:
    late, early = window(longest, samples.turns), window(10, samples.turns)
    return ratio(med_ms(_steps(samples, name, late)), med_ms(_steps(samples, name, early)))


def targets(
    samples: Samples, alone: Samples, memory: dict[str, Any], runs: list[StoreRun]
) -> list[Target]:
    """Check every target of issue 3 on this run's numbers.

    The step targets use the shared lockstep (relaygraph, LangGraph and the floor side by
    side); the growth target uses the run of relaygraph's savers alone, the shared run's
    figure beside it.
    """
    out = []
    for n in (10, 100):
        if n > 2 * samples.turns:
            continue
        turns = window(n, samples.turns)
        ours = med_ms(_steps(samples, "relaygraph Redis", turns))
        theirs = med_ms(_steps(samples, "LangGraph Redis", turns))
        bottom = med_ms(_steps(samples, "floor", turns))
        apart = ratio(
            med_ms(_steps(alone, "relaygraph Redis", turns)), med_ms(_steps(alone, "floor", turns))
        )
        speedup = ratio(theirs, ours)
        out.append(
            Target(
                f"put+get at {n} messages at least 3x faster than langgraph-checkpoint-redis",
                f"{speedup:.1f}x" if speedup else "-",
                None if speedup is None else speedup >= 3,
                3,
            )
        )
        over = ratio(ours, bottom)
        out.append(
            Target(
                f"put+get at {n} messages within 2x of the floor (SET+ZADD, then GET)",
                (f"{over:.2f}x" if over else "-")
                + (f" (relaygraph and the floor alone: {apart:.2f}x)" if apart else ""),
                None if over is None else over <= 2,
                3,
            )
        )
    if memory:
        share = ratio(memory["relaygraph Redis"]["keys"], memory["LangGraph Redis"]["keys"])
        out.append(
            Target(
                f"bytes per {MEMORY_TURNS}-turn thread at most a tenth of "
                "langgraph-checkpoint-redis's",
                f"{share:.3f} (MEMORY USAGE of its keys)" if share else "-",
                None if share is None else share <= 0.1,
                3,
            )
        )
    for run in runs:
        over = ratio(p95_ms(run.search["relaygraph RedisStore"]), p95_ms(run.search["raw RedisVL"]))
        out.append(
            Target(
                f"store search p95 within 1.2x of raw RedisVL, {run.size:,} items",
                f"{over:.2f}x" if over else "-",
                None if over is None else over <= 1.2,
                3,
            )
        )
        recall = run.recall["relaygraph RedisStore"]
        out.append(
            Target(f"recall@10 >= 0.95, {run.size:,} items", f"{recall:.3f}", recall >= 0.95, 3)
        )
    longest = max((n for n in GROWTH if n <= 2 * samples.turns), default=None)
    if longest and longest > 10:
        name = "relaygraph Redis"
        sent = samples.sent.get(name, {})
        if 5 in sent and longest // 2 in sent:
            grew = sent[longest // 2] / sent[5]
            out.append(
                Target(
                    f"bytes written per step at {longest} messages within 1.3x of at 10",
                    f"{grew:.2f}x",
                    grew <= 1.3,
                    3,
                )
            )
        grew_alone, grew_shared = _growth(alone, name, longest), _growth(samples, name, longest)
        floor_shared = _growth(samples, "floor", longest)
        shared = (
            f" (beside LangGraph's savers: {grew_shared:.2f}x, the floor {floor_shared:.2f}x)"
            if grew_shared and floor_shared
            else ""
        )
        out.append(
            Target(
                f"time per step (put+get) at {longest} messages within 1.3x of at 10 "
                "(relaygraph's savers alone)",
                (f"{grew_alone:.2f}x" if grew_alone else "-") + shared,
                None if grew_alone is None else grew_alone <= 1.3,
                3,
            )
        )
    out += sql_targets(samples, alone, longest)
    out += cold_targets(samples, alone)
    return out


SQL_LIBS = {"PostgreSQL": "langgraph-checkpoint-postgres", "SQLite": "langgraph-checkpoint-sqlite"}
SQL_SAVERS = {"PostgreSQL": "PostgresSaver", "SQLite": "SqliteSaver"}
COLD_LIMITS = ((100, 1.5), (1000, 5.0))  # messages, ms: issue 14's cold-read targets


def sql_targets(samples: Samples, alone: Samples, longest: int | None) -> list[Target]:
    """Issue 14's SQL targets: put+get_tuple at most LangGraph's at every size (shared
    lockstep), and a step at ``longest`` messages within 1.3x of at 10 (savers alone)."""
    out = []
    for backend, lib in SQL_LIBS.items():
        saver = SQL_SAVERS[backend]
        for n in SIZES:
            if n > 2 * samples.turns:
                continue
            turns = window(n, samples.turns)
            ours = med_ms(_steps(samples, f"relaygraph {backend}", turns))
            theirs = med_ms(_steps(samples, f"LangGraph {backend}", turns))
            over = ratio(ours, theirs)
            out.append(
                Target(
                    f"{saver} put+get at {n:,} messages at most 1.0x {lib}'s",
                    f"{over:.2f}x ({ours:.2f} vs {theirs:.2f} ms)" if over else "-",
                    None if over is None else over <= 1.0,
                    14,
                )
            )
    if longest and longest > 10:
        for backend, saver in SQL_SAVERS.items():
            grew = _growth(alone, f"relaygraph {backend}", longest)
            out.append(
                Target(
                    f"{saver} time per step (put+get) at {longest:,} messages within 1.3x of "
                    "at 10 (relaygraph's savers alone)",
                    f"{grew:.2f}x" if grew else "-",
                    None if grew is None else grew <= 1.3,
                    14,
                )
            )
    return out


def cold_targets(samples: Samples, alone: Samples) -> list[Target]:
    """Issue 14's cold-read targets: another worker's get_tuple of a long thread's head,
    judged in the shared lockstep (beside LangGraph's savers); the run of relaygraph's
    savers alone is shown beside it."""
    out = []
    for n, limit in COLD_LIMITS:
        if n > 2 * samples.turns:
            continue
        turns = window(n, samples.turns)
        cold = med_ms(values(samples, "cold", "relaygraph Redis", turns))
        apart = med_ms(values(alone, "cold", "relaygraph Redis", turns))
        floor = med_ms(values(samples, "get", "floor", turns))
        measured = "-" if cold is None else f"{cold:.2f} ms"
        if apart is not None:
            measured += f" (relaygraph's savers alone: {apart:.2f} ms)"
        if floor is not None:
            measured += f"; the floor's GET of a step's write: {floor:.2f} ms"
        out.append(
            Target(
                f"RedisSaver cold get_tuple (a reader with no cache) at {n:,} messages at most "
                f"{limit:g} ms",
                measured,
                None if cold is None else cold <= limit,
                14,
            )
        )
    return out


TARGETS_TITLE = title([3, 14])


# -- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement, print the tables and save them to bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--rounds", type=int, help="short rounds (threads of 52 turns)")
    parser.add_argument("--long-rounds", type=int, help="rounds growing a thread to --turns")
    parser.add_argument("--turns", type=int, help="turns of the long thread (2 messages each)")
    parser.add_argument("--store-sizes", help="comma-separated item counts")
    parser.add_argument("--queries", type=int, help="searches per store size")
    parser.add_argument("--puts", type=int, help="puts per store size and system")
    parser.add_argument("--memory-threads", type=int, help="threads per saver for bytes held")
    parser.add_argument("--results", help="save the results file in this directory instead")
    parser.add_argument(
        "--backends",
        help="comma-separated checkpoint backends to replay (default: "
        + ",".join(BACKENDS)
        + "); without Redis the bytes-held and store measurements are skipped too, e.g. "
        "--quick --backends PostgreSQL,SQLite for the SQL rows alone",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (3 if quick else 20)
    long_rounds = args.long_rounds if args.long_rounds is not None else (1 if quick else 3)
    turns = args.turns or 500  # 1,000 messages, in quick runs too (one long round)
    short_turns = min(52, turns)
    sizes = [
        int(s)
        for s in (args.store_sizes or ("1000,5000" if quick else "10000,100000")).split(",")
        if s
    ]
    queries = args.queries or (50 if quick else 300)
    puts = args.puts or (20 if quick else 100)
    memory_threads = args.memory_threads or (2 if quick else 5)
    backends = tuple(b.strip() for b in (args.backends or ",".join(BACKENDS)).split(",") if b)
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    if "Redis" not in backends:
        sizes, memory_threads = [], 0

    started = time.perf_counter()
    libs = graph_libs()
    logs = {name: record(lib, turns + 1) for name, lib in libs.items()}
    put_bytes = put_sizes(logs["relaygraph"])
    gc.collect()
    gc.freeze()  # the recorded conversations stay: keep them out of every collection
    sampled = frozenset(
        t for n in (*SIZES, *GROWTH) for t in (*window(n, turns), *cold_window(n, turns))
    )
    samples, alone = Samples(), Samples()
    with (
        EmbeddedRedis() as server,
        postgres_schema() as conninfo,
        tempfile.TemporaryDirectory() as tmp,
        open_systems(server.url, conninfo, Path(tmp)) as systems,
        redis_client(server.url) as client,
    ):
        print(f"recorded {turns + 1} turns per library; replaying into {len(systems)} systems")
        # One backend at a time: a PostgreSQL commit's background work must not land on a
        # Redis call's timing. Within a group the systems alternate turn by turn.
        net = NetInput(client)
        for backend in backends:
            group = [s for s in systems if s.backend == backend]
            run_rounds(
                group,
                logs,
                put_bytes,
                samples,
                rounds=rounds,
                turns=short_turns,
                sampled=sampled,
                list_limit=100 if short_turns >= 50 else None,
            )
            run_rounds(
                # A quick run leaves LangGraph's Redis saver out of the long thread: its
                # 1,000-message steps take minutes (the full run has them).
                [s for s in group if not (quick and s.name == "LangGraph Redis")],
                logs,
                put_bytes,
                samples,
                rounds=long_rounds,
                turns=turns,
                first_round=rounds,
                sampled=sampled,
                net=net if backend == "Redis" else None,
            )
            print(f"{backend} savers done ({time.perf_counter() - started:.0f} s)")
        # relaygraph's savers alone: LangGraph's long threads grow by hundreds of MB on the
        # same Redis and in this process, which slows every neighbour, the floor included.
        for backend in backends:
            group = [s for s in systems if s.backend == backend and s.lib != "langgraph"]
            run_rounds(
                group,
                logs,
                put_bytes,
                alone,
                rounds=long_rounds,
                turns=turns,
                first_round=rounds + long_rounds,
                sampled=sampled,
            )
        print(f"relaygraph's savers alone done ({time.perf_counter() - started:.0f} s)")
        memory = (
            thread_memory(server.url, logs, memory_threads)
            if turns >= MEMORY_TURNS and memory_threads
            else {}
        )
        runs = []
        for size in sizes:
            runs.append(store_run(server.url, size, queries, puts))
            print(f"store at {size:,} items done ({time.perf_counter() - started:.0f} s)")
    ours = [s.name for s in systems if s.lib != "langgraph"]
    tables = [
        saver_table(samples),
        growth_table(samples, [s.name for s in systems]),
        growth_table(
            alone,
            ours,
            "relaygraph's savers alone: a step's cost as one thread grows (median ms)",
            "relaygraph's saver of each backend (and on Redis the floor) in its own lockstep, "
            "with no LangGraph thread on the server or in the process",
        ),
        bytes_table(samples),
    ]
    if quick:
        tables[0].notes.append(
            "quick run: LangGraph's Redis saver replays the short threads only (52 turns), "
            "so it has no row beyond 100 messages"
        )
    if memory:
        tables.append(memory_table(memory, memory_threads))
    if runs:
        tables.append(store_table(runs))
    found = targets(samples, alone, memory, runs)
    tables.append(targets_table(found, TARGETS_TITLE))
    for table in tables:
        print_table(table)
    given = list(sys.argv[1:] if argv is None else argv)
    if args.results:  # not part of how the numbers were made
        given = [a for a in given if not a.startswith("--results=")]
        if "--results" in given:
            at = given.index("--results")
            del given[at : at + 2]
        _results.RESULTS = Path(args.results)
    command = " ".join(["python bench/persistence.py", *given])
    path = save("persistence", tables, command)
    print(f"\n{time.perf_counter() - started:.0f} s; saved {path}")
    print(met_line(found))


if __name__ == "__main__":
    main()
