"""The graph runtime: graph API, channels, the step algorithm and the local executor.

``from relaygraph.runtime import Runtime, get_runtime`` works as LangGraph's
``from langgraph.runtime import Runtime, get_runtime`` (loaded on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExecutionInfo", "Runtime", "get_runtime"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from relaygraph.runtime import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'relaygraph.runtime' has no attribute {name!r}")
