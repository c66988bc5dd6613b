"""HTTP/1.1 details that granian leaves to the application.

- :class:`HeadAsGetMiddleware`: ``HEAD`` is answered wherever ``GET`` is (RFC
  9110 section 9.3.2): the request is routed as a ``GET`` and the response's
  status and headers (``Content-Length`` included) are sent without its body.
- :class:`BrokenBodyMiddleware`: when the request body cannot be read to its
  end (a chunk size that is not hex, a ``Content-Length`` longer than what
  arrives before the client half-closes), granian hands the app an
  ``http.disconnect`` instead of the rest of the body. Litestar turns that into
  a 500; this makes it the client error it is, a 400.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

BROKEN_BODY_DETAIL = "request body ended before its declared length or has broken chunked framing"


class HeadAsGetMiddleware:
    """Route ``HEAD`` as ``GET``; send the status and headers, drop the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class BrokenBodyMiddleware:
    """A body that stops before it is complete is a 400, not a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        complete = False
        remaining = _declared_length(scope)

        async def checked_receive() -> ReceiveMessage:
            nonlocal complete, remaining
            message = await receive()
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                if remaining is not None and not complete:
                    remaining -= len(message.get("body", b""))
                    if remaining <= 0:
                        complete = True
                        message = {**message, "more_body": False}
            elif message["type"] == "http.disconnect" and not complete:
                complete = True  # once: a later disconnect is only a disconnect
                raise ClientException(detail=BROKEN_BODY_DETAIL, headers={"Connection": "close"})
            return message

        await self.app(scope, checked_receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
        if name == b"transfer-encoding":
            return None
    return None
