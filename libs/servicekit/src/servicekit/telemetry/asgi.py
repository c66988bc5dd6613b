"""Request spans for Litestar apps, with low-cardinality resource names.

ddtrace has no Litestar integration. In Datadog mode the app's ASGI handler
(the router, inside Litestar's lifespan handling) is wrapped in one of:

- ``lean`` (default, :class:`_DatadogRequestSpan`): one server span per request
  straight on ddtrace's tracer: continues the caller's trace (Datadog, W3C,
  B3 headers), tags method, URL, status, route, client IP, user agent, marks
  5xx as errors. About a third of the CPU of ddtrace's generic middleware.
- ``ddtrace`` (``TRACE_ASGI_MIDDLEWARE=ddtrace``): ddtrace's own
  ``TraceMiddleware``, for features that hook into it (AppSec/ASM, IAST,
  ``DD_TRACE_HEADER_TAGS``), at a higher per-request cost.

Either way the span is named after the route template once Litestar has
routed the request (``GET /books/{book_id}``, not ``GET /books/17``), and
requests that match no route become ``GET <unmatched>``: one fixed resource per
method, the same whatever the status (a 404 today, a 405 or a 500 tomorrow), so a
resource's answers can be compared across versions; the status is the
``http.status_code`` tag. Probe requests (the kubelet's,
:mod:`servicekit.probes`) get no span in the lean mode. In OTLP mode a small
OpenTelemetry server span does the same job.

The wrapping is done on ``app.asgi_handler`` so ``create_app`` still returns
the ``Litestar`` object (route listing, tests) and 404/405 are traced too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from litestar import Litestar

from servicekit.probes import is_probe
from servicekit.telemetry.correlation import request_span
from servicekit.telemetry_settings import TraceMode

# Litestar's Scope is a union of TypedDicts; these wrappers only read a few keys.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Any


UNMATCHED = "<unmatched>"


def route_resource(scope: Scope) -> str:
    """``METHOD /route/{template}``, or ``METHOD <unmatched>`` when no route matched.

    Never the status: one resource's answers, whatever their status, stay one resource.
    """
    template = scope.get("path_template")
    return f"{scope['method']} {template or UNMATCHED}"


# Header names (lower-case bytes, as ASGI gives them) that can carry a trace context.
_PROPAGATION = (b"x-datadog-", b"traceparent", b"tracestate", b"x-b3-", b"b3", b"baggage")


class _DatadogRequestSpan:
    """One server span per request, straight on ddtrace's tracer (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        from ddtrace.ext import SpanTypes
        from ddtrace.propagation.http import HTTPPropagator
        from ddtrace.trace import tracer

        self.app = app
        self._tracer = tracer
        self._extract = HTTPPropagator.extract
        self._web = SpanTypes.WEB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_probe(scope["path"], scope["headers"]):
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] = {}
        host = user_agent = ""
        for name, value in scope["headers"]:
            if name.startswith(_PROPAGATION):
                carrier[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
        caller = self._extract(carrier) if carrier else None  # type: ignore[no-untyped-call]
        method = scope["method"]
        path: str = scope["path"]
        span = self._tracer.start_span(
            "asgi.request",
            child_of=caller if caller is not None and caller.trace_id else None,
            resource=f"{method} {path}",
            span_type=self._web,
            activate=True,
        )
        request_span.set(span)
        span._set_attribute("span.kind", "server")
        span._set_attribute("component", "asgi")
        span._set_attribute("http.method", method)
        span._set_attribute("http.url", f"{scope.get('scheme', 'http')}://{host}{path}")
        if user_agent:
            span._set_attribute("http.useragent", user_agent)
        client = scope.get("client")
        if client:
            span._set_attribute("network.client.ip", client[0])

        async def send_naming_span(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                span.resource = route_resource(scope)
                template = scope.get("path_template")
                if template:
                    span._set_attribute("http.route", template)
                span._set_attribute("http.status_code", str(status))
                if status >= 500:
                    span.error = 1
            await send(message)

        try:
            await self.app(scope, receive, send_naming_span)
        except BaseException as error:
            span.set_exc_info(type(error), error, error.__traceback__)
            raise
        finally:
            span.finish()


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
                span.resource = route_resource(scope)
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
                span.update_name(route_resource(scope))
                span.set_attribute("http.status_code", status)
                template = scope.get("path_template")
                if template:
                    span.set_attribute("http.route", template)
            await send(message)

        with self._use_span(span, end_on_exit=True):
            await self.app(scope, receive, send_naming_span)


def instrument_litestar(app: Litestar, mode: TraceMode, middleware: str = "lean") -> Litestar:
    if getattr(app.asgi_handler, "servicekit_traced", False):
        return app  # already wrapped (create_app and serve() may both ask)
    handler: Any
    if mode is TraceMode.DATADOG and middleware == "ddtrace":
        from ddtrace.contrib.asgi import TraceMiddleware

        # TraceMiddleware marks ``scope["app"]`` (the Litestar object) once it has
        # collected its endpoints, but Litestar uses __slots__ and the attribute
        # assignment fails on every request. Endpoint discovery only feeds
        # Datadog's API-security catalogue; mark it done at class level instead.
        type(app)._datadog_endpoints_collected = True  # type: ignore[attr-defined]
        inner = _NameDatadogSpanAfterRouting(app.asgi_handler)
        handler = TraceMiddleware(inner)  # type: ignore[no-untyped-call]
    elif mode is TraceMode.DATADOG:
        handler = _DatadogRequestSpan(app.asgi_handler)
    elif mode is TraceMode.OTLP:
        handler = _OtelServerSpan(app.asgi_handler)
    else:
        return app
    handler.servicekit_traced = True
    app.asgi_handler = handler
    return app
