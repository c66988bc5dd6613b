"""Liveness and readiness routes for Kubernetes probes.

``/healthz`` answers from memory (the process is alive and its loop turns);
``/readyz`` runs a caller-supplied check (e.g. ``SELECT 1``, a peer's health) and
answers 503 with the reason when it fails.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler

from servicekit.http.errors import error_response

log = logging.getLogger("servicekit.http")

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (anything) when the service is not ready; returns None when it is."""

_OK = {"status": "ok"}


def healthz_route(path: str = "/healthz") -> HTTPRouteHandler:
    """``GET /healthz`` -> 200 ``{"status":"ok"}``, no I/O."""

    @get(path, media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return _OK

    return healthz


def readiness_route(check: ReadinessCheck, path: str = "/readyz") -> HTTPRouteHandler:
    """``GET /readyz`` -> 200 when ``check()`` passes, else 503 naming the failure."""

    @get(path, media_type=MediaType.JSON, include_in_schema=False)
    async def readyz() -> Response[Any]:
        try:
            await check()
        except Exception as exc:
            log.warning(
                "not ready", extra={"error.kind": type(exc).__name__, "error.message": str(exc)}
            )
            return error_response(503, f"not ready: {type(exc).__name__}: {exc}")
        return Response(content=_OK, media_type=MediaType.JSON)

    return readyz
