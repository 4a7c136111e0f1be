"""Every catalogue graph gives the same trace on relaygraph as on LangGraph (the oracle).

A trace holds each call's result, the thread's values / next / tasks after it, and the
history's ``(step, source, next)`` rows (see ``catalogue.run_case``).
"""

from __future__ import annotations

from typing import Any

import pytest

from .catalogue import CASES, Case, run_case
from .libs import LANGGRAPH, NAMES, relaygraph_lib

#: Cases relaygraph gets wrong, by name, with the bug's summary (details in notes/bugs.md).
#: Strict xfail: a fixed case fails the suite until it is removed from here.
KNOWN_BUGS: dict[str, str] = {}


def _param(case: Case) -> Any:
    marks = []
    if case.name in KNOWN_BUGS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name]))
    return pytest.param(case, id=case.name, marks=marks)


def _first_difference(expected: list[Any], actual: list[Any]) -> str:
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return (
                f"entry {index} ({want[0]}):\n  langgraph:  {want[1]!r}\n  relaygraph: {got[1]!r}"
            )
    return f"lengths differ: langgraph {len(expected)}, relaygraph {len(actual)}"


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 24
    assert len({c.name for c in CASES}) == len(CASES)


def test_known_bugs_name_real_cases() -> None:
    assert set(KNOWN_BUGS) <= {c.name for c in CASES}


def test_both_namespaces_offer_the_same_names() -> None:
    lib = relaygraph_lib()
    assert all(getattr(lib, name, None) is not None for name in NAMES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_same_trace_as_langgraph(case: Case) -> None:
    expected = run_case(case, LANGGRAPH)
    actual = run_case(case, relaygraph_lib())
    assert actual == expected, _first_difference(expected, actual)


# -- the oracle side: the catalogue exercises what it claims to -----------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_oracle_is_deterministic(case: Case) -> None:
    """A case whose LangGraph trace varies between runs would make the comparison flaky."""
    assert run_case(case, LANGGRAPH) == run_case(case, LANGGRAPH)


def _trace(name: str) -> list[Any]:
    return run_case(next(c for c in CASES if c.name == name), LANGGRAPH)


def _calls(trace: list[Any], kind: str) -> list[Any]:
    return [value for tag, value in trace if tag == kind]


def test_oracle_send_results_are_in_task_order() -> None:
    first = _calls(_trace("send_map_reduce"), "Invoke")[0]
    assert first["results"] == ["0:w", "1:x", "2:y", "3:z"]


def test_oracle_failing_sibling_reruns_only_the_failed_task() -> None:
    probes = _calls(_trace("failing_sibling"), "Probe")
    assert probes == [{"ok": 1, "flaky": 1, "join": 0}, {"ok": 1, "flaky": 2, "join": 1}]


def test_oracle_fan_in_waits_for_both() -> None:
    result = _calls(_trace("fan_out_fan_in"), "Invoke")[0]
    assert result["items"].count("c") == 1


def test_oracle_one_node_invoke_writes_steps_minus_one_to_one() -> None:
    history = _calls(_trace("echo"), "history")[0]
    assert [row[0] for row in reversed(history)] == [-1, 0, 1, 2, 3, 4]


def test_oracle_errors_are_observed() -> None:
    assert _calls(_trace("recursion_limit"), "Invoke") == [("error", "GraphRecursionError")]
    assert _calls(_trace("last_value_conflict"), "Invoke") == [("error", "InvalidUpdateError")]
    ambiguous = _calls(_trace("update_state_ambiguous"), "UpdateState")
    assert ("error", "InvalidUpdateError") in ambiguous


def test_oracle_replay_forks() -> None:
    history = _calls(_trace("replay_fork"), "history")[0]
    assert [row for row in history if row[1] == "fork"]
