"""Where workers find graphs: a registry of import strings, and graph fingerprints.

A run records the fingerprint of its graph's structure; a worker whose graph differs
(another deployment's version) refuses the run's tasks instead of corrupting the thread.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

from relaygraph.persistence.errors import RelaygraphError

__all__ = ["GraphMismatchError", "GraphRegistry", "UnknownGraphError", "fingerprint"]


class UnknownGraphError(RelaygraphError, LookupError):
    """A run names a graph this process has not registered."""


class GraphMismatchError(RelaygraphError):
    """The worker's graph has another structure than the one the run was submitted with."""


def fingerprint(graph: Any) -> str:
    """A hash of the graph's structure: nodes, edges, branches, state keys and reducers."""
    builder = graph.builder
    shape = {
        "nodes": sorted(builder.nodes),
        "edges": sorted(map(list, builder.edges)),
        "joins": sorted([sorted(starts), end] for starts, end in builder.waiting_edges),
        "branches": {
            source: [sorted(map(str, (b.path_map or {}).values())) for b in branches]
            for source, branches in sorted(builder.branches.items())
        },
        "state": {
            key: type(channel).__name__
            + ":"
            + getattr(getattr(channel, "reducer", None), "__name__", "")
            for key, channel in sorted(builder.schema.channels().items())
        },
        "options": {name: node.options for name, node in sorted(builder.nodes.items())},
    }
    deferred = sorted(name for name, node in builder.nodes.items() if node.defer)
    if deferred:  # only then: the fingerprints of graphs without deferred nodes stay as they were
        shape["deferred"] = deferred
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


class GraphRegistry:
    """Graphs by name, given as objects or ``"module:attribute"`` import strings."""

    def __init__(self, graphs: dict[str, Any] | str | None = None) -> None:
        self._specs: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._fingerprints: dict[str, str] = {}
        if isinstance(graphs, str):
            graphs = self.parse(graphs)
        for name, spec in (graphs or {}).items():
            self.register(name, spec)

    @staticmethod
    def parse(text: str) -> dict[str, str]:
        """``"a=pkg.mod:graph, b=pkg.other:g"`` -> ``{"a": "pkg.mod:graph", ...}``."""
        result: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, target = item.partition("=")
            if not sep or ":" not in target:
                raise ValueError(f"graph registry entry {item!r} is not 'name=module:attribute'")
            result[name.strip()] = target.strip()
        return result

    def register(self, name: str, graph: Any) -> None:
        """Register ``graph`` (a compiled graph or an import string) under ``name``."""
        self._specs[name] = graph
        self._loaded.pop(name, None)
        self._fingerprints.pop(name, None)

    def names(self) -> list[str]:
        """The registered names."""
        return sorted(self._specs)

    def get(self, name: str) -> Any:
        """The compiled graph registered as ``name`` (imported on first use)."""
        if name not in self._loaded:
            if name not in self._specs:
                raise UnknownGraphError(
                    f"graph {name!r} is not registered here; known: {self.names()} "
                    "(set RELAYGRAPH_GRAPHS='name=module:attribute')"
                )
            spec = self._specs[name]
            if isinstance(spec, str):
                module, _, attribute = spec.partition(":")
                spec = importlib.import_module(module)
                for part in attribute.split("."):
                    spec = getattr(spec, part)
            self._loaded[name] = spec
        return self._loaded[name]

    def check(self, name: str, expected: str | None) -> Any:
        """The graph, after checking it has the structure ``expected`` (a fingerprint)."""
        graph = self.get(name)
        actual = self._fingerprints.get(name)
        if actual is None:  # a loaded graph's structure is fixed: hash it once per process
            actual = self._fingerprints[name] = fingerprint(graph)
        if expected and actual != expected:
            raise GraphMismatchError(
                f"graph {name!r} on this worker has fingerprint {actual}, but the run was "
                f"submitted with {expected}: deploy the same graph version to every worker"
            )
        return graph
