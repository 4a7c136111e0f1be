"""The API's routes, one module per resource."""

from __future__ import annotations

from fastapi import Request

from relaygraph.api.backend import Backend

__all__ = ["get_backend"]


def get_backend(request: Request) -> Backend:
    """The process's :class:`Backend` (a FastAPI dependency)."""
    return request.app.state.backend
