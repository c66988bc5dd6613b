"""The gateway's HTTP/1.x server edge: Envoy's limits, timeouts and local replies.

aiohttp's low-level server with the limits and timeouts of Envoy's HTTP
connection manager (the Istio ingress gateway's defaults), so a client sees the
same edge locally as in the cluster:

- request headers: at most ``max_request_headers_kb`` = 60 KiB in all (request
  line included) and ``max_headers_count`` = 100 of them; more is a 431
  (aiohttp's own defaults are 8 KiB per line, answered with an HTTP/1.0 400
  that echoes part of the line and names the library);
- any other request that does not parse: an HTTP/1.1 400 that echoes nothing;
- ``stream_idle_timeout`` (300 s): a request whose headers or body stop
  arriving for that long gets 408 and the connection is closed;
- ``request_headers_timeout`` (off by default, as in Envoy): when set, the
  whole header section must arrive within it, or 408;
- ``idle_timeout`` (1 h): a connection with no request in flight is closed
  after that long (aiohttp's keep-alive timeout).

A request line with another version than HTTP/1.0 or 1.1 gets an HTTP/1.1 400
(aiohttp would echo the version in its status line), as granian does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

SERVER_NAME = "local-gateway"  # never the library's name and version


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Envoy's HttpConnectionManager defaults (``0`` turns a timeout off)."""

    max_request_headers_bytes: int = 60 * 1024
    max_headers_count: int = 100
    stream_idle_timeout_s: float = 300.0
    request_headers_timeout_s: float = 0.0
    idle_timeout_s: float = 3600.0


class GatewayRequest(web.BaseRequest):
    """A request that remembers a version line other than HTTP/1.0 or HTTP/1.1."""

    bad_version: str | None = None


def _make_request(
    message: RawRequestMessage,
    payload: StreamReader,
    protocol: RequestHandler,
    writer: AbstractStreamWriter,
    task: asyncio.Task[None],
) -> web.BaseRequest:
    bad_version = None
    if message.method == "UNKNOWN" and message.version == HttpVersion10:
        # aiohttp's placeholder for a request that did not parse: answer in HTTP/1.1.
        message = message._replace(version=HttpVersion11, should_close=True)
    elif message.version not in (HttpVersion10, HttpVersion11):
        bad_version = f"HTTP/{message.version.major}.{message.version.minor}"
        message = message._replace(version=HttpVersion11, should_close=True)
    request = GatewayRequest(message, payload, protocol, writer, task, asyncio.get_running_loop())
    request.bad_version = bad_version
    return request


def local_reply(status: int, text: str, *, close: bool = False) -> web.Response:
    """An answer of the gateway's own (Envoy's local reply): plain text, our server name."""
    response = web.Response(status=status, text=text, headers={"server": SERVER_NAME})
    if close:
        response.force_close()
    return response


def headers_too_large(request: web.BaseRequest, limits: EdgeLimits) -> bool:
    """The request line and headers together are over ``max_request_headers_kb``."""
    size = len(request.method) + len(request.raw_path)
    for name, value in request.raw_headers:
        size += len(name) + len(value)
    return size > limits.max_request_headers_bytes


class _EdgeHandler(RequestHandler):
    """aiohttp's per-connection protocol with Envoy's header timeouts and local replies."""

    def __init__(self, manager: web.Server, *, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._idle_timer: asyncio.TimerHandle | None = None
        self._headers_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a whole header section arrived
            self._cancel_header_timers()
            return
        current = self._current_request
        if current is not None and not current.content.is_eof():
            return  # body bytes: the proxy's body reader times those out
        self._arm_header_timers()

    def _arm_header_timers(self) -> None:
        loop = self._loop
        limits = self._limits
        if limits.stream_idle_timeout_s > 0:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = loop.call_later(
                limits.stream_idle_timeout_s, self._time_out, "stream timeout"
            )
        if limits.request_headers_timeout_s > 0 and self._headers_timer is None:
            self._headers_timer = loop.call_later(
                limits.request_headers_timeout_s, self._time_out, "request headers timeout"
            )

    def _cancel_header_timers(self) -> None:
        for timer in (self._idle_timer, self._headers_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._headers_timer = None

    def _time_out(self, text: str) -> None:
        """Headers stopped arriving: Envoy's 408, then close (unless a request is being served)."""
        self._cancel_header_timers()
        if self._current_request is not None or self.transport is None:
            return
        body = text.encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"server: " + SERVER_NAME.encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.force_close()
        self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timers()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request that did not parse: 431 for oversized headers, else 400; echo nothing."""
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was sent already")
        text = str(exc or message or "")
        if isinstance(exc, LineTooLong) or "Too many headers" in text:
            return local_reply(431, "request header fields too large", close=True)
        if status == 400:
            return local_reply(400, "bad request", close=True)
        return local_reply(status, "internal error", close=True)


class GatewayServer(web.Server):
    """``web.Server`` whose connections use :class:`_EdgeHandler`."""

    def __init__(self, handler: Handler, *, limits: EdgeLimits, **kwargs: Any) -> None:
        self._limits = limits
        kwargs.setdefault("keepalive_timeout", limits.idle_timeout_s or 0)
        # aiohttp checks each line; the total (Envoy's limit) is checked per request.
        kwargs.setdefault("max_line_size", limits.max_request_headers_bytes)
        kwargs.setdefault("max_field_size", limits.max_request_headers_bytes)
        kwargs.setdefault("max_headers", limits.max_headers_count)
        super().__init__(handler, request_factory=_make_request, **kwargs)

    def __call__(self) -> RequestHandler:
        return _EdgeHandler(self, loop=self._loop, limits=self._limits, **self._kwargs)


def make_server(handler: Handler, limits: EdgeLimits | None = None, **kwargs: Any) -> web.Server:
    """The gateway's server for ``handler``: Envoy's limits, HTTP/1.x only."""
    return GatewayServer(handler, limits=limits or EdgeLimits(), **kwargs)
