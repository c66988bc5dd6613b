"""The proxy I/O: aiohttp's low-level server in front of one pooled aiohttp client session.

Per request the work is: match the route table, draw a destination, forward with
the original headers (trace headers included, untouched), and stream the answer
back with ``x-envoy-upstream-service-time``. Retries, timeouts and outlier
ejection follow the pure model in :mod:`.routing`, :mod:`.retry` and :mod:`.outlier`.

Request bodies: a declared ``Content-Length`` over the limit is refused at once
(413, nothing read). A body of at most ``REPLAY_LIMIT`` bytes is read whole so
that a retry can send it again; a bigger one (or a chunked one) is streamed to
the upstream as it arrives, counted against the limit, and can be retried only
while none of it has been read (Envoy likewise stops retrying once a body
outgrows its buffer). Memory per request is therefore bounded by
``REPLAY_LIMIT`` plus the socket buffers, whatever the body size.

On a retry the gateway avoids the destinations already tried by this request
(Istio's default ``previous_hosts`` retry predicate). Envoy keeps a retry inside
the weighted subset it drew first, but there a subset has several pods; locally
each subset is one address, so "another host" means the route's other
destination (e.g. v1 when v2 is down), which is what keeps errors near zero
while a canary restarts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, MultiMapping
from yarl import URL

from devstack.gateway.endpoints import Endpoints
from devstack.gateway.http1 import EdgeLimits, headers_too_large, local_reply, make_server
from devstack.gateway.outlier import OutlierDetector, OutlierPolicy
from devstack.gateway.retry import Failure, RetryPolicy, backoff_s
from devstack.gateway.routing import Destination, Route, RouteTable, rewrite_path

log = logging.getLogger("devstack.gateway")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_TIME_HEADER = "x-envoy-upstream-service-time"
# Answers up to this size are read whole (one write downstream); bigger ones stream.
BUFFER_LIMIT = 256 * 1024
CHUNK_SIZE = 64 * 1024
# Request bodies up to this size are read whole (and can be sent again on a retry).
REPLAY_LIMIT = 64 * 1024
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

__all__ = ["REPLAY_LIMIT", "Proxy", "make_server"]


class _StreamedBody:
    """A request body passed on as it arrives, at most ``limit`` bytes."""

    def __init__(self, content: StreamReader, limit: int, idle_timeout_s: float) -> None:
        self._content = content
        self._limit = limit
        self._idle_timeout_s = idle_timeout_s or None
        self.started = False
        self.error: _BadBody | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        size = 0
        try:
            while True:
                async with asyncio.timeout(self._idle_timeout_s):
                    chunk = await self._content.read(CHUNK_SIZE)
                if not chunk:
                    return
                size += len(chunk)
                if size > self._limit:
                    self.error = _BadBody(413, "request body too large")
                    raise self.error
                yield chunk
        except HttpProcessingError as error:
            self.error = _BadBody(400, f"request body framing is broken: {error.message}")
            raise self.error from None
        except TimeoutError:
            self.error = _BadBody(408, "stream timeout")  # Envoy's stream_idle_timeout
            raise self.error from None


class _BadBody(Exception):
    """The client's body cannot be forwarded: answer ``status`` and close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Proxy:
    def __init__(
        self,
        table: RouteTable,
        upstreams: Mapping[Destination, str],
        outlier: OutlierDetector,
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        access_log: bool = False,
        limits: EdgeLimits | None = None,
    ) -> None:
        self.table = table
        self.upstreams = dict(upstreams)
        self.outlier = outlier
        self.endpoints = Endpoints(outlier)
        self.endpoints.know(self.upstreams)
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.limits = limits or EdgeLimits()
        self._session: aiohttp.ClientSession | None = None

    def use_routes(
        self,
        table: RouteTable,
        upstreams: Mapping[Destination, str],
        outlier_policies: Mapping[Destination, OutlierPolicy],
    ) -> None:
        """New routes for new requests (a reload of the Istio directory).

        A request in flight keeps the route it matched: addresses are only ever
        added (they come from the same static GATEWAY_UPSTREAMS), and the outlier
        state of each destination is kept, only its policy changes.
        """
        self.upstreams.update(upstreams)
        self.endpoints.know(self.upstreams)
        self.outlier.policies = dict(outlier_policies)
        self.table = table

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, ttl_dns_cache=None, keepalive_timeout=30.0, enable_cleanup_closed=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            trace_configs=[_sent_tracer()],
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        bad_version = getattr(request, "bad_version", None)
        if bad_version is not None:
            return _closing(400, f"unsupported HTTP version {bad_version}")
        if headers_too_large(request, self.limits):
            return _closing(431, "request header fields too large")
        raw_path = request.raw_path
        path, _, query = raw_path.partition("?")
        found = self.table.match(request.headers.get("Host"), path, request.headers)
        if found is None:
            return local_reply(404, "")
        route, match = found
        if route.fault is not None and (aborted := await route.fault.inject()) is not None:
            return aborted  # Istio's fault injection (devstack.gateway.fault)
        body: bytes | _StreamedBody | None = None
        if request.body_exists:
            declared = request.content_length
            if declared is not None and declared > self.max_body_bytes:
                return _closing(413, "request body too large")  # nothing read, nothing sent
            if request.headers.get("expect", "").lower() == "100-continue":
                # Envoy answers 100-continue itself and does not forward `Expect`.
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if declared is not None and declared <= REPLAY_LIMIT:
                try:
                    body = await _read_whole(
                        request.content, declared, self.limits.stream_idle_timeout_s
                    )
                except (asyncio.IncompleteReadError, HttpProcessingError):
                    return _closing(400, "request body ended before its Content-Length")
                except TimeoutError:
                    return _closing(408, "stream timeout")  # Envoy's stream_idle_timeout
            else:
                body = _StreamedBody(
                    request.content, self.max_body_bytes, self.limits.stream_idle_timeout_s
                )
        headers = _forward_headers(request, route)
        if isinstance(body, _StreamedBody) and request.content_length is not None:
            # Declared, so that the upstream can refuse it by its length alone.
            headers["Content-Length"] = str(request.content_length)
        upstream_path = rewrite_path(path, query, match, route.rewrite)
        response = await self._forward(request, route, upstream_path, headers, body)
        if isinstance(body, _StreamedBody) and not request.content.at_eof():
            response.force_close()  # the upstream answered before the whole body was read
        if self.access_log:
            log.info(
                "request",
                extra={
                    "http.method": request.method,
                    "http.url_details.path": path,
                    "http.status_code": response.status,
                    "route": route.name,
                },
            )
        return response

    async def _forward(
        self,
        request: web.BaseRequest,
        route: Route,
        upstream_path: str,
        headers: CIMultiDict[str],
        body: bytes | _StreamedBody | None,
    ) -> web.StreamResponse:
        """Try destinations until one answers for good, a retry is not allowed, or none is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + route.timeout_s if route.timeout_s else None
        policy = route.retry
        tried: set[Destination] = set()
        destination = self._choose(route, tried)
        retry = 0
        # Envoy's upstream_request_started: some try has sent bytes upstream.
        sent = _Sent()
        while destination is not None:
            started = loop.time()
            outcome = await self._try_once(
                request, destination, upstream_path, headers, body, policy, deadline, sent
            )
            if isinstance(outcome, web.StreamResponse):
                return outcome  # a broken client body, or the route's deadline passed
            if isinstance(outcome, aiohttp.ClientResponse):
                self.outlier.record_status(destination, outcome.status)
                again = policy.retries_status(outcome.status)
            else:
                if destination not in self.endpoints.unready:
                    # One the stack is restarting failed because of that: not an outlier.
                    self.outlier.record_failure(destination)
                again = policy.retries_failure(outcome, request_started=sent.started)
            if not (
                again
                and retry < policy.attempts
                and _replayable(body)
                and _time_left(loop, deadline)
            ):
                if isinstance(outcome, aiohttp.ClientResponse):
                    upstream_ms = int((loop.time() - started) * 1000)
                    return await _relay(request, outcome, upstream_ms, deadline)
                return _failure_answer(outcome)
            if isinstance(outcome, aiohttp.ClientResponse):
                outcome.close()
            retry += 1
            tried.add(destination)
            destination = await self._next_try(route, tried, retry, deadline)
        return _envoy_error(503, "no healthy upstream")

    async def _try_once(
        self,
        request: web.BaseRequest,
        destination: Destination,
        upstream_path: str,
        headers: CIMultiDict[str],
        body: bytes | _StreamedBody | None,
        policy: RetryPolicy,
        deadline: float | None,
        sent: _Sent,
    ) -> aiohttp.ClientResponse | Failure | web.StreamResponse:
        """One try: the upstream's answer, why there was none, or the gateway's own answer."""
        assert self._session is not None, "Proxy.start() not awaited"
        loop = asyncio.get_running_loop()
        try_deadline = deadline
        if policy.per_try_timeout_s is not None:
            per_try_end = loop.time() + policy.per_try_timeout_s
            try_deadline = per_try_end if deadline is None else min(deadline, per_try_end)
        url = URL(self.upstreams[destination] + upstream_path, encoded=True)
        data = body.chunks() if isinstance(body, _StreamedBody) else body
        failure: Failure
        try:
            async with asyncio.timeout_at(try_deadline):
                return await self._session.request(
                    request.method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    # A streamed body waits for the upstream's 100 Continue: an
                    # upstream that refuses it (413) answers before any of it is
                    # sent, instead of resetting a connection being written to.
                    expect100=isinstance(body, _StreamedBody),
                    trace_request_ctx=sent,
                )
        except _BadBody as error:
            return _closing(error.status, error.text)
        except TimeoutError:
            if deadline is not None and loop.time() >= deadline:
                return _envoy_error(504, "upstream request timeout")
            failure = Failure.PER_TRY_TIMEOUT
        except aiohttp.ClientConnectorError:
            failure = Failure.CONNECT_FAILURE
        except (aiohttp.ClientError, OSError):
            failure = Failure.RESET
        if isinstance(body, _StreamedBody) and body.error is not None:
            return _closing(body.error.status, body.error.text)
        return failure

    async def _next_try(
        self, route: Route, tried: set[Destination], retry: int, deadline: float | None
    ) -> Destination | None:
        delay = backoff_s(retry)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - asyncio.get_running_loop().time()))
        await asyncio.sleep(delay)
        return self._choose(route, tried)

    def _choose(self, route: Route, tried: set[Destination]) -> Destination | None:
        """A destination not tried yet and not ejected if there is one; None if all are ejected.

        None is Envoy's "no healthy upstream": Istio sets the panic threshold to
        the DestinationRule's minHealthPercent (0 unless set), so a subset whose
        only pod is ejected gets no traffic at all instead of its pod anyway. A
        destination that is not ready (the stack is restarting it) is never
        chosen, panic or not: it is not an endpoint, as in Kubernetes.
        """
        ejected = self.outlier.ejected()
        unready = self.endpoints.unready
        if not (ejected or unready):
            return route.pick(tried)  # the common case: every destination in the pick
        blocked = ejected | unready
        destination = route.pick(tried | blocked)
        if destination not in unready and self.outlier.usable(destination, ejected):
            return destination
        destination = route.pick(blocked)  # every healthy one was tried: any healthy one
        if destination not in unready and self.outlier.usable(destination, ejected):
            return destination
        return None


class _Sent:
    """Set once aiohttp has written a try's request headers (``trace_request_ctx``)."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = False


def _sent_tracer() -> aiohttp.TraceConfig:
    tracer = aiohttp.TraceConfig()
    tracer.on_request_headers_sent.append(_on_headers_sent)
    return tracer


async def _on_headers_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    sent = context.trace_request_ctx
    if isinstance(sent, _Sent):
        sent.started = True


def _replayable(body: bytes | _StreamedBody | None) -> bool:
    """False once part of a streamed body has been read: it cannot be sent again."""
    return not (isinstance(body, _StreamedBody) and body.started)


def _closing(status: int, text: str) -> web.Response:
    """An error answer after which the connection is closed (the request was not read)."""
    return local_reply(status, text, close=True)


async def _read_whole(content: StreamReader, length: int, idle_timeout_s: float) -> bytes:
    """Exactly ``length`` bytes; TimeoutError when none arrive for ``idle_timeout_s``."""
    parts: list[bytes] = []
    remaining = length
    while remaining > 0:
        async with asyncio.timeout(idle_timeout_s or None):
            chunk = await content.read(remaining)
        if not chunk:
            raise asyncio.IncompleteReadError(b"".join(parts), length)
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _time_left(loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
    return deadline is None or loop.time() < deadline


def _forward_headers(request: web.BaseRequest, route: Route) -> CIMultiDict[str]:
    incoming = request.headers
    connection_tokens = _connection_tokens(incoming)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in connection_tokens or lowered == "content-length":
            continue
        headers.add(name, value)
    peer = request.remote or ""
    previous = incoming.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{previous}, {peer}" if previous else peer
    headers["x-forwarded-proto"] = request.scheme
    if "x-request-id" not in headers:
        headers["x-request-id"] = str(uuid.uuid4())
    if route.rewrite is not None and route.rewrite.authority:
        headers["host"] = route.rewrite.authority
    return headers


def _connection_tokens(headers: MultiMapping[str]) -> set[str]:
    """Header names listed in ``Connection``: hop-by-hop for this hop only (RFC 9110 7.6.1)."""
    values = headers.getall("connection", [])
    return {token.strip().lower() for value in values for token in value.split(",") if token}


def _response_headers(upstream: aiohttp.ClientResponse, upstream_ms: int) -> CIMultiDict[str]:
    connection_tokens = _connection_tokens(upstream.headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.headers.items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in connection_tokens or lowered == "content-length":
            continue
        headers.add(name, value)
    headers[UPSTREAM_TIME_HEADER] = str(upstream_ms)
    return headers


async def _relay(
    request: web.BaseRequest,
    upstream: aiohttp.ClientResponse,
    upstream_ms: int,
    deadline: float | None,
) -> web.StreamResponse:
    headers = _response_headers(upstream, upstream_ms)
    length = upstream.content_length
    response: web.StreamResponse | None = None
    try:
        if request.method != "HEAD" and length is not None and length <= BUFFER_LIMIT:
            async with asyncio.timeout_at(deadline):
                data = await upstream.read()
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=data
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        if request.method != "HEAD":
            async with asyncio.timeout_at(deadline):
                async for chunk in upstream.content.iter_chunked(CHUNK_SIZE):
                    await response.write(chunk)
        await response.write_eof()
        return response
    except (aiohttp.ClientError, TimeoutError) as error:
        if response is not None and response.prepared:
            raise  # headers already sent: the downstream connection is dropped
        return _envoy_error(503, f"upstream reset while reading the body: {error}")
    finally:
        upstream.release()


def _failure_answer(failure: Failure) -> web.Response:
    """Envoy's answer when no try got an answer."""
    if failure is Failure.PER_TRY_TIMEOUT:
        return _envoy_error(504, "upstream request timeout")
    reason = "connection failure" if failure is Failure.CONNECT_FAILURE else "reset"
    return _envoy_error(
        503,
        f"upstream connect error or disconnect/reset before headers. reset reason: {reason}",
    )


def _envoy_error(status: int, text: str) -> web.Response:
    return local_reply(status, text)
