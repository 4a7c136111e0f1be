"""One page of a search the API answers from a list it read whole (assistants, crons)."""

from __future__ import annotations

from typing import Any

__all__ = ["sorted_page"]


def sorted_page(
    items: list[dict[str, Any]], id_key: str, query: Any
) -> tuple[list[dict[str, Any]], bool]:
    """Items sorted by ``query.sort_by`` (creation time by default), descending unless
    ``query.sort_order='asc'``, ties in ``id_key`` order so pages never overlap; the page at
    ``query.offset`` (``query.limit`` long) with only the ``query.select`` fields, and
    whether more follow. ``query`` is a search body (AssistantSearch, CronSearch).

    >>> from types import SimpleNamespace as Query
    >>> rows = [{"id": "a", "n": 2}, {"id": "b", "n": 1}, {"id": "c", "n": 2}]
    >>> sorted_page(rows, "id", Query(sort_by="n", sort_order="asc", offset=1, limit=1,
    ...                               select=["id"]))
    ([{'id': 'a'}], True)
    """
    descending = (query.sort_order or "desc") == "desc"
    key = query.sort_by or "created_at"
    ordered = sorted(items, key=lambda item: item[id_key], reverse=descending)
    ordered.sort(key=lambda item: item[key] or "", reverse=descending)
    end = query.offset + query.limit
    page = ordered[query.offset : end]
    if query.select:
        page = [{k: item[k] for k in query.select if k in item} for item in page]
    return page, end < len(ordered)
