"""JSON logs on stdout, one object per line, the same for every service.

Field names follow Datadog's standard attributes so the usual facets work
without a pipeline: ``status`` (level), ``logger.name``, ``message``,
``service`` and, when a trace is active, ``dd.trace_id`` / ``dd.span_id`` (added
by ddtrace's log injection as record attributes, or by :mod:`servicekit.telemetry`).
Anything passed in ``extra=`` is emitted as its own key, so
``log.info("request", extra={"http.status_code": 200})`` gives a flat
``"http.status_code": 200``.

The per-request access log skips the ``logging`` machinery when it may (see
:func:`direct_handler`): the same JSON object is built from a dict and handed
to :meth:`JsonLineHandler.write_fields`, which, on an event loop, buffers the
line and writes the lines of one loop iteration with one ``write`` once the
iteration's callbacks have run (after the responses went out).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import msgspec

# Attributes every LogRecord has; anything else on a record came from `extra=`
# or from a filter (ddtrace's log injection sets dd.* this way).
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)

_encoder = msgspec.json.Encoder()


def _default(value: object) -> Any:
    return str(value)


_fallback_encoder = msgspec.json.Encoder(enc_hook=_default)


# Fields of the active trace (dd.trace_id...) for a log line, or None; set by
# servicekit.telemetry when log-trace correlation is on (records get them from
# the LogRecord factory, direct lines from here).
_context_fields: list[Callable[[], dict[str, str] | None]] = []


def set_context_fields(provider: Callable[[], dict[str, str] | None]) -> None:
    _context_fields[:] = [provider]


def context_fields() -> dict[str, str] | None:
    return _context_fields[0]() if _context_fields else None


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})

    def line(self, level: str, logger: str, message: str, fields: dict[str, Any]) -> str:
        """The same JSON object :meth:`format` gives a record with these ``extra`` fields."""
        entry: dict[str, Any] = {
            "timestamp": _iso_utc(time.time()),
            "status": level,
            "logger.name": logger,
            "message": message,
        }
        entry.update(self._static)
        entry.update(fields)
        return _encode(entry)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _iso_utc(record.created),
            "status": record.levelname.lower(),
            "logger.name": record.name,
            "message": record.getMessage(),
        }
        entry.update(self._static)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # Errors are summarised in one line; no multi-line traceback on stdout.
            exc_type, exc, _ = record.exc_info
            entry["error.kind"] = exc_type.__name__ if exc_type else "Exception"
            entry["error.message"] = str(exc)
        return _encode(entry)


def _encode(entry: dict[str, Any]) -> str:
    try:
        return _encoder.encode(entry).decode()
    except (TypeError, msgspec.EncodeError):
        return _fallback_encoder.encode(entry).decode()


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def _iso_utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    if _second[0] != seconds:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{millis:03d}Z"


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler with :class:`JsonFormatter` and a cheap path for direct lines.

    Records (``emit``) are written at once, as by :class:`logging.StreamHandler`.
    Lines from :meth:`write_fields` made on a running event loop are buffered and
    written together by a callback at the end of the loop iteration; anything
    written directly first writes what is buffered, so the order is kept.
    ``flush`` (also run by ``logging.shutdown`` at exit) drains the buffer.
    """

    def __init__(self, stream: TextIO, static_fields: dict[str, str] | None = None) -> None:
        super().__init__(stream)
        self.json = JsonFormatter(static_fields)
        self.setFormatter(self.json)
        self._pending: list[str] = []

    def write_fields(self, level: str, logger: str, message: str, fields: dict[str, Any]) -> None:
        line = self.json.line(level, logger, message, fields)
        loop = asyncio._get_running_loop()
        if loop is None:
            self._write(line + "\n")
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append(line)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._write(line + "\n")

    def _write(self, text: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                text = "\n".join(self._pending) + "\n" + text
                self._pending.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stdout closed or gone: logging must never take the service down

    def flush(self) -> None:
        if self._pending:
            self._write("")
        else:
            super().flush()


def direct_handler(logger: logging.Logger) -> JsonLineHandler | None:
    """The one handler ``logger``'s records reach, when writing to it directly is the same.

    That is: no handlers or filters on the way except the root's single
    :class:`JsonLineHandler` (which has no filters), and the default record
    factory or one that only adds :func:`context_fields`.
    """
    current: logging.Logger | None = logger
    if logger.filters:
        return None
    while current is not None and current.parent is not None:
        if current.handlers or not current.propagate:
            return None
        current = current.parent
    if current is None or len(current.handlers) != 1:
        return None
    handler = current.handlers[0]
    if not isinstance(handler, JsonLineHandler) or handler.filters:
        return None
    if handler.level > logging.INFO:
        return None
    factory = logging.getLogRecordFactory()
    if factory is not logging.LogRecord and not getattr(factory, "adds_context_fields", False):
        return None
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, the server's, libraries') to JSON on stdout."""
    handler = JsonLineHandler(sys.stdout, {"service": service})
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Servers that install their own handlers: send them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "granian", "granian.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
