"""Crons: runs submitted on a schedule (:mod:`relaygraph.api.crons`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from relaygraph.api.backend import Backend
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import CronCreate, CronSearch, CronUpdate

router = APIRouter()


@router.post("/runs/crons")
def create(body: CronCreate, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """A cron whose every run is stateless (a new thread each time)."""
    return backend.create_cron(None, body)


@router.post("/threads/{thread_id}/runs/crons")
def create_for_thread(
    thread_id: str, body: CronCreate, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """A cron whose runs go on the thread."""
    return backend.create_cron(thread_id, body)


@router.post("/runs/crons/search")
def search(body: CronSearch, backend: Backend = Depends(get_backend)) -> list[dict[str, Any]]:
    """Crons by assistant, thread, enabled and metadata; newest first unless ``sort_by``."""
    return backend.search_crons(body)


@router.post("/runs/crons/count")
def count(body: CronSearch, backend: Backend = Depends(get_backend)) -> int:
    """How many crons match."""
    return backend.count_crons(body)


@router.patch("/runs/crons/{cron_id}")
def update(
    cron_id: str, body: CronUpdate, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """Change the fields sent (schedule, payload, enabled, end time, ...)."""
    return backend.update_cron(cron_id, body)


@router.delete("/runs/crons/{cron_id}", status_code=204)
def delete(cron_id: str, backend: Backend = Depends(get_backend)) -> Response:
    """Delete the cron."""
    backend.delete_cron(cron_id)
    return Response(status_code=204)
