"""One page of a search the API answers from a list it read whole (assistants, crons)."""

from __future__ import annotations

from typing import Any

__all__ = ["sorted_page"]


def sorted_page(
    items: list[dict[str, Any]],
    *,
    id_key: str,
    sort_by: str | None,
    sort_order: str | None,
    offset: int,
    limit: int,
    select: list[str] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Items sorted by ``sort_by`` (creation time by default), descending unless
    ``sort_order='asc'``, ties in ``id_key`` order so pages never overlap; the page at
    ``offset`` with only the ``select`` fields, and whether more follow.

    >>> rows = [{"id": "a", "n": 2}, {"id": "b", "n": 1}, {"id": "c", "n": 2}]
    >>> sorted_page(rows, id_key="id", sort_by="n", sort_order="asc", offset=1, limit=1,
    ...             select=["id"])
    ([{'id': 'a'}], True)
    """
    descending = (sort_order or "desc") == "desc"
    key = sort_by or "created_at"
    ordered = sorted(items, key=lambda item: item[id_key], reverse=descending)
    ordered.sort(key=lambda item: item[key] or "", reverse=descending)
    page = ordered[offset : offset + limit]
    if select:
        page = [{k: item[k] for k in select if k in item} for item in page]
    return page, offset + limit < len(ordered)
