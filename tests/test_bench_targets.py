"""The benchmarks' "Targets" tables: met, missed and unmeasured targets, and how they count.

bench/_targets.py is shared by bench/persistence.py and bench/distributed.py; the second's
``targets`` turns a run's sections into targets of issues 4, 17 and 14. No benchmark runs
here: the numbers are made up to sit on each side of each limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import distributed, persistence  # noqa: E402
from bench._recovery import KINDS  # noqa: E402
from bench._targets import Target, met_line, targets_table, title  # noqa: E402

MS = 0.001


def test_met_line_counts_only_measured_targets() -> None:
    found = [
        Target("a", "1", True, 4),
        Target("b", "2", False, 4),
        Target("c", "-", None, 14),
        Target("d", "3", True, 17),
    ]
    assert met_line(found) == "2 of 3 targets met"
    assert met_line([]) == "0 of 0 targets met"
    assert met_line([Target("c", "-", None, 14)]) == "0 of 0 targets met"


def test_table_lists_measured_targets_and_names_the_rest() -> None:
    found = [Target("a", "1.1x", True, 4), Target("b", "-", None, 14), Target("c", "2x", False, 3)]
    table = targets_table(found, title([4, 14]))
    assert table.title == "Targets (issues 4 and 14)"
    assert table.columns == ["target", "measured", "met", "issue"]
    assert table.rows == [["a", "1.1x", "yes", 4], ["c", "2x", "**no**", 3]]
    assert table.notes[-1] == "1 of 2 targets met"
    assert "b (issue 14)" in table.notes[0] and "not counted" in table.notes[0]
    alone = targets_table([Target("a", "1.1x", True, 4)], title([4]))
    assert alone.notes == ["1 of 1 targets met"]
    assert alone.title == "Targets (issue 4)"


def test_titles() -> None:
    assert title([4, 17, 14]) == "Targets (issues 4, 17 and 14)"
    assert distributed.TARGETS_TITLE == "Targets (issues 4, 17 and 14)"
    recovery_only = distributed.targets(stalls=_stalls(6.0))
    assert distributed.targets_title(recovery_only) == "Targets (issues 4 and 17)"
    assert persistence.TARGETS_TITLE == "Targets (issues 3 and 14)"


def _hops(chain: float, loop: float, bare: float = 4.0) -> dict[str, list[float]]:
    """Hop samples (seconds per task) whose medians are the given milliseconds."""
    return {
        "50-node linear graph": [chain * MS] * 3,
        "agent loop, 2 nodes x 25": [loop * MS] * 3,
        distributed.QUIET_LABEL: [4.0 * MS] * 3,
        "defaults": [3.0 * MS] * 3,
        "relaygraph's settings": [bare * MS] * 3,
    }


def _rates(ours: float, bare: float | None) -> dict[int, dict[str, list[float]]]:
    one = {"relaygraph": [ours - 1, ours, ours + 1], "bare Celery": []}
    if bare is not None:
        one["bare Celery"] = [bare, bare, bare + 5]
    return {1: one, 2: {"relaygraph": [ours * 1.5]}, 4: {"relaygraph": [ours * 1.7]}}


def _stalls(worst: float) -> dict[str, list[float]]:
    return {kind: [5.0, 5.5, worst] for kind in KINDS}


def _by(found: list[Target]) -> dict[tuple[int, str], bool | None]:
    return {(t.issue, t.what): t.met for t in found}


def test_a_full_run_judges_every_target_of_issues_4_17_and_14() -> None:
    # Hops 1.3x and 1.2x the bare chain: both under issue 4's 1.5x, only the loop under
    # issue 14's 1.25x. Throughput 0.75x of bare: missed. Stalls at most 6 s: met.
    # Order: issue 4 (2 hops, recovery), issue 17 (4 kinds), issue 14 (2 hops, throughput).
    found = distributed.targets(_hops(5.2, 4.8), _rates(120.0, 160.0), _stalls(6.0))
    assert [t.issue for t in found] == [4, 4, 4, 17, 17, 17, 17, 14, 14, 14]
    assert [t.met for t in found] == [True, True, True, True, True, True, True, False, True, False]
    assert found[0].measured.startswith("1.30x (5.20 vs 4.00 ms)")
    assert found[-1].measured == "0.75x (120.0 vs 160.0 tasks/s)"
    assert met_line(found) == "8 of 10 targets met"


def test_targets_flip_at_their_limits() -> None:
    # Every limit is inclusive: exactly 1.5x, 1.25x, 10 s and 0.8x are met.
    at = distributed.targets(_hops(6.0, 5.0), _rates(128.0, 160.0), _stalls(10.0))
    assert met_line(at) == "9 of 10 targets met"  # the chain's 1.5x is over issue 14's 1.25x
    over = distributed.targets(_hops(6.1, 6.1), _rates(127.0, 160.0), _stalls(10.5))
    assert met_line(over) == "0 of 10 targets met"


def test_a_stall_over_10_s_misses_issue_4_and_one_kind_of_issue_17() -> None:
    stalls = _stalls(6.0)
    stalls["worker"] = [5.0] * 20 + [30.0]  # one long stall: p99 over 10 s as well
    found = distributed.targets(stalls=stalls)
    met = _by(found)
    assert [t.issue for t in found] == [4, 17, 17, 17, 17]
    assert sum(1 for m in met.values() if m is False) == 2
    assert met[(17, f"{KINDS['pool']}: the thread continues within lease TTL + sweep "
                    "interval, at most 10 s at the 99th percentile")] is True  # fmt: skip


def test_a_partial_run_counts_only_what_it_measured() -> None:
    recovery_only = distributed.targets(stalls=_stalls(6.0))
    assert {t.issue for t in recovery_only} == {4, 17}
    assert not any("hop" in t.what or "throughput" in t.what for t in recovery_only)
    assert met_line(recovery_only) == "5 of 5 targets met"
    without_recovery = distributed.targets(_hops(5.2, 4.8), _rates(120.0, 160.0))
    assert not any("SIGKILL" in t.what or "99th" in t.what for t in without_recovery)
    assert met_line(without_recovery) == "3 of 5 targets met"
    assert distributed.targets() == []


def test_missing_numbers_are_unmeasured_not_missed() -> None:
    # A throughput section without the bare baseline (as an older run), a hop section
    # without the same-settings baseline, and a kind of kill without samples.
    hops = _hops(5.2, 4.8)
    del hops["relaygraph's settings"]
    stalls = _stalls(6.0)
    stalls["received"] = []
    found = distributed.targets(hops, _rates(120.0, None), stalls)
    unmeasured = [t for t in found if t.met is None]
    assert len(unmeasured) == 2 + 1 + 2 + 1  # hops (issue 4), a kind, hops (14), throughput
    assert met_line(found) == "4 of 4 targets met"
    table = targets_table(found, distributed.TARGETS_TITLE)
    assert len(table.rows) == 4 and all(row[2] == "yes" for row in table.rows)


def test_throughput_table_shows_the_baseline_and_tolerates_its_absence() -> None:
    table = distributed.throughput_table(_rates(120.0, 160.0))
    assert table.columns[:4] == ["worker processes", "relaygraph", "bare Celery", "ratio to bare"]
    assert table.rows[0] == ["1", 120.0, 160.0, 0.75, 1.0]
    assert table.rows[1][2] is None and table.rows[1][3] is None
    older = distributed.throughput_table(_rates(120.0, None))
    assert older.rows[0][2:4] == [None, None]


def test_hop_table_uses_the_same_ratios_as_the_targets() -> None:
    hops = _hops(5.2, 4.8)
    table = distributed.hop_table(hops)
    ratios = {row[0]: row[4] for row in table.rows}
    assert round(ratios["50-node linear graph"], 6) == 1.3
    assert round(ratios["agent loop, 2 nodes x 25"], 6) == 1.2


def test_cpu_table_sums_each_process_and_skips_what_was_not_measured() -> None:
    samples = {
        "cpu:relaygraph:main": [1.6, 1.8, 1.7],
        "cpu:bare Celery:main": [1.2, 1.3, 1.0],
        "cpu:relaygraph:pool": [1.5, 1.4, 1.6],
        "cpu:bare Celery:pool": [0.5, 0.6, 0.4],
        "cpu:relaygraph:client": [0.3, 0.2, 0.4],
        "cpu:bare Celery:client": [0.1, 0.1, 0.1],
        # no Redis server pid given: its row is left out, not shown as zero
    }
    table = distributed.cpu_table(samples)
    rows = {row[0]: row[1:] for row in table.rows}
    assert list(rows) == [
        distributed.CPU_ROLES["main"],
        distributed.CPU_ROLES["pool"],
        distributed.CPU_ROLES["client"],
        "total",
    ]
    assert [round(x, 6) for x in rows[distributed.CPU_ROLES["pool"]]] == [1.5, 0.5, 1.0]
    assert [round(x, 6) for x in rows["total"]] == [3.5, 1.8, 1.7]
