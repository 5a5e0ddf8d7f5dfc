"""Anchore's error body, `{"message", "httpcode", "detail"}`, for every error the API answers.

anchore-cli prints it as "Error: … / HTTP Code: …", so a refused request, a bad body or an
image that is not there reads the same as it does from Anchore. Nothing a handler raises
reaches a client as a traceback: an unexpected exception is logged here and answered 500.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 2xx: `status` and a one-line `message`."""

    def __init__(self, status: int, message: str, detail: dict[str, Any] | None = None) -> None:
        self.status = status
        self.message = message
        self.detail = detail or {}
        super().__init__(message)


def error_response(status: int, message: str, detail: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "httpcode": status, "detail": detail or {}}, status_code=status)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.detail)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such route) and 405 (wrong method), in Anchore's shape, with its
    headers (a 405's `Allow`, which RFC 9110 requires)."""
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail), None)
    response.headers.update(exc.headers or {})
    return response


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")


HANDLERS = {ApiError: api_error, HTTPException: http_error, Exception: unexpected}
