"""Configs laid over one another: a graph's ``with_config`` defaults under a call's config."""

from __future__ import annotations

from typing import Any

__all__ = ["merge_configs"]

_DICT_KEYS = ("configurable", "metadata")


def merge_configs(*configs: dict[str, Any] | None) -> dict[str, Any]:
    """Later configs win key by key; ``configurable`` and ``metadata`` merge key by key,
    ``tags`` and ``callbacks`` (lists) add up, as LangGraph merges them.

    >>> merge_configs({"recursion_limit": 5, "configurable": {"a": 1}, "tags": ["x"]},
    ...               {"configurable": {"b": 2}, "tags": ["y"]})
    {'recursion_limit': 5, 'configurable': {'a': 1, 'b': 2}, 'tags': ['x', 'y']}
    """
    merged: dict[str, Any] = {}
    for config in configs:
        for key, value in (config or {}).items():
            if key in _DICT_KEYS and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **(value or {})}
            elif key == "tags" and merged.get(key):
                merged[key] = list(dict.fromkeys([*merged[key], *(value or [])]))
            elif key == "callbacks" and merged.get(key) and value:
                merged[key] = _combined_callbacks(merged[key], value)
            elif key in _DICT_KEYS and isinstance(value, dict):
                merged[key] = dict(value)
            else:
                merged[key] = value
    return merged


def _combined_callbacks(base: Any, more: Any) -> Any:
    """Two callback lists add up; a callback manager takes the other's handlers."""
    if isinstance(base, list) and isinstance(more, list):
        return [*base, *more]
    if isinstance(more, list):
        manager = base.copy()
        for handler in more:
            manager.add_handler(handler, inherit=True)
        return manager
    if isinstance(base, list):
        manager = more.copy()
        for handler in base:
            manager.add_handler(handler, inherit=True)
        return manager
    return more.merge(base) if hasattr(more, "merge") else more
