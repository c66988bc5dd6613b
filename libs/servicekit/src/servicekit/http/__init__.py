"""Shared Litestar/ASGI pieces for every HTTP service.

- :func:`json_api` builds a Litestar app with the house rules: JSON error
  bodies for every error (``{"error": code, "detail": message}``), a bounded
  request body (413), 415 for non-JSON bodies, 400 for a body whose framing is
  broken, OpenAPI at ``/schema``.
- :func:`healthz_route` / :func:`readiness_route`: probe endpoints.
- :class:`JsonBytes` / :class:`EncodedJson`: responses whose body is JSON already.
- :func:`serve`: run it (granian, in-process) with an access log, ``HEAD``
  wherever ``GET`` is, and a graceful SIGTERM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, Middleware

from servicekit.http.access_log import AccessLogMiddleware
from servicekit.http.content_type import RequireJsonBodyMiddleware
from servicekit.http.encoded_json import EncodedJson, JsonBytes
from servicekit.http.errors import error_code, error_response, exception_handlers
from servicekit.http.health import ReadinessCheck, healthz_route, readiness_route
from servicekit.http.protocol import BrokenBodyMiddleware, HeadAsGetMiddleware
from servicekit.http.server import serve

DEFAULT_MAX_BODY_BYTES = 64 * 1024

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AccessLogMiddleware",
    "BrokenBodyMiddleware",
    "EncodedJson",
    "HeadAsGetMiddleware",
    "JsonBytes",
    "ReadinessCheck",
    "RequireJsonBodyMiddleware",
    "error_code",
    "error_response",
    "exception_handlers",
    "healthz_route",
    "json_api",
    "readiness_route",
    "serve",
]


def json_api(
    route_handlers: Sequence[ControllerRouterHandler],
    *,
    title: str,
    version: str = "1.0.0",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    middleware: Sequence[Middleware] = (),
    **litestar_options: Any,
) -> Litestar:
    """A Litestar app with JSON errors, a body limit and the JSON content-type rule.

    Extra keyword arguments (``lifespan``, ``on_startup``, ``dependencies``,
    ``state``...) go to :class:`litestar.Litestar` unchanged.
    """
    return Litestar(
        route_handlers=list(route_handlers),
        exception_handlers=exception_handlers(),
        request_max_body_size=max_body_bytes,
        middleware=[BrokenBodyMiddleware, RequireJsonBodyMiddleware, *middleware],
        openapi_config=OpenAPIConfig(title=title, version=version),
        debug=False,
        # Logging is servicekit.logs' job (JSON on stdout); Litestar must not reconfigure it.
        logging_config=None,
        **litestar_options,
    )
