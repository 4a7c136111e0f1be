"""Runs: create (background, wait, stream), get, list, join, cancel, delete.

Stateful routes live under ``/threads/{thread_id}/runs``; ``/runs``, ``/runs/wait`` and
``/runs/stream`` are stateless runs on a thread made for them (deleted when the run is
over, unless ``on_completion='keep'``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, get_args

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from relaygraph.api.backend import Backend, requested_modes
from relaygraph.api.errors import ApiError
from relaygraph.api.housekeeping import delete_when_over
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import RunCreate, StreamMode
from relaygraph.api.streaming import read_events, sse_stream

router = APIRouter()


def _location(thread_id: str, run_id: str) -> str:
    return f"/threads/{thread_id}/runs/{run_id}"


async def _create(backend: Backend, thread_id: str | None, body: RunCreate) -> dict[str, Any]:
    return await run_in_threadpool(backend.create_run, thread_id, body)


async def _until_over(backend: Backend, thread_id: str, run_id: str) -> None:
    async for _event in read_events(backend.aredis, thread_id, run_id):
        pass


# -- background runs ---------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create(
    thread_id: str, body: RunCreate, backend: Backend = Depends(get_backend)
) -> JSONResponse:
    """Submit a run to the workers and answer at once (status ``pending``)."""
    run = await _create(backend, thread_id, body)
    location = _location(thread_id, run["run_id"])
    return JSONResponse(run, headers={"Content-Location": location})


@router.post("/runs")
async def create_stateless(
    body: RunCreate, backend: Backend = Depends(get_backend)
) -> JSONResponse:
    """A background run on a new thread, deleted after the run unless
    ``on_completion='keep'`` (by the API's housekeeping)."""
    run = await _create(backend, None, body)
    if body.on_completion == "delete":
        await run_in_threadpool(delete_when_over, backend.redis, run["thread_id"])
    location = _location(run["thread_id"], run["run_id"])
    return JSONResponse(run, headers={"Content-Location": location})


# -- wait ----------------------------------------------------------------------------------


async def _wait(backend: Backend, thread_id: str | None, body: RunCreate) -> JSONResponse:
    run = await _create(backend, thread_id, body)
    thread_id, run_id = run["thread_id"], run["run_id"]
    await _until_over(backend, thread_id, run_id)
    result = await run_in_threadpool(backend.result, thread_id, run_id)
    return JSONResponse(result, headers={"Content-Location": _location(thread_id, run_id)})


@router.post("/threads/{thread_id}/runs/wait")
async def wait(
    thread_id: str, body: RunCreate, backend: Backend = Depends(get_backend)
) -> JSONResponse:
    """Submit a run and answer the thread's values when it is over."""
    return await _wait(backend, thread_id, body)


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, backend: Backend = Depends(get_backend)) -> JSONResponse:
    """A stateless run: its final values (its thread is deleted afterwards)."""
    run = await _create(backend, None, body)
    thread_id, run_id = run["thread_id"], run["run_id"]
    await _until_over(backend, thread_id, run_id)
    result = await run_in_threadpool(backend.result, thread_id, run_id)
    if body.on_completion == "delete":
        await run_in_threadpool(backend.drop_temporary, thread_id)
    return JSONResponse(result, headers={"Content-Location": _location(thread_id, run_id)})


# -- streams -------------------------------------------------------------------------------


def _stream_response(
    backend: Backend,
    thread_id: str,
    run_id: str,
    modes: list[str],
    last_event_id: str | None,
    *,
    temporary: bool = False,
    cancel_on_disconnect: bool = False,
) -> EventSourceResponse:
    async def on_end() -> None:
        if temporary:
            await run_in_threadpool(backend.drop_temporary, thread_id)

    async def on_disconnect() -> None:
        if cancel_on_disconnect:
            with contextlib.suppress(ApiError):  # over already
                await run_in_threadpool(backend.cancel_run, thread_id, run_id, "interrupt")

    events = sse_stream(
        backend.aredis,
        thread_id,
        run_id,
        modes,
        last_event_id=last_event_id,
        on_end=on_end,
        on_disconnect=on_disconnect,
    )
    location = _location(thread_id, run_id)
    # Location: where the SDK reconnects (with Last-Event-ID) if the stream is cut off.
    headers = {"Location": f"{location}/stream", "Content-Location": location}
    return EventSourceResponse(events, headers=headers, ping=10)


@router.post("/threads/{thread_id}/runs/stream")
async def stream(
    thread_id: str, body: RunCreate, backend: Backend = Depends(get_backend)
) -> EventSourceResponse:
    """Submit a run and stream its events (SSE) until it is over."""
    run = await _create(backend, thread_id, body)
    return _stream_response(
        backend,
        thread_id,
        run["run_id"],
        body.modes,
        None,
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )


@router.post("/runs/stream")
async def stream_stateless(
    body: RunCreate, backend: Backend = Depends(get_backend)
) -> EventSourceResponse:
    """A stateless run's events (its thread is deleted after the end event)."""
    run = await _create(backend, None, body)
    return _stream_response(
        backend,
        run["thread_id"],
        run["run_id"],
        body.modes,
        None,
        temporary=body.on_completion == "delete",
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    stream_mode: list[str] | None = Query(None),
    cancel_on_disconnect: bool = False,
    last_event_id: str | None = Header(None),
    backend: Backend = Depends(get_backend),
) -> EventSourceResponse:
    """A run's events from the start (or after ``Last-Event-ID``) until it is over."""
    info = await run_in_threadpool(backend.run_record, thread_id, run_id)
    if info.get("graph") in backend.client.registry.names():
        backend.graph(info["graph"])  # its module registers the types its events carry
    modes = [mode for mode in stream_mode or () if mode]  # the SDK sends "" for none
    if unknown := sorted(set(modes) - set(get_args(StreamMode))):
        raise ApiError(422, f"stream_mode: {unknown} are not stream modes")
    modes = modes or requested_modes(info)
    return _stream_response(
        backend,
        thread_id,
        run_id,
        modes,
        last_event_id,
        cancel_on_disconnect=cancel_on_disconnect,
    )


# -- one run -------------------------------------------------------------------------------


@router.get("/threads/{thread_id}/runs")
def list_runs(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
    backend: Backend = Depends(get_backend),
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    return backend.runs(thread_id, limit, offset, status)


@router.get("/threads/{thread_id}/runs/{run_id}")
def get(thread_id: str, run_id: str, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """One run."""
    return backend.run(thread_id, run_id)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(thread_id: str, run_id: str, backend: Backend = Depends(get_backend)) -> Any:
    """Wait for the run to be over; the thread's values then."""
    await run_in_threadpool(backend.run_record, thread_id, run_id)  # 404 first
    await _until_over(backend, thread_id, run_id)
    return await run_in_threadpool(backend.result, thread_id, run_id)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    thread_id: str,
    run_id: str,
    wait: bool = False,
    action: str = Query("interrupt", pattern="^(interrupt|rollback)$"),
    backend: Backend = Depends(get_backend),
) -> Response:
    """Cancel an active run (``wait=1``: answer once it has stopped)."""
    await run_in_threadpool(backend.cancel_run, thread_id, run_id, action)
    if wait and action != "rollback":
        while not await run_in_threadpool(backend.is_final, thread_id, run_id):
            await asyncio.sleep(0.05)
    return Response(status_code=204)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
def delete(thread_id: str, run_id: str, backend: Backend = Depends(get_backend)) -> Response:
    """Delete a run that is over."""
    backend.delete_run(thread_id, run_id)
    return Response(status_code=204)
