"""Fixtures of the store conformance suite.

Backends plug in without editing this file: every ``backend_*.py`` module in this folder
exposes ``FACTORIES``, a dict ``{test id: factory}``, and optionally ``MARKS`` (pytest
marks for all its params, e.g. ``pytest.mark.xdist_group("redis")``). A factory is called
as ``factory(index=..., ttl=...)`` with an index config (or None) and a TTL config (or
None) and returns a context manager that yields a fresh, empty store and cleans up after.
Tests asking for ``store_factory`` (directly or through ``make_store``/``store``) run once
per factory.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relaygraph.persistence.store.base import BaseStore

from .store_contract import FAKE_INDEX


@functools.cache
def _backend_params() -> list[Any]:
    params = []
    for path in sorted(pathlib.Path(__file__).parent.glob("backend_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        marks = list(getattr(module, "MARKS", []))
        for name, factory in module.FACTORIES.items():
            params.append(pytest.param(factory, id=name, marks=marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_factory" in metafunc.fixturenames:
        metafunc.parametrize("store_factory", _backend_params())


@pytest.fixture
def make_store(store_factory: Callable[..., Any]) -> Iterator[Callable[..., BaseStore]]:
    """Build stores of the backend under test: ``make_store(index=..., ttl=...)``."""
    with contextlib.ExitStack() as stack:

        def make(index: dict[str, Any] | None = None, ttl: dict[str, Any] | None = None):
            return stack.enter_context(store_factory(index=index, ttl=ttl))

        yield make


@pytest.fixture
def store(make_store: Callable[..., BaseStore]) -> BaseStore:
    """An empty store without index or TTL."""
    return make_store()


@pytest.fixture
def semantic_store(make_store: Callable[..., BaseStore]) -> BaseStore:
    """An empty store indexing the ``text`` field with the deterministic fake embedder."""
    return make_store(index=FAKE_INDEX)
