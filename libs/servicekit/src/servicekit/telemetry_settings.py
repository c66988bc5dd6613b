"""Which tracing mode a process runs in, decided once from the environment.

Part of servicekit's core (no ddtrace, no OpenTelemetry): ``--help`` lists
these settings and the warm parent of :mod:`servicekit.prefork` reads them
before either is installed or imported; :mod:`servicekit.telemetry` (the
``telemetry`` extra) acts on them.

- ``datadog`` (default): ddtrace traces to a Datadog agent (or the APM test
  agent) at ``DD_TRACE_AGENT_URL`` / ``DD_AGENT_HOST``; OpenTelemetry API spans
  become Datadog spans.
- ``otlp``: ``DD_TRACE_ENABLED=false`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set: the OpenTelemetry SDK exports
  over OTLP/HTTP; no ddtrace is loaded.
- ``off``: ``DD_TRACE_ENABLED=false`` and no OTLP endpoint: nothing is loaded,
  the OpenTelemetry API stays a no-op.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from servicekit.settings import Env


class TraceMode(enum.Enum):
    DATADOG = "datadog"
    OTLP = "otlp"
    OFF = "off"


@dataclass(frozen=True)
class TelemetrySettings:
    mode: TraceMode
    service: str
    env: str
    version: str
    logs_injection: bool
    profiling: bool
    otlp_endpoint: str | None
    asgi_middleware: str  # "lean" (servicekit's) or "ddtrace" (ddtrace's TraceMiddleware)


def load_telemetry_settings(
    service: str, version: str | None = None, env: Env | None = None
) -> TelemetrySettings:
    """Read the standard DD_* / OTEL_* variables; explicit env values win over code defaults."""
    env = env or Env()
    dd_enabled = env.flag("DD_TRACE_ENABLED", True)
    otlp_endpoint = env.optional_text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.optional_text(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if dd_enabled:
        mode = TraceMode.DATADOG
    elif otlp_endpoint:
        mode = TraceMode.OTLP
    else:
        mode = TraceMode.OFF
    return TelemetrySettings(
        mode=mode,
        service=env.text("DD_SERVICE", service, max_length=100),
        env=env.text("DD_ENV", "local", max_length=100),
        version=env.text("DD_VERSION", version or "dev", max_length=100),
        logs_injection=env.flag("DD_LOGS_INJECTION", True),
        profiling=env.flag("DD_PROFILING_ENABLED", False),
        otlp_endpoint=otlp_endpoint,
        asgi_middleware=env.text("TRACE_ASGI_MIDDLEWARE", "lean", choices=("lean", "ddtrace")),
    )


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (``books`` -> 0.1.0), None if not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
