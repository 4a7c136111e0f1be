"""Crash tests and distributed-equals-local on the other deployments (issue 13): RabbitMQ +
one Redis, and RabbitMQ + a 3-primary Redis Cluster (``topologies``).

``test_crashes.py`` runs each kind of kill in its own test on one Redis as broker and state.
Here every kind of kill happens in one fleet per topology, which keeps the added time to a
worker start per topology: the suite is near its time budget. Likewise a catalogue case of
each kind runs on each topology (``test_catalogue.py`` runs them all on one Redis).
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from relaygraph.workers.client import Client

from . import graphs, topologies
from .catalogue_graphs import REGISTRY as CATALOGUE
from .test_catalogue import _local, _remote
from .test_crashes import INPUT, _wait_until, local_values
from .topologies import Topology

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.mark.parametrize("topology", topologies.EXTRA, indirect=True)
def test_every_kind_of_kill_in_one_fleet(
    topology: Topology, tmp_path: Path, topology_client: Client
) -> None:
    """A pool child exits right after a commit (before publishing the next nodes), a pool
    process is SIGKILLed mid node, then a whole worker is SIGKILLed with threads in flight:
    every thread ends with the local executor's values, each reducer applied once."""
    client = topology_client
    flag, marker = tmp_path / "crashed", tmp_path / "held.pid"
    fleet = topology.fleet(
        tmp_path,
        RELAYGRAPH_CRASH_AT="after_commit",
        RELAYGRAPH_CRASH_FLAG=str(flag),
        RELAYGRAPH_TEST_MARKER=str(marker),
        RELAYGRAPH_TEST_HOLD="120",
    )
    try:
        for name in ("w1", "w2"):  # started side by side: a start is most of the test
            fleet.start(name, queues="relaygraph,side", concurrency=2, wait=False)
        for name in ("w1", "w2"):
            fleet.wait_for(name, b"ready.")
        held = client.submit("held", INPUT, thread_id="kills-held")
        runs = [client.submit("fanout", INPUT, thread_id=f"kills-{i}") for i in range(6)]
        pid = int(_wait_until(lambda: marker.exists() and marker.read_text(), "'second'"))
        assert fleet.holder_of(pid) is not None
        os.kill(pid, signal.SIGKILL)  # the pool process only: its worker lives on
        fleet.kill("w1")  # the whole worker, whatever it was running: w2 finishes the runs
        assert held.wait(timeout=60) == "success", held.error
        assert flag.exists(), "no pool child exited after a commit"
        assert client.get_state("held", "kills-held").values == local_values(graphs.held)
        expected = local_values(graphs.fanout)
        for run in runs:
            assert run.wait(timeout=60) == "success", run.error
            assert client.get_state("fanout", run.thread_id).values == expected
    finally:
        fleet.stop()


# A catalogue case of each kind: a fan-out with a reducer, messages, parallel interrupts
# answered in turn, a breakpoint, a paused subgraph a node called, Command to a parent
# graph, deferred nodes; each thread (values, next, history) compared with the in-process
# run. One test per topology, not one per case: a fleet start is most of the cost, and a
# module fixture would be started on every xdist worker (``xdist_group`` does not group
# with this pytest: pytest-xdist issue 1386).
CASES = (
    "fan_out_fan_in",
    "messages_state",
    "interrupt_parallel_one_by_one",
    "interrupt_before_after_compile",
    "interrupt_in_called_subgraph",
    "command_parent_from_called_subgraph",
    "deferred_node_with_interrupt",
)


@pytest.mark.parametrize("topology", topologies.EXTRA, indirect=True)
def test_catalogue_cases_equal_local(topology: Topology, tmp_path: Path) -> None:
    fleet = topology.fleet(tmp_path, RELAYGRAPH_GRAPHS=CATALOGUE)
    try:
        for name in ("w1", "w2"):
            fleet.start(name, wait=False)
        for name in ("w1", "w2"):
            fleet.wait_for(name, b"ready.")
        with topology.client(graphs=CATALOGUE) as client:
            prefix = f"topology-{uuid.uuid4().hex[:8]}"  # the shared cluster is not flushed
            results = {name: (_remote(client, name, prefix), _local(name)) for name in CASES}
        assert {name: pair for name, pair in results.items() if pair[0] != pair[1]} == {}
    finally:
        fleet.stop()
