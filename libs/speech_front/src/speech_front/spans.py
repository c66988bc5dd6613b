"""The speech front's spans: book fetch, cache lookup, synthesis, audio write.

Opened with :func:`servicekit.telemetry.work_span` (a child of the request's
span in Datadog and OTLP mode, a no-op with tracing off). Each helper is a
context manager yielding the span, so callers add what they learn during the
work::

    with spans.cache_lookup(key) as span:
        hit = await cache.get(key)
        spans.record_cache_hit(span, hit)

Attribute names are constants here so dashboards and tests agree on them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from servicekit.telemetry import work_span

if TYPE_CHECKING:
    from opentelemetry.trace import Span

BOOK_ID = "book.id"
TEXT_LENGTH = "tts.text.length"
AUDIO_DURATION = "tts.audio.duration_s"
AUDIO_BYTES = "tts.audio.bytes"
CACHE_HIT = "tts.cache.hit"
ENGINE = "tts.engine"
VOICE = "tts.voice"


def book_fetch(book_id: int) -> AbstractContextManager[Span]:
    return work_span("book.fetch", **{BOOK_ID: book_id})


def cache_lookup(key: str) -> AbstractContextManager[Span]:
    return work_span("audio.cache_lookup", **{"tts.cache.key": key})


def record_cache_hit(span: Span, hit: bool) -> None:
    span.set_attribute(CACHE_HIT, hit)


def synthesis(*, engine: str, voice: str, text_length: int) -> AbstractContextManager[Span]:
    attributes: dict[str, str | int] = {
        ENGINE: engine,
        VOICE: voice or "default",
        TEXT_LENGTH: text_length,
    }
    return work_span("tts.synthesize", **attributes)


def record_engine(span: Span, engine: str) -> None:
    """The engine that actually answered (may differ from the one asked for)."""
    if engine:
        span.set_attribute(ENGINE, engine)


def record_audio(span: Span, *, duration_s: float, size_bytes: int | None = None) -> None:
    span.set_attribute(AUDIO_DURATION, duration_s)
    if size_bytes is not None:
        span.set_attribute(AUDIO_BYTES, size_bytes)


def audio_write(*, size_bytes: int) -> AbstractContextManager[Span]:
    return work_span("audio.write", **{AUDIO_BYTES: size_bytes})
