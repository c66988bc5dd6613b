"""One JSON access-log line per HTTP request, as a plain ASGI wrapper.

Wraps the whole application (outside Litestar's router) so that 404s and 405s
are logged too; probe requests (:mod:`servicekit.probes`) are not. Field names
are Datadog standard attributes: ``http.method``,
``http.url`` (path and query), ``http.status_code``, ``http.route`` (the route
template, when one matched), ``duration`` (nanoseconds) and
``network.client.ip``. Kept deliberately small: one closure and one log call
per request. The line is written straight to the JSON handler when logging
is set up as :func:`servicekit.logs.configure_logging` leaves it (same fields,
no LogRecord, buffered until the loop iteration ends); otherwise through
``logging`` as any record.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from servicekit.logs import context_fields, direct_handler
from servicekit.probes import is_probe

access_logger = logging.getLogger("servicekit.access")


class AccessLogMiddleware:
    """ASGI middleware that logs each HTTP request once it has been answered."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = access_logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or not self.logger.isEnabledFor(logging.INFO)
            or is_probe(scope["path"], scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        start = perf_counter_ns()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._log(scope, status, perf_counter_ns() - start)

    def _log(self, scope: HTTPScope, status: int, duration_ns: int) -> None:
        query: bytes = scope.get("query_string", b"")
        path: str = scope["path"]
        client = scope.get("client")
        extra: dict[str, Any] = {
            "http.method": scope["method"],
            "http.url": f"{path}?{query.decode('latin-1')}" if query else path,
            "http.status_code": status,
            "duration": duration_ns,
            "network.client.ip": client[0] if client else None,
        }
        route = scope.get("path_template")
        if route:
            extra["http.route"] = route
        method = scope["method"]
        handler = direct_handler(self.logger)
        if handler is not None:
            trace = context_fields()
            if trace:
                extra.update(trace)
            handler.write_fields("info", self.logger.name, f"{method} {path} {status}", extra)
            return
        # logger.info without the caller lookup (a stack walk per request) and
        # without makeRecord's per-key checks; the record factory (log-trace
        # correlation hooks in there), filters and handlers still apply.
        record = logging.getLogRecordFactory()(
            self.logger.name, logging.INFO, __file__, 0, f"{method} {path} {status}", None, None
        )
        record.__dict__.update(extra)
        self.logger.handle(record)
