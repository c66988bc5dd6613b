"""Responses whose body is JSON already encoded, sent as it is.

- :class:`EncodedJson`: a plain ASGI app sending one status, ``Content-Type:
  application/json``, ``Content-Length`` and the body; also usable from a
  middleware that answers by itself (:meth:`EncodedJson.send_to`).
- :class:`JsonBytes`: the same as a Litestar ``Response`` for route handlers
  whose data is JSON already (e.g. from the database). Litestar's own path for
  a ``Response`` re-checks and re-encodes its headers through mutable header
  views on every request (a sixth of books' GET by id); this one builds its two
  or three header lines directly. Route-level ``response_headers``/cookies are
  not merged in: use it on routes that declare none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Response
from litestar.types import ASGIApp, Receive, Scope, Send


class EncodedJson:
    """ASGI app: ``status``, the JSON headers (plus ``extra_headers``) and ``body``."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes, extra_headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra_headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.send_to(send)

    async def send_to(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class JsonBytes(Response[Any]):
    """A route handler's response whose ``content`` is JSON bytes (see the module doc)."""

    __slots__ = ()

    def __init__(
        self, content: bytes, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        # Only what to_asgi_response reads; Response.__init__ also normalises
        # cookies, media type and encoders, none of which apply here.
        self.content = content
        self.status_code = status_code
        self.headers = headers or {}
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.media_type = "application/json"
        self.response_type_encoders = {}

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIApp:  # type: ignore[override]
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]
        return EncodedJson(self.status_code or 200, self.content, extra)
