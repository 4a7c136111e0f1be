"""The `relaygraph` command, run as a user runs it: a dev fleet on one machine and the client
commands against it, each a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from relaygraph.persistence.redis_server import free_port
from relaygraph.workers.client import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
# The tests on the shared `dev` fleet stay on one xdist worker (`--dist loadgroup`): one
# fleet with the offline model, not one per worker.
ON_DEV = pytest.mark.xdist_group("relaygraph-cli-dev")

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = (
    ",".join(
        f"{name}={module}:{name}"
        for name, module in (
            ("linear", "tests.workers.graphs"),
            ("ask", "tests.workers.graphs"),
            ("badwrite", "tests.workers.graphs"),
            ("badpair", "tests.workers.graphs"),
            ("failing", "tests.workers.graphs"),
            ("agent", "tests.workers.graphs"),
            ("nested", "tests.api.graphs"),
        )
    )
    + ",assistant=relaygraph.examples.assistant:graph"
)


def _base_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYGRAPH_")}
    return {**env, "PYTHONPATH": str(ROOT), "RELAYGRAPH_DEV_STATE": str(state)}


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaygraph.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (by parent links, read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has stopped)."""
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
    return alive


@dataclass
class Dev:
    """A `relaygraph dev` subprocess, its output in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    flower_port: int
    api_port: int = 0
    url: str = ""
    processes: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if re.search(r"^ready", text, re.MULTILINE):
                found = re.search(r"^export RELAYGRAPH_REDIS_URL=(\S+)", text, re.MULTILINE)
                assert found, text
                self.url = found.group(1)
                # the fleet's processes, for the check that none outlives it
                self.processes = _descendants(self.process.pid)
                return
            assert self.process.poll() is None, text
            time.sleep(0.2)
        raise AssertionError(f"not ready after {timeout}s:\n{self.output()[-3000:]}")

    def stop(self, sig: int, timeout: float = 30) -> None:
        """Send ``sig``, wait for the exit; asserts nothing it started lives on."""
        self.process.send_signal(sig)
        self.process.wait(timeout)
        left: set[int] = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = _alive(self.processes)
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"left running: {left}\n{self.output()[-3000:]}"

    def kill(self) -> None:
        """Test cleanup after a failure: SIGTERM, then SIGKILL whatever is left."""
        pids = self.processes | _descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        for pid in _alive({self.process.pid, *pids}):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def _start_dev(
    tmp: Path, *, ignore_sigint: bool = False, extra: tuple[str, ...] = (), api: bool = False
) -> Dev:
    env = _base_env(tmp / "dev.json")
    port = free_port()
    api_port = free_port() if api else 0  # 0: dev starts no API
    log = tmp / "dev.log"

    def before_exec() -> None:
        if ignore_sigint:  # as a background job of a non-interactive shell starts it
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-m", "relaygraph.cli", "dev", "--workers", "1",
         "--flower-port", str(port), "--api-port", str(api_port), "--graphs", GRAPHS, *extra],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        preexec_fn=before_exec,
    )  # fmt: skip
    return Dev(process, log, env, port, api_port)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """One dev fleet (with the offline model) for the client commands' tests; stopped by
    SIGTERM at the end, leaving no process behind."""
    extra = ("--store-embed", "default", "--store-fields", "fact")
    fleet = _start_dev(tmp_path_factory.mktemp("dev"), extra=extra)
    try:
        fleet.wait_ready()
        yield fleet
        fleet.stop(signal.SIGTERM)
    finally:
        fleet.kill()


def test_dev_fleet_runs_a_graph_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    # Started with SIGINT ignored, as `make test &` or a CI runner may start it: Python then
    # never raises KeyboardInterrupt, and the old dev ran on for ever after Ctrl-C (issue 11).
    fleet = _start_dev(tmp_path, ignore_sigint=True, api=True)
    try:
        fleet.wait_ready()
        # no RELAYGRAPH_* set: the commands find the running fleet through its state file
        env = fleet.env
        submitted = _cli(
            "submit", "linear", "--thread", "t", "--input", '{"items": [], "total": 0}', env=env
        )
        assert submitted.returncode == 0, submitted.stderr
        assert "status: success" in submitted.stdout, submitted.stdout
        history = _cli("threads", "history", "linear", "t", env=env)
        assert history.returncode == 0 and "loop" in history.stdout and "input" in history.stdout
        state = _cli("threads", "state", "linear", "t", env=env)
        assert "'a', 'b', 'c'" in state.stdout
        runs = _cli("runs", "t", env=env)
        assert "success" in runs.stdout
        for text in ("I love Python", "what do you know?"):  # the store on dev's Redis
            said = _cli(
                "submit", "assistant", "--thread", "chat", "--input",
                json.dumps({"messages": [["user", text]]}), env=env,
            )  # fmt: skip
            assert "status: success" in said.stdout, said.stdout + said.stderr
        with Client(fleet.url, graphs=GRAPHS) as client:
            answer = client.get_state("assistant", "chat").values["messages"][-1].content
        assert answer == "I know: i love python"
        # the HTTP API dev started answers for the same graphs (ready waited for it)
        api = f"http://127.0.0.1:{fleet.api_port}"
        assert f"api {api}" in fleet.output()
        found = httpx.post(f"{api}/assistants/search", json={}, timeout=10)
        assert {"linear", "assistant"} <= {a["graph_id"] for a in found.json()}
        # the thread the CLI ran is a thread of the API too, with its run
        thread = httpx.get(f"{api}/threads/t", timeout=10).json()
        assert thread["metadata"]["graph_id"] == "linear" and thread["status"] == "idle"
        listed = httpx.get(f"{api}/threads/t/runs", timeout=10).json()
        assert [r["status"] for r in listed] == ["success"]
        recovered = _cli("recover", "--once", env=env)
        assert recovered.returncode == 0 and "requeued 0" in recovered.stdout
        fleet.stop(signal.SIGINT)  # within 30 s, or TimeoutExpired (it never stopped)
        assert fleet.process.returncode == 0
        output = fleet.output()
        assert "recovery sweep failed" not in output and "Traceback" not in output, output
        assert not (tmp_path / "dev.json").exists()  # the state file goes with the fleet
    finally:
        fleet.kill()


def test_dev_fleet_stopped_by_sigterm_leaves_no_process_behind(tmp_path: Path) -> None:
    fleet = _start_dev(tmp_path)
    try:
        fleet.wait_ready()
        assert len(fleet.processes) >= 4  # redis, worker, its pool child, flower
        fleet.stop(signal.SIGTERM)
        assert fleet.process.returncode == 0
        output = fleet.output()
        assert "recovery sweep failed" not in output and "Traceback" not in output, output
        assert not (tmp_path / "dev.json").exists()
    finally:
        fleet.kill()


def test_dev_killed_with_sigkill_takes_its_fleet_with_it(tmp_path: Path) -> None:
    """dev runs no cleanup then: each child asked Linux to signal it when dev dies."""
    fleet = _start_dev(tmp_path, api=True)
    try:
        fleet.wait_ready()
        assert len(fleet.processes) >= 5  # redis, worker, its pool child, flower, api
        fleet.process.kill()
        fleet.process.wait(10)
        left: set[int] = set()
        deadline = time.monotonic() + 20  # a worker's warm shutdown, its Redis gone
        while time.monotonic() < deadline:
            if not (left := _alive(fleet.processes)):
                break
            time.sleep(0.2)
        assert not left, f"left running: {left}\n{fleet.output()[-3000:]}"
    finally:
        fleet.kill()


@ON_DEV
def test_flower_is_on_loopback_with_its_api_and_lists_thread_and_step(dev: Dev) -> None:
    output = dev.output()
    assert re.search(r"^export RELAYGRAPH_REDIS_URL=\S+ RELAYGRAPH_GRAPHS=\S+$", output, re.M)
    # the exported settings are all another shell needs (it has no state file)
    shell_env = {**_base_env(Path("/nonexistent/dev.json")), "RELAYGRAPH_REDIS_URL": dev.url,
                 "RELAYGRAPH_GRAPHS": GRAPHS}  # fmt: skip
    thread = f"flower-{uuid.uuid4().hex[:8]}"
    ran = _cli("submit", "linear", "-t", thread, "-i", '{"items": []}', env=shell_env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    listening = _listening(dev.flower_port)
    assert listening and listening <= {"127.0.0.1"}, listening
    names: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(names) < 4:
        # no login: the loopback fleet sets FLOWER_UNAUTHENTICATED_API
        url = f"http://127.0.0.1:{dev.flower_port}/api/tasks"
        with urllib.request.urlopen(url, timeout=5) as answer:
            tasks = json.load(answer)
        names = sorted(t["name"] for t in tasks.values() if thread in t["name"])
        time.sleep(0.3)
    # the task list shows names, not kwargs: thread and step are in the name
    assert names == [
        f"node linear.{node} thread={thread} step={step}"
        for node, step in (("__start__", 0), ("a", 1), ("b", 2), ("c", 3))
    ]


@ON_DEV
def test_the_offline_model_is_ready_with_the_fleet(dev: Dev) -> None:
    # dev said "ready" after the workers loaded the model (before the pool forked): the
    # first run pays no import, and the loading printed no progress bars as warnings
    thread = f"memory-{uuid.uuid4().hex[:8]}"
    for text in ("I love Python", "I live in Paris", "recall which programming language"):
        said = _cli("submit", "assistant", "-t", thread, "-i",
                    json.dumps({"messages": [["user", text]]}), env=dev.env)  # fmt: skip
        assert said.returncode == 0, said.stdout + said.stderr
    with Client(dev.url, graphs=GRAPHS) as client:
        answer = client.get_state("assistant", thread).values["messages"][-1].content
    assert answer == "Closest memory: i love python"
    output = dev.output()
    assert "Loading weights" not in output and "it/s]" not in output
    assert "recovery: requeued" not in output  # nothing taken for lost while loading


def _listening(port: int) -> set[str]:
    """The addresses a TCP socket listens on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    if width == 8:
                        found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                    else:
                        found.add("[::]" if set(address) == {"0"} else address)
    return found


@pytest.mark.parametrize(
    ("option", "what", "hint"),
    [
        ("--flower-port", "Flower", "--flower-port"),
        ("--api-port", "The HTTP API", "--api-port (0: no API)"),
    ],
)
def test_dev_refuses_a_taken_port_before_starting_anything(
    tmp_path: Path, option: str, what: str, hint: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--flower-port": free_port(), "--api-port": free_port(), option: port}
        env = _base_env(tmp_path / "dev.json")
        args = [str(arg) for pair in ports.items() for arg in pair]
        result = _cli("dev", "--workers", "1", *args, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {what}'s port 127.0.0.1:{port} is not free (Address already in use); "
        f"pick another with {hint}"
    )
    assert result.stdout == ""  # refused before starting Redis or any worker
    assert not (tmp_path / "dev.json").exists()


def test_dev_refuses_an_address_off_loopback_without_a_login(tmp_path: Path) -> None:
    env = {k: v for k, v in _base_env(tmp_path / "dev.json").items() if k != "FLOWER_BASIC_AUTH"}
    result = _cli("dev", "--workers", "1", "--flower-address", "0.0.0.0", "--flower-port",
                  str(free_port()), "--api-port", "0", env=env, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: Flower on 0.0.0.0 would be open to the network without a login: "
        "set FLOWER_BASIC_AUTH=user:password"
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    # with Flower's login but no API key: the API (on the same address) is refused too
    env["FLOWER_BASIC_AUTH"] = "user:secret"
    ports = ("--flower-port", str(free_port()), "--api-port", str(free_port()))
    result = _cli("dev", "--workers", "1", "--flower-address", "0.0.0.0", *ports, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the HTTP API on 0.0.0.0 would be open to the network without a key: "
        "set RELAYGRAPH_API_KEY, or give --api-port 0 (no API)"
    )
    assert result.stdout == "" and not (tmp_path / "dev.json").exists()


@ON_DEV
def test_bad_input_is_refused_at_submit_before_anything_is_queued(dev: Dev) -> None:
    for value, reason in (
        ({"messages": 5}, "cannot convert int to a message: 5"),
        ({"messages": [["robot", "hi"]]}, "unknown message role 'robot'"),
    ):
        thread = f"bad-{uuid.uuid4().hex[:8]}"
        result = _cli("submit", "assistant", "-t", thread, "-i", json.dumps(value), env=dev.env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"error: input of graph 'assistant': {reason}")
        assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
        runs = _cli("runs", thread, env=dev.env)
        assert runs.returncode == 1 and f"thread {thread!r} has no runs" in runs.stderr
    assert redis.Redis.from_url(dev.url).llen("relaygraph") == 0


@ON_DEV
@pytest.mark.parametrize(
    ("graph", "reason"),
    [
        ("badwrite", "node 'a': TypeError: can only concatenate list (not \"int\") to list"),
        ("badpair", "nodes 'bad', 'good': TypeError: unsupported operand type(s) for +: "),
    ],
)
def test_a_write_the_state_cannot_take_fails_the_run_at_once(
    dev: Dev, graph: str, reason: str
) -> None:
    thread = f"{graph}-{uuid.uuid4().hex[:8]}"
    result = _cli("submit", graph, "-t", thread, "-i", '{"items": [], "total": 0}', env=dev.env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "status: error" in result.stdout
    assert reason in result.stderr, result.stderr
    assert "attempts" not in result.stderr  # the run's error, never a dead worker
    assert "recovery: requeued" not in dev.output()


@ON_DEV
def test_failed_runs_fail_the_command_with_the_whole_error(dev: Dev) -> None:
    thread = f"fail-{uuid.uuid4().hex[:8]}"
    failed = _cli("submit", "failing", "-t", thread, "-i", '{"items": []}', env=dev.env)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "error: node 'fail': ValueError: the node refuses: " + "x" * 150
    as_json = _cli("submit", "failing", "-t", thread, "-i", "{}", "--json", env=dev.env)
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["status"] == "error" and document["error"].endswith("x" * 150)
    # resuming a thread with nothing pending: InvalidResumeError, in full, status 1
    nothing = _cli("resume", "failing", thread, '"yes"', env=dev.env)
    assert nothing.returncode == 1, nothing.stdout + nothing.stderr
    assert "InvalidResumeError" in nothing.stderr and "status: error" in nothing.stdout
    # an interrupt and its answer: status 0 both times
    asked = f"ask-{uuid.uuid4().hex[:8]}"
    paused = _cli("submit", "ask", "-t", asked, "-i", '{"items": []}', env=dev.env)
    assert paused.returncode == 0 and "status: interrupted" in paused.stdout
    answered = _cli("resume", "ask", asked, '"Ada"', env=dev.env)
    assert answered.returncode == 0 and "status: success" in answered.stdout, answered.stderr


@ON_DEV
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("submit", "linear", "-t", "x", "--strategy", "nope"),
         "error: --strategy must be one of reject, enqueue, interrupt, rollback, got 'nope'"),
        (("submit", "nosuch", "-t", "x"), "error: graph 'nosuch' is not registered here"),
        (("submit", "linear", "-t", " "), "error: --thread must not be empty"),
        (("submit", "linear", "-t", "x", "-i", "{items"), "error: --input: not valid JSON"),
        (("submit", "linear", "-t", "x", "--stream-mode", "everything"),
         "error: --stream-mode: stream_mode must be one or more of"),
        (("threads", "state", "linear", ""), "error: THREAD must not be empty"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_with_status_2(
    dev: Dev, args: tuple[str, ...], message: str
) -> None:
    result = _cli(*args, env=dev.env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@ON_DEV
def test_submit_prints_a_models_tokens_as_a_line_of_text(dev: Dev) -> None:
    thread = f"agent-{uuid.uuid4().hex[:8]}"
    question = json.dumps({"messages": [["user", "What is 2 + 3?"]]})
    said = _cli(
        "submit", "agent", "-t", thread, "-i", question, "--stream-mode", "messages,updates",
        env=dev.env,
    )  # fmt: skip
    assert said.returncode == 0, said.stdout + said.stderr
    assert "agent: The sum is 5, as the tool says.\n" in said.stdout, said.stdout
    assert "updates: {'tools'" in said.stdout and "status: success" in said.stdout


@ON_DEV
def test_submit_with_subgraphs_shows_the_subgraphs_updates(dev: Dev) -> None:
    thread = f"nested-{uuid.uuid4().hex[:8]}"
    args = ("submit", "nested", "-t", thread, "-i", '{"items": []}', "--stream-mode", "updates")
    said = _cli(*args, "--subgraphs", env=dev.env)
    assert said.returncode == 0, said.stdout + said.stderr
    assert re.search(r"updates\|child:\S+: \{'inner': \{'items': \['inner'\]\}\}", said.stdout)
    plain = _cli(*args, env=dev.env).stdout
    assert "updates: {'before'" in plain and "|child:" not in plain


@ON_DEV
def test_a_thread_that_does_not_exist_is_an_error(dev: Dev) -> None:
    for args in (("runs", "ghost"), ("threads", "state", "linear", "ghost"),
                 ("threads", "history", "linear", "ghost")):  # fmt: skip
        result = _cli(*args, env=dev.env)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("error: thread 'ghost' has no "), result.stderr


@ON_DEV
def test_json_output_whole_ids_and_runs_newest_first(dev: Dev) -> None:
    thread = f"json-{uuid.uuid4().hex[:8]}"
    ids = []
    for _ in range(2):
        done = _cli("submit", "linear", "-t", thread, "-i", '{"items": []}', "--json", env=dev.env)
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        assert document["status"] == "success" and document["error"] is None
        ids.append(document["run_id"])
    listed = json.loads(_cli("runs", thread, "--json", env=dev.env).stdout)
    assert [r["run_id"] for r in listed] == ids[::-1]  # newest first
    history = json.loads(_cli("threads", "history", "linear", thread, "--json", env=dev.env).stdout)
    assert history[0]["source"] == "loop" and history[0]["next"] == []
    state = json.loads(_cli("threads", "state", "linear", thread, "--json", env=dev.env).stdout)
    assert state["values"]["items"] == ["a", "b", "c"] * 2
    # tables in 80 columns (a pipe): ids whole, on one line, copyable
    narrow = {**dev.env, "COLUMNS": "80"}
    table = _cli("runs", thread, env=narrow).stdout
    assert all(run_id in table for run_id in ids), table
    assert table.index(ids[1]) < table.index(ids[0])
    table = _cli("threads", "history", "linear", thread, env=narrow).stdout
    assert all(h["checkpoint_id"] in table for h in history), table


def test_help_is_plain_text() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    commands = [(), ("submit",), ("dev",), ("runs",), ("threads", "history")]
    commands += [("worker",), ("serve",)]
    for command in commands:
        result = _cli(*command, "--help", env=env)
        assert result.returncode == 0
        for raw in ("``", "<str>", "<bool>", "<int>", "╭"):
            assert raw not in result.stdout, (command, result.stdout)


def test_without_a_fleet_or_settings_the_cli_says_what_to_set(tmp_path: Path) -> None:
    env = _base_env(tmp_path / "none.json")
    result = _cli("runs", "t", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no Redis to talk to: start `relaygraph dev`, or set RELAYGRAPH_REDIS_URL "
        "(and RELAYGRAPH_GRAPHS=name=module:attr,...) to your workers' settings"
    )
    # a state file whose fleet is gone is not a fleet
    (tmp_path / "none.json").write_text(json.dumps({"pid": 2**22 + 1, "env": {}}))
    assert _cli("runs", "t", env=env).returncode == 2
    # a Redis that does not answer: one line, status 1
    nowhere = "redis://127.0.0.1:1/0"
    result = _cli("runs", "t", env={**env, "RELAYGRAPH_REDIS_URL": nowhere})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach Redis at {nowhere}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_submit_names_a_bad_stream_mode_before_anything_is_sent() -> None:
    from typer.testing import CliRunner

    from relaygraph.cli import app as cli

    env = {"RELAYGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens: nothing sent
    result = CliRunner().invoke(
        cli, ["submit", "linear", "--thread", "t", "--stream-mode", "values,everything"], env=env
    )
    assert result.exit_code == 2
    assert "stream_mode must be one or more of" in result.output


def test_recover_sweeps_at_the_fleets_sweep_interval(redis_server: Any, tmp_path: Path) -> None:
    # Without --interval, `relaygraph recover` keeps the workers' cadence
    # (RELAYGRAPH_SWEEP_INTERVAL, for which a pass holds its buckets' sweep locks).
    env = {**_base_env(tmp_path / "none.json"), "RELAYGRAPH_REDIS_URL": redis_server.url,
           "RELAYGRAPH_SWEEP_INTERVAL": "0.2"}  # fmt: skip
    log = tmp_path / "recover.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "relaygraph.cli", "recover"],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b"requeued 0" not in log.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(2.0)  # about 10 passes at 0.2 s, 2 at the old fixed 1 s
        passes = log.read_text().count("requeued 0")
    finally:
        process.kill()
        process.wait(10)
    assert passes >= 5, log.read_text()
    bad = _cli("recover", "--interval", "0", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --interval must be above 0, got 0.0"
