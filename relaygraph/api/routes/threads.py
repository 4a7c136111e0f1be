"""Threads: records, search, copy, delete, state and history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from relaygraph.api.backend import Backend
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import (
    HistoryRequest,
    ThreadCreate,
    ThreadSearch,
    ThreadStateUpdate,
    ThreadUpdate,
)

router = APIRouter(prefix="/threads")


@router.post("")
def create(body: ThreadCreate, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """Create a thread (``if_exists``: ``raise`` gives 409, ``do_nothing`` returns it),
    its history filled by ``supersteps``."""
    return backend.create_thread(
        body.thread_id, body.metadata, body.if_exists, body.supersteps, body.ttl
    )


@router.post("/search")
def search(body: ThreadSearch, backend: Backend = Depends(get_backend)) -> list[dict[str, Any]]:
    """Threads by metadata, ids and status, newest first."""
    return backend.search_threads(body.metadata, body.ids, body.status, body.limit, body.offset)


@router.post("/count")
def count(body: ThreadSearch, backend: Backend = Depends(get_backend)) -> int:
    """How many threads match."""
    return backend.count_threads(body.metadata, body.ids, body.status)


@router.get("/{thread_id}")
def get(thread_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """One thread: metadata, status, values, interrupts."""
    return backend.thread(thread_id)


@router.patch("/{thread_id}")
def update(
    thread_id: str, body: ThreadUpdate, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """Merge metadata into the thread's; ``ttl`` (re)sets its TTL."""
    return backend.update_thread(thread_id, body.metadata, body.ttl)


@router.delete("/{thread_id}", status_code=204)
def delete(thread_id: str, backend: Backend = Depends(get_backend)) -> Response:
    """Delete the thread with its checkpoints and runs (an active run is cancelled)."""
    backend.delete_thread(thread_id)
    return Response(status_code=204)


@router.post("/{thread_id}/copy")
def copy(thread_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """A new thread with a copy of this one's history."""
    return backend.copy_thread(thread_id)


@router.get("/{thread_id}/state")
def state(thread_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """The thread's current state."""
    return backend.state(thread_id)


@router.post("/{thread_id}/state")
def update_state(
    thread_id: str, body: ThreadStateUpdate, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """Edit the state as node ``as_node``; answers the new checkpoint."""
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    return backend.update_state(thread_id, body.values, body.as_node, checkpoint_id)


@router.post("/{thread_id}/state/checkpoint")
def state_at_body(
    thread_id: str, body: dict[str, Any], backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """The state at ``checkpoint.checkpoint_id``."""
    checkpoint = body.get("checkpoint") or {}
    return backend.state(thread_id, checkpoint.get("checkpoint_id"))


@router.get("/{thread_id}/state/{checkpoint_id}")
def state_at(
    thread_id: str, checkpoint_id: str, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """The state at one checkpoint."""
    return backend.state(thread_id, checkpoint_id)


@router.post("/{thread_id}/history")
def history(
    thread_id: str, body: HistoryRequest, backend: Backend = Depends(get_backend)
) -> list[dict[str, Any]]:
    """The thread's states, newest first (``limit``, ``before``, ``metadata``)."""
    return backend.history(thread_id, body.limit, body.before, body.metadata)
