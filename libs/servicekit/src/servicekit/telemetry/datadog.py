"""ddtrace set-up for one process: env defaults, integrations, OTel mapping.

ddtrace reads most of its configuration from the environment when it is first
imported, so :func:`start_datadog` writes the defaults into ``os.environ``
(never overriding what the deployment set) and only then imports ddtrace.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from servicekit.telemetry.sqlite import trace_sqlite3
from servicekit.telemetry_settings import TelemetrySettings

# Integrations patched in every process. Patching is lazy: a module is patched
# when (or if) it is imported, so a service only pays for what it uses.
INTEGRATIONS: dict[str, bool] = {
    "grpc": True,  # grpc and grpc.aio, server and client
    "httpx": True,
    # sqlite3: servicekit.telemetry.sqlite (lighter than ddtrace's wrapt proxies)
    # asyncpg: one postgres.query span per statement (resource = the SQL), on the
    # event loop, so under the request span (books on PostgreSQL)
    "asyncpg": True,
    "aiohttp": True,  # the local gateway's client (its server spans: aiohttp_server.py)
    "futures": True,  # ThreadPoolExecutor.submit carries the active span
}

# Inject and extract Datadog, W3C tracecontext and B3 (Envoy/Zipkin) headers, so
# a trace continues through Istio sidecars whichever format they speak.
PROPAGATION_STYLE = "datadog,tracecontext,b3multi"


def _environment_defaults(settings: TelemetrySettings) -> dict[str, str]:
    return {
        "DD_SERVICE": settings.service,
        "DD_ENV": settings.env,
        "DD_VERSION": settings.version,
        "DD_TRACE_OTEL_ENABLED": "true",
        "OTEL_PYTHON_CONTEXT": "ddcontextvars_context",
        "DD_TRACE_PROPAGATION_STYLE": PROPAGATION_STYLE,
        # Client spans (httpx, grpc client, sqlite) keep the process's service
        # name; Datadog shows the peer as an inferred service from peer.service.
        "DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED": "true",
        # ddtrace's own warnings go through the root (JSON) handler, not a
        # plain-text stderr handler of their own.
        "DD_TRACE_LOG_STREAM_HANDLER": "false",
    }


def apply_environment_defaults(settings: TelemetrySettings) -> None:
    """Write the defaults ddtrace reads at import into ``os.environ`` (never overriding).

    The warm parent of :mod:`servicekit.prefork` calls it before it imports
    ddtrace, so its children see ddtrace configured as a cold start would.
    """
    for name, value in _environment_defaults(settings).items():
        if not os.environ.get(name, "").strip():  # empty counts as unset, as in Env
            os.environ[name] = value


def start_datadog(settings: TelemetrySettings) -> None:
    apply_environment_defaults(settings)

    import ddtrace

    ddtrace.patch(raise_errors=False, **INTEGRATIONS)
    trace_sqlite3()
    # ddtrace cannot parse the status of a finished grpc.aio *streaming* call
    # and warns on every one (the span is still recorded); keep it out of the logs.
    logging.getLogger("ddtrace.contrib.internal.grpc.aio_client_interceptor").setLevel(
        logging.ERROR
    )
    _carry_context_into_aiosqlite()
    _map_opentelemetry_api()
    if settings.profiling:
        import ddtrace.profiling.auto


def _map_opentelemetry_api() -> None:
    """OpenTelemetry API calls create ddtrace spans in the active Datadog trace."""
    import opentelemetry.context as otel_context
    from ddtrace.internal.opentelemetry.context import DDRuntimeContext
    from ddtrace.opentelemetry import TracerProvider
    from opentelemetry import trace

    # If opentelemetry.context was imported before ddtrace set OTEL_PYTHON_CONTEXT,
    # it chose the plain contextvars context; OTel spans would then not see the
    # Datadog request span. Swap in ddtrace's bridge in that case.
    if not isinstance(otel_context._RUNTIME_CONTEXT, DDRuntimeContext):
        otel_context._RUNTIME_CONTEXT = DDRuntimeContext()  # type: ignore[assignment]
    trace.set_tracer_provider(TracerProvider())


def _carry_context_into_aiosqlite() -> None:
    """Run each aiosqlite call in a copy of the caller's context.

    aiosqlite executes every query on its own long-lived thread, where the
    request's active span is not visible, so sqlite spans would start new
    traces. Copying the context per call (cheap: contexts are immutable maps)
    makes them children of the request span.
    """
    if "aiosqlite" not in sys.modules:
        try:
            import aiosqlite.core  # noqa: F401
        except ImportError:
            return
    core = sys.modules["aiosqlite.core"]
    connection = core.Connection
    if getattr(connection, "_servicekit_context_patch", False):
        return
    original: Callable[..., Any] = connection._execute

    @functools.wraps(original)
    async def _execute(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await original(self, contextvars.copy_context().run, fn, *args, **kwargs)

    connection._execute = _execute
    connection._servicekit_context_patch = True
