"""Assistants: one per registered graph (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from relaygraph.api.backend import Backend
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import AssistantSearch
from relaygraph.api.structure import graph_drawing, graph_schemas

router = APIRouter(prefix="/assistants")


@router.post("/search")
def search(body: AssistantSearch, backend: Backend = Depends(get_backend)) -> list[dict[str, Any]]:
    """Assistants matching graph_id / name / metadata."""
    found = [
        a
        for a in backend.assistants()
        if (body.graph_id is None or a["graph_id"] == body.graph_id)
        and (body.name is None or a["name"] == body.name)
        and all(a["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
    ]
    return found[body.offset : body.offset + body.limit]


@router.post("/count")
def count(body: AssistantSearch, backend: Backend = Depends(get_backend)) -> int:
    """How many assistants match."""
    return len(search(body.model_copy(update={"limit": 1000, "offset": 0}), backend))


@router.get("/{assistant_id}")
def get(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """One assistant (by id, or by graph name)."""
    return backend.assistant(backend.graph_name(assistant_id))


@router.get("/{assistant_id}/graph")
def graph(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """The graph's nodes and edges."""
    return graph_drawing(backend.graph(backend.graph_name(assistant_id)))


@router.get("/{assistant_id}/schemas")
def schemas(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """JSON schemas of the graph's state, input, output and config."""
    name = backend.graph_name(assistant_id)
    return {"graph_id": name, **graph_schemas(backend.graph(name))}
