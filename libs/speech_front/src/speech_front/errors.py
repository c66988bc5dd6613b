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
    status_code = 500
    error = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(SpeechError):
    status_code = 400
    error = "bad_request"


class BookNotFound(SpeechError):
    status_code = 404
    error = "book_not_found"


class AudioNotFound(SpeechError):
    status_code = 404
    error = "audio_not_found"


class TooLarge(SpeechError):
    status_code = 413
    error = "too_large"


class BackendRejected(SpeechError):
    status_code = 422
    error = "backend_rejected"


class AudioTooLong(SpeechError):
    """Permanent: the same request would fail the same way, so no Retry-After."""

    status_code = 422
    error = "audio_too_long"


class Unavailable(SpeechError):
    """A dependency the request needs is down or too slow: retry later (``Retry-After``)."""

    status_code = 503


class BooksUnavailable(Unavailable):
    error = "books_unavailable"


class BackendUnavailable(Unavailable):
    error = "backend_unavailable"


class StorageUnavailable(Unavailable):
    error = "storage_unavailable"


class StorageFull(SpeechError):
    status_code = 507
    error = "storage_full"


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
