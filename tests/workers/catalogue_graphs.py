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

from differential.catalogue import CASES, DataState, Invoke, ModelState, Resume, Stream, normalize
from differential.catalogue_v1 import UserContext
from differential.libs import relaygraph_lib

from relaygraph import register_type

# Run inputs travel through the serializer: an application registers its state classes.
register_type(DataState, name="catalogue.DataState")
register_type(ModelState, name="catalogue.ModelState")
register_type(UserContext, name="catalogue.UserContext")  # a run context, serialized likewise

__all__ = ["CALLS", "GRAPHS", "REGISTRY", "Invoke", "Resume", "Stream", "call_modes", "normalize"]

GRAPHS: dict[str, Any] = {}
CALLS: dict[str, list[Any]] = {}


#: What a submitted run can do of what a catalogue call asks.
_SUBMITTABLE_MODES = {"values", "updates", "custom"}
_SUBMITTABLE_KWARGS = {"context", "interrupt_before", "interrupt_after"}


def call_modes(call: Any) -> list[str]:
    """The stream modes a call's run is compared in: a stream's own, else values+updates."""
    if isinstance(call, Stream):
        return [call.mode] if isinstance(call.mode, str) else list(call.mode)
    return ["values", "updates"]


def _submittable(call: Any) -> bool:
    if type(call) is Resume:
        return True
    if type(call) not in (Invoke, Stream) or set(call.kwargs) - _SUBMITTABLE_KWARGS:
        return False
    return set(call_modes(call)) <= _SUBMITTABLE_MODES


def _distributable(calls: list[Any]) -> bool:
    """Runs a client can submit: invokes, resumes and streams in the modes a run records
    (no async calls, state edits or probes)."""
    return all(_submittable(call) for call in calls)


for _case in CASES:
    _graph, _calls = _case.build(relaygraph_lib())
    if _graph.checkpointer is not None and _distributable(_calls):
        GRAPHS[_case.name] = _graph
        CALLS[_case.name] = _calls
        globals()[_case.name] = _graph

REGISTRY = ",".join(f"{name}=tests.workers.catalogue_graphs:{name}" for name in GRAPHS)
