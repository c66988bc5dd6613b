"""Tracing, log-trace correlation and profiling for every process, set up once.

:func:`configure_telemetry` runs once the settings are loaded and before the
app or any client is built (:func:`servicekit.main.run_service` calls it in
that order for every service); a Litestar app also goes through
:func:`instrument_app` before it is served (the service's own ``serve`` step
does it, so :mod:`servicekit.http` needs no tracing)::

    settings = load_or_exit(load_settings, "books")
    configure_telemetry("books")
    configure_logging("books")
    serve(instrument_app(create_app(settings)), settings.host, settings.port)

Modes (see :mod:`servicekit.telemetry_settings`): Datadog by default (ddtrace,
to the agent at ``DD_TRACE_AGENT_URL`` / ``DD_AGENT_HOST``), OTLP when
``DD_TRACE_ENABLED=false`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else off.
Unified service tags come from ``DD_SERVICE`` / ``DD_ENV`` / ``DD_VERSION`` when
set, otherwise from the arguments (env defaults to ``local``).

This package is servicekit's ``telemetry`` extra: importing it without the
extra's packages installed fails at once, naming them (the core, settings and
``--help`` included, never imports it at import time).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

from servicekit.settings import Env, SettingsError, exit_on_bad_settings
from servicekit.telemetry.work import work_span
from servicekit.telemetry_settings import (
    TelemetrySettings,
    TraceMode,
    load_telemetry_settings,
    package_version,
)

if TYPE_CHECKING:
    from litestar import Litestar

    from servicekit.telemetry.aiohttp_server import Handler

__all__ = [
    "TelemetrySettings",
    "TraceMode",
    "configure_telemetry",
    "current_mode",
    "instrument_aiohttp_handler",
    "instrument_app",
    "work_span",
]

# The packages of the `telemetry` extra, looked up (not imported: a process in
# OTLP mode never loads ddtrace) so that a missing one is named now, not at the
# first request.
EXTRA_PACKAGES = {
    "ddtrace": "ddtrace",
    "opentelemetry.trace": "opentelemetry-api",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
    "httpx": "httpx",
}


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


_missing = [package for module, package in EXTRA_PACKAGES.items() if not _installed(module)]
if _missing:
    raise ImportError(
        f"servicekit.telemetry needs servicekit's `telemetry` extra "
        f"(servicekit[telemetry]); not installed: {', '.join(_missing)}"
    )

# The settings this process was configured with (one entry, once configured).
_configured: list[TelemetrySettings] = []


def configure_telemetry(
    service: str, *, version: str | None = None, env: Env | None = None
) -> TelemetrySettings:
    """Start tracing for this process (idempotent). Bad DD_* value: one stderr line, exit 2.

    ``version`` defaults to the installed version of the distribution named
    ``service`` (``books`` -> 0.1.0); ``DD_VERSION`` overrides either.
    """
    if _configured:
        return _configured[0]
    try:
        settings = load_telemetry_settings(service, version or package_version(service), env)
    except SettingsError as error:
        exit_on_bad_settings(error, service)
    if settings.mode is TraceMode.DATADOG:
        from servicekit.telemetry.datadog import start_datadog

        start_datadog(settings)
    elif settings.mode is TraceMode.OTLP:
        from servicekit.telemetry.otlp import start_otlp

        start_otlp(settings)
    from servicekit.telemetry.correlation import install_log_correlation

    install_log_correlation(settings)
    _configured.append(settings)
    return settings


def current_mode() -> TraceMode:
    """The mode chosen by :func:`configure_telemetry`, ``OFF`` if it was not called."""
    return _configured[0].mode if _configured else TraceMode.OFF


def instrument_app(app: Litestar) -> Litestar:
    """Trace each request of a Litestar app (no-op unless telemetry is configured)."""
    if not _configured or _configured[0].mode is TraceMode.OFF:
        return app
    from servicekit.telemetry.asgi import instrument_litestar

    settings = _configured[0]
    return instrument_litestar(app, settings.mode, settings.asgi_middleware)


def instrument_aiohttp_handler(handler: Handler) -> Handler:
    """Server spans for an aiohttp low-level handler (no-op unless Datadog mode)."""
    from servicekit.telemetry.aiohttp_server import traced_handler

    return traced_handler(handler, current_mode())
