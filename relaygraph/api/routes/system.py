"""``/ok`` (liveness, no key needed) and ``/info``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends

from relaygraph.api.backend import Backend
from relaygraph.api.routes import get_backend

router = APIRouter()


@router.get("/ok")
def ok() -> dict[str, bool]:
    """Liveness: the process answers (probes and load balancers)."""
    return {"ok": True}


@router.get("/info")
def info(backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """Server version and what it supports; also checks Redis answers."""
    backend.redis.ping()
    try:
        release = version("relaygraph")
    except PackageNotFoundError:  # running from a checkout
        release = "0+unknown"
    return {
        "version": release,
        "server": "relaygraph",
        "graphs": backend.client.registry.names(),
        "flags": {"assistants": True, "crons": True, "langsmith": False, "store": True},
        "metadata": {},
    }
