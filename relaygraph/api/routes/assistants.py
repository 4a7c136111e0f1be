"""Assistants: each registered graph's default, and versioned ones created through the API
(:mod:`relaygraph.api.assistants`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from relaygraph.api.assistants import matches
from relaygraph.api.backend import Backend
from relaygraph.api.paging import sorted_page
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import (
    AssistantCreate,
    AssistantLatest,
    AssistantSearch,
    AssistantUpdate,
    AssistantVersions,
)
from relaygraph.api.structure import graph_drawing, graph_schemas

router = APIRouter(prefix="/assistants")


@router.post("")
def create(body: AssistantCreate, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """Create an assistant of a registered graph (version 1)."""
    return backend.create_assistant(body)


@router.post("/search")
def search(
    body: AssistantSearch, response: Response, backend: Backend = Depends(get_backend)
) -> list[dict[str, Any]]:
    """Assistants matching graph_id, name (a substring, any case) and metadata, sorted by
    ``sort_by`` (creation time) in ``sort_order`` (descending); ``X-Pagination-Next`` is the
    next page's offset."""
    found = [a for a in backend.assistants() if matches(a, body.graph_id, body.name, body.metadata)]
    page, more = sorted_page(found, "assistant_id", body)
    if more:
        response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return page


@router.post("/count")
def count(body: AssistantSearch, backend: Backend = Depends(get_backend)) -> int:
    """How many assistants match."""
    return sum(
        1 for a in backend.assistants() if matches(a, body.graph_id, body.name, body.metadata)
    )


@router.get("/{assistant_id}")
def get(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """One assistant (by id, or by graph name), its current version."""
    return backend.assistant(assistant_id)


@router.patch("/{assistant_id}")
def update(
    assistant_id: str, body: AssistantUpdate, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """A new version with the fields sent (metadata merged), made current."""
    return backend.update_assistant(assistant_id, body)


@router.delete("/{assistant_id}", status_code=204)
def delete(
    assistant_id: str, delete_threads: bool = False, backend: Backend = Depends(get_backend)
) -> Response:
    """Delete a created assistant (a graph's default stays: 409)."""
    backend.delete_assistant(assistant_id, delete_threads)
    return Response(status_code=204)


@router.post("/{assistant_id}/versions")
def versions(
    assistant_id: str, body: AssistantVersions, backend: Backend = Depends(get_backend)
) -> list[dict[str, Any]]:
    """The assistant's versions, newest first, those whose metadata contains ``metadata``."""
    found = [
        v
        for v in backend.assistant_versions(assistant_id)
        if all(v["metadata"].get(k) == value for k, value in (body.metadata or {}).items())
    ]
    return found[body.offset : body.offset + body.limit]


@router.post("/{assistant_id}/latest")
def latest(
    assistant_id: str, body: AssistantLatest, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """Make a version the current one."""
    return backend.set_latest_assistant(assistant_id, body.version)


@router.get("/{assistant_id}/graph")
def graph(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """The graph's nodes and edges."""
    return graph_drawing(backend.graph(backend.graph_name(assistant_id)))


@router.get("/{assistant_id}/schemas")
def schemas(assistant_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """JSON schemas of the graph's state, input, output and config."""
    name = backend.graph_name(assistant_id)
    return {"graph_id": name, **graph_schemas(backend.graph(name))}
