"""Server spans for an aiohttp low-level handler (the local gateway).

ddtrace traces aiohttp's *client* (and injects trace headers into what it
sends) but its server integration needs an ``aiohttp.web.Application``; the
local gateway uses the low-level ``web.Server(handler)``. :func:`traced_handler`
wraps such a handler so each request continues the caller's trace and the
proxied call becomes its child. Resources are ``METHOD /path`` with any path
segment that contains a digit replaced by ``?`` (``GET /books/?``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from servicekit.telemetry_settings import TraceMode

if TYPE_CHECKING:
    from aiohttp import web

Handler = Callable[["web.BaseRequest"], Awaitable["web.StreamResponse"]]

_VARIABLE_SEGMENT = re.compile(r"/[^/]*\d[^/]*")


def quantized_resource(method: str, path: str) -> str:
    return f"{method} {_VARIABLE_SEGMENT.sub('/?', path) or '/'}"


def traced_handler(handler: Handler, mode: TraceMode) -> Handler:
    if mode is not TraceMode.DATADOG:
        # OTLP/off: the gateway forwards incoming trace headers unchanged, so
        # the upstream's span still joins the caller's trace.
        return handler
    from ddtrace.constants import SPAN_KIND
    from ddtrace.ext import SpanKind, SpanTypes
    from ddtrace.propagation.http import HTTPPropagator
    from ddtrace.trace import tracer

    async def traced(request: web.BaseRequest) -> web.StreamResponse:
        caller = HTTPPropagator.extract(request.headers)  # type: ignore[no-untyped-call]
        span = tracer.start_span(
            "aiohttp.request",
            child_of=caller if caller.trace_id else None,
            resource=quantized_resource(request.method, request.path),
            span_type=SpanTypes.WEB,
            activate=True,
        )
        span.set_tag(SPAN_KIND, SpanKind.SERVER)
        span.set_tag("http.method", request.method)
        span.set_tag("http.url", str(request.url))
        try:
            response = await handler(request)
        except BaseException as error:
            span.set_exc_info(type(error), error, error.__traceback__)
            raise
        else:
            span.set_tag("http.status_code", str(response.status))
            if response.status >= 500:
                span.error = 1
            return response
        finally:
            span.finish()

    return traced
