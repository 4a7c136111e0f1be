"""Errors as the SDK expects them: a status code and ``{"detail": "<what is wrong>"}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["ApiError", "install_handlers"]


class ApiError(Exception):
    """An error answer: ``status`` and a message naming the problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def not_found(what: str, ident: str) -> ApiError:
    """404 for an unknown thread / assistant / run / item."""
    return ApiError(404, f"{what} {ident!r} not found")


def _field(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":  # its loc is a character position
        return "body"
    # ("body", "stream_mode", 0) -> "stream_mode[0]": the name a caller wrote
    # pydantic names the union member it tried ("literal[...]", "list[...]"): not a field
    parts = [
        str(p)
        for p in error.get("loc", ())
        if p not in ("body", "query", "path", "header") and "[" not in str(p)
    ]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


def install_handlers(app: FastAPI) -> None:
    """422 answers that name each bad field; ApiError as its status."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail = "; ".join(f"{_field(e)}: {e.get('msg', 'invalid')}" for e in errors)
        simple = [{"field": _field(e), "message": e.get("msg")} for e in errors]
        return JSONResponse(
            {"detail": f"invalid request: {detail}", "errors": simple}, status_code=422
        )
