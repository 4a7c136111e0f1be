"""``relaygraph serve``: the API under uvicorn."""

from __future__ import annotations

__all__ = ["serve"]


def serve(
    host: str = "127.0.0.1", port: int = 8123, workers: int = 1, log_level: str = "info"
) -> None:
    """Run the API (settings from ``RELAYGRAPH_*``) until interrupted."""
    import uvicorn

    uvicorn.run(
        "relaygraph.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
