"""Failover (issue 13): a Redis Cluster primary SIGKILLed with threads in flight, its replica
promoted; every run still ends with the local executor's result.

With ``RELAYGRAPH_COMMIT_REPLICAS=0`` (the default) a commit the dead primary had not yet
sent to its replica is lost: the thread's head goes back a step on the promoted replica and
the protocol runs that step again (a node runs at least once; the history never forks).
``bench/failover.py`` measures how often that happens and what =1 costs a hop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .failover import run_failover

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_runs_survive_a_primary_killed_and_its_replica_promoted(tmp_path: Path) -> None:
    result = run_failover(tmp_path, commit_replicas=0)
    assert result.on_victim > 0, "no thread lived on the killed primary"
    assert result.committed > 0, "the primary was killed before any commit"
    assert result.failover_s < 15, result
    assert set(result.finished.values()) == {"success"}, result.finished
    assert result.wrong == [], result
