"""LangGraph's checkpointer conformance suite, through the adapter, on every relaygraph saver.

The PyPI package ``langgraph-checkpoint-conformance`` holds 81 tests (base and extended
capabilities). They run here once per capability and per backend of the saver suite
(``saver_backend``, see conftest.py), each capability on a fresh saver, and must all pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)

from relaygraph.persistence.langgraph import LangGraphCheckpointer

# How many tests each capability holds in the installed package.
EXPECTED = {
    Capability.PUT: len(test_put.ALL_PUT_TESTS),
    Capability.PUT_WRITES: len(test_put_writes.ALL_PUT_WRITES_TESTS),
    Capability.GET_TUPLE: len(test_get_tuple.ALL_GET_TUPLE_TESTS),
    Capability.LIST: len(test_list.ALL_LIST_TESTS),
    Capability.DELETE_THREAD: len(test_delete_thread.ALL_DELETE_THREAD_TESTS),
    Capability.DELETE_FOR_RUNS: len(test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS),
    Capability.COPY_THREAD: len(test_copy_thread.ALL_COPY_THREAD_TESTS),
    Capability.PRUNE: len(test_prune.ALL_PRUNE_TESTS),
}


async def _aclose(saver: object) -> None:
    # Async connections belong to this test's event loop: close them while it runs (the
    # factory's sync exit comes after and closes the rest).
    aclose = getattr(saver, "aclose", None)
    if aclose is not None:
        await aclose()


def test_suite_has_81_tests() -> None:
    # The target is "all 81"; a new package version must be looked at, not skipped.
    assert sum(EXPECTED.values()) == 81
    assert set(EXPECTED) == set(Capability)


@pytest.mark.parametrize("capability", list(Capability), ids=lambda c: c.value)
async def test_conformance(saver_backend, capability: Capability) -> None:
    async def checkpointer() -> AsyncIterator[LangGraphCheckpointer]:
        with saver_backend.factory() as saver:
            try:
                yield LangGraphCheckpointer(saver)
            finally:
                await _aclose(saver)

    registered = RegisteredCheckpointer(name=saver_backend.name, factory=checkpointer)
    report = await validate(registered, capabilities={capability.value})
    result = report.results[capability.value]

    assert result.detected, f"{capability.value} not detected on the adapter"
    assert result.failures == [], "\n".join(result.failures)
    assert result.tests_passed == EXPECTED[capability]
