"""415 for request bodies that are not JSON, before Litestar tries to parse them."""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from servicekit.http.encoded_json import EncodedJson

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def _send_415(send: Send, content_type: bytes) -> None:
    shown = content_type.decode("latin-1")[:100] or "none"
    body = msgspec.json.encode(
        {
            "error": "unsupported_media_type",
            "detail": f"request body must be JSON (Content-Type: application/json), got {shown}",
        }
    )
    await EncodedJson(415, body).send_to(send)


class RequireJsonBodyMiddleware:
    """ASGI middleware: a POST/PUT/PATCH that carries a body must say it is JSON.

    Requests without a body (no ``content-length`` or ``content-length: 0`` and no
    chunked transfer) pass through, so body-less POSTs still work.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in _BODY_METHODS:
            content_type = b""
            has_body = False
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value
                elif name == b"content-length":
                    has_body = value.strip() not in (b"0", b"")
                elif name == b"transfer-encoding":
                    has_body = True
            if has_body and not _is_json(content_type):
                await _send_415(send, content_type)
                return
        await self.app(scope, receive, send)
