"""Spans for the work that matters, written with the OpenTelemetry API.

In Datadog mode ddtrace turns them into Datadog spans in the request's trace;
in OTLP mode the OpenTelemetry SDK exports them; with tracing off they are
no-ops. Each helper is a context manager yielding the span, so callers add
what they learn during the work::

    with spans.cache_lookup(key) as span:
        hit = await cache.get(key)
        spans.record_cache_hit(span, hit)

Attribute names are constants here so dashboards and tests agree on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

BOOK_ID = "book.id"
TEXT_LENGTH = "tts.text.length"
AUDIO_DURATION = "tts.audio.duration_s"
AUDIO_BYTES = "tts.audio.bytes"
CACHE_HIT = "tts.cache.hit"
ENGINE = "tts.engine"
VOICE = "tts.voice"

_tracers: dict[str, Tracer] = {}


def tracer() -> Tracer:
    """The OpenTelemetry tracer, looked up on first use (after telemetry set-up)."""
    found = _tracers.get("speech-mesh")
    if found is None:
        from opentelemetry import trace

        found = _tracers["speech-mesh"] = trace.get_tracer("speech-mesh")
    return found


@contextmanager
def work(name: str, **attributes: str | int | float | bool) -> Iterator[Span]:
    """A child span of whatever is active, with the given attributes.

    ``operation.name`` makes Datadog use ``name`` as the operation (not the
    generic ``internal``); OTLP backends just see it as one more attribute.
    """
    attributes["operation.name"] = name
    with tracer().start_as_current_span(name, attributes=attributes) as span:
        yield span


def book_fetch(book_id: int) -> AbstractContextManager[Span]:
    return work("book.fetch", **{BOOK_ID: book_id})


def cache_lookup(key: str) -> AbstractContextManager[Span]:
    return work("audio.cache_lookup", **{"tts.cache.key": key})


def record_cache_hit(span: Span, hit: bool) -> None:
    span.set_attribute(CACHE_HIT, hit)


def synthesis(*, engine: str, voice: str, text_length: int) -> AbstractContextManager[Span]:
    attributes: dict[str, str | int] = {
        ENGINE: engine,
        VOICE: voice or "default",
        TEXT_LENGTH: text_length,
    }
    return work("tts.synthesize", **attributes)


def record_engine(span: Span, engine: str) -> None:
    """The engine that actually answered (may differ from the one asked for)."""
    if engine:
        span.set_attribute(ENGINE, engine)


def record_audio(span: Span, *, duration_s: float, size_bytes: int | None = None) -> None:
    span.set_attribute(AUDIO_DURATION, duration_s)
    if size_bytes is not None:
        span.set_attribute(AUDIO_BYTES, size_bytes)


def audio_write(*, size_bytes: int) -> AbstractContextManager[Span]:
    return work("audio.write", **{AUDIO_BYTES: size_bytes})
