"""The differential catalogue's graphs, importable by worker processes.

Workers find graphs by import string; this module builds every catalogue case with
relaygraph at import, so ``tests.workers.catalogue_graphs:<case>`` names each graph and
``CALLS[<case>]`` its calls.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# the catalogue is imported as the top-level package "differential" by its own tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from differential.catalogue import CASES, DataState, Invoke, ModelState, Resume, normalize
from differential.catalogue_v1 import UserContext
from differential.libs import relaygraph_lib

from relaygraph import register_type

# Run inputs travel through the serializer: an application registers its state classes.
register_type(DataState, name="catalogue.DataState")
register_type(ModelState, name="catalogue.ModelState")
register_type(UserContext, name="catalogue.UserContext")  # a run context, serialized likewise

__all__ = ["CALLS", "GRAPHS", "REGISTRY", "Invoke", "Resume", "normalize"]

GRAPHS: dict[str, Any] = {}
CALLS: dict[str, list[Any]] = {}


def _distributable(calls: list[Any]) -> bool:
    """Runs a client can submit: plain invokes and resumes (no streams, edits or probes)."""
    return all(type(call) in (Invoke, Resume) for call in calls)


for _case in CASES:
    _graph, _calls = _case.build(relaygraph_lib())
    if _graph.checkpointer is not None and _distributable(_calls):
        GRAPHS[_case.name] = _graph
        CALLS[_case.name] = _calls
        globals()[_case.name] = _graph

REGISTRY = ",".join(f"{name}=tests.workers.catalogue_graphs:{name}" for name in GRAPHS)
