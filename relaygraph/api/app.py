"""The ASGI app factory: ``create_app(settings)`` for uvicorn (or a test)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from relaygraph.api.auth import ApiKeyMiddleware
from relaygraph.api.backend import Backend
from relaygraph.api.crons import crons_forever
from relaygraph.api.errors import install_handlers
from relaygraph.api.housekeeping import housekeeping_forever
from relaygraph.api.routes import assistants, crons, runs, store, system, threads
from relaygraph.api.settings import ApiSettings

__all__ = ["create_app"]


def create_app(
    settings: ApiSettings | None = None, *, graphs: dict[str, Any] | None = None
) -> FastAPI:
    """The API for the fleet ``settings`` names (default: from ``RELAYGRAPH_*``).

    ``graphs`` overrides the registry (``RELAYGRAPH_GRAPHS``); the server loads a graph to
    read its threads, never to run it: runs go to the workers.
    """
    settings = settings or ApiSettings()
    backend = Backend(settings, graphs=graphs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = [
            asyncio.create_task(housekeeping_forever(backend, settings.api_sweep_interval)),
            asyncio.create_task(crons_forever(backend)),
        ]
        yield
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await backend.aredis.aclose()
        backend.close()

    app = FastAPI(title="relaygraph", lifespan=lifespan)
    app.state.backend = backend
    install_handlers(app)
    if settings.api_key is not None and settings.api_key.get_secret_value():
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value())
    for module in (system, assistants, threads, crons, runs, store):
        app.include_router(module.router)
    return app
