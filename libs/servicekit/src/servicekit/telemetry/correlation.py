"""Log-trace correlation: every log record made while a span is active gets
``dd.trace_id``, ``dd.span_id``, ``dd.service``, ``dd.env`` and ``dd.version``.

Done with one LogRecord factory for the whole process (not per logger or per
handler), so it works whatever :func:`servicekit.logs.configure_logging` does
to handlers, and costs one context lookup per record.

A request's span is finished when the last response byte is sent, a moment
before the access log line is written; :data:`request_span` remembers the
request span for the rest of the request's task, so that line is correlated
too.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

from servicekit.logs import set_context_fields
from servicekit.telemetry_settings import TelemetrySettings, TraceMode

# The server span of the request being handled in this task (set by the ASGI
# instrumentation; each request runs in its own task, hence its own context).
request_span: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "servicekit_request_span", default=None
)

_installed: list[bool] = []  # non-empty once the factory is in place


def install_log_correlation(settings: TelemetrySettings) -> None:
    if _installed or not settings.logs_injection or settings.mode is TraceMode.OFF:
        return
    static = {
        "dd.service": settings.service,
        "dd.env": settings.env,
        "dd.version": settings.version,
    }
    ids = _datadog_ids() if settings.mode is TraceMode.DATADOG else _otel_ids()
    previous = logging.getLogRecordFactory()

    def trace_fields() -> dict[str, str] | None:
        found = ids()
        if found is None:
            return None
        return {"dd.trace_id": found[0], "dd.span_id": found[1], **static}

    def record_with_trace(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        fields = trace_fields()
        if fields is not None:
            record.__dict__.update(fields)
        return record

    # Lines written without a LogRecord (the access log) get the same fields.
    record_with_trace.adds_context_fields = previous is logging.LogRecord  # type: ignore[attr-defined]
    set_context_fields(trace_fields)
    logging.setLogRecordFactory(record_with_trace)
    _installed.append(True)


def _datadog_ids() -> Callable[[], tuple[str, str] | None]:
    from ddtrace.internal.utils.formats import format_trace_id
    from ddtrace.trace import tracer

    def ids() -> tuple[str, str] | None:
        span = tracer.current_span() or request_span.get()
        if span is None:
            return None
        return format_trace_id(span.trace_id), str(span.span_id)

    return ids


def _otel_ids() -> Callable[[], tuple[str, str] | None]:
    from opentelemetry import trace

    def ids() -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            span = request_span.get()
            if span is None:
                return None
            context = span.get_span_context()
        # OTLP backends use the W3C hex form.
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    return ids
