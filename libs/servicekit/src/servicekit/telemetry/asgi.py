"""Request spans for Litestar apps, with low-cardinality resource names.

ddtrace has no Litestar integration, so in Datadog mode the app's ASGI handler
(the router, inside Litestar's lifespan handling) is wrapped in ddtrace's
generic ``TraceMiddleware``. Its resource name would be the raw path
(``GET /books/17``); once Litestar has routed the request the span is renamed
after the route template (``GET /books/{book_id}``), and requests that match no
route become ``GET 404``. In OTLP mode a small OpenTelemetry server span does
the same job.

The wrapping is done on ``app.asgi_handler`` so ``create_app`` still returns
the ``Litestar`` object (route listing, tests) and 404/405 are traced too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from litestar import Litestar

from servicekit.telemetry.config import TraceMode
from servicekit.telemetry.correlation import request_span

# Litestar's Scope is a union of TypedDicts; these wrappers only read a few keys.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Any


def route_resource(scope: Scope, status: int) -> str:
    """``METHOD /route/{template}``, or ``METHOD <status>`` when no route matched."""
    template = scope.get("path_template")
    return f"{scope['method']} {template or status}"


class _NameDatadogSpanAfterRouting:
    """Sits between TraceMiddleware and the router: names the span at response start."""

    def __init__(self, app: ASGIApp) -> None:
        from ddtrace.contrib.asgi import span_from_scope

        self.app = app
        self._span_from_scope = span_from_scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = self._span_from_scope(scope)
        if span is None:
            await self.app(scope, receive, send)
            return
        request_span.set(span)

        async def send_naming_span(message: Message) -> None:
            if message["type"] == "http.response.start":
                span.resource = route_resource(scope, message["status"])
                template = scope.get("path_template")
                if template:
                    span._set_attribute("http.route", template)
            await send(message)

        await self.app(scope, receive, send_naming_span)


class _OtelServerSpan:
    """OTLP mode: one SERVER span per request, continuing an incoming W3C trace."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry import propagate, trace

        self.app = app
        self._tracer = trace.get_tracer("servicekit.http")
        self._extract = propagate.extract
        self._server = trace.SpanKind.SERVER
        self._use_span = trace.use_span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span = self._tracer.start_span(
            f"{scope['method']} {scope['path']}",
            context=self._extract(carrier),
            kind=self._server,
            attributes={"http.method": scope["method"], "http.target": scope["path"]},
        )
        request_span.set(span)
        status = 500

        async def send_naming_span(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                span.update_name(route_resource(scope, status))
                span.set_attribute("http.status_code", status)
                template = scope.get("path_template")
                if template:
                    span.set_attribute("http.route", template)
            await send(message)

        with self._use_span(span, end_on_exit=True):
            await self.app(scope, receive, send_naming_span)


def instrument_litestar(app: Litestar, mode: TraceMode) -> Litestar:
    if getattr(app.asgi_handler, "servicekit_traced", False):
        return app  # already wrapped (create_app and serve() may both ask)
    if mode is TraceMode.DATADOG:
        from ddtrace.contrib.asgi import TraceMiddleware

        # TraceMiddleware marks ``scope["app"]`` (the Litestar object) once it has
        # collected its endpoints, but Litestar uses __slots__ and the attribute
        # assignment fails on every request. Endpoint discovery only feeds
        # Datadog's API-security catalogue; mark it done at class level instead.
        type(app)._datadog_endpoints_collected = True  # type: ignore[attr-defined]
        handler: Any = TraceMiddleware(_NameDatadogSpanAfterRouting(app.asgi_handler))  # type: ignore[no-untyped-call]
        handler.servicekit_traced = True
        app.asgi_handler = handler
    elif mode is TraceMode.OTLP:
        otel_handler: Any = _OtelServerSpan(app.asgi_handler)
        otel_handler.servicekit_traced = True
        app.asgi_handler = otel_handler
    return app
