"""The gateway's HTTP/1.1 edges: streamed request bodies, hop-by-hop headers, bad versions."""

from __future__ import annotations

import asyncio
import time

import httpx
from devstack.gateway.proxy import REPLAY_LIMIT
from testkit.devstack import Upstream

ROUTE = (
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: svc, namespace: apps}\n"
    "spec:\n  hosts: ['*']\n  gateways: [apps/gw]\n"
    "  http:\n  - route: [{destination: {host: svc}}]\n"
)
DEADLINE_S = 30.0


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Status line and the rest of one answer, read until the gateway closes."""
    async with asyncio.timeout(DEADLINE_S):
        data = await reader.read()
    status, _, rest = data.partition(b"\r\n")
    return status, rest


async def _wait_for_call(upstream: Upstream, path: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while upstream.calls.get(path, 0) == 0:
        assert time.monotonic() < deadline, f"the upstream never saw {path}"
        await asyncio.sleep(0.01)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    upstreams, gateway
) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url}, max_body_bytes=1024 * 1024)
    reader, writer = await _connect(url)
    # Headers only: the gateway must answer without waiting for 15 MiB that never come.
    writer.write(b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Length: 15728640\r\n\r\n")
    status, rest = await _answer(reader)
    writer.close()
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"Connection: close" in rest
    assert one.calls == {}


async def test_a_big_body_reaches_the_upstream_while_it_is_still_arriving(
    upstreams, gateway
) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url}, max_body_bytes=4 * 1024 * 1024)
    size = 1024 * 1024
    reader, writer = await _connect(url)
    writer.write(b"PUT /streamed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
    writer.write(b"Content-Length: %d\r\n\r\n" % size + b"a" * (REPLAY_LIMIT + 1))
    await writer.drain()
    # Not buffered: the upstream has the request before the client has sent it all.
    await _wait_for_call(one, "/streamed")
    writer.write(b"a" * (size - REPLAY_LIMIT - 1))
    status, rest = await _answer(reader)
    writer.close()
    assert status == b"HTTP/1.1 200 OK"
    assert rest.count(b"a") >= size


async def test_a_chunked_body_is_streamed_and_counted_against_the_limit(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url}, max_body_bytes=256 * 1024)

    async def chunks(total: int):  # type: ignore[no-untyped-def]
        for _ in range(total // 65536):
            yield b"b" * 65536

    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        fits = await client.post(f"{url}/chunked-in", content=chunks(192 * 1024))
        too_big = await client.post(f"{url}/chunked-too-big", content=chunks(1024 * 1024))
    assert fits.status_code == 200
    assert fits.json()["body"] == "b" * 192 * 1024
    assert too_big.status_code == 413


async def test_a_small_body_is_sent_again_on_a_retry(upstreams, gateway) -> None:
    one = await upstreams("one")
    one.fail_first = 1
    retrying = ROUTE.replace("  - route:", "  - retries: {attempts: 2, retryOn: 5xx}\n    route:")
    url = await gateway(retrying, {"svc": one.url})
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        reply = await client.post(f"{url}/fail", content=b"x" * 1000)
    assert reply.status_code == 200
    assert reply.json()["body"] == "x" * 1000
    assert one.calls["/fail"] == 2


async def test_a_chunk_size_that_is_not_hex_is_a_400(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url})
    reader, writer = await _connect(url)
    writer.write(
        b"POST /books HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nabc\r\n0\r\n\r\n"
    )
    status, _ = await _answer(reader)
    writer.close()
    assert status.split()[1] == b"400"


async def test_headers_named_in_connection_stay_on_their_hop(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url})
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        answer = await client.get(f"{url}/hop-by-hop")
        await client.get(f"{url}/", headers={"Connection": "x-client-hop", "x-client-hop": "1"})
    assert answer.status_code == 200
    assert answer.headers["x-end"] == "1"
    assert "x-hop" not in answer.headers
    assert "x-client-hop" not in {name.lower() for name in one.last_headers}


async def test_a_version_other_than_http_1_is_a_400_in_http_1_1(upstreams, gateway) -> None:
    one = await upstreams("one")
    url = await gateway(ROUTE, {"svc": one.url})
    for line in (b"GET / HTTP/2.0", b"GET / HTTP/0.9", b"GET /"):
        reader, writer = await _connect(url)
        writer.write(line + b"\r\nHost: x\r\n\r\n")
        status, rest = await _answer(reader)
        writer.close()
        assert status == b"HTTP/1.1 400 Bad Request", line
        assert b"unsupported HTTP version" in rest
    for line in (b"GET / HTTP/1.2", b"GET / HTTP/3.0"):  # refused by aiohttp's parser
        reader, writer = await _connect(url)
        writer.write(line + b"\r\nHost: x\r\n\r\n")
        status, _ = await _answer(reader)
        writer.close()
        assert status.split()[1] == b"400", line
    assert one.calls == {}
