"""JSON logs on stdout, one object per line, the same for every service.

Field names follow Datadog's standard attributes so the usual facets work
without a pipeline: ``status`` (level), ``logger.name``, ``message``,
``service`` and, when a trace is active, ``dd.trace_id`` / ``dd.span_id`` (added
by ddtrace's log injection as record attributes, or by :mod:`servicekit.telemetry`).
Anything passed in ``extra=`` is emitted as its own key, so
``log.info("request", extra={"http.status_code": 200})`` gives a flat
``"http.status_code": 200``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

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


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})

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
        try:
            return _encoder.encode(entry).decode()
        except (TypeError, msgspec.EncodeError):
            return _fallback_encoder.encode(entry).decode()


def _iso_utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, the server's, libraries') to JSON on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter({"service": service}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Servers that install their own handlers: send them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "granian", "granian.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
