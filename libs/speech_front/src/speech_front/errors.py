"""Errors of the text-to-speech fronts and their HTTP form.

Every failure the fronts expect is a :class:`SpeechError` carrying its HTTP
status, a short machine-readable ``error`` code and a human message. The
handler renders it in the house format of :mod:`servicekit.http`,
``{"error": code, "detail": message}``; the 503s carry
``Retry-After`` so a mesh (or a client) knows it may retry.

==========================  ======  ===============================================
error                       status  when
==========================  ======  ===============================================
``bad_request``             400     body is not the expected JSON, bad id
``book_not_found``          404     books API says the book does not exist
``audio_not_found``         404     no stored audio with that id
``too_large``               413     body or text over the configured limits
``range_not_satisfiable``   416     Range header outside the file
``backend_rejected``        422     backend said INVALID_ARGUMENT (its message)
``audio_too_long``          422     the audio would pass the backend's limit
                                    (``TTS_MAX_AUDIO_S``; backend OUT_OF_RANGE)
``books_unavailable``       503     books API unreachable, timing out or failing
``backend_unavailable``     503     backend unreachable, timing out or failing
``storage_unavailable``     503     audio directory missing or not writable
``storage_full``            507     audio volume full (ENOSPC, EDQUOT, EFBIG)
==========================  ======  ===============================================
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from servicekit.http import error_response

log = logging.getLogger("speech_front")

DEFAULT_RETRY_AFTER_S = 1


class SpeechError(Exception):
    """A failure the fronts expect; each kind states its status and code in its class line:
    ``class TooLarge(SpeechError, status=413, error="too_large")``."""

    status_code = 500
    error = "internal_error"

    def __init_subclass__(
        cls, *, status: int | None = None, error: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if error is not None:
            cls.error = error

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(SpeechError, status=400, error="bad_request"):
    """The body is not the expected JSON, or an id is malformed."""


class BookNotFound(SpeechError, status=404, error="book_not_found"):
    """The books API says the book does not exist."""


class AudioNotFound(SpeechError, status=404, error="audio_not_found"):
    """No stored audio with that id."""


class TooLarge(SpeechError, status=413, error="too_large"):
    """The body or the text is over the configured limits."""


class BackendRejected(SpeechError, status=422, error="backend_rejected"):
    """The backend said INVALID_ARGUMENT or NOT_FOUND; the message is its own."""


class AudioTooLong(SpeechError, status=422, error="audio_too_long"):
    """Permanent: the same request would fail the same way, so no Retry-After."""


class Unavailable(SpeechError, status=503):
    """A dependency the request needs is down or too slow: retry later (``Retry-After``)."""


class BooksUnavailable(Unavailable, error="books_unavailable"):
    """The books API is unreachable, timing out or failing."""


class BackendUnavailable(Unavailable, error="backend_unavailable"):
    """The backend is unreachable, timing out or failing."""


class StorageUnavailable(Unavailable, error="storage_unavailable"):
    """The audio directory is missing or not writable."""


class StorageFull(SpeechError, status=507, error="storage_full"):
    """The audio volume is full (ENOSPC, EDQUOT, EFBIG)."""


def speech_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar exception handler for :class:`SpeechError`."""
    assert isinstance(exc, SpeechError)
    if exc.status_code >= 500:
        log.warning(
            "request failed: %s",
            exc.message,
            extra={
                "error.kind": exc.error,
                "http.status_code": exc.status_code,
                "http.url": request.url.path,
            },
        )
    headers = {}
    if isinstance(exc, Unavailable):
        front = getattr(request.app.state, "front", None)
        retry_after_s = front.settings.retry_after_s if front else DEFAULT_RETRY_AFTER_S
        headers["Retry-After"] = str(retry_after_s)
    return error_response(exc.status_code, exc.message, exc.error, headers)
