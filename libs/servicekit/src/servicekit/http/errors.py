"""JSON error bodies for every error response: ``{"error": code, "detail": message}``.

Every 4xx says what was wrong (naming the field where there is one); anything
unexpected becomes a logged, traceback-free JSON 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

log = logging.getLogger("servicekit.http")

_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


def error_code(status: int) -> str:
    """The short code used in the ``error`` field for an HTTP status."""
    return _CODES.get(status, "client_error" if status < 500 else "server_error")


def error_response(
    status: int,
    detail: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[dict[str, str]]:
    """A JSON error response with the conventional body."""
    return Response(
        content={"error": code or error_code(status), "detail": detail},
        status_code=status,
        media_type=MediaType.JSON,
        headers=dict(headers) if headers else None,
    )


def _validation_detail(exc: ValidationException) -> tuple[str, str]:
    """Turn Litestar's validation extras into one readable line and a code."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts: list[str] = []
    for item in extra:
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        source = getattr(item.get("source"), "value", item.get("source"))
        where = f"{source} parameter '{key}'" if source and key else (f"'{key}'" if key else "")
        parts.append(f"{where}: {message}" if where else message)
    detail = "; ".join(parts) if parts else str(exc.detail)
    return detail, "validation_error"


def _handle_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    detail, code = _validation_detail(exc)
    return error_response(400, detail, code)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        log.error(
            "request failed",
            extra={
                "http.method": request.method,
                "http.url": request.url.path,
                "error.kind": type(exc).__name__,
            },
        )
        return error_response(status, "the server could not complete the request")
    detail = str(exc.detail)
    if status == 400 and isinstance(exc.__cause__, SerializationException | msgspec.DecodeError):
        return error_response(400, f"request body is not valid JSON: {detail}", "malformed_json")
    if status == 404 and detail == "Not Found":
        detail = f"no route or resource at {request.url.path}"
    elif status == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    elif status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"request body is larger than the limit of {limit} bytes"
        # The rest of the body was not read: the connection cannot be reused.
        return error_response(
            status, detail, headers={**(exc.headers or {}), "Connection": "close"}
        )
    headers = exc.headers or None
    return error_response(status, detail, headers=headers)


def _handle_undecodable(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # msgspec raises UnicodeDecodeError (not a DecodeError) for invalid UTF-8,
    # surrogates or overlong sequences inside a JSON string.
    return error_response(400, f"request body is not valid UTF-8: {exc.reason}", "malformed_json")


def _handle_recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    if "deserializing" in str(exc):  # msgspec's decoder: JSON nested too deeply
        return error_response(400, "request body is nested too deeply", "malformed_json")
    return _handle_unexpected(request, exc)


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"http.method": request.method, "http.url": request.url.path},
    )
    return error_response(500, "internal error; the request was logged")


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers for Litestar's ``exception_handlers=``: JSON bodies, no tracebacks."""
    return {
        ValidationException: _handle_validation,
        NotFoundException: _handle_http,
        MethodNotAllowedException: _handle_http,
        HTTPException: _handle_http,
        UnicodeDecodeError: _handle_undecodable,
        RecursionError: _handle_recursion,
        Exception: _handle_unexpected,
    }
