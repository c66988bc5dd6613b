"""The proxy I/O: aiohttp's low-level server in front of one pooled aiohttp client session.

Per request the work is: match the route table, draw a destination, forward with
the original headers (trace headers included, untouched), and stream the answer
back with ``x-envoy-upstream-service-time``. Retries, timeouts and outlier
ejection follow the pure model in :mod:`.routing`, :mod:`.retry` and :mod:`.outlier`.

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
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from devstack.gateway.outlier import OutlierDetector
from devstack.gateway.retry import Failure, backoff_s
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


class Proxy:
    def __init__(
        self,
        table: RouteTable,
        upstreams: Mapping[Destination, str],
        outlier: OutlierDetector,
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        access_log: bool = False,
    ) -> None:
        self.table = table
        self.upstreams = dict(upstreams)
        self.outlier = outlier
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self._session: aiohttp.ClientSession | None = None

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
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path = request.raw_path
        path, _, query = raw_path.partition("?")
        found = self.table.match(request.headers.get("Host"), path, request.headers)
        if found is None:
            return web.Response(status=404)
        route, match = found
        body: bytes | None = None
        if request.body_exists:
            if request.headers.get("expect", "").lower() == "100-continue":
                # Envoy answers 100-continue itself and does not forward `Expect`.
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._read_body(request)
            if body is None:
                return web.Response(status=413, text="request body too large")
        headers = _forward_headers(request, route)
        upstream_path = rewrite_path(path, query, match, route.rewrite)
        response = await self._forward(request, route, upstream_path, headers, body)
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

    async def _read_body(self, request: web.BaseRequest) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _forward(
        self,
        request: web.BaseRequest,
        route: Route,
        upstream_path: str,
        headers: CIMultiDict[str],
        body: bytes | None,
    ) -> web.StreamResponse:
        assert self._session is not None, "Proxy.start() not awaited"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + route.timeout_s if route.timeout_s else None
        policy = route.retry
        tried: set[Destination] = set()
        destination = route.pick(self.outlier.ejected())
        retry = 0
        while True:
            started = loop.time()
            try_deadline = deadline
            if policy.per_try_timeout_s is not None:
                per_try_end = started + policy.per_try_timeout_s
                try_deadline = per_try_end if deadline is None else min(deadline, per_try_end)
            url = URL(self.upstreams[destination] + upstream_path, encoded=True)
            failure: Failure
            try:
                async with asyncio.timeout_at(try_deadline):
                    upstream = await self._session.request(
                        request.method,
                        url,
                        headers=headers,
                        data=body,
                        allow_redirects=False,
                    )
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    return _envoy_error(504, "upstream request timeout")
                failure = Failure.PER_TRY_TIMEOUT
            except aiohttp.ClientConnectorError:
                failure = Failure.CONNECT_FAILURE
            except (aiohttp.ClientError, OSError):
                failure = Failure.RESET
            else:
                upstream_ms = int((loop.time() - started) * 1000)
                status = upstream.status
                self.outlier.record_status(destination, status)
                if (
                    retry < policy.attempts
                    and policy.retries_status(status)
                    and _time_left(loop, deadline)
                ):
                    upstream.close()
                    retry += 1
                    tried.add(destination)
                    destination = await self._next_try(route, tried, retry, deadline)
                    continue
                return await _relay(request, upstream, upstream_ms, deadline)
            self.outlier.record_failure(destination)
            if retry < policy.attempts and policy.retries_failure(failure):
                retry += 1
                tried.add(destination)
                if _time_left(loop, deadline):
                    destination = await self._next_try(route, tried, retry, deadline)
                    continue
            if failure is Failure.PER_TRY_TIMEOUT:
                return _envoy_error(504, "upstream request timeout")
            reason = "connection failure" if failure is Failure.CONNECT_FAILURE else "reset"
            return _envoy_error(
                503,
                "upstream connect error or disconnect/reset before headers. "
                f"reset reason: {reason}",
            )

    async def _next_try(
        self, route: Route, tried: set[Destination], retry: int, deadline: float | None
    ) -> Destination:
        delay = backoff_s(retry)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - asyncio.get_running_loop().time()))
        await asyncio.sleep(delay)
        return route.pick(tried | self.outlier.ejected())


def _time_left(loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
    return deadline is None or loop.time() < deadline


def _forward_headers(request: web.BaseRequest, route: Route) -> CIMultiDict[str]:
    incoming = request.headers
    connection_tokens = {
        token.strip().lower() for token in incoming.get("connection", "").split(",") if token
    }
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


def _response_headers(upstream: aiohttp.ClientResponse, upstream_ms: int) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.headers.items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered == "content-length":
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


def _envoy_error(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)
