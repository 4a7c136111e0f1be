"""Fixtures of the checkpoint saver conformance suite.

Backends plug in without editing this file: every ``backend_*.py`` module in this folder
exposes ``FACTORIES``, a dict ``{test id: factory}`` where ``factory()`` returns a context
manager yielding a fresh, empty saver (and cleaning up after). Optional module attributes:

* ``MARKS``: pytest marks for all its params, e.g. ``[pytest.mark.xdist_group("redis")]``;
* ``STORED_BYTES``: ``STORED_BYTES(saver, thread_id) -> int``, the bytes the backend holds
  for a thread (used to check that append-only channels grow linearly). Without it the
  saver's own ``stored_bytes(thread_id)`` is used, and the test fails if neither exists.

Every test asking for ``saver`` runs once per factory.
"""

from __future__ import annotations

import functools
import importlib
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from relaygraph.persistence.base import BaseCheckpointSaver


@dataclass(frozen=True)
class Backend:
    """One saver factory of one backend module."""

    name: str
    factory: Callable[[], Any]
    module: ModuleType


@functools.cache
def _backend_params() -> list[Any]:
    params = []
    for path in sorted(pathlib.Path(__file__).parent.glob("backend_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        marks = list(getattr(module, "MARKS", []))
        for name, factory in module.FACTORIES.items():
            params.append(pytest.param(Backend(name, factory, module), id=name, marks=marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "saver_backend" in metafunc.fixturenames:
        metafunc.parametrize("saver_backend", _backend_params())


@pytest.fixture
def saver(saver_backend: Backend) -> Iterator[BaseCheckpointSaver]:
    """A fresh, empty saver of the backend under test."""
    with saver_backend.factory() as made:
        yield made


@pytest.fixture
def stored_bytes(saver_backend: Backend, saver: BaseCheckpointSaver) -> Callable[[str], int]:
    """``stored_bytes(thread_id)``: what the backend under test holds for a thread."""
    measure = getattr(saver_backend.module, "STORED_BYTES", None)
    if measure is not None:
        return lambda thread_id: measure(saver, thread_id)
    if hasattr(saver, "stored_bytes"):
        return saver.stored_bytes  # type: ignore[attr-defined]
    pytest.fail(f"backend {saver_backend.name} cannot report its stored bytes")
