"""Spans for a piece of work inside a request, written with the OpenTelemetry API.

In Datadog mode ddtrace turns them into Datadog spans in the request's trace;
in OTLP mode the OpenTelemetry SDK exports them; with tracing off they are
no-ops. A service names its own spans and attributes (the speech front's are
in :mod:`speech_front.spans`); this module only opens them::

    with work_span("cache.lookup", **{"cache.key": key}) as span:
        hit = await cache.get(key)
        span.set_attribute("cache.hit", hit)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer


@functools.cache
def tracer() -> Tracer:
    """The OpenTelemetry tracer, looked up on first use (after telemetry set-up)."""
    from opentelemetry import trace

    return trace.get_tracer("speech-mesh")


@contextmanager
def work_span(name: str, **attributes: str | int | float | bool) -> Iterator[Span]:
    """A child span of whatever is active, with the given attributes.

    ``operation.name`` makes Datadog use ``name`` as the operation (not the
    generic ``internal``); OTLP backends just see it as one more attribute.
    """
    attributes["operation.name"] = name
    with tracer().start_as_current_span(name, attributes=attributes) as span:
        yield span
