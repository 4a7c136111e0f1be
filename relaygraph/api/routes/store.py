"""The cross-thread memory store the workers' nodes use (``RedisStore``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from relaygraph.api.backend import Backend
from relaygraph.api.encode import to_json
from relaygraph.api.errors import ApiError, not_found
from relaygraph.api.routes import get_backend
from relaygraph.api.schemas import StoreDelete, StoreNamespaces, StorePut, StoreSearch

router = APIRouter(prefix="/store")


def _namespace(labels: list[str], field: str = "namespace") -> tuple[str, ...]:
    for label in labels:
        if not label or "." in label:
            raise ApiError(422, f"{field}: label {label!r} must be non-empty and have no '.'")
    return tuple(labels)


async def _call(operation: Callable[[], Any]) -> Any:
    """Run a store operation in the thread pool; the store's own validation (a filter
    operator, a TTL, a value it cannot keep) answers 422 with its message."""
    try:
        return await run_in_threadpool(operation)
    except (ValueError, TypeError) as exc:
        raise ApiError(422, f"invalid store request: {exc}") from exc


@router.put("/items", status_code=204)
async def put(body: StorePut, backend: Backend = Depends(get_backend)) -> Response:
    """Create or replace an item (``index``: False to skip embedding; ``ttl`` in minutes)."""
    namespace = _namespace(body.namespace)
    if not namespace:
        raise ApiError(422, "namespace: an item needs at least one label")
    kwargs: dict[str, Any] = {} if body.ttl is None else {"ttl": body.ttl}
    await _call(lambda: backend.store.put(namespace, body.key, body.value, body.index, **kwargs))
    return Response(status_code=204)


@router.get("/items")
async def get(
    key: str,
    namespace: str = Query("", description="labels joined with '.'"),
    refresh_ttl: bool | None = None,
    backend: Backend = Depends(get_backend),
) -> dict[str, Any]:
    """One item; 404 when absent."""
    labels = tuple(namespace.split(".")) if namespace else ()
    item = await _call(lambda: backend.store.get(labels, key, refresh_ttl=refresh_ttl))
    if item is None:
        raise not_found("item", f"{namespace}/{key}")
    return to_json(item.dict())


@router.delete("/items", status_code=204)
async def delete(body: StoreDelete, backend: Backend = Depends(get_backend)) -> Response:
    """Delete an item (a missing one is a no-op)."""
    namespace = _namespace(body.namespace)
    await _call(lambda: backend.store.delete(namespace, body.key))
    return Response(status_code=204)


@router.post("/items/search")
async def search(body: StoreSearch, backend: Backend = Depends(get_backend)) -> dict[str, Any]:
    """Items under a namespace prefix, by filter, ranked by ``query`` when one is given."""
    prefix = _namespace(body.namespace_prefix, "namespace_prefix")
    items = await _call(
        lambda: backend.store.search(
            prefix,
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    )
    return {"items": [to_json(item.dict()) for item in items]}


@router.post("/namespaces")
async def namespaces(
    body: StoreNamespaces, backend: Backend = Depends(get_backend)
) -> dict[str, Any]:
    """Namespaces holding items, by prefix / suffix, truncated at ``max_depth``."""
    found = await _call(
        lambda: backend.store.list_namespaces(
            prefix=tuple(body.prefix) if body.prefix else None,
            suffix=tuple(body.suffix) if body.suffix else None,
            max_depth=body.max_depth,
            limit=body.limit,
            offset=body.offset,
        )
    )
    return {"namespaces": [list(ns) for ns in found]}
