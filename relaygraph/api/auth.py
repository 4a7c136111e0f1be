"""The optional API key: with ``RELAYGRAPH_API_KEY`` set, ``x-api-key`` must carry it."""

from __future__ import annotations

import hmac

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/ok"})
"""Routes that answer without a key (load balancer and Kubernetes probes)."""


class ApiKeyMiddleware(BaseHTTPMiddleware):
    """401 for a request without the right ``x-api-key`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        super().__init__(app)
        self._key = api_key.encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path not in OPEN_PATHS:
            given = request.headers.get("x-api-key", "").encode()
            if not hmac.compare_digest(given, self._key):
                why = "wrong x-api-key" if given else "missing x-api-key header"
                return JSONResponse({"detail": f"unauthorized: {why}"}, status_code=401)
        return await call_next(request)
