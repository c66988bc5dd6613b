"""OTLP mode: the OpenTelemetry SDK exports spans over OTLP/HTTP (protobuf).

For users without Datadog: any OTLP receiver (OpenTelemetry Collector, Jaeger,
Tempo, ...) at ``OTEL_EXPORTER_OTLP_ENDPOINT``. The exporter reads the standard
``OTEL_EXPORTER_OTLP_*`` variables itself; spans are batched and flushed on
exit. Outgoing httpx requests carry W3C ``traceparent`` so HTTP hops join one
trace.
"""

from __future__ import annotations

import functools
from typing import Any

from servicekit.telemetry_settings import TelemetrySettings


def start_otlp(settings: TelemetrySettings) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": settings.service,
            "service.version": settings.version,
            "deployment.environment": settings.env,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _inject_traceparent_into_httpx()


def _inject_traceparent_into_httpx() -> None:
    import httpx
    from opentelemetry import propagate

    client = httpx.AsyncClient
    if getattr(client, "_servicekit_otel_patch", False):
        return
    original = client.send

    @functools.wraps(original)
    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        propagate.inject(request.headers)
        return await original(self, request, **kwargs)

    client.send = send  # type: ignore[method-assign]
    client._servicekit_otel_patch = True  # type: ignore[attr-defined]
